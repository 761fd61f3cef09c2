package compat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/rulesgate/rulesgate/rules"
	lua "github.com/yuin/gopher-lua"
)

// The names under which a rule set holds Auth0's shapes.
const (
	GroupRules         = "rules"
	GroupHooks         = "hooks"
	GroupActions       = "actions"
	GroupShadowActions = "shadow-actions"
	DocConfiguration   = "configuration"
	DocClients         = "clients"
)

// Dirs names where a rule set's parts are on disk; an empty name is an
// empty part.
type Dirs struct {
	Rules, Hooks, Actions, ShadowActions string
	Configuration, Clients               string // JSON files
}

// ReadSet reads a rule set from disk, without compiling it.
func ReadSet(d Dirs) (*rules.Set, error) {
	set := &rules.Set{Files: map[string][]rules.File{}, Documents: map[string]json.RawMessage{}}
	for _, g := range []struct{ name, dir string }{
		{GroupRules, d.Rules}, {GroupHooks, d.Hooks}, {GroupActions, d.Actions}, {GroupShadowActions, d.ShadowActions},
	} {
		if g.dir == "" {
			continue
		}
		files, err := rules.ReadGroup(os.DirFS(g.dir), ".")
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", g.name, err)
		}
		set.Files[g.name] = files
	}
	for _, doc := range []struct{ name, file string }{{DocConfiguration, d.Configuration}, {DocClients, d.Clients}} {
		if doc.file == "" {
			continue
		}
		data, err := os.ReadFile(doc.file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", doc.name, err)
		}
		set.Documents[doc.name] = bytes.TrimSpace(data)
	}
	return set, nil
}

// ErrEmptySet is CheckSet's error for a set without any extension.
var ErrEmptySet = errors.New("the set has no rules, hooks or actions")

// CheckSet checks the layout of a set before it is pushed: only the groups
// and documents rulesgate knows, files named *.lua, unique and in name
// order, and at least one extension unless allowEmpty. A typo in a group's
// name must not push a set that runs nothing.
func CheckSet(set *rules.Set, allowEmpty bool) error {
	files := 0
	for group, fs := range set.Files {
		switch group {
		case GroupRules, GroupHooks, GroupActions, GroupShadowActions:
		default:
			return fmt.Errorf("check set: unknown group %q (rules, hooks, actions, shadow-actions)", group)
		}
		for i, f := range fs {
			if !strings.HasSuffix(f.Name, ".lua") || strings.ContainsAny(f.Name, "/\\") {
				return fmt.Errorf("check set: %s/%q is not a .lua file name", group, f.Name)
			}
			if i > 0 && fs[i-1].Name >= f.Name {
				return fmt.Errorf("check set: %s/%s: files must be unique and in name order, the order they run in", group, f.Name)
			}
		}
		files += len(fs)
	}
	for name := range set.Documents {
		if name != DocConfiguration && name != DocClients {
			return fmt.Errorf("check set: unknown document %q (configuration, clients)", name)
		}
	}
	if files == 0 && !allowEmpty {
		return fmt.Errorf("check set: %w", ErrEmptySet)
	}
	return nil
}

// ConfigOf compiles a rule set into the pipeline configuration it
// describes, each distinct source compiled once by cache, over base (the
// settings that are not part of a set: narrowing, limits, tenant, cache,
// logger). A file that does not compile, or a document that is not what
// it should be, is an error naming it.
func ConfigOf(set *rules.Set, cache *rules.Cache, base Config) (Config, error) {
	cfg := base
	var err error
	for _, g := range []struct {
		name  string
		progs *[]*rules.Program
	}{
		{GroupRules, &cfg.Rules}, {GroupHooks, &cfg.Hooks}, {GroupActions, &cfg.Actions}, {GroupShadowActions, &cfg.ShadowActions},
	} {
		if *g.progs, err = set.Compile(g.name, cache); err != nil {
			return Config{}, fmt.Errorf("compile %s: %w", g.name, err)
		}
	}
	if err := decodeDoc(set, DocConfiguration, &cfg.Configuration); err != nil {
		return Config{}, err
	}
	if err := decodeDoc(set, DocClients, &cfg.Clients); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeDoc(set *rules.Set, name string, v any) error {
	data, ok := set.Documents[name]
	if !ok || len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// ErrShape is wrapped by Validate's errors for a file of the wrong shape.
var ErrShape = errors.New("not the shape of its kind")

// Validate runs the file level of every program of cfg once, on a fresh
// state, and checks that it returns its kind's shape: a function for rules
// and hooks, a table with onExecuteCredentialsExchange for actions. It is
// what a push checks before a set may reach any replica.
func Validate(ctx context.Context, cfg Config) error {
	engine := newEngine(cfg)
	return engine.Run(ctx, func(s *rules.State) error {
		env := s.NewEnv()
		for _, g := range []struct {
			progs  []*rules.Program
			action bool
		}{{cfg.Rules, false}, {cfg.Hooks, false}, {cfg.Actions, true}, {cfg.ShadowActions, true}} {
			for _, prog := range g.progs {
				v, err := s.Load(prog, env)
				if err != nil {
					return fmt.Errorf("validate %s: %w", prog.Name, err)
				}
				if err := checkShape(prog.Name, v, g.action); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func checkShape(name string, v lua.LValue, action bool) error {
	if !action {
		if v.Type() != lua.LTFunction {
			return fmt.Errorf("validate %s: %w: the file returns a %s, not a function", name, ErrShape, v.Type())
		}
		return nil
	}
	t, ok := v.(*lua.LTable)
	if !ok || t.RawGetString(actionEntry).Type() != lua.LTFunction {
		return fmt.Errorf("validate %s: %w: the file returns a %s, not a table with %s(event, api)", name, ErrShape, v.Type(), actionEntry)
	}
	return nil
}

// Redacted returns a copy of set whose configuration, which actions see as
// event.secrets, is replaced by its keys and a hash: what listings and
// diffs show unless asked to reveal values.
func Redacted(set *rules.Set) *rules.Set {
	doc, ok := set.Documents[DocConfiguration]
	if !ok {
		return set
	}
	c := *set
	c.Documents = maps.Clone(set.Documents)
	var values map[string]json.RawMessage
	keys := []string{}
	if json.Unmarshal(doc, &values) == nil {
		for k := range values {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	sum := sha256.Sum256(doc)
	c.Documents[DocConfiguration], _ = json.Marshal(map[string]any{
		"redacted": "sha256:" + hex.EncodeToString(sum[:]), "keys": keys})
	return &c
}
