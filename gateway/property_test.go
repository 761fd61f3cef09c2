package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/compat"
)

// TestGateway_PropertyIssuedToken: for random upstream tokens (Auth0's
// scope string, Hydra's scp array, or both) and random rules and actions
// that try to change every registered claim, the token the gateway issues
// has the gateway's iss, the upstream's exp (never later), every other
// restricted claim as the upstream wrote it, and scopes within the grant in
// the upstream's shape. Each case is a subtest named after its seed; rerun
// one with -run 'TestGateway_PropertyIssuedToken/seed=N'.
func TestGateway_PropertyIssuedToken(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	n := 60
	if testing.Short() {
		n = 15
	}
	const base = 0x6a7e_0000
	for i := range n {
		seed := uint64(base + i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			c := newGatewayPropCase(r)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d; upstream claims %s; request scope %q; narrow %v\n--- rule\n%s--- action\n%s",
						seed, gatewayPropJSON(c.upstream), c.requested, c.narrow, c.rule, c.action)
				}
			})

			up.set(func(f *fakeIssuer) { f.claims = c.upstream })
			defer up.set(func(f *fakeIssuer) { f.claims = nil })
			cfg := compat.Config{NarrowScopes: c.narrow, Logger: discardLogger(),
				Rules: compileRules(t, "10-rule.lua", c.rule)}
			if c.action != "" {
				cfg.Actions = compileRules(t, "10-action.lua", c.action)
			}
			gw.SetPipeline(compat.NewPipeline(cfg), "")

			status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(c.requested))
			if status != 200 {
				t.Fatalf("got %d %v, want 200", status, answer)
			}
			issued := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
			upstream := gatewayPropDecoded(t, gatewayPropSigned(up, c))

			if got := issued["iss"]; got != testIssuer {
				t.Errorf("iss: got %v, want the gateway's %s", got, testIssuer)
			}
			if got, want := issued["exp"], upstream["exp"]; !reflect.DeepEqual(got, want) {
				t.Errorf("exp: got %v, want the upstream's %v", got, want)
			}
			for _, name := range gatewayPropRestricted {
				got, gotOK := issued[name]
				want, wantOK := upstream[name]
				if gotOK != wantOK || !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v (present %v), want the upstream's %v (present %v)", name, got, gotOK, want, wantOK)
				}
			}
			for name, v := range upstream {
				if _, ok := issued[name]; !ok && name != "iss" {
					t.Errorf("upstream claim %s (%v) missing from the issued token", name, v)
				}
			}

			// Scopes: within the grant, in the upstream's shape.
			final := strings.Fields(fmt.Sprint(answer["scope"]))
			for _, s := range final {
				if !slices.Contains(c.granted, s) {
					t.Errorf("scope %q is not in the grant %q", s, c.granted)
				}
			}
			if _, had := upstream["scope"]; had {
				if got := issued["scope"]; got != strings.Join(final, " ") {
					t.Errorf("scope: got %v, want the answer's %q as a string", got, final)
				}
			} else if _, ok := issued["scope"]; ok {
				t.Errorf("scope: got %v, want none, as upstream", issued["scope"])
			}
			if _, had := upstream["scp"]; had {
				got, _ := json.Marshal(issued["scp"])
				if want, _ := json.Marshal(final); string(got) != string(want) {
					t.Errorf("scp: got %s, want the answer's %s as an array", got, want)
				}
			} else if _, ok := issued["scp"]; ok {
				t.Errorf("scp: got %v, want none, as upstream", issued["scp"])
			}
		})
	}
}

// gatewayPropRestricted are the registered claims checked against the
// upstream's, beside iss and the scope claims, which have rules of their
// own.
var gatewayPropRestricted = []string{
	"exp", "nbf", "iat", "sub", "aud", "azp", "gty", "client_id", "jti",
	"permissions", "org_id", "roles", "sid", "https://tenant.auth0.com/claim",
}

// gatewayPropCase is one random upstream token, request and program.
type gatewayPropCase struct {
	upstream     map[string]any // claims of the upstream token (nil deletes a default)
	granted      []string
	requested    string
	narrow       bool
	rule, action string
}

var gatewayPropScopes = []string{"read:a", "write:a", "read:b", "admin", "delete:all"}

