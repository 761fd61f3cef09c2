package compat

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
)

// TestErrors_EachShapeItsOwn: each shape refuses a token only the way
// Auth0 let it. Auth0 does: a rule has UnauthorizedError, and any other
// error fails the request; a hook has InvalidScopeError,
// InvalidRequestError and ServerError; an action has api.access.deny.
// Another shape's constructor is a failure (500), never a refusal with
// that shape's code.
func TestErrors_EachShapeItsOwn(t *testing.T) {
	tests := []struct {
		name                  string
		ruleSrc, hook, action string
		wantCode              string // "" for a failure that is not a denial
	}{
		{"rule, UnauthorizedError", `return function(u, c, cb) cb(UnauthorizedError("m")) end`, "", "", "unauthorized"},
		{"rule, InvalidScopeError to callback", `return function(u, c, cb) cb(InvalidScopeError("m")) end`, "", "", ""},
		{"rule, InvalidRequestError raised", `return function(u, c, cb) error(InvalidRequestError("m")) end`, "", "", ""},
		{"hook, InvalidScopeError", "", hook(`cb(InvalidScopeError("m"))`), "", "invalid_scope"},
		{"hook, ServerError raised", "", hook(`error(ServerError("m"))`), "", "server_error"},
		{"hook, UnauthorizedError", "", hook(`cb(UnauthorizedError("m"))`), "", ""},
		{"action, deny", "", "", action(`api.access.deny("invalid_scope", "m")`), "invalid_scope"},
		{"action, UnauthorizedError raised", "", "", action(`error(UnauthorizedError("m"))`), ""},
		{"action, InvalidScopeError raised", "", "", action(`error(InvalidScopeError("m"))`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			var ruleSrcs []string
			if tt.ruleSrc != "" {
				ruleSrcs = []string{tt.ruleSrc}
			}
			if tt.hook != "" {
				cfg.Hooks = compileAs(t, "hook", tt.hook)
			}
			if tt.action != "" {
				cfg.Actions = compileAs(t, "action", tt.action)
			}
			p := newTestPipeline(t, cfg, ruleSrcs...)
			_, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
			if err == nil {
				t.Fatal("Run: got no error")
			}
			var d *Denial
			isDenial := errors.As(err, &d)
			switch {
			case tt.wantCode == "" && isDenial:
				t.Errorf("got a denial %s (%d), want a failure: this shape has no such error", d.Code, d.Status)
			case tt.wantCode != "" && (!isDenial || d.Code != tt.wantCode):
				t.Errorf("got %v, want a denial with code %s", err, tt.wantCode)
			}
		})
	}
}

// TestCacheExpiry_NotANumber: a ttl that is not a number (0/0 in Lua) is
// no ttl: the default lifetime, not the longest.
func TestCacheExpiry_NotANumber(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	if got := cacheExpiry(now, math.NaN(), math.NaN()); !got.Equal(now.Add(CacheDefaultTTL)) {
		t.Errorf("got %v, want now + %v", got.Sub(now), CacheDefaultTTL)
	}
}

// TestCheckSet: a push is refused when its layout could run less than it
// says: an unknown group (a typo), files out of order or not .lua, an
// unknown document, or no extension at all.
func TestCheckSet(t *testing.T) {
	file := func(name string) rules.File { return rules.NewFile(name, []byte("return function() end")) }
	tests := []struct {
		name string
		set  rules.Set
		ok   bool
	}{
		{"rules", rules.Set{Files: map[string][]rules.File{GroupRules: {file("10-a.lua"), file("20-b.lua")}}}, true},
		{"a typo in a group", rules.Set{Files: map[string][]rules.File{"rule": {file("10-a.lua")}}}, false},
		{"out of order", rules.Set{Files: map[string][]rules.File{GroupRules: {file("20-b.lua"), file("10-a.lua")}}}, false},
		{"twice", rules.Set{Files: map[string][]rules.File{GroupRules: {file("10-a.lua"), file("10-a.lua")}}}, false},
		{"not lua", rules.Set{Files: map[string][]rules.File{GroupHooks: {file("10-a.js")}}}, false},
		{"a path", rules.Set{Files: map[string][]rules.File{GroupHooks: {file("../10-a.lua")}}}, false},
		{"an unknown document", rules.Set{Files: map[string][]rules.File{GroupRules: {file("10-a.lua")}},
			Documents: map[string]json.RawMessage{"secrets": []byte("{}")}}, false},
		{"documents only", rules.Set{Documents: map[string]json.RawMessage{DocClients: []byte("{}")}}, false},
	}
	for _, tt := range tests {
		if err := CheckSet(&tt.set, false); (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestRedacted: listings show the configuration's keys and a hash, never
// its values, which actions see as secrets.
func TestRedacted(t *testing.T) {
	set := &rules.Set{Documents: map[string]json.RawMessage{
		DocConfiguration: []byte(`{"API_KEY": "s3cret-value", "NS": "https://x/"}`), DocClients: []byte(`{"c": {}}`)}}
	red := Redacted(set)
	doc := string(red.Documents[DocConfiguration])
	if strings.Contains(doc, "s3cret-value") || !strings.Contains(doc, `"API_KEY"`) || !strings.Contains(doc, "sha256:") {
		t.Errorf("redacted configuration: %s", doc)
	}
	if string(red.Documents[DocClients]) != `{"c": {}}` || !strings.Contains(string(set.Documents[DocConfiguration]), "s3cret-value") {
		t.Error("Redacted changed the clients or the original set")
	}
}
