package compat

import (
	"fmt"
	"maps"
	"time"

	"github.com/rulesgate/rulesgate/rules"
	lua "github.com/yuin/gopher-lua"
)

// hookCallback records what a hook passed to cb(err, accessToken).
type hookCallback struct {
	called     bool
	err, token lua.LValue
}

func (c *hookCallback) call(l *lua.LState) int {
	if c.called {
		return 0
	}
	c.called = true
	c.err, c.token = l.Get(1), l.Get(2)
	return 0
}

// runHooks runs the client-credentials-exchange hooks in order, after the
// rules, each as function(client, scope, audience, context, cb). A hook
// that calls back with an access token sets the scopes to its scope array
// (when it has one) and adds its other keys as claims.
func (p *Pipeline) runHooks(s *rules.State, tx *Transaction, scopes []string, claims map[string]any, timings *[]Timing) ([]string, map[string]any, error) {
	l := s.Lua()
	env := s.NewEnv()
	cb := &hookCallback{}
	cbFn := l.NewFunction(cb.call)
	client, hookContext := p.hookClient(s, tx), p.hookContext(s)

	for _, prog := range p.cfg.Hooks {
		fn, err := s.Function(prog, env)
		if err != nil {
			return nil, nil, p.ruleError(prog.Name, err, hookErrors)
		}
		if fn.Type() != lua.LTFunction {
			return nil, nil, fmt.Errorf("run %s: the file returns a %s, not function(client, scope, audience, context, cb)", prog.Name, fn.Type())
		}

		// Auth0 does: scope is the requested scope array, or nil.
		requested := lua.LValue(lua.LNil)
		if tx.RequestedScopes != nil {
			requested = rules.ToLua(l, tx.RequestedScopes)
		}
		*cb = hookCallback{}
		start := time.Now()
		err = s.Call(prog.Name, fn, client, requested, lua.LString(tx.Audience), hookContext, cbFn)
		*timings = append(*timings, Timing{prog.Name, time.Since(start)})
		if err != nil {
			return nil, nil, p.ruleError(prog.Name, err, hookErrors)
		}
		if !cb.called {
			return nil, nil, fmt.Errorf("run %s: %w", prog.Name, ErrNoCallback)
		}
		if cb.err != lua.LNil {
			if d := denial(cb.err, prog.Name, hookErrors); d != nil {
				return nil, nil, d
			}
			return nil, nil, fmt.Errorf("run %s: callback with error: %s", prog.Name, describe(cb.err))
		}
		if scopes, claims, err = applyHookToken(s, prog.Name, cb.token, scopes, claims); err != nil {
			return nil, nil, err
		}
	}
	return scopes, claims, nil
}

// applyHookToken applies the access token a hook called back with: nil
// changes nothing; a table sets the scopes when it has a scope key, and
// adds every other key as a claim.
func applyHookToken(s *rules.State, hook string, v lua.LValue, scopes []string, claims map[string]any) ([]string, map[string]any, error) {
	if v == lua.LNil {
		return scopes, claims, nil
	}
	token, ok := v.(*lua.LTable)
	if !ok {
		return nil, nil, fmt.Errorf("run %s: cb(nil, accessToken) with a %s, not a table", hook, v.Type())
	}
	newScopes, set, err := readToken(s, token)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", hook, err)
	}
	if token.RawGetString("scope") != lua.LNil {
		scopes = newScopes
	}
	if len(set) > 0 {
		claims = maps.Clone(claims)
		if claims == nil {
			claims = make(map[string]any, len(set))
		}
		maps.Copy(claims, set)
	}
	return scopes, claims, nil
}

// hookClient builds the hook's client argument: {id, name, tenant,
// metadata}, as Auth0 gives it.
func (p *Pipeline) hookClient(s *rules.State, tx *Transaction) *lua.LTable {
	c := p.client(tx.ClientID)
	t := s.Lua().CreateTable(0, 4)
	t.RawSetString("id", lua.LString(tx.ClientID))
	t.RawSetString("name", lua.LString(c.Name))
	t.RawSetString("tenant", lua.LString(p.cfg.Tenant))
	t.RawSetString("metadata", s.StringView(c.Metadata))
	return t
}

// hookContext builds the hook's context argument. Auth0 does: the hook's
// secrets are in context.webtask.secrets; here, the configuration.
func (p *Pipeline) hookContext(s *rules.State) *lua.LTable {
	l := s.Lua()
	webtask := l.CreateTable(0, 1)
	webtask.RawSetString("secrets", s.Global("configuration"))
	t := l.CreateTable(0, 1)
	t.RawSetString("webtask", webtask)
	return t
}
