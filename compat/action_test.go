package compat

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
)

// action wraps body in the shape of an action module: a table exporting
// onExecuteCredentialsExchange(event, api), as Auth0's exports do.
func action(body string) string {
	return "return {\n  onExecuteCredentialsExchange = function(event, api)\n" + body + "\n  end,\n}\n"
}

// probe is an action that records the target scopes it is handed, space
// joined, as the claim https://example.com/seen.
var probe = action(`api.accessToken.setCustomClaim("https://example.com/seen",
  table.concat(event.transaction.target_scopes, " "))`)

// newActionPipeline returns a pipeline for cfg running the actions (and
// whatever rules and hooks cfg already holds), with a silent logger.
func newActionPipeline(t *testing.T, cfg Config, actionSrcs ...string) *Pipeline {
	t.Helper()
	cfg.Actions = compileAs(t, "action", actionSrcs...)
	return newTestPipeline(t, cfg)
}

func TestAction_Shape(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr bool
	}{
		// Auth0 does: exports.onExecuteCredentialsExchange = async (event, api) => {}.
		{"table with the entry point", action(``), false},
		{"exports table built up", `local exports = {}
function exports.onExecuteCredentialsExchange(event, api) end
return exports`, false},
		// Any other shape is refused rather than silently skipped.
		{"a rule's function", rule(``), true},
		{"table without the entry point", `return {onExecutePostLogin = function(event, api) end}`, true},
		{"entry point not a function", `return {onExecuteCredentialsExchange = "x"}`, true},
		{"returns nothing", `local x = 1`, true},
		{"returns a number", `return 42`, true},
		{"error at load", `error("load")`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{}, tt.src)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Run: got %v, want nil", err)
				}
				if !slices.Equal(res.Scopes, granted) {
					t.Errorf("scopes: got %v, want %v", res.Scopes, granted)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run: got %v, want an error", res)
			}
			var d *Denial
			if errors.As(err, &d) {
				t.Errorf("Run: got denial %v, want a plain error", d)
			}
			if !strings.Contains(err.Error(), "10-action.lua") {
				t.Errorf("Run: got %v, want an error naming %q", err, "10-action.lua")
			}
		})
	}
}

