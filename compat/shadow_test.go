package compat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
)

// newShadowPipeline returns a pipeline whose live side runs ruleSrcs and
// whatever hooks and actions cfg holds, and whose shadow side runs
// shadowSrcs, named "10-shadow.lua", "20-shadow.lua", ...
func newShadowPipeline(t *testing.T, cfg Config, ruleSrcs []string, shadowSrcs ...string) *Pipeline {
	t.Helper()
	cfg.ShadowActions = compileAs(t, "shadow", shadowSrcs...)
	return newTestPipeline(t, cfg, ruleSrcs...)
}

// liveThenShadow runs tx live, then in shadow, as the gateway does, and
// returns the differences.
func liveThenShadow(p *Pipeline, tx *Transaction) ([]Difference, error) {
	live, liveErr := p.Run(context.Background(), tx)
	return p.Shadow(context.Background(), tx, live, liveErr)
}

func TestPipeline_HasShadow(t *testing.T) {
	if p := newTestPipeline(t, Config{}, rule(``)); p.HasShadow() {
		t.Errorf("HasShadow without shadow actions: got true, want false")
	}
	if p := newShadowPipeline(t, Config{}, nil, action(``)); !p.HasShadow() {
		t.Errorf("HasShadow with a shadow action: got false, want true")
	}
}

