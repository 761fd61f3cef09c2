package compat

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
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
