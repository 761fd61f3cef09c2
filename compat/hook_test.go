package compat

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
)

// compileAs compiles each source inline as one extension file of a kind,
// named "10-<kind>.lua", "20-<kind>.lua", ... in slice order, so that a
// denial or an error names the file a user would look for.
func compileAs(t *testing.T, kind string, srcs ...string) []*rules.Program {
	t.Helper()
	progs := make([]*rules.Program, 0, len(srcs))
	for i, src := range srcs {
		name := fmt.Sprintf("%d0-%s.lua", i+1, kind)
		p, err := rules.Compile(name, []byte(src))
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		progs = append(progs, p)
	}
	return progs
}

// hook wraps body in Auth0's client-credentials-exchange hook shape. The
// body calls cb itself.
func hook(body string) string {
	return "return function(client, scope, audience, context, cb)\n" + body + "\nend\n"
}

// newHookPipeline returns a pipeline for cfg running the rules, then the
// hooks, with a silent logger.
func newHookPipeline(t *testing.T, cfg Config, ruleSrcs []string, hookSrcs ...string) *Pipeline {
	t.Helper()
	cfg.Hooks = compileAs(t, "hook", hookSrcs...)
	return newTestPipeline(t, cfg, ruleSrcs...)
}

func TestHook_Arguments(t *testing.T) {
	clients := map[string]Client{
		"c1": {Name: "Client One", Metadata: map[string]string{"tenant": "acme", "plan": "pro"}},
	}
	config := map[string]any{"API_KEY": "k-123", "LIMIT": float64(5), "NESTED": map[string]any{"k": "v"}}
	tests := []struct {
		name      string
		clientID  string
		requested []string
		expr      string // Lua expression over the hook's arguments
		want      any
	}{
		// Auth0 does: client is {id, name, tenant, metadata}.
		{"client.id", "c1", nil, "client.id", "c1"},
		{"client.name", "c1", nil, "client.name", "Client One"},
		{"client.tenant", "c1", nil, "client.tenant", "acme-prod"},
		{"client.metadata field", "c1", nil, "client.metadata.plan", "pro"},
		{"client.metadata whole", "c1", nil, "client.metadata", map[string]any{"tenant": "acme", "plan": "pro"}},
		// A client the gateway does not know has an empty name and empty
		// metadata, so hooks testing client.metadata.x do not fail.
		{"unknown client name", "c9", nil, "client.name", ""},
		{"unknown client metadata is an empty table", "c9", nil,
			`type(client.metadata) == "table" and next(client.metadata) == nil`, true},
		// Auth0 does: scope is the requested scope array...
		{"scope is the requested array", "c1", []string{"write:a", "read:a"}, "scope", []any{"write:a", "read:a"}},
		// ...or nil when the request names none.
		{"scope is nil when none requested", "c1", nil, "scope == nil", true},
		// Auth0 does: audience is the API the token is for.
		{"audience", "c1", nil, "audience", "https://api.example.com"},
		// Auth0 does: the hook's secrets are in context.webtask.secrets.
		{"context.webtask.secrets", "c1", nil, "context.webtask.secrets.API_KEY", "k-123"},
		{"secrets number", "c1", nil, "context.webtask.secrets.LIMIT", int64(5)},
		{"secrets nested", "c1", nil, "context.webtask.secrets.NESTED.k", "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHookPipeline(t, Config{Clients: clients, Configuration: config, Tenant: "acme-prod"}, nil,
				hook(`cb(nil, {["https://example.com/v"] = `+tt.expr+`})`))
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: tt.clientID, GrantType: "client_credentials", Audience: "https://api.example.com",
				RequestedScopes: tt.requested, GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if got := res.Claims["https://example.com/v"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: got %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestHook_SecretsReadOnly(t *testing.T) {
	// Auth0 does: a hook's secrets are read-only. A write fails the
	// request, and the next request reads the settings unchanged.
	p := newHookPipeline(t, Config{Configuration: map[string]any{"k": "v"}}, nil, hook(`
if client.id == "writer" then context.webtask.secrets.k = "changed" end
cb(nil, {["https://example.com/k"] = context.webtask.secrets.k})`))
	_, err := p.Run(context.Background(), &Transaction{ClientID: "writer", GrantedScopes: granted})
	if err == nil {
		t.Fatal("Run: a write to context.webtask.secrets succeeded, want an error")
	}
	var d *Denial
	if errors.As(err, &d) {
		t.Errorf("Run: got denial %v, want a plain error", d)
	}
	res, err := p.Run(context.Background(), &Transaction{ClientID: "reader", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run after the write: got %v, want nil", err)
	}
	if got := res.Claims["https://example.com/k"]; got != "v" {
		t.Errorf("secret k after the write: got %v, want v", got)
	}
}

func TestHook_AccessToken(t *testing.T) {
	const narrowToReadA = `context.accessToken.scope = {"read:a"}
context.accessToken["https://example.com/rule"] = "r"`
	tests := []struct {
		name          string
		ruleBody      string // empty: no rule
		hookSrc       string
		wantScopes    []string
		wantClaims    map[string]any
		wantDropped   []string
		wantDroppedCl []string
	}{
		// Auth0 does: cb(null, accessToken) with accessToken.scope sets the
		// token's scopes to that array.
		{"scope array replaces the scopes", "",
			hook(`cb(nil, {scope = {"read:b"}})`),
			[]string{"read:b"}, map[string]any{}, nil, nil},
		// A space-separated string, as rules accept, works too.
		{"scope as a space-separated string", "",
			hook(`cb(nil, {scope = "write:a  read:a"})`),
			[]string{"write:a", "read:a"}, map[string]any{}, nil, nil},
		// An empty scope string is a token with no scopes.
		{"scope empty string clears", "",
			hook(`cb(nil, {scope = ""})`),
			nil, map[string]any{}, nil, nil},
		// An access token without scope keeps what the rules left.
		{"no scope keeps the rules' scopes", narrowToReadA,
			hook(`cb(nil, {["https://example.com/hook"] = "h"})`),
			[]string{"read:a"}, map[string]any{"https://example.com/rule": "r", "https://example.com/hook": "h"}, nil, nil},
		// cb(nil, nil) and cb(nil) change nothing.
		{"cb(nil, nil) changes nothing", narrowToReadA,
			hook(`cb(nil, nil)`),
			[]string{"read:a"}, map[string]any{"https://example.com/rule": "r"}, nil, nil},
		{"cb() changes nothing", narrowToReadA,
			hook(`cb()`),
			[]string{"read:a"}, map[string]any{"https://example.com/rule": "r"}, nil, nil},
		// The hook's other keys are claims, merged over the rules' claims.
		{"claims merged over the rules' claims",
			`context.accessToken["https://example.com/a"] = 1
context.accessToken["https://example.com/b"] = 1`,
			hook(`cb(nil, {["https://example.com/b"] = 2, ["https://example.com/c"] = {x = "y"}})`),
			granted, map[string]any{"https://example.com/a": int64(1), "https://example.com/b": int64(2),
				"https://example.com/c": map[string]any{"x": "y"}}, nil, nil},
		// A rule narrows; the hook, which builds its own scope array, may
		// add back a granted scope. Auth0 does: the final scopes never
		// leave the grant, so a scope outside it is dropped (and listed).
		{"hook widens within the grant after a narrowing rule", narrowToReadA,
			hook(`cb(nil, {scope = {"read:a", "write:a", "admin"}})`),
			[]string{"read:a", "write:a"}, map[string]any{"https://example.com/rule": "r"}, []string{"admin"}, nil},
		// Auth0 does: a restricted claim is dropped without failing the request.
		{"restricted claims dropped", "",
			hook(`cb(nil, {sub = "evil", ["https://x.auth0.com/y"] = "x", ["https://example.com/ok"] = true})`),
			granted, map[string]any{"https://example.com/ok": true}, nil, []string{"https://x.auth0.com/y", "sub"}},
		// The hook's scope is never a claim.
		{"scope is not a claim", "",
			hook(`cb(nil, {scope = {"read:a"}})`),
			[]string{"read:a"}, map[string]any{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ruleSrcs []string
			if tt.ruleBody != "" {
				ruleSrcs = []string{rule(tt.ruleBody)}
			}
			p := newHookPipeline(t, Config{}, ruleSrcs, tt.hookSrc)
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: "c1", GrantType: "client_credentials", GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.wantScopes) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.wantScopes)
			}
			claims := res.Claims
			if claims == nil {
				claims = map[string]any{}
			}
			if !reflect.DeepEqual(claims, tt.wantClaims) {
				t.Errorf("claims: got %v, want %v", claims, tt.wantClaims)
			}
			if !slices.Equal(res.DroppedScopes, tt.wantDropped) {
				t.Errorf("dropped scopes: got %v, want %v", res.DroppedScopes, tt.wantDropped)
			}
			if !slices.Equal(res.DroppedClaims, tt.wantDroppedCl) {
				t.Errorf("dropped claims: got %v, want %v", res.DroppedClaims, tt.wantDroppedCl)
			}
		})
	}
}

func TestHook_Denial(t *testing.T) {
	const mustNotRun = `error("a hook after a denial ran")`
	tests := []struct {
		name string
		srcs []string
		want Denial
	}{
		// Auth0 does: InvalidScopeError gives 400 invalid_scope.
		{"InvalidScopeError", []string{hook(`cb(InvalidScopeError("scope not allowed"))`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "scope not allowed", Extension: "10-hook.lua"}},
		// Auth0 does: InvalidRequestError gives 400 invalid_request.
		{"InvalidRequestError", []string{hook(`cb(InvalidRequestError("bad audience"))`)},
			Denial{Status: 400, Code: "invalid_request", Description: "bad audience", Extension: "10-hook.lua"}},
		// Auth0 does: ServerError gives 500 server_error.
		{"ServerError", []string{hook(`cb(ServerError("backend down"))`)},
			Denial{Status: 500, Code: "server_error", Description: "backend down", Extension: "10-hook.lua"}},
		// Raising the error works as calling back with it.
		{"raised with error()", []string{hook(`error(InvalidScopeError("m"))`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "m", Extension: "10-hook.lua"}},
		// A denial ends the pipeline: the next hook does not run.
		{"later hooks do not run",
			[]string{hook(`cb(nil, nil)`), hook(`return cb(InvalidRequestError("no"))`), hook(mustNotRun)},
			Denial{Status: 400, Code: "invalid_request", Description: "no", Extension: "20-hook.lua"}},
		// Only the first call of cb counts.
		{"first callback stands",
			[]string{hook(`cb(InvalidScopeError("first")) cb(nil, {scope = {"read:a"}})`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "first", Extension: "10-hook.lua"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHookPipeline(t, Config{}, nil, tt.srcs...)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if res != nil {
				t.Errorf("result: got %v, want nil", res)
			}
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("Run: got %v, want a *Denial", err)
			}
			if *d != tt.want {
				t.Errorf("denial: got %+v, want %+v", *d, tt.want)
			}
		})
	}
}

func TestHook_Failures(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr error // checked with errors.Is when set
	}{
		// Auth0 does: any other error is a server error; here a plain
		// error, which the gateway answers with 500 server_error and no
		// detail of the hook.
		{"cb with a string", hook(`cb("some string")`), nil},
		{"cb with an empty table", hook(`cb({})`), nil},
		{"cb with a message table", hook(`cb({message = "x"})`), nil},
		{"error()", hook(`error("boom")`), nil},
		{"runtime error", hook(`local x = nil; x.y = 1`), nil},
		// A hook that never calls back fails at once.
		{"never calls back", hook(``), ErrNoCallback},
		// The file must return function(client, scope, audience, context, cb).
		{"returns a table", `return {}`, nil},
		{"returns a number", `return 42`, nil},
		{"returns nothing", `local x = 1`, nil},
		// An access token the gateway cannot read fails the request
		// rather than issuing a token with unknown scopes or claims.
		{"access token is a string", hook(`cb(nil, "read:a")`), nil},
		{"scope is a number", hook(`cb(nil, {scope = 5})`), nil},
		{"claim is a function", hook(`cb(nil, {["https://example.com/f"] = function() end})`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHookPipeline(t, Config{}, nil, tt.src)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err == nil {
				t.Fatalf("Run: got %v, want an error", res)
			}
			if res != nil {
				t.Errorf("result: got %v, want nil", res)
			}
			var d *Denial
			if errors.As(err, &d) {
				t.Errorf("Run: got denial %v, want a plain error", d)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Run: got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestHook_Order(t *testing.T) {
	tests := []struct {
		name       string
		ruleBody   string
		hooks      []string
		wantScopes []string
		wantClaims map[string]any
	}{
		// Hooks run in file-name order: both hooks' claims land, and the
		// later one wins on a shared key.
		{"later hook wins", "",
			[]string{
				hook(`cb(nil, {["https://example.com/who"] = "first", ["https://example.com/one"] = 1})`),
				hook(`cb(nil, {["https://example.com/who"] = "second", ["https://example.com/two"] = 2})`),
			},
			granted, map[string]any{"https://example.com/who": "second",
				"https://example.com/one": int64(1), "https://example.com/two": int64(2)}},
		// The later hook's scope array replaces the earlier one's.
		{"later hook's scope wins", "",
			[]string{hook(`cb(nil, {scope = {"read:a"}})`), hook(`cb(nil, {scope = {"write:a"}})`)},
			[]string{"write:a"}, map[string]any{}},
		// A hook without scope keeps the scope the earlier hook set.
		{"earlier hook's scope kept", "",
			[]string{hook(`cb(nil, {scope = {"read:b"}})`), hook(`cb(nil, {["https://example.com/x"] = true})`)},
			[]string{"read:b"}, map[string]any{"https://example.com/x": true}},
		// Hooks run after the rules: a hook's claim wins over the rule's.
		{"hooks after rules", `context.accessToken["https://example.com/who"] = "rule"`,
			[]string{hook(`cb(nil, {["https://example.com/who"] = "hook"})`)},
			granted, map[string]any{"https://example.com/who": "hook"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ruleSrcs []string
			if tt.ruleBody != "" {
				ruleSrcs = []string{rule(tt.ruleBody)}
			}
			p := newHookPipeline(t, Config{}, ruleSrcs, tt.hooks...)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.wantScopes) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.wantScopes)
			}
			claims := res.Claims
			if claims == nil {
				claims = map[string]any{}
			}
			if !reflect.DeepEqual(claims, tt.wantClaims) {
				t.Errorf("claims: got %v, want %v", claims, tt.wantClaims)
			}
		})
	}
}

func TestHook_Timeout(t *testing.T) {
	// A runaway hook is stopped by the same deadline as the rules and
	// reported as a timeout; the pipeline keeps serving afterwards.
	p := newHookPipeline(t, Config{}, []string{rule(``)}, hook(`
if client.id == "loop" then while true do end end
cb(nil, nil)`))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := p.Run(ctx, &Transaction{ClientID: "loop", GrantedScopes: granted})
	if !rules.IsTimeout(err) {
		t.Fatalf("IsTimeout(%v): got false, want true", err)
	}
	if res != nil {
		t.Errorf("result: got %v, want nil", res)
	}

	res, err = p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run after timeout: got %v, want nil", err)
	}
	if !slices.Equal(res.Scopes, granted) {
		t.Errorf("scopes after timeout: got %v, want %v", res.Scopes, granted)
	}
}

func TestHook_Isolation(t *testing.T) {
	// A global a hook writes in one request is gone in the next: one
	// client's data never reaches another's token.
	p := newHookPipeline(t, Config{}, nil, hook(`
n = (n or 0) + 1
cb(nil, {["https://example.com/n"] = n})`))
	for i := range 5 {
		res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		if got := res.Claims["https://example.com/n"]; got != int64(1) {
			t.Errorf("run %d: got %v, want 1", i, got)
		}
	}
}