func TestShadow_Compare(t *testing.T) {
	const narrowToReadA = `context.accessToken.scope = {"read:a"}`
	tests := []struct {
		name        string
		narrow      bool
		requested   []string
		ruleSrcs    []string
		liveHooks   []string
		liveActions []string
		shadowSrcs  []string
		want        []Difference
	}{
		// The same token on both sides: nothing to report.
		{"identical outcome", false, nil,
			[]string{rule(narrowToReadA + `
context.accessToken["https://example.com/tenant"] = "acme"`)}, nil, nil,
			[]string{action(`api.transaction.setTargetScopes({"read:a"})
api.accessToken.setCustomClaim("https://example.com/tenant", "acme")`)},
			nil},
		{"nothing changed on either side", false, nil, nil, nil, nil, []string{action(``)}, nil},
		// Scopes are a set: their order in the token means nothing.
		{"scope order ignored", false, nil,
			[]string{rule(`context.accessToken.scope = {"write:a", "read:a"}`)}, nil, nil,
			[]string{action(`api.transaction.setTargetScopes({"read:a", "write:a"})`)},
			nil},
		// A claim's value is compared as the token would carry it.
		{"same nested claim", false, nil,
			[]string{rule(`context.accessToken["https://example.com/org"] = {plan = "pro", tags = {"a", "b"}, n = 3}`)}, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/org", {tags = {"a", "b"}, n = 3.0, plan = "pro"})`)},
			nil},
		// A restricted claim is dropped on both sides before comparing.
		{"restricted claim dropped on both sides", false, nil,
			[]string{rule(`context.accessToken.sub = "x"`)}, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("sub", "y")`)},
			nil},
		// The shadow action keeps a scope the live rule removed: the
		// report names the action and both scope sets.
		{"shadow keeps an extra scope", false, nil,
			[]string{rule(narrowToReadA)}, nil, nil,
			[]string{action(`api.transaction.setTargetScopes({"read:a", "read:b"})`)},
			[]Difference{{Field: "scopes", Action: "10-shadow.lua", Live: `["read:a"]`, Shadow: `["read:a","read:b"]`}}},
		// The report names the shadow action that last edited the scopes.
		{"last action to edit the scopes named", false, nil,
			[]string{rule(narrowToReadA)}, nil, nil,
			[]string{
				action(`api.transaction.setTargetScopes({"read:a"})`),
				action(`api.transaction.addTargetScope("write:a")`),
				action(`api.accessToken.setCustomClaim("https://example.com/x", 1)`),
			},
			[]Difference{
				{Field: "scopes", Action: "20-shadow.lua", Live: `["read:a"]`, Shadow: `["read:a","write:a"]`},
				{Field: "claim", Claim: "https://example.com/x", Action: "30-shadow.lua", Live: "absent", Shadow: "set"},
			}},
		// The shadow set never touched the scopes: no action to name.
		{"shadow never edits the scopes", false, nil,
			[]string{rule(narrowToReadA)}, nil, nil,
			[]string{action(``)},
			[]Difference{{Field: "scopes", Action: "", Live: `["read:a"]`, Shadow: `["read:a","read:b","write:a"]`}}},
		// A claim set on one side only.
		{"claim only in shadow", false, nil, nil, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/x", "v")`)},
			[]Difference{{Field: "claim", Claim: "https://example.com/x", Action: "10-shadow.lua", Live: "absent", Shadow: "set"}}},
		{"claim only in live", false, nil,
			[]string{rule(`context.accessToken["https://example.com/x"] = "v"`)}, nil, nil,
			[]string{action(``)},
			[]Difference{{Field: "claim", Claim: "https://example.com/x", Action: "", Live: "set", Shadow: "absent"}}},
		// A claim with another value on each side; the report never
		// carries the values, which may be personal data.
		{"claim with another value", false, nil,
			[]string{rule(`context.accessToken["https://example.com/x"] = "alice@example.com"`)}, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/x", "bob@example.com")`)},
			[]Difference{{Field: "claim", Claim: "https://example.com/x", Action: "10-shadow.lua", Live: "set", Shadow: "set"}}},
		{"claim of another type", false, nil,
			[]string{rule(`context.accessToken["https://example.com/n"] = 1`)}, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/n", "1")`)},
			[]Difference{{Field: "claim", Claim: "https://example.com/n", Action: "10-shadow.lua", Live: "set", Shadow: "set"}}},
		// Scopes first, then claims by name.
		{"several differences in order", false, nil,
			[]string{rule(narrowToReadA + `
context.accessToken["https://example.com/b"] = 1
context.accessToken["https://example.com/same"] = true`)}, nil, nil,
			[]string{
				action(`api.accessToken.setCustomClaim("https://example.com/c", 1)
api.accessToken.setCustomClaim("https://example.com/same", true)`),
				action(`api.accessToken.setCustomClaim("https://example.com/a", 1)`),
			},
			[]Difference{
				{Field: "scopes", Action: "", Live: `["read:a"]`, Shadow: `["read:a","read:b","write:a"]`},
				{Field: "claim", Claim: "https://example.com/a", Action: "20-shadow.lua", Live: "absent", Shadow: "set"},
				{Field: "claim", Claim: "https://example.com/b", Action: "", Live: "set", Shadow: "absent"},
				{Field: "claim", Claim: "https://example.com/c", Action: "10-shadow.lua", Live: "absent", Shadow: "set"},
			}},
		// Auth0 does: Actions have no unauthorized code, so rulesgate
		// migrate turns a rule's UnauthorizedError into
		// api.access.deny('invalid_request', ...). With the same message
		// the outcomes match.
		{"unauthorized matches invalid_request", false, nil,
			[]string{`return function(user, context, callback)
  return callback(UnauthorizedError("client " .. context.clientID .. " is suspended"))
end`}, nil, nil,
			[]string{action(`api.access.deny("invalid_request", "client " .. event.client.client_id .. " is suspended")`)},
			nil},
		// A hook's error and an action's denial with the same code match.
		{"hook's invalid_scope matches", false, nil, nil,
			[]string{hook(`cb(InvalidScopeError("no admin"))`)}, nil,
			[]string{action(`api.access.deny("invalid_scope", "no admin")`)},
			nil},
		// Another message, or another code, is a difference.
		{"denial with another message", false, nil,
			[]string{`return function(user, context, callback) callback(UnauthorizedError("suspended")) end`}, nil, nil,
			[]string{action(`api.access.deny("invalid_request", "blocked")`)},
			[]Difference{{Field: "deny", Action: "10-shadow.lua",
				Live: "unauthorized (message differs)", Shadow: "invalid_request (message differs)"}}},
		{"denial with another code", false, nil,
			[]string{`return function(user, context, callback) callback(UnauthorizedError("m")) end`}, nil, nil,
			[]string{action(`api.access.deny("invalid_scope", "m")`)},
			[]Difference{{Field: "deny", Action: "10-shadow.lua", Live: "unauthorized", Shadow: "invalid_scope"}}},
		// A denial on one side only; "none" for the side that issued.
		{"only live denies", false, nil,
			[]string{`return function(user, context, callback) callback(UnauthorizedError("m")) end`}, nil, nil,
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/x", 1)`)},
			[]Difference{{Field: "deny", Action: "", Live: "unauthorized", Shadow: "none"}}},
		{"only shadow denies", false, nil,
			[]string{rule(``)}, nil, nil,
			[]string{action(``), action(`api.access.deny("invalid_scope", "m")`)},
			[]Difference{{Field: "deny", Action: "20-shadow.lua", Live: "none", Shadow: "invalid_scope"}}},
		{"only a live action denies", false, nil, nil, nil,
			[]string{action(`api.access.deny("server_error", "m")`)},
			[]string{action(``)},
			[]Difference{{Field: "deny", Action: "", Live: "server_error", Shadow: "none"}}},
		// The shadow set replaces the whole live pipeline: it starts from
		// the scopes the live run started from (here narrowed to the
		// request), sees none of the live rules', hooks' or actions'
		// changes, and none of them run in its place.
		{"shadow runs alone from the live start", true, []string{"read:b", "admin"},
			[]string{rule(`context.accessToken.scope = {"read:a"}
context.accessToken["https://example.com/rule"] = true`)},
			[]string{hook(`cb(nil, {["https://example.com/hook"] = true})`)},
			[]string{action(`api.accessToken.setCustomClaim("https://example.com/action", true)`)},
			[]string{action(`
local start = table.concat(event.transaction.target_scopes, " ")
if start ~= "read:b" then error("shadow started from " .. start) end
if next(event.accessToken.customClaims) ~= nil then error("shadow saw live claims") end
api.transaction.setTargetScopes({"read:a"})
api.accessToken.setCustomClaim("https://example.com/rule", true)
api.accessToken.setCustomClaim("https://example.com/hook", true)
api.accessToken.setCustomClaim("https://example.com/action", true)`)},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{NarrowScopes: tt.narrow}
			if tt.liveHooks != nil {
				cfg.Hooks = compileAs(t, "hook", tt.liveHooks...)
			}
			if tt.liveActions != nil {
				cfg.Actions = compileAs(t, "action", tt.liveActions...)
			}
			p := newShadowPipeline(t, cfg, tt.ruleSrcs, tt.shadowSrcs...)
			diffs, err := liveThenShadow(p, &Transaction{
				ClientID: "c1", GrantType: "client_credentials",
				RequestedScopes: tt.requested, GrantedScopes: granted,
			})
			if err != nil {
				t.Fatalf("Shadow: got %v, want nil", err)
			}
			if !reflect.DeepEqual(diffs, tt.want) {
				t.Errorf("differences:\n got %+v\nwant %+v", diffs, tt.want)
			}
		})
	}
}

