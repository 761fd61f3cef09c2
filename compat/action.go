package compat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rulesgate/rulesgate/rules"
	lua "github.com/yuin/gopher-lua"
)

// actionEntry is the function each action module exports, as Auth0's
// exports.onExecuteCredentialsExchange.
const actionEntry = "onExecuteCredentialsExchange"

// actionRun is what the api of one pipeline run's actions records: the
// target scopes and claims as they stand, the denial if any, and which
// action last wrote each, for shadow reports.
type actionRun struct {
	ctx      context.Context // the pipeline run's, for the cache
	cache    Cache           // live and shadow runs have their own
	current  string          // the action running
	event    *lua.LTable     // the running action's event.transaction
	l        *lua.LState
	scopes   []string
	claims   map[string]any
	denial   *Denial
	timings  []Timing          // of every extension run, rules and hooks too
	scopesBy string            // the action that last edited the scopes
	claimBy  map[string]string // claim → the action that last set it
}

// runActions runs the credentials-exchange actions in order, after the
// hooks. Target scopes start as the rules and hooks left them; an action
// that denies ends the pipeline once it returns.
func (p *Pipeline) runActions(s *rules.State, tx *Transaction, actions []*rules.Program, run *actionRun) error {
	env := s.NewEnv()
	api := p.newAPI(s, run)
	for _, prog := range actions {
		mod, err := s.Function(prog, env)
		if err != nil {
			return p.ruleError(prog.Name, err, nil)
		}
		handler := lua.LValue(lua.LNil)
		if t, ok := mod.(*lua.LTable); ok {
			handler = t.RawGetString(actionEntry)
		}
		if handler.Type() != lua.LTFunction {
			return fmt.Errorf("run %s: the file returns a %s, not a table with %s(event, api)", prog.Name, mod.Type(), actionEntry)
		}

		run.current, run.l = prog.Name, s.Lua()
		start := time.Now()
		err = s.Call(prog.Name, handler, p.newEvent(s, tx, run), api)
		run.timings = append(run.timings, Timing{prog.Name, time.Since(start)})
		if err != nil {
			return p.ruleError(prog.Name, err, nil)
		}
		if run.denial != nil {
			return run.denial
		}
	}
	return nil
}