func newGatewayPropCase(r *rand.Rand) *gatewayPropCase {
	c := &gatewayPropCase{narrow: r.IntN(2) == 0}
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	for _, s := range gatewayPropScopes {
		if r.IntN(2) == 0 {
			c.granted = append(c.granted, s)
		}
	}

	now := time.Now()
	exp := any(now.Add(time.Duration(2+r.IntN(48*60)) * time.Minute).Unix())
	if r.IntN(4) == 0 {
		exp = float64(now.Add(time.Hour).Unix()) + 0.25
	}
	c.upstream = map[string]any{
		"exp": exp, "iat": now.Add(-time.Duration(r.IntN(60)) * time.Second).Unix(),
		"sub": pick([]string{"m2m@clients", "billing@clients"}),
		"aud": pick([]string{"https://api.example.com", "urn:api"}),
		// Defaults of the fake issuer, left out unless drawn below.
		"azp": nil, "gty": nil, "scope": nil,
	}
	if r.IntN(2) == 0 {
		c.upstream["aud"] = []string{"https://api.example.com", "https://other.example.com"}
	}
	optional := map[string]any{
		"azp": "m2m", "gty": "client-credentials", "client_id": "m2m", "jti": "j-" + strconv.Itoa(r.IntN(1e6)),
		"nbf": now.Add(-time.Minute).Unix(), "permissions": []string{"read:a", "admin"},
		"org_id": "org_1", "https://example.com/upstream": map[string]any{"kept": true},
	}
	for k, v := range optional {
		if r.IntN(2) == 0 {
			c.upstream[k] = v
		}
	}
	switch r.IntN(3) {
	case 0: // Auth0
		c.upstream["scope"] = strings.Join(c.granted, " ")
	case 1: // Hydra
		c.upstream["scp"] = append([]string{}, c.granted...)
	default:
		c.upstream["scope"] = strings.Join(c.granted, " ")
		c.upstream["scp"] = append([]string{}, c.granted...)
	}
	var requested []string
	for range r.IntN(4) {
		requested = append(requested, pick(append(gatewayPropScopes, "superuser")))
	}
	c.requested = strings.Join(requested, " ")

	// A rule that tries to change what it may not: every registered claim,
	// the scope beyond the grant, iss to another issuer.
	evil := map[string]string{
		"iss": `"https://evil.example/"`, "exp": `9999999999`, "nbf": `0`, "iat": `0`,
		"sub": `"admin@clients"`, "aud": `{"https://admin.example.com"}`, "azp": `"admin"`,
		"gty": `"password"`, "client_id": `"admin"`, "jti": `"replayed"`,
		"permissions": `{"admin:all"}`, "org_id": `"org_2"`, "roles": `{"admin"}`, "sid": `"s"`,
		"https://tenant.auth0.com/claim": `"x"`, "scp": `{"superuser"}`,
	}
	var body []string
	for _, name := range slices.Sorted(maps.Keys(evil)) {
		if r.IntN(2) == 0 {
			body = append(body, fmt.Sprintf("context.accessToken[%q] = %s", name, evil[name]))
		}
	}
	switch r.IntN(4) {
	case 0:
		body = append(body, `context.accessToken.scope = {"superuser", "admin", "read:a"}`)
	case 1:
		body = append(body, `context.accessToken.scope = "superuser admin write:a delete:all"`)
	case 2:
		body = append(body, `table.insert(context.accessToken.scope, "superuser")`)
	}
	if r.IntN(2) == 0 {
		body = append(body, `context.accessToken["https://example.com/tenant"] = "acme"`)
	}
	r.Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
	c.rule = "return function(user, context, callback)\n  " + strings.Join(body, "\n  ") +
		"\n  callback(nil, user, context)\nend\n"

	if r.IntN(2) == 0 {
		var calls []string
		for _, name := range []string{"exp", "iss", "sub", "permissions"} {
			if r.IntN(2) == 0 {
				calls = append(calls, fmt.Sprintf("api.accessToken.setCustomClaim(%q, %s)", name, evil[name]))
			}
		}
		calls = append(calls, `api.transaction.addTargetScope("superuser")`, `api.transaction.addTargetScope("delete:all")`)
		c.action = "return {\n  onExecuteCredentialsExchange = function(event, api)\n    " +
			strings.Join(calls, "\n    ") + "\n  end,\n}\n"
	}
	return c
}

// gatewayPropSigned returns the claims of the token up signed for c: the
// case's claims over the fake issuer's iss.
func gatewayPropSigned(up *fakeIssuer, c *gatewayPropCase) map[string]any {
	out := map[string]any{"iss": up.URL + "/"}
	for k, v := range c.upstream {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// gatewayPropDecoded returns claims as a JSON decoder gives them, to
// compare with a decoded token.
func gatewayPropDecoded(t *testing.T, claims map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(gatewayPropJSON(claims)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func gatewayPropJSON(v any) string {
	out, _ := json.Marshal(v)
	return string(out)
}
