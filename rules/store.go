package rules

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is one extension source of a rule set.
type File struct {
	// Name is the file name; files run in name order.
	Name string `json:"name"`
	// Source is the Lua source.
	Source string `json:"source"`
	// Hash is the hex SHA-256 of Source.
	Hash string `json:"hash"`
}

// NewFile returns the file name with src and its hash.
func NewFile(name string, src []byte) File {
	sum := sha256.Sum256(src)
	return File{Name: name, Source: string(src), Hash: hex.EncodeToString(sum[:])}
}

// Set is one immutable, numbered version of everything a tenant runs:
// groups of extension files (the shapes name them: rules, hooks, ...) and
// JSON documents (configuration, clients). The engine gives the names no
// meaning.
type Set struct {
	// Version numbers the set in its store, from 1; 0 before it is stored.
	Version int64 `json:"version"`
	// ID is random, given at push: a store that lost its data and numbers
	// from 1 again still gives a new set a new ID.
	ID string `json:"id"`
	// Note says why the set was pushed; Author who pushed it.
	Note   string `json:"note"`
	Author string `json:"author,omitempty"`
	// Created is when the set was stored.
	Created time.Time `json:"created"`
	// Files holds each group's files, in name order.
	Files map[string][]File `json:"files"`
	// Documents holds JSON documents by name.
	Documents map[string]json.RawMessage `json:"documents,omitempty"`
}

// Compile compiles the files of one group with cache, which compiles each
// distinct source once.
func (s *Set) Compile(group string, cache *Cache) ([]*Program, error) {
	var progs []*Program
	for _, f := range s.Files[group] {
		p, err := cache.Compile(f.Name, []byte(f.Source))
		if err != nil {
			return nil, err
		}
		progs = append(progs, p)
	}
	return progs, nil
}

// ReadGroup reads the .lua files directly inside dir of fsys, in name
// order, as a group of a set.
func ReadGroup(fsys fs.FS, dir string) ([]File, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read extensions: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var files []File
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".lua" {
			continue
		}
		src, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read extensions: %w", err)
		}
		files = append(files, NewFile(e.Name(), src))
	}
	return files, nil
}

// Summary describes a stored version without its sources.
type Summary struct {
	Version int64               `json:"version"`
	Note    string              `json:"note"`
	Author  string              `json:"author,omitempty"`
	Created time.Time           `json:"created"`
	Active  bool                `json:"active"`
	Hashes  map[string][]string `json:"hashes"` // group → file: hash
}

func summarize(s *Set, active int64) Summary {
	hashes := map[string][]string{}
	for group, files := range s.Files {
		for _, f := range files {
			hashes[group] = append(hashes[group], f.Name+": "+f.Hash)
		}
	}
	return Summary{Version: s.Version, Note: s.Note, Author: s.Author, Created: s.Created,
		Active: s.Version == active, Hashes: hashes}
}

// Errors of a store.
var (
	// ErrNoVersion is returned for a version the store does not hold.
	ErrNoVersion = errors.New("no such rule set version")
	// ErrNoActive is returned when no version is active yet.
	ErrNoActive = errors.New("no active rule set version")
)

// Store keeps numbered, immutable rule set versions and names the active
// one. Implementations are safe for concurrent use.
type Store interface {
	// Push stores set as a new version, makes it active when activate is
	// true, and returns its number. The write is atomic: readers see all
	// of it or none.
	Push(ctx context.Context, set *Set, activate bool) (int64, error)
	// Activate makes a stored version the active one.
	Activate(ctx context.Context, version int64) error
	// Get returns one stored version.
	Get(ctx context.Context, version int64) (*Set, error)
	// ActiveVersion returns the active version's number and ID.
	ActiveVersion(ctx context.Context) (Ref, error)
	// List returns every stored version, oldest first.
	List(ctx context.Context) ([]Summary, error)
	// Changes returns a channel that receives a version number each time
	// one is activated, until ctx ends. A store may drop notices; readers
	// also ask ActiveVersion from time to time.
	Changes(ctx context.Context) <-chan int64
}

// Ref names a stored version: its number, and its ID, which tells apart
// two sets given the same number by a store that lost its data.
type Ref struct {
	Version int64
	ID      string
}

// String writes a ref as the store keeps it: "N:ID".
func (r Ref) String() string { return strconv.FormatInt(r.Version, 10) + ":" + r.ID }

// parseRef reads a ref written by String.
func parseRef(s string) (Ref, error) {
	n, id, _ := strings.Cut(s, ":")
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return Ref{}, fmt.Errorf("active version %q: %w", s, err)
	}
	return Ref{Version: v, ID: id}, nil
}

// Active returns the active set of a store.
func Active(ctx context.Context, st Store) (*Set, error) {
	ref, err := st.ActiveVersion(ctx)
	if err != nil {
		return nil, err
	}
	return st.Get(ctx, ref.Version)
}

// newID returns a random set ID.
func newID() string { return rand.Text() }

// MemoryStore is a Store in the process's memory: one replica, versions
// lost at exit.
type MemoryStore struct {
	mu       sync.Mutex
	sets     []*Set // sets[i].Version == i+1
	active   int64
	watchers []chan int64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Push implements Store.
func (m *MemoryStore) Push(_ context.Context, set *Set, activate bool) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := *set
	s.Version, s.ID = int64(len(m.sets))+1, newID()
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	m.sets = append(m.sets, &s)
	if activate {
		m.activate(s.Version)
	}
	return s.Version, nil
}

// Activate implements Store.
func (m *MemoryStore) Activate(_ context.Context, version int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version < 1 || version > int64(len(m.sets)) {
		return fmt.Errorf("activate %d: %w", version, ErrNoVersion)
	}
	m.activate(version)
	return nil
}

func (m *MemoryStore) activate(version int64) {
	m.active = version
	for _, w := range m.watchers {
		select {
		case w <- version:
		default: // the reader is behind; it will ask ActiveVersion
		}
	}
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, version int64) (*Set, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version < 1 || version > int64(len(m.sets)) {
		return nil, fmt.Errorf("get %d: %w", version, ErrNoVersion)
	}
	return m.sets[version-1], nil
}

// ActiveVersion implements Store.
func (m *MemoryStore) ActiveVersion(context.Context) (Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active == 0 {
		return Ref{}, ErrNoActive
	}
	return Ref{Version: m.active, ID: m.sets[m.active-1].ID}, nil
}

// List implements Store.
func (m *MemoryStore) List(context.Context) ([]Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Summary, 0, len(m.sets))
	for _, s := range m.sets {
		out = append(out, summarize(s, m.active))
	}
	return out, nil
}

// Changes implements Store.
func (m *MemoryStore) Changes(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	m.mu.Lock()
	m.watchers = append(m.watchers, ch)
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.watchers = slices.DeleteFunc(m.watchers, func(w chan int64) bool { return w == ch })
	}()
	return ch
}
