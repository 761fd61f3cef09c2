package compat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
)

// compileRules compiles each source inline as one rule file, named
// "10-x.lua", "20-x.lua", ... in slice order.
func compileRules(t *testing.T, srcs ...string) []*rules.Program {
	t.Helper()
	progs := make([]*rules.Program, 0, len(srcs))
	for i, src := range srcs {
		name := fmt.Sprintf("%d0-x.lua", i+1)
		p, err := rules.Compile(name, []byte(src))
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		progs = append(progs, p)
	}
	return progs
}

// rule wraps body in the Auth0 Rules shape and calls back with the user
// and context after it.
func rule(body string) string {
	return "return function(user, context, callback)\n" + body + "\ncallback(nil, user, context)\nend\n"
}

// newTestPipeline returns a pipeline for cfg running srcs, with a silent logger.
func newTestPipeline(t *testing.T, cfg Config, srcs ...string) *Pipeline {
	t.Helper()
	cfg.Rules = compileRules(t, srcs...)
	cfg.Logger = slog.New(slog.DiscardHandler)
	return NewPipeline(cfg)
}

var granted = []string{"read:a", "read:b", "write:a"}

func TestPipeline_RunNoRules(t *testing.T) {
	tests := []struct {
		name      string
		narrow    bool
		requested []string
		want      []string
	}{
		// Hydra-like narrowing: the token carries the requested scopes the
		// client was granted, in the order it asked for them.
		{"narrow, requested subset", true, []string{"write:a", "admin", "read:a"}, []string{"write:a", "read:a"}},
		// A scope asked for twice is granted once.
		{"narrow, duplicate request", true, []string{"read:b", "read:b"}, []string{"read:b"}},
		// Auth0 does: a client_credentials token carries every granted scope,
		// whatever the request names; NarrowScopes false keeps that.
		{"no narrowing", false, []string{"read:a"}, granted},
		// A request that names no scope gets every granted scope, as on Auth0.
		{"narrow, nothing requested", true, nil, granted},
		// Nothing requested and no narrowing: every granted scope.
		{"no narrowing, nothing requested", false, nil, granted},
		// Requested scopes none of which were granted: an empty scope.
		{"narrow, nothing in common", true, []string{"admin"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{NarrowScopes: tt.narrow})
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: "c1", GrantType: "client_credentials",
				RequestedScopes: tt.requested, GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.want) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.want)
			}
			if len(res.DroppedScopes) != 0 {
				t.Errorf("dropped scopes: got %v, want none", res.DroppedScopes)
			}
			if len(res.Claims) != 0 {
				t.Errorf("claims: got %v, want none", res.Claims)
			}
		})
	}
}

func TestPipeline_RunScopes(t *testing.T) {
	tests := []struct {
		name        string
		narrow      bool
		requested   []string
		body        string
		want        []string
		wantDropped []string
	}{
		// Auth0 does: context.accessToken.scope is an array of strings; a
		// rule narrows the token by assigning a smaller array.
		{"narrowed by table", false, nil,
			`context.accessToken.scope = {"read:a"}`,
			[]string{"read:a"}, nil},
		// Auth0's own examples assign a space-joined string; it must work.
		{"assigned a space-separated string", false, nil,
			`context.accessToken.scope = "write:a  read:a"`,
			[]string{"write:a", "read:a"}, nil},
		// A rule that clears the scope gives a token with no scopes.
		{"set to nil", false, nil,
			`context.accessToken.scope = nil`,
			nil, nil},
		// An empty string is no scopes too.
		{"set to empty string", false, nil,
			`context.accessToken.scope = ""`,
			nil, nil},
		// Auth0 does: scopes outside the grant are dropped; final scopes are
		// always a subset of the grant, and the gateway reports the drop.
		{"added outside the grant", false, nil,
			`table.insert(context.accessToken.scope, "admin")`,
			granted, []string{"admin"}},
		// A scope named twice appears once; so does a dropped one.
		{"duplicates removed", false, nil,
			`context.accessToken.scope = {"read:b", "admin", "read:b", "admin", "read:a"}`,
			[]string{"read:b", "read:a"}, []string{"admin"}},
		// With narrowing, the rule starts from requested ∩ granted.
		{"rule sees narrowed start", true, []string{"read:b", "admin"},
			`assert(#context.accessToken.scope == 1 and context.accessToken.scope[1] == "read:b")`,
			[]string{"read:b"}, nil},
		// A rule may widen back to a granted scope the request did not name:
		// only the grant bounds the result, as Auth0 intersects with the grant.
		{"rule widens within the grant", true, []string{"read:a"},
			`table.insert(context.accessToken.scope, "write:a")`,
			[]string{"read:a", "write:a"}, nil},
		// A rule that leaves scope alone keeps the starting scopes.
		{"untouched", false, nil, ``, granted, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{NarrowScopes: tt.narrow}, rule(tt.body))
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: "c1", GrantType: "client_credentials",
				RequestedScopes: tt.requested, GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.want) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.want)
			}
			if !slices.Equal(res.DroppedScopes, tt.wantDropped) {
				t.Errorf("dropped scopes: got %v, want %v", res.DroppedScopes, tt.wantDropped)
			}
		})
	}
}

