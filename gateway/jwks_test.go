package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
)

// newTestVerifier returns a verifier of up's tokens for issuer, on a clock
// the test moves by changing *now.
func newTestVerifier(t *testing.T, up *fakeIssuer, issuer string) (*Verifier, *time.Time) {
	t.Helper()
	u, err := url.Parse(up.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(http.DefaultClient, u, issuer, discardLogger(), nil)
	now := time.Now()
	v.now = func() time.Time { return now }
	return v, &now
}

// TestVerifier_UnknownKidRefetch: when the upstream rotates its key, the
// first token with the new kid makes the verifier fetch the JWKS again; a
// flood of unknown kids costs at most one fetch per jwksMinRefetch.
func TestVerifier_UnknownKidRefetch(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	v, now := newTestVerifier(t, up, up.URL+"/")
	ctx := t.Context()

	if _, _, err := v.Verify(ctx, up.sign(t, up.nextClaims())); err != nil {
		t.Fatalf("first token: %v", err)
	}
	if got := up.jwksCalls.Load(); got != 1 {
		t.Fatalf("JWKS fetches: got %d, want 1", got)
	}

	// The upstream rotates; within jwksMinRefetch the new kid is refused
	// without a fetch.
	rotated := testKey(t, "upstream-2")
	up.set(func(f *fakeIssuer) { f.key = rotated })
	*now = now.Add(jwksMinRefetch / 2)
	for range 5 {
		if _, _, err := v.Verify(ctx, up.sign(t, up.nextClaims())); err == nil {
			t.Fatal("a token with an unknown kid verified without a fetch")
		}
	}
	if got := up.jwksCalls.Load(); got != 1 {
		t.Errorf("JWKS fetches within the refetch interval: got %d, want 1", got)
	}

	*now = now.Add(jwksMinRefetch)
	if _, _, err := v.Verify(ctx, up.sign(t, up.nextClaims())); err != nil {
		t.Fatalf("token with the rotated key: %v", err)
	}
	if got := up.jwksCalls.Load(); got != 2 {
		t.Errorf("JWKS fetches after rotation: got %d, want 2", got)
	}
}

// TestVerifier_RefreshesOldJWKS: a JWKS older than jwksMaxAge is fetched
// again, so that a key the upstream withdrew stops verifying.
func TestVerifier_RefreshesOldJWKS(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	v, now := newTestVerifier(t, up, "")

	token := up.sign(t, up.nextClaims())
	if _, _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	other := testKey(t, "other")
	up.set(func(f *fakeIssuer) { f.jwks = []jose.JSONWebKey{other.Public()} })
	*now = now.Add(jwksMaxAge + time.Minute)
	if _, _, err := v.Verify(t.Context(), token); err == nil {
		t.Errorf("a withdrawn key still verifies after jwksMaxAge")
	}
}

// TestVerifier_FailingJWKS: a JWKS endpoint that fails is not asked again
// on every request, keys already held keep verifying for a while, and not
// for ever.
func TestVerifier_FailingJWKS(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	v, now := newTestVerifier(t, up, "")
	claims := up.nextClaims()
	claims["exp"] = now.Add(72 * time.Hour).Unix()
	token := up.sign(t, claims)

	up.jwksDown.Store(true)
	for range 20 {
		if _, _, err := v.Verify(t.Context(), token); err == nil {
			t.Fatal("verified without keys")
		}
	}
	if got := up.jwksCalls.Load(); got != 1 {
		t.Errorf("fetches of a failing JWKS within the refetch interval: got %d, want 1", got)
	}

	up.jwksDown.Store(false)
	*now = now.Add(jwksMinRefetch)
	if _, _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("after the JWKS came back: %v", err)
	}

	// The JWKS fails again once the keys are due for a refresh: the keys
	// held still verify, until they are too old.
	up.jwksDown.Store(true)
	*now = now.Add(jwksMaxAge + time.Minute)
	if _, _, err := v.Verify(t.Context(), token); err != nil {
		t.Errorf("stale keys during an outage: %v", err)
	}
	*now = now.Add(jwksMaxStale)
	if _, _, err := v.Verify(t.Context(), token); err == nil {
		t.Errorf("keys older than jwksMaxStale still verify")
	}
}

// TestGateway_AdminMetrics: the admin handler serves health, readiness and
// the counters of what happened to tokens.
func TestGateway_AdminMetrics(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	progs := compileRules(t, "10-greedy.lua", `return function(user, context, callback)
  table.insert(context.accessToken.scope, "superuser")
  context.accessToken.sub = "evil"
  callback(nil, user, context)
end`)
	gw := newTestGateway(t, up.URL, compat.Config{Rules: progs})
	if status, _, _ := postForm(t, gw.URL+"/oauth/token", ccForm("")); status != 200 {
		t.Fatalf("status %d", status)
	}
	postForm(t, gw.URL+"/oauth/token", url.Values{"scope": {"a"}, "scope ": {"b"}, "x": {"1", "2"}})

	admin := httpTestServer(gw.AdminHandler())
	defer admin.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(admin.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
	}
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`rulesgate_token_requests_total{outcome="issued"} 1`,
		`rulesgate_token_requests_total{outcome="bad_request"} 1`,
		`rulesgate_scopes_dropped_total 1`,
		`rulesgate_claims_dropped_total 1`,
		`rulesgate_upstream_jwks_fetches_total{result="ok"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The admin API never answers on the client listener.
	if resp, _ := http.Get(gw.URL + "/metrics"); resp.Header.Get("X-Upstream-Path") != "/metrics" {
		t.Errorf("/metrics on the client listener was not passed through to the upstream")
	}
}