func TestAction_Event(t *testing.T) {
	clients := map[string]Client{
		"c1": {Name: "Client One", Metadata: map[string]string{"tenant": "acme", "plan": "pro"}},
	}
	tx := Transaction{
		ClientID:        "c1",
		GrantType:       "client_credentials",
		Audience:        "https://api.example.com",
		RequestedScopes: []string{"read:a", "admin"},
		GrantedScopes:   granted,
		CorrelationID:   "req-42",
		Request: Request{
			IP:        "203.0.113.7",
			Hostname:  "auth.example.com",
			UserAgent: "curl/8.0",
			Language:  "de-CH",
			Query:     map[string]any{"foo": "bar"},
			Body:      map[string]any{"audience": "https://api.example.com", "n": float64(2)},
		},
	}
	config := map[string]any{"API_KEY": "k-123", "NESTED": map[string]any{"k": "v"}}
	tests := []struct {
		name      string
		clientID  string
		grantType string
		requested []string
		expr      string // Lua expression over event
		want      any
	}{
		// Auth0 does: event.client carries client_id, name and metadata.
		{"client.client_id", "c1", "", nil, "event.client.client_id", "c1"},
		{"client.name", "c1", "", nil, "event.client.name", "Client One"},
		{"client.metadata", "c1", "", nil, "event.client.metadata", map[string]any{"tenant": "acme", "plan": "pro"}},
		{"client.metadata field", "c1", "", nil, "event.client.metadata.tenant", "acme"},
		{"unknown client name", "c9", "", nil, "event.client.name", ""},
		{"unknown client metadata is an empty table", "c9", "", nil,
			`type(event.client.metadata) == "table" and next(event.client.metadata) == nil`, true},
		// Auth0 does: event.request has body, query, ip, hostname,
		// user_agent, language, method and geoip.
		{"request.body", "c1", "", nil, "event.request.body",
			map[string]any{"audience": "https://api.example.com", "n": int64(2)}},
		{"request.body field", "c1", "", nil, "event.request.body.audience", "https://api.example.com"},
		{"request.query", "c1", "", nil, "event.request.query.foo", "bar"},
		{"request.ip", "c1", "", nil, "event.request.ip", "203.0.113.7"},
		{"request.hostname", "c1", "", nil, "event.request.hostname", "auth.example.com"},
		{"request.user_agent", "c1", "", nil, "event.request.user_agent", "curl/8.0"},
		{"request.language", "c1", "", nil, "event.request.language", "de-CH"},
		{"request.method", "c1", "", nil, "event.request.method", "POST"},
		{"request.geoip is a table", "c1", "", nil, `type(event.request.geoip) == "table"`, true},
		// Auth0 does: event.resource_server.identifier is the audience.
		{"resource_server.identifier", "c1", "", nil, "event.resource_server.identifier", "https://api.example.com"},
		// Auth0 does: event.secrets holds the action's secrets.
		{"secrets", "c1", "", nil, "event.secrets.API_KEY", "k-123"},
		{"secrets nested", "c1", "", nil, "event.secrets.NESTED.k", "v"},
		// Auth0 does: event.tenant.id names the tenant.
		{"tenant.id", "c1", "", nil, "event.tenant.id", "acme-prod"},
		// Auth0 does: event.transaction carries correlation_id, protocol,
		// requested_scopes and target_scopes.
		{"transaction.correlation_id", "c1", "", nil, "event.transaction.correlation_id", "req-42"},
		{"transaction.protocol", "c1", "client_credentials", nil, "event.transaction.protocol", "oauth2-client-credentials"},
		{"transaction.requested_scopes", "c1", "", []string{"read:a", "admin"},
			"event.transaction.requested_scopes", []any{"read:a", "admin"}},
		// No requested scope is an empty array, so #requested_scopes works.
		{"requested_scopes empty when none", "c1", "", nil,
			`type(event.transaction.requested_scopes) == "table" and #event.transaction.requested_scopes == 0`, true},
		// Auth0 does: target_scopes starts as the client's granted scopes.
		{"transaction.target_scopes", "c1", "", nil, "event.transaction.target_scopes", []any{"read:a", "read:b", "write:a"}},
		// Auth0 does: event.accessToken carries scope and customClaims.
		{"accessToken.scope", "c1", "", nil, "event.accessToken.scope", []any{"read:a", "read:b", "write:a"}},
		{"accessToken.customClaims empty", "c1", "", nil,
			`type(event.accessToken.customClaims) == "table" and next(event.accessToken.customClaims) == nil`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{Clients: clients, Configuration: config, Tenant: "acme-prod"},
				action(`api.accessToken.setCustomClaim("https://example.com/v", `+tt.expr+`)`))
			tx := tx
			tx.ClientID, tx.RequestedScopes = tt.clientID, tt.requested
			if tt.grantType != "" {
				tx.GrantType = tt.grantType
			}
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

func TestAction_EventAfterRulesAndHooks(t *testing.T) {
	// Actions see the token as the rules and hooks left it: the scopes
	// (target_scopes and accessToken.scope) and the custom claims. The
	// event is a copy: changing its tables changes nothing.
	cfg := Config{Hooks: compileAs(t, "hook",
		hook(`cb(nil, {scope = {"read:a", "write:a"}, ["https://example.com/hook"] = "h"})`))}
	cfg.Actions = compileAs(t, "action", action(`
local claims = event.accessToken.customClaims
local seen = table.concat(event.transaction.target_scopes, " ") .. "|" ..
  table.concat(event.accessToken.scope, " ") .. "|" ..
  claims["https://example.com/rule"] .. claims["https://example.com/hook"]
api.accessToken.setCustomClaim("https://example.com/seen", seen)
table.insert(event.transaction.target_scopes, "read:b")
table.insert(event.accessToken.scope, "read:b")
claims["https://example.com/sneaky"] = true`))
	p := newTestPipeline(t, cfg, rule(`context.accessToken.scope = {"read:a"}
context.accessToken["https://example.com/rule"] = "r"`))
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if got, want := res.Claims["https://example.com/seen"], "read:a write:a|read:a write:a|rh"; got != want {
		t.Errorf("event seen by the action: got %q, want %q", got, want)
	}
	if want := []string{"read:a", "write:a"}; !slices.Equal(res.Scopes, want) {
		t.Errorf("scopes: got %v, want %v", res.Scopes, want)
	}
	if _, ok := res.Claims["https://example.com/sneaky"]; ok {
		t.Errorf("claims: a write to event.accessToken.customClaims became a claim")
	}
}

func TestAction_SecretsReadOnly(t *testing.T) {
	// Auth0 does: event.secrets cannot be changed by an action. A write
	// fails the request, and the next request reads it unchanged.
	p := newActionPipeline(t, Config{Configuration: map[string]any{"k": "v"}}, action(`
if event.client.client_id == "writer" then event.secrets.k = "changed" end
api.accessToken.setCustomClaim("https://example.com/k", event.secrets.k)`))
	_, err := p.Run(context.Background(), &Transaction{ClientID: "writer", GrantedScopes: granted})
	if err == nil {
		t.Fatal("Run: a write to event.secrets succeeded, want an error")
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

func TestAction_TargetScopes(t *testing.T) {
	tests := []struct {
		name        string
		narrow      bool
		requested   []string
		body        string
		wantSeen    string // target_scopes as the next action sees them
		wantScopes  []string
		wantDropped []string
	}{
		// Auth0 does: addTargetScope adds a scope to the target set.
		{"addTargetScope", true, []string{"read:a"},
			`api.transaction.addTargetScope("write:a")`,
			"read:a write:a", []string{"read:a", "write:a"}, nil},
		// A scope already in the set is not added twice.
		{"addTargetScope without duplicates", true, []string{"read:a"},
			`api.transaction.addTargetScope("read:a")
api.transaction.addTargetScope("write:a")
api.transaction.addTargetScope("write:a")`,
			"read:a write:a", []string{"read:a", "write:a"}, nil},
		// Auth0 does: removeTargetScope removes one scope.
		{"removeTargetScope", false, nil,
			`api.transaction.removeTargetScope("read:b")`,
			"read:a write:a", []string{"read:a", "write:a"}, nil},
		{"removeTargetScope of an absent scope", false, nil,
			`api.transaction.removeTargetScope("admin")`,
			"read:a read:b write:a", granted, nil},
		// Auth0 does: setTargetScopes replaces the whole set.
		{"setTargetScopes", false, nil,
			`api.transaction.setTargetScopes({"write:a", "read:b"})`,
			"write:a read:b", []string{"write:a", "read:b"}, nil},
		{"setTargetScopes empty", false, nil,
			`api.transaction.setTargetScopes({})`,
			"", nil, nil},
		// Auth0 does: clearTargetScopes empties the set.
		{"clearTargetScopes", false, nil,
			`api.transaction.clearTargetScopes()`,
			"", nil, nil},
		{"clear then add", false, nil,
			`api.transaction.clearTargetScopes() api.transaction.addTargetScope("read:b")`,
			"read:b", []string{"read:b"}, nil},
		// Auth0 does: the target set is intersected with the grant after
		// all actions; scopes outside it are silently dropped. Here they
		// are also listed, for the gateway's log.
		{"addTargetScope outside the grant", false, nil,
			`api.transaction.addTargetScope("admin")`,
			"read:a read:b write:a admin", granted, []string{"admin"}},
		{"setTargetScopes outside the grant", false, nil,
			`api.transaction.setTargetScopes({"admin", "read:a", "delete:all"})`,
			"admin read:a delete:all", []string{"read:a"}, []string{"admin", "delete:all"}},
		// Auth0 does: target_scopes starts as the client's granted scopes;
		// with narrowing on, rulesgate starts from requested ∩ granted, and
		// an action may widen back within the grant.
		{"widen back after narrowing", true, []string{"read:b"},
			`api.transaction.addTargetScope("read:a")`,
			"read:b read:a", []string{"read:b", "read:a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{NarrowScopes: tt.narrow}, action(tt.body), probe)
			res, err := p.Run(context.Background(), &Transaction{
				ClientID: "c1", GrantType: "client_credentials",
				RequestedScopes: tt.requested, GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			// Auth0 does: changes accumulate across actions; a later action's
			// target_scopes shows the earlier one's edits.
			if got := res.Claims["https://example.com/seen"]; got != tt.wantSeen {
				t.Errorf("target_scopes seen by the next action: got %q, want %q", got, tt.wantSeen)
			}
			if !slices.Equal(res.Scopes, tt.wantScopes) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.wantScopes)
			}
			if !slices.Equal(res.DroppedScopes, tt.wantDropped) {
				t.Errorf("dropped scopes: got %v, want %v", res.DroppedScopes, tt.wantDropped)
			}
		})
	}
}

func TestAction_TargetScopesLeaveTransaction(t *testing.T) {
	// The shadow run reads the same transaction after the live one: no
	// scope edit may write into the granted scopes it starts from, even
	// when their array has room to grow.
	grantedWithRoom := make([]string, 0, 8)
	grantedWithRoom = append(grantedWithRoom, granted...)
	tx := &Transaction{ClientID: "c1", GrantedScopes: grantedWithRoom}
	p := newActionPipeline(t, Config{}, action(`api.transaction.addTargetScope("admin")`))
	for i := range 2 {
		res, err := p.Run(context.Background(), tx)
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		if want := []string{"admin"}; !slices.Equal(res.DroppedScopes, want) {
			t.Errorf("run %d dropped scopes: got %v, want %v", i, res.DroppedScopes, want)
		}
	}
	if got := tx.GrantedScopes[:cap(tx.GrantedScopes)]; !slices.Equal(got[:len(granted)], granted) ||
		slices.Contains(got, "admin") {
		t.Errorf("granted scopes' array after the runs: got %q, want %v and nothing written past it", got, granted)
	}
}

func TestAction_TargetScopesWithinAction(t *testing.T) {
	// Auth0 does: "Each target-scope method immediately updates
	// event.transaction.target_scopes, both within the current Action and
	// for subsequent Actions". An action that adds a scope and then reads
	// the set back, as migrated code often does, finds its scope there.
	tests := []struct {
		name string
		body string
		want string
	}{
		{"addTargetScope", `api.transaction.addTargetScope("admin")`, "read:a read:b write:a admin"},
		{"removeTargetScope", `api.transaction.removeTargetScope("read:b")`, "read:a write:a"},
		{"setTargetScopes", `api.transaction.setTargetScopes({"write:a"})`, "write:a"},
		{"clearTargetScopes", `api.transaction.clearTargetScopes()`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{}, action(tt.body+`
api.accessToken.setCustomClaim("https://example.com/seen", table.concat(event.transaction.target_scopes, " "))`))
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if got := res.Claims["https://example.com/seen"]; got != tt.want {
				t.Errorf("target_scopes read back in the same action: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAction_SetCustomClaim(t *testing.T) {
	tests := []struct {
		name    string
		srcs    []string
		claim   string
		want    any // the claim's value when kept
		dropped bool
	}{
		// Auth0 does: setCustomClaim(name, value) takes any JSON value.
		{"string", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", "acme")`)},
			"https://example.com/c", "acme", false},
		{"whole number", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", 42)`)},
			"https://example.com/c", int64(42), false},
		{"fraction", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", 2.5)`)},
			"https://example.com/c", 2.5, false},
		{"boolean", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", false)`)},
			"https://example.com/c", false, false},
		{"object", []string{action(`api.accessToken.setCustomClaim("https://example.com/c",
  {plan = "pro", limits = {rps = 10}})`)},
			"https://example.com/c", map[string]any{"plan": "pro", "limits": map[string]any{"rps": int64(10)}}, false},
		{"array", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", {"a", "b"})`)},
			"https://example.com/c", []any{"a", "b"}, false},
		// A claim set twice keeps the last value, across actions too.
		{"set twice", []string{action(`api.accessToken.setCustomClaim("https://example.com/c", 1)
api.accessToken.setCustomClaim("https://example.com/c", 2)`)},
			"https://example.com/c", int64(2), false},
		{"later action wins", []string{
			action(`api.accessToken.setCustomClaim("https://example.com/c", "first")`),
			action(`api.accessToken.setCustomClaim("https://example.com/c", "second")`)},
			"https://example.com/c", "second", false},
		// A later action sees the claim in event.accessToken.customClaims.
		{"seen by a later action", []string{
			action(`api.accessToken.setCustomClaim("https://example.com/a", "x")`),
			action(`api.accessToken.setCustomClaim("https://example.com/c",
  event.accessToken.customClaims["https://example.com/a"] .. "y")`)},
			"https://example.com/c", "xy", false},
		// Auth0 does: restricted claims cannot be set; the write is dropped
		// without failing the request.
		{"sub", []string{action(`api.accessToken.setCustomClaim("sub", "evil")`)}, "sub", nil, true},
		{"scope", []string{action(`api.accessToken.setCustomClaim("scope", "admin")`)}, "scope", nil, true},
		{"gty", []string{action(`api.accessToken.setCustomClaim("gty", "password")`)}, "gty", nil, true},
		{"auth0.com namespace", []string{action(`api.accessToken.setCustomClaim("https://t.auth0.com/x", 1)`)},
			"https://t.auth0.com/x", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs := append(slices.Clone(tt.srcs), action(`api.accessToken.setCustomClaim("https://example.com/kept", "yes")`))
			p := newActionPipeline(t, Config{}, srcs...)
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
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
				if !slices.Equal(res.Scopes, granted) {
					t.Errorf("scopes: got %v, want %v", res.Scopes, granted)
				}
			} else {
				if !ok || !reflect.DeepEqual(got, tt.want) {
					t.Errorf("claim %q: got %#v, want %#v", tt.claim, got, tt.want)
				}
				if len(res.DroppedClaims) != 0 {
					t.Errorf("dropped claims: got %v, want none", res.DroppedClaims)
				}
			}
			if got := res.Claims["https://example.com/kept"]; got != "yes" {
				t.Errorf("kept claim: got %v, want yes", got)
			}
		})
	}
}

func TestAction_Deny(t *testing.T) {
	const laterSetsClaim = `api.accessToken.setCustomClaim("https://example.com/later", true)
api.cache.set("later", "ran")`
	const laterFails = `error("an action after a denial ran")`
	tests := []struct {
		name          string
		srcs          []string
		want          Denial
		wantRestOfRun bool // the denying action's code after deny ran
	}{
		// Auth0 does: api.access.deny(code, reason) refuses the token with
		// that OAuth error; invalid_scope and invalid_request are 400s...
		{"invalid_scope", []string{action(`api.access.deny("invalid_scope", "no admin for you")`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "no admin for you", Extension: "10-action.lua"}, false},
		{"invalid_request", []string{action(`api.access.deny("invalid_request", "audience required")`)},
			Denial{Status: 400, Code: "invalid_request", Description: "audience required", Extension: "10-action.lua"}, false},
		// ...and server_error a 500.
		{"server_error", []string{action(`api.access.deny("server_error", "try later")`)},
			Denial{Status: 500, Code: "server_error", Description: "try later", Extension: "10-action.lua"}, false},
		// Auth0 does: the reason is optional.
		{"no reason", []string{action(`api.access.deny("invalid_request")`)},
			Denial{Status: 400, Code: "invalid_request", Description: "", Extension: "10-action.lua"}, false},
		// The denial names the action that denied.
		{"second action denies", []string{action(``), action(`api.access.deny("invalid_scope", "m")`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "m", Extension: "20-action.lua"}, false},
		// Like Auth0's JavaScript, deny does not return from the action: its
		// remaining code runs. The actions after it do not.
		{"rest of the action runs, later actions do not", []string{
			action(`api.access.deny("invalid_request", "nope")
api.cache.set("rest", "ran")`),
			action(laterSetsClaim), action(laterFails)},
			Denial{Status: 400, Code: "invalid_request", Description: "nope", Extension: "10-action.lua"}, true},
		// The first denial of a run stands.
		{"first denial stands", []string{action(`api.access.deny("invalid_scope", "first")
api.access.deny("server_error", "second")`)},
			Denial{Status: 400, Code: "invalid_scope", Description: "first", Extension: "10-action.lua"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := NewMemoryCache()
			p := newActionPipeline(t, Config{Cache: cache}, tt.srcs...)
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
			_, ran, _ := cache.Get(context.Background(), "rest")
			if ran != tt.wantRestOfRun {
				t.Errorf("code after deny ran: got %v, want %v", ran, tt.wantRestOfRun)
			}
			if _, later, _ := cache.Get(context.Background(), "later"); later {
				t.Errorf("an action after the denying one ran")
			}
		})
	}
}

func TestAction_Failures(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		// Auth0 does: deny's code is one of invalid_scope, invalid_request,
		// server_error. Another code is the action's mistake: a plain error,
		// which the gateway answers with 500 server_error.
		{"deny with unauthorized", `api.access.deny("unauthorized", "x")`},
		{"deny with access_denied", `api.access.deny("access_denied", "x")`},
		{"deny without a code", `api.access.deny()`},
		{"error()", `error("boom")`},
		{"runtime error", `local x = nil; x.y = 1`},
		{"claim value a function", `api.accessToken.setCustomClaim("https://example.com/f", function() end)`},
		{"setTargetScopes with a number entry", `api.transaction.setTargetScopes({"read:a", 5})`},
		{"setTargetScopes with a string", `api.transaction.setTargetScopes("read:a")`},
		{"addTargetScope without a scope", `api.transaction.addTargetScope()`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{}, action(tt.body))
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
			if !strings.Contains(err.Error(), "10-action.lua") {
				t.Errorf("Run: got %v, want an error naming %q", err, "10-action.lua")
			}
		})
	}
}

func TestAction_APIChaining(t *testing.T) {
	// Auth0 does: api.access.deny and api.accessToken.setCustomClaim
	// "return a reference to the api object"; rulesgate's scope methods do
	// the same, so calls chain.
	tests := []struct {
		name string
		call string
	}{
		{"addTargetScope", `api.transaction.addTargetScope("read:a")`},
		{"removeTargetScope", `api.transaction.removeTargetScope("read:a")`},
		{"setTargetScopes", `api.transaction.setTargetScopes({"read:a"})`},
		{"clearTargetScopes", `api.transaction.clearTargetScopes()`},
		{"setCustomClaim", `api.accessToken.setCustomClaim("https://example.com/x", 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{}, action(`
local ret = `+tt.call+`
api.accessToken.setCustomClaim("https://example.com/is_api", ret == api)`))
			res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if got := res.Claims["https://example.com/is_api"]; got != true {
				t.Errorf("%s returned api: got %v, want true", tt.call, got)
			}
		})
	}

	t.Run("chained calls", func(t *testing.T) {
		p := newActionPipeline(t, Config{}, action(`
api.transaction.clearTargetScopes().transaction.addTargetScope("write:a")
  .accessToken.setCustomClaim("https://example.com/a", 1)
  .transaction.addTargetScope("read:b")`))
		res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
		if err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		if want := []string{"write:a", "read:b"}; !slices.Equal(res.Scopes, want) {
			t.Errorf("scopes: got %v, want %v", res.Scopes, want)
		}
		if got := res.Claims["https://example.com/a"]; got != int64(1) {
			t.Errorf("claim: got %v, want 1", got)
		}
	})

	t.Run("deny returns api", func(t *testing.T) {
		p := newActionPipeline(t, Config{}, action(`
local ret = api.access.deny("invalid_request", "x")
if ret ~= api then error("deny did not return api") end`))
		_, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
		var d *Denial
		if !errors.As(err, &d) {
			t.Errorf("Run: got %v, want a *Denial", err)
		}
	})
}

func TestAction_RunsAfterRulesAndHooks(t *testing.T) {
	// Auth0 does: rules run first, then the hook, then the actions. Each
	// stage builds on the one before: the hook overwrites the rule's trace
	// (a hook is handed no access token, only builds one), the actions
	// append to it, and each stage adds a scope.
	const trace = "https://example.com/trace"
	cfg := Config{
		Hooks: compileAs(t, "hook", hook(`cb(nil, {scope = {"read:a", "read:b"}, ["`+trace+`"] = "hook"})`)),
		Actions: compileAs(t, "action",
			action(`
assert(table.concat(event.transaction.target_scopes, " ") == "read:a read:b", "action 1 saw the wrong scopes")
api.accessToken.setCustomClaim("`+trace+`", event.accessToken.customClaims["`+trace+`"] .. ",action1")
api.transaction.addTargetScope("write:a")`),
			action(`
assert(table.concat(event.transaction.target_scopes, " ") == "read:a read:b write:a", "action 2 saw the wrong scopes")
api.accessToken.setCustomClaim("`+trace+`", event.accessToken.customClaims["`+trace+`"] .. ",action2")`)),
	}
	p := newTestPipeline(t, cfg, rule(`context.accessToken.scope = {"read:a"}
context.accessToken["`+trace+`"] = "rule"
context.accessToken["https://example.com/rule"] = true`))
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if got, want := res.Claims[trace], "hook,action1,action2"; got != want {
		t.Errorf("trace: got %v, want %v", got, want)
	}
	if got := res.Claims["https://example.com/rule"]; got != true {
		t.Errorf("rule's claim: got %v, want true", got)
	}
	if want := []string{"read:a", "read:b", "write:a"}; !slices.Equal(res.Scopes, want) {
		t.Errorf("scopes: got %v, want %v", res.Scopes, want)
	}
}

func TestAction_Timeout(t *testing.T) {
	// A runaway action is stopped by the deadline and reported as a
	// timeout, not as a denial; the pipeline keeps serving afterwards.
	p := newActionPipeline(t, Config{}, action(`
if event.client.client_id == "loop" then while true do end end
api.accessToken.setCustomClaim("https://example.com/ok", true)`))
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
	if got := res.Claims["https://example.com/ok"]; got != true {
		t.Errorf("claim after timeout: got %v, want true", got)
	}
}

func TestAction_Isolation(t *testing.T) {
	// A global an action writes in one request is gone in the next: one
	// client's data never reaches another's token.
	p := newActionPipeline(t, Config{}, action(`
last_client = last_client or event.client.client_id
n = (n or 0) + 1
api.accessToken.setCustomClaim("https://example.com/n", n)
api.accessToken.setCustomClaim("https://example.com/last", last_client)`))
	for i, client := range []string{"c1", "c2", "c3", "c1", "c2"} {
		res, err := p.Run(context.Background(), &Transaction{ClientID: client, GrantedScopes: granted})
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		want := map[string]any{"https://example.com/n": int64(1), "https://example.com/last": client}
		if !reflect.DeepEqual(res.Claims, want) {
			t.Errorf("run %d claims: got %v, want %v", i, res.Claims, want)
		}
	}
}

// TestAction_SetCustomClaimNil: Auth0 does: a claim set to undefined is
// left out of the token, since JSON has no undefined. Lua's nil does the
// same here, also for a claim a rule set before.
func TestAction_SetCustomClaimNil(t *testing.T) {
	p := newTestPipeline(t, Config{Actions: compileAs(t, "action",
		action(`api.accessToken.setCustomClaim("https://example.com/a", nil)
  api.accessToken.setCustomClaim("https://example.com/b", nil)`))},
		rule(`context.accessToken["https://example.com/a"] = "from the rule"`))
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Claims) != 0 {
		t.Errorf("claims: got %v, want none", res.Claims)
	}
}