func TestPipeline_RunClaims(t *testing.T) {
	clients := map[string]Client{"c1": {Name: "One", Metadata: map[string]string{"tenant": "acme"}}}
	tests := []struct {
		name    string
		claim   string // claim name, as a Lua string literal's content
		value   string // Lua expression
		want    any    // the claim's Go value when kept
		dropped bool
	}{
		// Auth0 does: context.accessToken['https://example.com/claim'] = value
		// adds a custom claim to the token.
		{"namespaced from client metadata", "https://example.com/tenant", "context.clientMetadata.tenant", "acme", false},
		// Nested tables become JSON objects and arrays in the token.
		{"nested object and array", "https://example.com/org",
			`{plan = "pro", limits = {rps = 10, burst = 2.5}, tags = {"a", "b"}, on = true}`,
			map[string]any{"plan": "pro", "limits": map[string]any{"rps": int64(10), "burst": 2.5},
				"tags": []any{"a", "b"}, "on": true}, false},
		// A plain array claim.
		{"array", "https://example.com/roles", `{"admin", "ops"}`, []any{"admin", "ops"}, false},
		// Whole numbers stay integers in the token.
		{"number", "https://example.com/n", `42`, int64(42), false},
		// A claim without a namespace that is not restricted is kept.
		{"non-namespaced allowed", "tenant", `"acme"`, "acme", false},
		// Auth0 does: a write to a restricted claim is dropped without
		// failing the request.
		{"sub", "sub", `"evil"`, nil, true},
		{"iss", "iss", `"https://evil/"`, nil, true},
		{"exp", "exp", `9999999999`, nil, true},
		{"aud", "aud", `"https://other"`, nil, true},
		{"scp", "scp", `{"admin"}`, nil, true},
		{"permissions", "permissions", `{"admin"}`, nil, true},
		{"gty", "gty", `"password"`, nil, true},
		// Auth0 does: sip_* claims are restricted.
		{"sip_ prefix", "sip_foo", `"x"`, nil, true},
		// Auth0 does: auth0.com, webtask.io, webtask.run and urn:auth0
		// namespaces are reserved.
		{"auth0.com namespace", "https://x.auth0.com/y", `"x"`, nil, true},
		{"urn:auth0 namespace", "urn:auth0:z", `"x"`, nil, true},
		{"webtask.io namespace", "https://webtask.io/a", `"x"`, nil, true},
		{"webtask.run namespace", "https://t.webtask.run/a", `"x"`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := rule(fmt.Sprintf(`context.accessToken[%q] = %s
context.accessToken["https://example.com/kept"] = "yes"`, tt.claim, tt.value))
			p := newTestPipeline(t, Config{Clients: clients}, src)
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: "c1", GrantType: "client_credentials", GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			got, ok := res.Claims[tt.claim]
			if tt.dropped {
				if ok {
					t.Errorf("claim %q: got %v, want dropped", tt.claim, got)
				}
				if want := []string{tt.claim}; !slices.Equal(res.DroppedClaims, want) {
					t.Errorf("dropped claims: got %v, want %v", res.DroppedClaims, want)
				}
			} else {
				if !ok || !reflect.DeepEqual(got, tt.want) {
					t.Errorf("claim %q: got %#v, want %#v", tt.claim, got, tt.want)
				}
				if len(res.DroppedClaims) != 0 {
					t.Errorf("dropped claims: got %v, want none", res.DroppedClaims)
				}
			}
			// A dropped claim does not take the others with it.
			if got := res.Claims["https://example.com/kept"]; got != "yes" {
				t.Errorf("kept claim: got %v, want %v", got, "yes")
			}
			// scope is never a claim: it is the token's scope.
			if _, ok := res.Claims["scope"]; ok {
				t.Errorf("claims: got scope among them, want it only as the scope")
			}
		})
	}
}

