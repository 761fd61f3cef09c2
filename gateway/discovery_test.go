package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
)

// TestGateway_DiscoveryDocument: the upstream's document, with issuer,
// jwks_uri and token_endpoint on the gateway and the rest kept.
func TestGateway_DiscoveryDocument(t *testing.T) {
	for _, tokenPath := range []string{"/oauth/token", "/oauth2/token"} {
		up := newFakeIssuer(t, tokenPath)
		gw := newTestGateway(t, up.URL, compat.Config{})
		var doc map[string]any
		getJSON(t, gw.URL+"/.well-known/openid-configuration", &doc)
		want := map[string]any{
			"issuer":                 testIssuer,
			"jwks_uri":               gw.URL + "/.well-known/jwks.json",
			"token_endpoint":         gw.URL + tokenPath,
			"authorization_endpoint": up.URL + "/authorize",
		}
		for k, v := range want {
			if doc[k] != v {
				t.Errorf("%s: got %v, want %v", k, doc[k], v)
			}
		}
	}
}

// TestGateway_NoUpstreamDiscovery: an upstream without a discovery document
// gets Auth0's paths, and the gateway still publishes its own document.
func TestGateway_NoUpstreamDiscovery(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	up.noDiscovery = true
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
	if got := gw.TokenPath(); got != "/oauth/token" {
		t.Errorf("token path: got %s, want /oauth/token", got)
	}
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("admin"))
	if status != 200 || answer["scope"] != "admin" {
		t.Fatalf("got %d %v, want 200 admin", status, answer)
	}
	verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
}

// TestGateway_JWKSIsPublic: every key is published, none with private parts.
func TestGateway_JWKSIsPublic(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	keys, err := ParseKeySet([]byte(testPEMKeys(t)))
	if err != nil {
		t.Fatal(err)
	}
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.Keys = keys })

	resp, err := http.Get(gw.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`} {
		if strings.Contains(string(raw), private) {
			t.Errorf("JWKS has private member %s: %s", private, raw)
		}
	}
	var set jose.JSONWebKeySet
	getJSON(t, gw.URL+"/.well-known/jwks.json", &set)
	if got, want := len(set.Keys), len(keys.Keys); got != want {
		t.Fatalf("keys: got %d, want %d", got, want)
	}
	for i, k := range set.Keys {
		if !k.IsPublic() || k.KeyID != keys.Keys[i].KeyID() || k.Use != "sig" || k.Algorithm == "" {
			t.Errorf("key %d: got kid %q use %q alg %q public %v", i, k.KeyID, k.Use, k.Algorithm, k.IsPublic())
		}
	}
}

// TestGateway_PassThrough: any other path reaches the upstream unchanged:
// method, path, query, body; and the upstream's answer comes back as it was.
func TestGateway_PassThrough(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	for _, tt := range []struct{ method, path string }{
		{"GET", "/authorize?client_id=x&state=a%2Fb"},
		{"POST", "/oauth/revoke"},
		{"GET", "/userinfo"},
		{"GET", "/api/v2/clients?fields=a,b&per_page=5"},
	} {
		req, _ := http.NewRequest(tt.method, gw.URL+tt.path, strings.NewReader("token=abc"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || string(body) != "upstream says hello" {
			t.Errorf("%s %s: got %d %q, want the upstream's 418", tt.method, tt.path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Upstream-Path"); got != tt.path {
			t.Errorf("%s %s: upstream saw path %q", tt.method, tt.path, got)
		}
		if got := resp.Header.Get("X-Upstream-Method"); got != tt.method {
			t.Errorf("%s %s: upstream saw method %q", tt.method, tt.path, got)
		}
	}
}

// TestGateway_TokenPreflight: a browser's CORS preflight on the token
// endpoint is the upstream's to answer, as it was before the gateway.
func TestGateway_TokenPreflight(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	req, _ := http.NewRequest(http.MethodOptions, gw.URL+"/oauth/token", nil)
	req.Header.Set("Origin", "https://app.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("got %d %v, want the upstream's 204 with its CORS headers", resp.StatusCode, resp.Header)
	}
}
