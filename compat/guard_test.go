package compat

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// auth0Restricted is Auth0's restricted claim list as AUTH0.md gives it
// (sip_* is checked apart).
const auth0Restricted = `acr act active amr at_hash ath attest aud auth_time
	authorization_details azp c_hash client_id cnf cty dest entitlements events
	exp groups gty htm htu iat internalService iss jcard jku jti jwe jwk kid
	may_act mky nbf nonce object_id org_id org_name orig origid permissions
	roles rph s_hash sid sub sub_jwk toe txn typ uuid vot vtm x5t#S256`

func TestRestrictedAuth0List(t *testing.T) {
	// Auth0 does: a write to any claim on its restricted list is dropped.
	for _, name := range strings.Fields(auth0Restricted) {
		if got := Restricted(name); !got {
			t.Errorf("Restricted(%q): got %v, want %v", name, got, true)
		}
	}
}

func TestRestricted(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		// The scope claims change only through the scope (CONTRACT: scope
		// and scp are reserved).
		{"scope", true},
		{"scp", true},
		// Auth0 does: sip_* claims are restricted.
		{"sip_foo", true},
		{"sip_", true},
		// Auth0 does: auth0.com, webtask.io and webtask.run namespaces are
		// reserved, with or without a subdomain, scheme or port.
		{"https://auth0.com/y", true},
		{"https://x.auth0.com/y", true},
		{"http://x.auth0.com:8443/y", true},
		{"https://X.Auth0.COM/y", true},
		{"Auth0.com/x", true},
		{"tenant.auth0.com/x", true},
		{"auth0.com", true},
		{"https://webtask.io/a", true},
		{"https://x.webtask.io/a", true},
		{"https://webtask.run/a", true},
		{"https://x.webtask.run/a", true},
		// Names no URL parser accepts are still read for their host.
		{"https://tenant.auth0.com/100%", true},
		{"https://x.auth0.com/%zz", true},
		{"https://x.auth0.com\\y", true},
		{"http:/x.auth0.com/y", true},
		{" https://x.auth0.com/y", true},
		{"https://x.auth0.com./y", true},
		{"https://user@x.auth0.com/y", true},
		// Auth0 does: urn:auth0 is reserved, whatever the case.
		{"urn:auth0:z", true},
		{"URN:Auth0:z", true},
		// Namespaced custom claims on the user's own domain are allowed:
		// this is how Auth0 tells users to name claims.
		{"https://example.com/claim", false},
		{"https://example.com/tenant", false},
		// A claim without a namespace that is not on the list is allowed.
		{"tenant", false},
		{"plan", false},
		// Restricted names inside a user's namespace are the user's own.
		{"https://example.com/sub", false},
		{"https://example.com/auth0.com", false},
		// Look-alike domains are not Auth0's.
		{"https://notauth0.com/x", false},
		{"https://auth0.com.example.com/x", false},
		{"https://webtask.io.example.com/x", false},
		{"urn:example:auth0", false},
		// Names that merely start like a restricted one are allowed.
		{"subject", false},
		{"issuer_name", false},
		{"my_sip_x", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Restricted(tt.name); got != tt.want {
				t.Errorf("Restricted(%q): got %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestRestrictedGuardScopes(t *testing.T) {
	tests := []struct {
		name        string
		granted     []string
		scopes      []string
		want        []string
		wantDropped []string
	}{
		// Final scopes keep the extensions' order and stay within the grant.
		{"subset in order", []string{"a", "b", "c"}, []string{"c", "a"}, []string{"c", "a"}, nil},
		// Auth0 does: scopes outside the grant are dropped.
		{"outside the grant", []string{"a"}, []string{"a", "x", "y"}, []string{"a"}, []string{"x", "y"}},
		{"duplicates", []string{"a", "b"}, []string{"b", "b", "x", "x", "a"}, []string{"b", "a"}, []string{"x"}},
		{"nothing granted", nil, []string{"a"}, nil, []string{"a"}},
		{"no scopes", []string{"a"}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := guard(tt.granted, tt.scopes, nil)
			if err != nil {
				t.Fatalf("guard: got %v, want nil", err)
			}
			if !slices.Equal(res.Scopes, tt.want) {
				t.Errorf("scopes: got %v, want %v", res.Scopes, tt.want)
			}
			// The scope list is never nil, so it encodes as [] rather than null.
			if res.Scopes == nil {
				t.Errorf("scopes: got nil, want a non-nil slice")
			}
			if !slices.Equal(res.DroppedScopes, tt.wantDropped) {
				t.Errorf("dropped scopes: got %v, want %v", res.DroppedScopes, tt.wantDropped)
			}
		})
	}
}

func TestRestrictedGuardClaims(t *testing.T) {
	tests := []struct {
		name        string
		claims      map[string]any
		want        map[string]any
		wantDropped []string
		wantErr     error
	}{
		// Auth0 does: restricted claims are dropped, the request still succeeds.
		{"restricted dropped",
			map[string]any{"sub": "x", "https://x.auth0.com/y": 1, "https://example.com/t": "acme", "tenant": "t"},
			map[string]any{"https://example.com/t": "acme", "tenant": "t"},
			[]string{"https://x.auth0.com/y", "sub"}, nil},
		{"no claims", map[string]any{}, map[string]any{}, nil, nil},
		// Auth0 does: custom claims together are limited to 100 KB.
		{"over 100 KB",
			map[string]any{"https://example.com/big": strings.Repeat("a", MaxClaimsSize)},
			nil, nil, ErrClaimsTooLarge},
		{"at 100 KB encoded",
			// {"k":"…"} is 8 bytes of JSON around the value.
			map[string]any{"k": strings.Repeat("a", MaxClaimsSize-8)},
			map[string]any{"k": strings.Repeat("a", MaxClaimsSize-8)}, nil, nil},
		// Counted as the token carries them: & is one byte, not \u0026.
		{"ampersands under 100 KB",
			map[string]any{"k": strings.Repeat("&", MaxClaimsSize/2)},
			map[string]any{"k": strings.Repeat("&", MaxClaimsSize/2)}, nil, nil},
		{"one byte over 100 KB encoded",
			map[string]any{"k": strings.Repeat("a", MaxClaimsSize-7)},
			nil, nil, ErrClaimsTooLarge},
		// Dropped claims do not count towards the limit.
		{"large restricted claim",
			map[string]any{"sub": strings.Repeat("a", 2*MaxClaimsSize), "tenant": "t"},
			map[string]any{"tenant": "t"}, []string{"sub"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := guard(nil, nil, tt.claims)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("guard: got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("guard: got %v, want nil", err)
			}
			if !reflect.DeepEqual(res.Claims, tt.want) {
				t.Errorf("claims: got %v, want %v", res.Claims, tt.want)
			}
			dropped := slices.Clone(res.DroppedClaims)
			sort.Strings(dropped)
			if !slices.Equal(dropped, tt.wantDropped) {
				t.Errorf("dropped claims: got %v, want %v", dropped, tt.wantDropped)
			}
		})
	}
}

func TestRestrictedIntersect(t *testing.T) {
	tests := []struct {
		name       string
		want, have []string
		out        []string
	}{
		// Requested ∩ granted, in request order, each once.
		{"request order", []string{"c", "x", "a"}, []string{"a", "b", "c"}, []string{"c", "a"}},
		{"duplicates", []string{"a", "a"}, []string{"a"}, []string{"a"}},
		{"nothing granted", []string{"a"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := intersect(tt.want, tt.have); !slices.Equal(got, tt.out) {
				t.Errorf("intersect: got %v, want %v", got, tt.out)
			}
		})
	}
}

func TestGuard_LongScopeLists(t *testing.T) {
	// Long lists take the map path; the result must be the same.
	var granted, asked []string
	for i := range 100 {
		granted = append(granted, fmt.Sprintf("s%d", i))
		asked = append(asked, fmt.Sprintf("s%d", 99-i), fmt.Sprintf("x%d", i), fmt.Sprintf("s%d", 99-i))
	}
	res, err := guard(granted, asked, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scopes) != 100 || res.Scopes[0] != "s99" || len(res.DroppedScopes) != 100 {
		t.Errorf("got %d scopes starting %v and %d dropped, want 100 from s99 and 100", len(res.Scopes), res.Scopes[:1], len(res.DroppedScopes))
	}
	if got := intersect(asked, granted); len(got) != 100 || got[0] != "s99" {
		t.Errorf("intersect: got %d starting %v", len(got), got[:1])
	}
}