func TestShadow_NotCompared(t *testing.T) {
	// A live run that failed other than by denying has no outcome to
	// compare: the shadow says so with ErrNotCompared, even for a shadow
	// set that would fail, and reports no difference.
	tests := []struct {
		name    string
		liveErr error
	}{
		{"plain error", errors.New("run 10-x.lua: boom")},
		{"timeout", &rules.Error{Program: "10-x.lua", Err: context.DeadlineExceeded}},
		{"no callback", fmt.Errorf("run 10-x.lua: %w", ErrNoCallback)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newShadowPipeline(t, Config{}, nil, action(`error("shadow ran")`))
			diffs, err := p.Shadow(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted}, nil, tt.liveErr)
			if diffs != nil || !errors.Is(err, ErrNotCompared) {
				t.Errorf("Shadow: got %v, %v, want nil, ErrNotCompared", diffs, err)
			}
		})
	}

	t.Run("live Lua error", func(t *testing.T) {
		p := newShadowPipeline(t, Config{}, []string{`return function(user, context, callback) error("boom") end`},
			action(`error("shadow ran")`))
		diffs, err := liveThenShadow(p, &Transaction{ClientID: "c1", GrantedScopes: granted})
		if diffs != nil || !errors.Is(err, ErrNotCompared) {
			t.Errorf("Shadow: got %v, %v, want nil, ErrNotCompared", diffs, err)
		}
	})
}

