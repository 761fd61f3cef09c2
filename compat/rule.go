package compat

import (
	"errors"
	"fmt"
	"time"

	"github.com/rulesgate/rulesgate/rules"
	lua "github.com/yuin/gopher-lua"
)

// ErrNoCallback is returned for a rule that returned without calling its
// callback. Auth0 waits for such a rule until its timeout; rulesgate fails
// at once, since a Lua rule cannot call back later.
var ErrNoCallback = errors.New("rule returned without calling callback")

// callback records what a rule passed to callback(err, user, context).
type callback struct {
	called             bool
	err, user, context lua.LValue
}

func (c *callback) call(l *lua.LState) int {
	if c.called {
		return 0 // Auth0 does: only the first call counts.
	}
	c.called = true
	c.err, c.user, c.context = l.Get(1), l.Get(2), l.Get(3)
	return 0
}

// runRules runs the rules in order on one state, each with the user and
// context the previous one called back with, and returns the access
// token's scopes and custom claims as the last rule left them.
func (p *Pipeline) runRules(s *rules.State, tx *Transaction, scopes []string, timings *[]Timing) ([]string, map[string]any, error) {
	l := s.Lua()
	env := s.NewEnv() // shared by the rules, as Auth0 runs them in one container
	user, context := lua.LValue(l.CreateTable(0, 0)), lua.LValue(p.newContext(s, tx, scopes))
	cb := &callback{}
	cbFn := l.NewFunction(cb.call)

	for _, prog := range p.cfg.Rules {
		fn, err := s.Function(prog, env)
		if err != nil {
			return nil, nil, p.ruleError(prog.Name, err, ruleErrors)
		}
		if fn.Type() != lua.LTFunction {
			return nil, nil, fmt.Errorf("run %s: the file returns a %s, not function(user, context, callback)", prog.Name, fn.Type())
		}

		*cb = callback{}
		start := time.Now()
		err = s.Call(prog.Name, fn, user, context, cbFn)
		*timings = append(*timings, Timing{prog.Name, time.Since(start)})
		if err != nil {
			return nil, nil, p.ruleError(prog.Name, err, ruleErrors)
		}
		if !cb.called {
			return nil, nil, fmt.Errorf("run %s: %w", prog.Name, ErrNoCallback)
		}
		if cb.err != lua.LNil {
			if d := denial(cb.err, prog.Name, ruleErrors); d != nil {
				return nil, nil, d
			}
			return nil, nil, fmt.Errorf("run %s: callback with error: %s", prog.Name, describe(cb.err))
		}
		if cb.user != lua.LNil {
			user = cb.user
		}
		if cb.context.Type() == lua.LTTable {
			context = cb.context
		}
	}
	return readAccessToken(s, context.(*lua.LTable))
}

// describe says what a rule passed as its error, for the log, without
// running any of the rule's metamethods outside the sandbox's protection.
func describe(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		if msg, ok := t.RawGetString("message").(lua.LString); ok {
			return string(msg)
		}
		return "a table"
	}
	if s, ok := v.(lua.LString); ok {
		return string(s)
	}
	if v == nil {
		return "nothing"
	}
	return "a " + v.Type().String()
}

// ruleError turns a value raised with error() by one of the allowed Auth0
// constructors into its denial, and leaves any other failure as it is.
func (p *Pipeline) ruleError(name string, err error, allowed []string) error {
	var lerr *rules.Error
	if errors.As(err, &lerr) {
		if d := denial(lerr.Value, name, allowed); d != nil {
			return d
		}
	}
	return err
}

// newContext builds the Auth0 Rules context for one request.
func (p *Pipeline) newContext(s *rules.State, tx *Transaction, scopes []string) *lua.LTable {
	l := s.Lua()
	client := p.client(tx.ClientID)

	request := l.CreateTable(0, 5)
	request.RawSetString("ip", lua.LString(tx.Request.IP))
	request.RawSetString("hostname", lua.LString(tx.Request.Hostname))
	request.RawSetString("userAgent", lua.LString(tx.Request.UserAgent))
	// Views, not tables: most rules read a key or two of these.
	request.RawSetString("query", s.View(tx.Request.Query))
	request.RawSetString("body", s.View(tx.Request.Body))

	token := l.CreateTable(0, 1)
	token.RawSetString("scope", rules.ToLua(l, scopes))

	ctx := l.CreateTable(0, 8)
	ctx.RawSetString("clientID", lua.LString(tx.ClientID))
	ctx.RawSetString("clientName", lua.LString(client.Name))
	ctx.RawSetString("clientMetadata", s.StringView(client.Metadata))
	ctx.RawSetString("protocol", lua.LString(protocol(tx.GrantType)))
	ctx.RawSetString("request", request)
	ctx.RawSetString("accessToken", token)
	ctx.RawSetString("idToken", l.CreateTable(0, 0))
	return ctx
}

// readAccessToken reads context.accessToken: its scope (an array, or a
// space-separated string as Auth0's own examples write it) and every other
// key as a custom claim.
func readAccessToken(s *rules.State, context *lua.LTable) ([]string, map[string]any, error) {
	token, ok := context.RawGetString("accessToken").(*lua.LTable)
	if !ok {
		return nil, nil, errors.New("read context.accessToken: not a table")
	}
	scopes, claims, err := readToken(s, token)
	if err != nil {
		return nil, nil, fmt.Errorf("read context.accessToken: %w", err)
	}
	return scopes, claims, nil
}

// readToken reads an access token table as rules and hooks leave it: its
// scope (an array, or a space-separated string) and every other key as a
// custom claim.
func readToken(s *rules.State, token *lua.LTable) ([]string, map[string]any, error) {
	scopes, err := rules.Strings(token.RawGetString("scope"))
	if err != nil {
		return nil, nil, fmt.Errorf("read scope: %w", err)
	}

	claims := map[string]any{}
	token.ForEach(func(k, v lua.LValue) {
		name, isString := k.(lua.LString)
		if err != nil || name == "scope" {
			return
		}
		if !isString {
			err = fmt.Errorf("a key of type %s", k.Type())
			return
		}
		claims[string(name)], err = s.ToGo(v)
		if err != nil {
			err = fmt.Errorf("read claim %q: %w", name, err)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return scopes, claims, nil
}