func TestPipeline_RunClaimsDroppedTogether(t *testing.T) {
	// Several restricted writes in one run are all dropped and all listed,
	// while the custom claims stay.
	src := rule(`
context.accessToken.sub = "x"
context.accessToken.iss = "x"
context.accessToken["https://x.auth0.com/y"] = "x"
context.accessToken["https://example.com/a"] = 1
context.accessToken.tenant = "t"`)
	p := newTestPipeline(t, Config{}, src)
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	dropped := slices.Clone(res.DroppedClaims)
	sort.Strings(dropped)
	if want := []string{"https://x.auth0.com/y", "iss", "sub"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped claims: got %v, want %v", dropped, want)
	}
	if want := map[string]any{"https://example.com/a": int64(1), "tenant": "t"}; !reflect.DeepEqual(res.Claims, want) {
		t.Errorf("claims: got %v, want %v", res.Claims, want)
	}
}

func TestPipeline_RunClaimsSize(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		// Auth0 does: custom claims are limited to 100 KB; more fails.
		{"one claim over 100 KB", `context.accessToken["https://example.com/big"] = string.rep("a", 100 * 1024)`, true},
		// Auth0 does: the limit is on custom claims together.
		{"claims over 100 KB together", `
context.accessToken["https://example.com/a"] = string.rep("a", 60 * 1024)
context.accessToken["https://example.com/b"] = string.rep("b", 60 * 1024)`, true},
		// Claims just under the limit are accepted.
		{"just under 100 KB", `context.accessToken["https://example.com/big"] = string.rep("a", 100 * 1024 - 100)`, false},
		// A restricted claim is dropped before the size is counted.
		{"large restricted claim dropped first", `context.accessToken.sub = string.rep("a", 200 * 1024)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{}, rule(tt.body))
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if tt.wantErr {
				if !errors.Is(err, ErrClaimsTooLarge) {
					t.Errorf("Run: got %v, want %v", err, ErrClaimsTooLarge)
				}
				if res != nil {
					t.Errorf("result: got %v, want nil", res)
				}
				return
			}
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		})
	}
}

func TestPipeline_RunContext(t *testing.T) {
	clients := map[string]Client{
		"c1": {Name: "Client One", Metadata: map[string]string{"tenant": "acme", "plan": "pro"}},
	}
	tx := Transaction{
		ClientID:        "c1",
		GrantType:       "client_credentials",
		Audience:        "https://api.example.com",
		RequestedScopes: []string{"read:a"},
		GrantedScopes:   granted,
		Request: Request{
			IP:        "203.0.113.7",
			Hostname:  "auth.example.com",
			UserAgent: "curl/8.0",
			Query:     map[string]any{"scope": "read:a"},
			Body:      map[string]any{"audience": "https://api.example.com", "n": float64(2)},
		},
	}
	config := map[string]any{"CLAIM_NAMESPACE": "https://example.com/", "LIMIT": float64(5),
		"NESTED": map[string]any{"k": "v"}}
	tests := []struct {
		name     string
		clientID string
		config   map[string]any
		expr     string
		want     any
	}{
		// Auth0 does: context.clientID, clientName and clientMetadata come
		// from the client record.
		{"clientID", "c1", config, "context.clientID", "c1"},
		{"clientName", "c1", config, "context.clientName", "Client One"},
		{"clientMetadata", "c1", config, "context.clientMetadata", map[string]any{"tenant": "acme", "plan": "pro"}},
		{"clientMetadata field", "c1", config, "context.clientMetadata.tenant", "acme"},
		// A client not in Clients has an empty name and no metadata, so
		// rules that test context.clientMetadata.x do not fail.
		{"unknown client name", "c9", config, "context.clientName", ""},
		{"unknown client metadata is an empty table", "c9", config,
			`type(context.clientMetadata) == "table" and next(context.clientMetadata) == nil`, true},
		// Auth0 does: context.protocol is oauth2-client-credentials for a
		// client_credentials grant.
		{"protocol", "c1", config, "context.protocol", "oauth2-client-credentials"},
		// Auth0 does: context.request carries ip, hostname, userAgent, query, body.
		{"request.ip", "c1", config, "context.request.ip", "203.0.113.7"},
		{"request.hostname", "c1", config, "context.request.hostname", "auth.example.com"},
		{"request.userAgent", "c1", config, "context.request.userAgent", "curl/8.0"},
		{"request.query", "c1", config, "context.request.query", map[string]any{"scope": "read:a"}},
		{"request.query.scope", "c1", config, "context.request.query.scope", "read:a"},
		{"request.body", "c1", config, "context.request.body",
			map[string]any{"audience": "https://api.example.com", "n": int64(2)}},
		// Auth0 does: configuration holds the tenant settings as a global.
		{"configuration.X", "c1", config, "configuration.CLAIM_NAMESPACE", "https://example.com/"},
		{"configuration number", "c1", config, "configuration.LIMIT", int64(5)},
		{"configuration nested", "c1", config, "configuration.NESTED.k", "v"},
		// No configuration is an empty table, so configuration.X or default works.
		{"configuration nil is an empty table", "c1", nil,
			`type(configuration) == "table" and next(configuration) == nil`, true},
		{"configuration nil, default", "c1", nil, `configuration.CLAIM_NAMESPACE or "dflt"`, "dflt"},
		// For client_credentials there is no user: user is an empty table.
		{"user is an empty table", "c1", config, `type(user) == "table" and next(user) == nil`, true},
		// The access token starts with the (narrowed) scope array.
		{"accessToken.scope", "c1", config, "context.accessToken.scope", []any{"read:a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{Clients: clients, Configuration: tt.config, NarrowScopes: true},
				rule(`context.accessToken["https://example.com/v"] = `+tt.expr))
			tx := tx
			tx.ClientID = tt.clientID
			res, err := p.Run(context.Background(), &tx)
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if got := res.Claims["https://example.com/v"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: got %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestPipeline_RunOrder(t *testing.T) {
	const trace = `context.accessToken["https://example.com/trace"] = (context.accessToken["https://example.com/trace"] or "") .. "%d"`
	tests := []struct {
		name        string
		srcs        []string
		wantScopes  []string
		wantClaims  map[string]any
		wantDropped []string
	}{
		// Auth0 does: enabled rules run in order.
		{"slice order",
			[]string{rule(fmt.Sprintf(trace, 1)), rule(fmt.Sprintf(trace, 2)), rule(fmt.Sprintf(trace, 3))},
			granted, map[string]any{"https://example.com/trace": "123"}, nil},
		// Each rule sees the claims and scope the previous one left.
		{"later rule reads earlier changes",
			[]string{
				rule(`context.accessToken.scope = {"read:a"}
context.accessToken["https://example.com/step"] = "one"`),
				rule(`assert(#context.accessToken.scope == 1 and context.accessToken.scope[1] == "read:a", "scope not carried")
assert(context.accessToken["https://example.com/step"] == "one", "claim not carried")
table.insert(context.accessToken.scope, "read:b")
context.accessToken["https://example.com/step"] = context.accessToken["https://example.com/step"] .. ",two"`),
			},
			[]string{"read:a", "read:b"}, map[string]any{"https://example.com/step": "one,two"}, nil},
		// Auth0 does: each rule gets the context the previous one called
		// back with, even a new table.
		{"new context table carried",
			[]string{
				`return function(user, context, callback)
  local ctx = {clientID = "other", accessToken = {scope = {"read:b", "admin"}, ["https://example.com/new"] = true}}
  callback(nil, user, ctx)
end`,
				rule(`context.accessToken["https://example.com/seen"] = context.clientID`),
			},
			[]string{"read:b"}, map[string]any{"https://example.com/new": true, "https://example.com/seen": "other"},
			[]string{"admin"}},
		// Auth0 does: each rule gets the user the previous one called back with.
		{"new user table carried",
			[]string{
				`return function(user, context, callback) callback(nil, {name = "svc"}, context) end`,
				rule(`context.accessToken["https://example.com/user"] = user.name`),
			},
			granted, map[string]any{"https://example.com/user": "svc"}, nil},
		// A rule that calls back with no user and context leaves both as they were.
		{"callback(nil) keeps context",
			[]string{
				rule(`context.accessToken["https://example.com/a"] = 1`),
				`return function(user, context, callback) context.accessToken["https://example.com/b"] = 2 callback(nil) end`,
				rule(`context.accessToken["https://example.com/c"] = type(user)`),
			},
			granted, map[string]any{"https://example.com/a": int64(1), "https://example.com/b": int64(2),
				"https://example.com/c": "table"}, nil},
		// Globals are shared between one request's rules, as in one Auth0
		// container: a helper defined by rule 1 is visible to rule 2.
		{"globals shared within a run",
			[]string{
				rule(`shared_helper = function() return "h" end`),
				rule(`context.accessToken["https://example.com/h"] = shared_helper()`),
			},
			granted, map[string]any{"https://example.com/h": "h"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{}, tt.srcs...)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.wantScopes) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.wantScopes)
			}
			if !reflect.DeepEqual(res.Claims, tt.wantClaims) {
				t.Errorf("claims: got %v, want %v", res.Claims, tt.wantClaims)
			}
			if !slices.Equal(res.DroppedScopes, tt.wantDropped) {
				t.Errorf("dropped scopes: got %v, want %v", res.DroppedScopes, tt.wantDropped)
			}
		})
	}
}

func TestPipeline_RunDenial(t *testing.T) {
	const mustNotRun = `error("a rule after a denial ran")`
	tests := []struct {
		name          string
		srcs          []string
		wantDesc      string
		wantExtension string
	}{
		// Auth0 does: callback(new UnauthorizedError(msg)) gives
		// error=unauthorized with error_description=msg.
		{"callback", []string{
			`return function(user, context, callback) callback(UnauthorizedError("nope")) end`,
		}, "nope", "10-x.lua"},
		// Raising the error has the same effect as calling back with it.
		{"error()", []string{
			`return function(user, context, callback) error(UnauthorizedError("nope")) end`,
		}, "nope", "10-x.lua"},
		// Auth0 does: UnauthorizedError ends the pipeline; later rules do not
		// run (the third rule would fail the request if it did).
		{"stops the pipeline", []string{
			rule(``),
			`return function(user, context, callback) return callback(UnauthorizedError("client suspended")) end`,
			rule(mustNotRun),
		}, "client suspended", "20-x.lua"},
		{"error() stops the pipeline", []string{
			`return function(user, context, callback) error(UnauthorizedError("nope")) end`,
			rule(mustNotRun),
		}, "nope", "10-x.lua"},
		// A file that refuses while it loads is a denial as well.
		{"raised at load", []string{
			`error(UnauthorizedError("at load"))`,
			rule(mustNotRun),
		}, "at load", "10-x.lua"},
		// A denial built from context, as the example rule does.
		{"message from context", []string{
			`return function(user, context, callback) callback(UnauthorizedError("client " .. context.clientID .. " is suspended")) end`,
		}, "client c1 is suspended", "10-x.lua"},
		// No message is an empty description, not a failure.
		{"no message", []string{
			`return function(user, context, callback) callback(UnauthorizedError()) end`,
		}, "", "10-x.lua"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{}, tt.srcs...)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if res != nil {
				t.Errorf("result: got %v, want nil", res)
			}
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("Run: got %v, want a *Denial", err)
			}
			want := Denial{Status: 403, Code: "unauthorized", Description: tt.wantDesc, Extension: tt.wantExtension}
			if *d != want {
				t.Errorf("denial: got %+v, want %+v", *d, want)
			}
			if rules.IsTimeout(err) {
				t.Errorf("IsTimeout: got true, want false")
			}
		})
	}
}

func TestPipeline_RunFailures(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr error // checked with errors.Is when set
	}{
		// Auth0 does: any error other than UnauthorizedError fails the request.
		{"callback with a string", `return function(user, context, callback) callback("some error") end`, nil},
		{"callback with a plain table", `return function(user, context, callback) callback({message = "x"}) end`, nil},
		{"error()", `return function(user, context, callback) error("boom") end`, nil},
		{"runtime error", `return function(user, context, callback) local x = nil; x.y = 1 end`, nil},
		// A rule that never calls back fails at once rather than stalling.
		{"never calls back", `return function(user, context, callback) end`, ErrNoCallback},
		// The file must return function(user, context, callback).
		{"returns a number", `return 42`, nil},
		{"returns nothing", `local x = 1`, nil},
		{"error at load", `error("load")`, nil},
		// A context the gateway cannot read fails the request rather than
		// issuing a token with unknown scopes or claims.
		{"accessToken replaced by a string", rule(`context.accessToken = "x"`), nil},
		{"scope set to a number", rule(`context.accessToken.scope = 5`), nil},
		{"scope with a non-string entry", rule(`context.accessToken.scope = {"read:a", 5}`), nil},
		{"scope as a map", rule(`context.accessToken.scope = {read = true}`), nil},
		{"claim that is a function", rule(`context.accessToken["https://example.com/f"] = function() end`), nil},
		{"claim keyed by a number", rule(`context.accessToken[1] = "x"`), nil},
		{"new context without accessToken",
			`return function(user, context, callback) callback(nil, user, {clientID = "x"}) end`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{}, tt.src)
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
			if rules.IsTimeout(err) {
				t.Errorf("IsTimeout: got true, want false")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Run: got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPipeline_RunTimeout(t *testing.T) {
	// A runaway rule is stopped by the deadline and reported as a timeout;
	// the pipeline then keeps serving other requests.
	p := newTestPipeline(t, Config{}, rule(`if context.clientID == "loop" then while true do end end`))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := p.Run(ctx, &Transaction{ClientID: "loop", GrantedScopes: granted})
	if !rules.IsTimeout(err) {
		t.Fatalf("IsTimeout(%v): got false, want true", err)
	}
	if res != nil {
		t.Errorf("result: got %v, want nil", res)
	}
	var d *Denial
	if errors.As(err, &d) {
		t.Errorf("Run: got denial %v, want a timeout", d)
	}

	res, err = p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run after timeout: got %v, want nil", err)
	}
	if !slices.Equal(res.Scopes, granted) {
		t.Errorf("scopes after timeout: got %v, want %v", res.Scopes, granted)
	}
}

func TestPipeline_RunIsolation(t *testing.T) {
	// Globals written by one request are not seen by the next: one client's
	// data never leaks into another's token.
	p := newTestPipeline(t, Config{Configuration: map[string]any{"k": "v"}}, rule(`
x = (x or 0) + 1
context.accessToken["https://example.com/x"] = x
context.accessToken["https://example.com/k"] = configuration.k`))
	for i := range 5 {
		res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		want := map[string]any{"https://example.com/x": int64(1), "https://example.com/k": "v"}
		if !reflect.DeepEqual(res.Claims, want) {
			t.Errorf("run %d claims: got %v, want %v", i, res.Claims, want)
		}
	}
}

func TestPipeline_ConfigurationReadOnly(t *testing.T) {
	// Auth0 does: configuration is read-only. A write is a rule error, and
	// the settings the next request reads are unchanged.
	p := newTestPipeline(t, Config{Configuration: map[string]any{"k": "v"}},
		rule(`if context.clientID == "writer" then configuration.k = "changed" end
context.accessToken["https://example.com/k"] = configuration.k`))
	if _, err := p.Run(context.Background(), &Transaction{ClientID: "writer", GrantedScopes: granted}); err == nil {
		t.Fatal("a write to configuration succeeded")
	}
	res, err := p.Run(context.Background(), &Transaction{ClientID: "reader", GrantedScopes: granted})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Claims["https://example.com/k"]; got != "v" {
		t.Errorf("configuration k after the write: got %v, want v", got)
	}
}

func TestPipeline_RunGlobal(t *testing.T) {
	// Auth0 does: global is a table rules may cache values in (it may be
	// reset at any time, so only its use is checked, not its persistence).
	p := newTestPipeline(t, Config{}, rule(`
global.count = (global.count or 0) + 1
context.accessToken["https://example.com/count"] = global.count`))
	for i := range 3 {
		res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		n, ok := res.Claims["https://example.com/count"].(int64)
		if !ok || n < 1 {
			t.Errorf("run %d count: got %#v, want an integer >= 1", i, res.Claims["https://example.com/count"])
		}
	}
}

func TestPipeline_RunConcurrent(t *testing.T) {
	// Concurrent requests from different clients each get their own
	// client's claim; run with -race.
	const goroutines, runs = 8, 50
	clients := map[string]Client{}
	for g := range goroutines {
		clients[fmt.Sprintf("client-%d", g)] = Client{Metadata: map[string]string{"tenant": fmt.Sprintf("tenant-%d", g)}}
	}
	p := newTestPipeline(t, Config{Clients: clients}, rule(`
tenant = context.clientMetadata.tenant
context.accessToken["https://example.com/tenant"] = tenant`))

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			id, want := fmt.Sprintf("client-%d", g), fmt.Sprintf("tenant-%d", g)
			for i := range runs {
				res, err := p.Run(context.Background(), &Transaction{ClientID: id, GrantedScopes: granted})
				if err != nil {
					t.Errorf("%s run %d: got %v, want nil", id, i, err)
					return
				}
				if got := res.Claims["https://example.com/tenant"]; got != want {
					t.Errorf("%s run %d tenant: got %v, want %v", id, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPipeline_RunCallbackTwice(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		wantDenial bool
	}{
		// Auth0 does: a rule calls back exactly once; only the first call counts.
		{"nil then error", `return function(user, context, callback)
  context.accessToken["https://example.com/a"] = 1
  callback(nil, user, context)
  callback("late error")
end`, false},
		{"nil then denial", `return function(user, context, callback)
  context.accessToken["https://example.com/a"] = 1
  callback(nil, user, context)
  callback(UnauthorizedError("late"))
end`, false},
		{"denial then nil", `return function(user, context, callback)
  callback(UnauthorizedError("first"))
  callback(nil, user, context)
end`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, Config{}, tt.src)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if tt.wantDenial {
				var d *Denial
				if !errors.As(err, &d) || d.Description != "first" {
					t.Errorf("Run: got %v, want denial %q", err, "first")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if got := res.Claims["https://example.com/a"]; got != int64(1) {
				t.Errorf("claim: got %v, want %v", got, 1)
			}
		})
	}
}

func TestPipeline_RunErrorNamesRule(t *testing.T) {
	// An operator reading the log learns which rule failed.
	p := newTestPipeline(t, Config{}, rule(``), `return function(user, context, callback) error("boom") end`)
	_, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err == nil || !strings.Contains(err.Error(), "20-x.lua") {
		t.Errorf("Run: got %v, want an error naming %q", err, "20-x.lua")
	}
}

func TestPipeline_FileLevelGlobals(t *testing.T) {
	// A deny list set up at a rule file's top level holds for every
	// request, not only for the first one on each Lua state.
	progs := compileRules(t, `BLOCKED = { c1 = true }
return function(user, context, callback)
  if BLOCKED[context.clientID] then
    return callback(UnauthorizedError("blocked"))
  end
  callback(nil, user, context)
end`)
	p := NewPipeline(Config{Rules: progs, Logger: slog.New(slog.DiscardHandler)})
	for i, client := range []string{"c2", "c1", "c1", "c2", "c1"} {
		_, err := p.Run(context.Background(), &Transaction{ClientID: client, GrantedScopes: granted})
		var d *Denial
		if got, want := errors.As(err, &d), client == "c1"; got != want {
			t.Errorf("request %d for %s: denied %v, want %v (err %v)", i, client, got, want, err)
		}
	}
}

func TestPipeline_ClaimFromConfiguration(t *testing.T) {
	// A claim copied from configuration carries the settings' values, not
	// the empty front that keeps them read-only.
	p := newTestPipeline(t, Config{Configuration: map[string]any{
		"TEAM": map[string]any{"name": "billing", "tags": []any{"a", "b"}},
	}}, rule(`context.accessToken["https://example.com/team"] = configuration.TEAM`))
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "billing", "tags": []any{"a", "b"}}
	if got := res.Claims["https://example.com/team"]; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
