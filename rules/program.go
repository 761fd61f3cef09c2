package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Program is one compiled extension file. It is immutable and shared by every
// state of an engine; each run executes its chunk afresh.
type Program struct {
	// Name identifies the program in logs and errors, usually its file name.
	Name string
	// Hash is the hex SHA-256 of the source the program was compiled from.
	Hash string

	proto *lua.FunctionProto
}

// Compile parses and compiles one Lua source file. A syntax error names the
// file and, unless it is at the end of the file, the line.
func Compile(name string, src []byte) (*Program, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	sum := sha256.Sum256(src)
	return &Program{Name: name, Hash: hex.EncodeToString(sum[:]), proto: proto}, nil
}

// Cache compiles each distinct source once, keyed by name and content hash,
// so that reloading an unchanged rule set costs no compilation.
type Cache struct {
	mu       sync.Mutex
	programs map[string]*Program
}

// Compile returns the cached program for name and src, compiling it on first use.
func (c *Cache) Compile(name string, src []byte) (*Program, error) {
	sum := sha256.Sum256(src)
	key := name + "\x00" + hex.EncodeToString(sum[:])

	c.mu.Lock()
	p, ok := c.programs[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}

	p, err := Compile(name, src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.programs == nil {
		c.programs = make(map[string]*Program)
	}
	c.programs[key] = p
	c.mu.Unlock()
	return p, nil
}