// newEvent builds the event of one action, as Auth0 gives it. Scopes and
// claims are copies: edits go through api.
func (p *Pipeline) newEvent(s *rules.State, tx *Transaction, run *actionRun) *lua.LTable {
	l := s.Lua()
	c := p.client(tx.ClientID)

	token := l.CreateTable(0, 2)
	token.RawSetString("customClaims", rules.ToLua(l, run.claims))
	token.RawSetString("scope", rules.ToLua(l, run.scopes))

	client := l.CreateTable(0, 3)
	client.RawSetString("client_id", lua.LString(tx.ClientID))
	client.RawSetString("name", lua.LString(c.Name))
	client.RawSetString("metadata", s.StringView(c.Metadata))

	request := l.CreateTable(0, 8)
	request.RawSetString("body", s.View(tx.Request.Body))
	request.RawSetString("query", s.View(tx.Request.Query))
	// TODO(geoip): no GeoIP database yet; Auth0 fills countryCode,
	// cityName and the rest from the client's address.
	request.RawSetString("geoip", l.CreateTable(0, 0))
	request.RawSetString("hostname", lua.LString(tx.Request.Hostname))
	request.RawSetString("ip", lua.LString(tx.Request.IP))
	request.RawSetString("language", lua.LString(tx.Request.Language))
	request.RawSetString("method", lua.LString("POST"))
	request.RawSetString("user_agent", lua.LString(tx.Request.UserAgent))

	resource := l.CreateTable(0, 1)
	resource.RawSetString("identifier", lua.LString(tx.Audience))
	tenant := l.CreateTable(0, 1)
	tenant.RawSetString("id", lua.LString(p.cfg.Tenant))

	transaction := l.CreateTable(0, 4)
	transaction.RawSetString("correlation_id", lua.LString(tx.CorrelationID))
	transaction.RawSetString("protocol", lua.LString(protocol(tx.GrantType)))
	transaction.RawSetString("requested_scopes", rules.ToLua(l, orEmpty(tx.RequestedScopes)))
	transaction.RawSetString("target_scopes", rules.ToLua(l, run.scopes))
	run.event = transaction

	event := l.CreateTable(0, 7)
	event.RawSetString("accessToken", token)
	event.RawSetString("client", client)
	event.RawSetString("request", request)
	event.RawSetString("resource_server", resource)
	event.RawSetString("secrets", s.Global("configuration"))
	event.RawSetString("tenant", tenant)
	event.RawSetString("transaction", transaction)
	return event
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// newAPI builds the api argument of the actions of one run.
func (p *Pipeline) newAPI(s *rules.State, run *actionRun) *lua.LTable {
	l := s.Lua()
	fn := func(f lua.LGFunction) lua.LValue { return l.NewFunction(f) }
	api := l.CreateTable(0, 4)

	transaction := l.CreateTable(0, 4)
	transaction.RawSetString("addTargetScope", fn(func(l *lua.LState) int {
		scope := l.CheckString(1)
		if !slices.Contains(run.scopes, scope) {
			run.setScopes(append(slices.Clip(run.scopes), scope))
		}
		l.Push(api)
		return 1
	}))
	transaction.RawSetString("removeTargetScope", fn(func(l *lua.LState) int {
		scope := l.CheckString(1)
		run.setScopes(slices.DeleteFunc(slices.Clone(run.scopes), func(s string) bool { return s == scope }))
		l.Push(api)
		return 1
	}))
	transaction.RawSetString("setTargetScopes", fn(func(l *lua.LState) int {
		scopes, err := rules.Strings(l.CheckTable(1))
		if err != nil {
			l.ArgError(1, err.Error())
		}
		run.setScopes(scopes)
		l.Push(api)
		return 1
	}))
	transaction.RawSetString("clearTargetScopes", fn(func(l *lua.LState) int {
		run.setScopes([]string{})
		l.Push(api)
		return 1
	}))

	token := l.CreateTable(0, 1)
	token.RawSetString("setCustomClaim", fn(func(l *lua.LState) int {
		name := l.CheckString(1)
		v, err := s.ToGo(l.Get(2))
		if err != nil {
			l.ArgError(2, err.Error())
		}
		run.setClaim(name, v)
		l.Push(api)
		return 1
	}))

	access := l.CreateTable(0, 1)
	access.RawSetString("deny", fn(func(l *lua.LState) int {
		code, reason := l.CheckString(1), l.OptString(2, "")
		status, ok := denyCodes[code]
		if !ok {
			l.ArgError(1, fmt.Sprintf("%q is not one of invalid_scope, invalid_request, server_error", code))
		}
		if run.denial == nil { // the first denial stands
			run.denial = &Denial{Status: status, Code: code, Description: reason, Extension: run.current}
		}
		l.Push(api)
		return 1
	}))

	api.RawSetString("transaction", transaction)
	api.RawSetString("accessToken", token)
	api.RawSetString("access", access)
	api.RawSetString("cache", p.newCacheAPI(s, run))
	return api
}

// setScopes records new target scopes. Auth0 does: each target-scope
// method updates event.transaction.target_scopes at once, for the running
// action too.
func (r *actionRun) setScopes(scopes []string) {
	r.scopes, r.scopesBy = scopes, r.current
	if r.event != nil {
		r.event.RawSetString("target_scopes", rules.ToLua(r.l, scopes))
	}
}

func (r *actionRun) setClaim(name string, v any) {
	if r.claimBy == nil {
		r.claims = maps.Clone(r.claims)
		if r.claims == nil {
			r.claims = map[string]any{}
		}
		r.claimBy = map[string]string{}
	}
	r.claimBy[name] = r.current
	if v == nil {
		// Auth0 does: an undefined claim value is left out of the token
		// (JSON has no undefined); nil is Lua's.
		delete(r.claims, name)
		return
	}
	r.claims[name] = v
}

// newCacheAPI builds api.cache over the run's cache, with Auth0's
// shapes: get returns {value, expires_at} or nil; set and delete return a
// CacheWriteResult, {type = "success"} or {type = "error", code = ...}.
func (p *Pipeline) newCacheAPI(s *rules.State, run *actionRun) *lua.LTable {
	l := s.Lua()
	cache := l.CreateTable(0, 3)
	record := func(l *lua.LState, e CacheEntry) *lua.LTable {
		t := l.CreateTable(0, 2)
		t.RawSetString("value", lua.LString(e.Value))
		t.RawSetString("expires_at", lua.LNumber(e.ExpiresAt.UnixMilli()))
		return t
	}
	result := func(l *lua.LState, err error, rec *lua.LTable) int {
		t := l.CreateTable(0, 2)
		if err != nil {
			t.RawSetString("type", lua.LString("error"))
			t.RawSetString("code", lua.LString(cacheErrorCode(err)))
		} else {
			t.RawSetString("type", lua.LString("success"))
			if rec != nil {
				t.RawSetString("record", rec)
			}
		}
		l.Push(t)
		return 1
	}

	cache.RawSetString("get", l.NewFunction(func(l *lua.LState) int {
		e, ok, err := run.cache.Get(runContext(l, run.ctx), l.CheckString(1))
		if err != nil || !ok {
			return 0 // Auth0 does: a miss, or a cache it cannot reach, is undefined
		}
		l.Push(record(l, e))
		return 1
	}))
	cache.RawSetString("set", l.NewFunction(func(l *lua.LState) int {
		key := l.CheckString(1)
		value, ok := l.Get(2).(lua.LString) // Auth0 does: values are strings
		if !ok {
			return result(l, ErrCacheValue, nil)
		}
		var ttl, at float64
		if opts, ok := l.Get(3).(*lua.LTable); ok {
			ttl = float64(lua.LVAsNumber(opts.RawGetString("ttl")))
			at = float64(lua.LVAsNumber(opts.RawGetString("expires_at")))
		}
		e := CacheEntry{Value: string(value), ExpiresAt: cacheExpiry(time.Now(), ttl, at)}
		if err := run.cache.Set(runContext(l, run.ctx), key, e.Value, e.ExpiresAt); err != nil {
			return result(l, err, nil)
		}
		return result(l, nil, record(l, e))
	}))
	cache.RawSetString("delete", l.NewFunction(func(l *lua.LState) int {
		return result(l, run.cache.Delete(runContext(l, run.ctx), l.CheckString(1)), nil)
	}))
	return cache
}

// runContext returns the context the state runs under, which a heap
// guard can end before the pipeline's (rules.HeapGuard), or fallback.
func runContext(l *lua.LState, fallback context.Context) context.Context {
	if ctx := l.Context(); ctx != nil {
		return ctx
	}
	return fallback
}

// cacheErrorCode names a cache error for a CacheWriteResult.
func cacheErrorCode(err error) string {
	for _, known := range []error{ErrCacheKey, ErrCacheValue} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return "unavailable"
}
