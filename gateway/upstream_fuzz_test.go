package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// discoveryStatuses are what the fuzzed upstream answers at
// /.well-known/openid-configuration: the document, none (so that the RFC
// 8414 path is read), or a failure.
var discoveryStatuses = []int{
	http.StatusOK, http.StatusNotFound, http.StatusTooManyRequests, http.StatusServiceUnavailable,
}

// FuzzDiscover reads hostile discovery documents served by an httptest
// upstream. Discover must never panic, and gives either an error or an
// upstream whose token endpoint and JWKS are absolute http(s) URLs: the
// document's when it names them, else Auth0's paths on the base URL. The
// base URL has a path, as a Keycloak realm's has.
//
// pick chooses the OpenID Connect path's answer from discoveryStatuses;
// when it is 404, the RFC 8414 path serves the body instead.
func FuzzDiscover(f *testing.F) {
	var (
		mu     sync.Mutex
		body   []byte
		status int
	)
	serve := func(w http.ResponseWriter, code int) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/tenant/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		code := status
		mu.Unlock()
		serve(w, code)
	})
	mux.HandleFunc("/tenant/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		serve(w, http.StatusOK)
	})
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL + "/tenant/")

	for _, s := range []string{
		`{"issuer":"https://issuer.example/","token_endpoint":"https://issuer.example/oauth/token","jwks_uri":"https://issuer.example/.well-known/jwks.json"}`,
		`{"issuer":"https://issuer.example/","token_endpoint":"http://127.0.0.1:4444/oauth2/token"}`,
		`{"jwks_uri":"HTTPS://issuer.example:8443/keys?x=1#f"}`,
		`{"token_endpoint":"javascript:alert(1)"}`,
		`{"token_endpoint":"/oauth/token"}`,
		`{"token_endpoint":"https:///nohost"}`,
		`{"token_endpoint":"http://[::1"}`,
		`{"token_endpoint":5,"jwks_uri":{"a":1},"issuer":[]}`,
		`{"token_endpoint":""}`,
		`{}`, `null`, `[]`, `"doc"`, `{"issuer":`, ``, `<html>not json</html>`,
	} {
		f.Add(uint8(0), []byte(s)) // served at the OpenID Connect path
		f.Add(uint8(1), []byte(s)) // at the RFC 8414 path
	}
	f.Add(uint8(2), []byte(`{}`))
	f.Add(uint8(3), []byte(`{}`))

	f.Fuzz(func(t *testing.T, pick uint8, doc []byte) {
		mu.Lock()
		body, status = doc, discoveryStatuses[int(pick)%len(discoveryStatuses)]
		mu.Unlock()

		up, err := Discover(t.Context(), srv.Client(), base)
		if err != nil {
			if up != nil {
				t.Errorf("an upstream with an error: %v", err)
			}
			return
		}
		if up == nil {
			t.Fatal("no upstream and no error")
		}
		if up.Base != base {
			t.Errorf("base: got %v, want %v", up.Base, base)
		}
		for _, e := range []struct {
			name, fallback string
			got            *url.URL
		}{
			{"token_endpoint", "/oauth/token", up.TokenURL},
			{"jwks_uri", "/.well-known/jwks.json", up.JWKSURL},
		} {
			if e.got == nil {
				t.Fatalf("%s: nil URL", e.name)
			}
			if (e.got.Scheme != "http" && e.got.Scheme != "https") || e.got.Host == "" {
				t.Errorf("%s %q is not an absolute http(s) URL", e.name, e.got)
			}
			want := srv.URL + "/tenant" + e.fallback
			if named, _ := up.Document[e.name].(string); named != "" {
				u, _ := url.Parse(named)
				want = u.String()
			}
			if e.got.String() != want {
				t.Errorf("%s: got %q, want %q", e.name, e.got, want)
			}
		}
		if iss, _ := up.Document["issuer"].(string); up.Issuer != iss {
			t.Errorf("issuer: got %q, want %q", up.Issuer, iss)
		}

		// The document is the one served, when one was.
		var served map[string]any
		if json.Unmarshal(doc, &served) == nil && served != nil && len(up.Document) != len(served) {
			t.Errorf("document: got %d members, served %d", len(up.Document), len(served))
		}
	})
}
