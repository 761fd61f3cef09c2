package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

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