// TestShadow_DoesNotTouchLiveGlobals: shadow actions run on Lua states of
// their own. A migrated action that defines the same helper as the rule
// it came from, or writes global, must not change a later live answer.
func TestShadow_DoesNotTouchLiveGlobals(t *testing.T) {
	p := newShadowPipeline(t, Config{Limits: rules.Limits{IdleStates: 1}},
		[]string{`function allowed(s) return s ~= "write:a" end
return function(user, context, callback)
  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if allowed(s) then kept[#kept + 1] = s end
  end
  context.accessToken.scope = kept
  if global.poison then context.accessToken["https://example.com/poison"] = global.poison end
  callback(nil, user, context)
end`},
		`function allowed(s) return true end
global.poison = "from the shadow"
configuration = nil
UnauthorizedError = nil
return { onExecuteCredentialsExchange = function(event, api) end }`)
	tx := &Transaction{ClientID: "c1", GrantedScopes: granted}
	for i := range 3 {
		res, err := p.Run(context.Background(), tx)
		if err != nil {
			t.Fatalf("live run %d: %v", i, err)
		}
		if slices.Contains(res.Scopes, "write:a") || len(res.Claims) != 0 {
			t.Fatalf("live run %d after shadow runs: scopes %v, claims %v; the shadow set reached the live states", i, res.Scopes, res.Claims)
		}
		if _, err := p.Shadow(context.Background(), tx, res, nil); err != nil {
			t.Fatalf("shadow run %d: %v", i, err)
		}
	}
}

func TestShadow_Errors(t *testing.T) {
	// A shadow set that fails other than by denying returns its error,
	// for the gateway to log and count; it is never a difference.
	tests := []struct {
		name     string
		ruleSrcs []string
		shadow   string
	}{
		{"Lua error", []string{rule(``)}, action(`error("boom")`)},
		{"runtime error", []string{rule(``)}, action(`local x = nil; x.y = 1`)},
		{"deny with an unknown code", []string{rule(``)}, action(`api.access.deny("unauthorized", "m")`)},
		{"not an action", []string{rule(``)}, rule(``)},
		// Even when the live run denied.
		{"Lua error after a live denial",
			[]string{`return function(user, context, callback) callback(UnauthorizedError("m")) end`},
			action(`error("boom")`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newShadowPipeline(t, Config{}, tt.ruleSrcs, tt.shadow)
			diffs, err := liveThenShadow(p, &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err == nil {
				t.Fatalf("Shadow: got %v, nil, want an error", diffs)
			}
			if diffs != nil {
				t.Errorf("differences: got %v, want nil", diffs)
			}
			var d *Denial
			if errors.As(err, &d) {
				t.Errorf("Shadow: got denial %v, want a plain error", d)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		p := newShadowPipeline(t, Config{}, []string{rule(``)}, action(`while true do end`))
		tx := &Transaction{ClientID: "c1", GrantedScopes: granted}
		live, liveErr := p.Run(context.Background(), tx)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := p.Shadow(ctx, tx, live, liveErr)
		if !rules.IsTimeout(err) {
			t.Errorf("IsTimeout(%v): got false, want true", err)
		}
	})
}

// narrowAction is a hand-written port of the example rule
// 10-narrow-to-requested.lua to an action. Scopes named in keep are kept
// whatever the request says: a port with a mistake in it.
func narrowAction(keep ...string) string {
	extra := ""
	for _, s := range keep {
		extra += fmt.Sprintf(" or s == %q", s)
	}
	return action(`
local requested = event.request.body.scope or event.request.query.scope
if requested == nil or requested == "" then
  return
end
local wanted = {}
for s in string.gmatch(requested, "%S+") do
  wanted[s] = true
end
local kept = {}
for _, s in ipairs(event.transaction.target_scopes) do
  if wanted[s]` + extra + ` then
    table.insert(kept, s)
  end
end
api.transaction.setTargetScopes(kept)`)
}

func TestShadow_MigratedNarrowingRule(t *testing.T) {
	// A team migrating the example narrowing rule to an action runs the
	// action in shadow on real traffic: a faithful port matches on every
	// request; a port that keeps one scope too many is caught, and the
	// report names it.
	src, err := os.ReadFile("../examples/rules/10-narrow-to-requested.lua")
	if err != nil {
		t.Fatal(err)
	}
	live, err := rules.Compile("10-narrow-to-requested.lua", src)
	if err != nil {
		t.Fatal(err)
	}
	requests := []struct {
		name  string
		body  map[string]any
		query map[string]any
		// the differences of the port that always keeps read:b
		wantLoose []Difference
	}{
		{"body scope", map[string]any{"scope": "read:a"}, nil,
			[]Difference{{Field: "scopes", Action: "10-shadow.lua", Live: `["read:a"]`, Shadow: `["read:a","read:b"]`}}},
		{"query scope, two scopes", nil, map[string]any{"scope": "write:a read:a"},
			[]Difference{{Field: "scopes", Action: "10-shadow.lua",
				Live: `["read:a","write:a"]`, Shadow: `["read:a","read:b","write:a"]`}}},
		{"asks for the extra scope", map[string]any{"scope": "read:b"}, nil, nil},
		{"no scope", map[string]any{"audience": "https://api.example.com"}, nil, nil},
		{"empty scope", map[string]any{"scope": ""}, nil, nil},
		{"scope outside the grant", map[string]any{"scope": "admin"}, nil,
			[]Difference{{Field: "scopes", Action: "10-shadow.lua", Live: `[]`, Shadow: `["read:b"]`}}},
		{"repeated and outside", map[string]any{"scope": "read:a  read:a admin read:b"}, nil, nil},
	}
	tests := []struct {
		name   string
		shadow string
		loose  bool
	}{
		{"faithful port", narrowAction(), false},
		{"port keeping read:b", narrowAction("read:b"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPipeline(Config{
				Rules:         []*rules.Program{live},
				ShadowActions: compileAs(t, "shadow", tt.shadow),
				Logger:        slog.New(slog.DiscardHandler),
			})
			for _, req := range requests {
				diffs, err := liveThenShadow(p, &Transaction{
					ClientID: "c1", GrantType: "client_credentials", GrantedScopes: granted,
					Request: Request{Body: req.body, Query: req.query},
				})
				if err != nil {
					t.Fatalf("%s: Shadow: got %v, want nil", req.name, err)
				}
				var want []Difference
				if tt.loose {
					want = req.wantLoose
				}
				if !reflect.DeepEqual(diffs, want) {
					t.Errorf("%s: differences:\n got %+v\nwant %+v", req.name, diffs, want)
				}
			}
		})
	}
}

func TestShadow_DoesNotTouchLiveCache(t *testing.T) {
	// A shadow set runs on real traffic "without touching the answer". Its
	// api.cache writes must not reach the live actions' cache, or a shadow
	// action changes the tokens clients get (and its entries evict theirs).
	cache := NewMemoryCache()
	cfg := Config{Cache: cache, Actions: compileAs(t, "action", action(`
local mode = api.cache.get("mode")
api.accessToken.setCustomClaim("https://example.com/mode", mode and mode.value or "unset")`))}
	p := newShadowPipeline(t, cfg, nil, action(`
api.cache.set("mode", "shadow")
api.cache.delete("live-entry")`))
	if err := cache.Set(context.Background(), "live-entry", "v", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	tx := &Transaction{ClientID: "c1", GrantedScopes: granted}
	if _, err := liveThenShadow(p, tx); err != nil {
		t.Fatalf("Shadow: got %v, want nil", err)
	}
	res, err := p.Run(context.Background(), tx)
	if err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if got := res.Claims["https://example.com/mode"]; got != "unset" {
		t.Errorf("live claim after a shadow run: got %v, want unset", got)
	}
	if _, ok, _ := cache.Get(context.Background(), "live-entry"); !ok {
		t.Errorf("live cache entry after a shadow run: got a miss, want a hit")
	}
}

func TestShadow_Concurrent(t *testing.T) {
	// The gateway runs shadows in the background while live requests go
	// on; run with -race. Each client's shadow matches its live run.
	const goroutines, runs = 8, 30
	clients := map[string]Client{}
	for g := range goroutines {
		clients[fmt.Sprintf("client-%d", g)] = Client{Metadata: map[string]string{"tenant": fmt.Sprintf("tenant-%d", g)}}
	}
	p := newShadowPipeline(t, Config{Clients: clients},
		[]string{rule(`context.accessToken["https://example.com/tenant"] = context.clientMetadata.tenant
context.accessToken.scope = {"read:a"}`)},
		action(`api.accessToken.setCustomClaim("https://example.com/tenant", event.client.metadata.tenant)
api.transaction.setTargetScopes({"read:a"})`))

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			tx := &Transaction{ClientID: fmt.Sprintf("client-%d", g), GrantedScopes: granted}
			for i := range runs {
				diffs, err := liveThenShadow(p, tx)
				if err != nil || diffs != nil {
					t.Errorf("%s run %d: got %v, %v, want no differences", tx.ClientID, i, diffs, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
