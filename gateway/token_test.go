package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
)

// TestGateway_NarrowsAuth0Token is the user's story: an Auth0-like issuer
// returns every granted scope; through the gateway the client gets only
// the one it asked for, in a token a resource server verifies through the
// gateway's discovery document.
func TestGateway_NarrowsAuth0Token(t *testing.T) {
	is, err := devissuer.New(map[string]devissuer.Client{"m2m": {Secret: "s3cret-value",
		Grants: map[string][]string{"https://api.example.com": {"read:claims", "write:claims"}}}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptestServer(t, is.Handler())
	gw := newTestGateway(t, up, compat.Config{NarrowScopes: true})

	form := ccForm("read:claims")
	form.Set("client_id", "m2m")
	status, _, direct := postForm(t, up+"/oauth/token", form)
	if status != 200 || direct["scope"] != "read:claims write:claims" {
		t.Fatalf("the issuer should behave like Auth0: got %d %v", status, direct["scope"])
	}
	status, h, answer := postForm(t, gw.URL+"/oauth/token", form)
	if status != 200 {
		t.Fatalf("status: got %d, want 200: %v", status, answer)
	}
	if got := answer["scope"]; got != "read:claims" {
		t.Errorf("answer scope: got %v, want read:claims", got)
	}
	for _, field := range []string{"token_type", "expires_in"} {
		if answer[field] != direct[field] {
			t.Errorf("%s: got %v, want the upstream's %v", field, answer[field], direct[field])
		}
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store (RFC 6749 §5.1)", h.Get("Cache-Control"))
	}
	claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	if claims["scope"] != "read:claims" || claims["sub"] != "m2m@clients" || claims["gty"] != "client-credentials" {
		t.Errorf("claims: got %v", claims)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httpTestServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGateway_UpstreamErrorsPassUnchanged: status, body, Content-Type and
// Retry-After of an upstream error reach the client as they were.
func TestGateway_UpstreamErrorsPassUnchanged(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	up.set(func(f *fakeIssuer) {
		f.answer = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":"too_many_requests","error_description":"Global limit has been reached"}`))
		}
	})
	gw := newTestGateway(t, up.URL, compat.Config{})

	resp, err := http.Post(gw.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(ccForm("").Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, 429; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	if got, want := string(body), `{"error":"too_many_requests","error_description":"Global limit has been reached"}`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
	if got := resp.Header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After: got %q, want 7", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type: got %q", got)
	}
}

// TestGateway_RequestForwardedUnchanged: the upstream reads the body the
// client sent, secrets included, since it authenticates the client.
func TestGateway_RequestForwardedUnchanged(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	form := ccForm("read:a")
	if status, _, _ := postForm(t, gw.URL+"/oauth/token", form); status != 200 {
		t.Fatalf("status %d", status)
	}
	got := up.lastForm.Load().(url.Values)
	if got.Encode() != form.Encode() {
		t.Errorf("upstream read %v, want %v", got, form)
	}
}

// TestGateway_BadRequests: what the gateway cannot read gets 400
// invalid_request and never reaches the upstream.
func TestGateway_BadRequests(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	tests := []struct {
		name, method, contentType, body string
		status                          int
	}{
		{"body over 64 KiB", "POST", "application/x-www-form-urlencoded", "scope=" + strings.Repeat("a", 65<<10), 400},
		{"broken JSON", "POST", "application/json", `{"grant_type":`, 400},
		{"JSON array", "POST", "application/json", `["client_credentials"]`, 400},
		{"bad form encoding", "POST", "application/x-www-form-urlencoded", "scope=%zz", 400},
		{"repeated parameter", "POST", "application/x-www-form-urlencoded", "scope=a&scope=b&grant_type=client_credentials", 400},
		{"repeated JSON member", "POST", "application/json", `{"scope":"a","scope":"b","grant_type":"client_credentials"}`, 400},
		{"repeated JSON member, escaped", "POST", "application/json", `{"scope":"a","sc\u006fpe":"b","grant_type":"client_credentials"}`, 400},
		{"repeated JSON member, null first", "POST", "application/json", `{"audience":null,"audience":"https://api.example.com"}`, 400},
		{"repeated JSON member, other case", "POST", "application/json", `{"audience":"https://api.example.com","Audience":"https://admin.example.com","grant_type":"client_credentials"}`, 400},
		{"JSON object, then a brace", "POST", "application/json", `{"grant_type":"client_credentials"}}`, 400},
		{"JSON object, then a bracket", "POST", "application/json", `{"grant_type":"client_credentials"}]`, 400},
		{"no content type", "POST", "", "grant_type=client_credentials", 400},
		{"text body", "POST", "text/plain", "grant_type=client_credentials", 400},
		{"GET", "GET", "", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, gw.URL+"/oauth/token", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			status, _, answer := readAnswer(t, resp)
			if status != tt.status || answer["error"] != "invalid_request" || answer["error_description"] == "" {
				t.Errorf("got %d %v, want %d invalid_request with a description", status, answer, tt.status)
			}
		})
	}
	if n := up.tokenCalls.Load(); n != 0 {
		t.Errorf("upstream called %d times for bad requests, want 0", n)
	}
}

// TestGateway_UpstreamFailures: whatever the upstream does wrong, the client
// gets an OAuth error and no token.
func TestGateway_UpstreamFailures(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc
		status int
	}{
		{"HTML 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>maintenance</html>"))
		}, 502},
		{"200 without access_token", func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, map[string]any{"token_type": "Bearer"})
		}, 502},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"eyJ`))
		}, 502},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newFakeIssuer(t, "/oauth/token")
			up.set(func(f *fakeIssuer) { f.answer = tt.answer })
			gw := newTestGateway(t, up.URL, compat.Config{})
			status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
			if status != tt.status || answer["error"] != "server_error" {
				t.Errorf("got %d %v, want %d server_error", status, answer, tt.status)
			}
			if _, ok := answer["access_token"]; ok {
				t.Errorf("error answer carries a token")
			}
		})
	}
}

// TestGateway_UpstreamDown: an upstream that stops answering after the
// gateway started gives 502 server_error.
func TestGateway_UpstreamDown(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	up.Close()
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
	if status != 502 || answer["error"] != "server_error" {
		t.Errorf("got %d %v, want 502 server_error", status, answer)
	}
}

// TestGateway_OpaqueTokenPassesThrough: Auth0 issues an opaque token when
// no audience is asked for; the gateway cannot verify or change it and
// passes it on as it came.
func TestGateway_OpaqueTokenPassesThrough(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	up.set(func(f *fakeIssuer) {
		f.answer = func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, map[string]any{"access_token": "opaque-Zx81", "token_type": "Bearer", "expires_in": 86400})
		}
	})
	gw := newTestGateway(t, up.URL, compat.Config{})
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
	if status != 200 || answer["access_token"] != "opaque-Zx81" {
		t.Errorf("got %d %v, want the opaque token unchanged", status, answer)
	}
}

// TestGateway_RefusesBadUpstreamTokens: a token that fails verification is
// never re-signed; the client gets 502 server_error and no token.
func TestGateway_RefusesBadUpstreamTokens(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	real := up.key
	pubDER, _ := x509.MarshalPKIXPublicKey(real.Public().Key)
	now := time.Now()

	tests := []struct {
		name  string
		token func(t *testing.T) string
		jwks  []jose.JSONWebKey
	}{
		{"alg none", func(t *testing.T) string {
			return unsigned(`{"alg":"none","typ":"JWT"}`, up.nextClaims()) + "."
		}, nil},
		{"HS256 keyed with the public key", func(t *testing.T) string {
			in := unsigned(`{"alg":"HS256","typ":"JWT","kid":"upstream-1"}`, up.nextClaims())
			mac := hmac.New(sha256.New, pubDER)
			mac.Write([]byte(in))
			return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}, nil},
		{"signed by a key not in the JWKS", func(t *testing.T) string {
			up.set(func(f *fakeIssuer) { f.key = testKey(t, "rogue") })
			defer up.set(func(f *fakeIssuer) { f.key = real })
			return up.sign(t, up.nextClaims())
		}, nil},
		{"kid of the real key, signed by another", func(t *testing.T) string {
			up.set(func(f *fakeIssuer) { f.key = testKey(t, "upstream-1") })
			defer up.set(func(f *fakeIssuer) { f.key = real })
			return up.sign(t, up.nextClaims())
		}, nil},
		{"JWKS that publishes the private key", func(t *testing.T) string {
			return up.sign(t, up.nextClaims())
		}, []jose.JSONWebKey{real}},
		{"expired", func(t *testing.T) string {
			c := up.nextClaims()
			c["exp"] = now.Add(-time.Hour).Unix()
			return up.sign(t, c)
		}, nil},
		{"not yet valid", func(t *testing.T) string {
			c := up.nextClaims()
			c["nbf"] = now.Add(time.Hour).Unix()
			return up.sign(t, c)
		}, nil},
		{"without exp", func(t *testing.T) string {
			c := up.nextClaims()
			delete(c, "exp")
			return up.sign(t, c)
		}, nil},
		{"another issuer", func(t *testing.T) string {
			c := up.nextClaims()
			c["iss"] = "https://evil.example/"
			return up.sign(t, c)
		}, nil},
		{"crit header", func(t *testing.T) string {
			up.set(func(f *fakeIssuer) { f.header = map[string]any{"crit": []string{"exp"}, "exp": 1} })
			defer up.set(func(f *fakeIssuer) { f.header = nil })
			return up.sign(t, up.nextClaims())
		}, nil},
		{"oversized", func(t *testing.T) string {
			c := up.nextClaims()
			c["padding"] = strings.Repeat("x", 20<<10)
			return up.sign(t, c)
		}, nil},
		{"not a JWS", func(t *testing.T) string { return "a.b.c" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.set(func(f *fakeIssuer) { f.jwks = tt.jwks })
			defer up.set(func(f *fakeIssuer) { f.jwks = nil })
			token := tt.token(t)
			up.set(func(f *fakeIssuer) {
				f.answer = func(w http.ResponseWriter, r *http.Request) {
					writeTestJSON(w, 200, map[string]any{"access_token": token, "token_type": "Bearer"})
				}
			})
			// A fresh gateway, so that no JWKS is cached from another case.
			gw := newTestGateway(t, up.URL, compat.Config{})
			status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
			if status != 502 || answer["error"] != "server_error" {
				t.Errorf("got %d %v, want 502 server_error", status, answer)
			}
			if _, ok := answer["access_token"]; ok {
				t.Errorf("error answer carries a token")
			}
		})
	}
}

func unsigned(header string, claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
}

// TestGateway_RuleTimeout: a rule that never ends costs the request 500
// server_error once --rule-timeout passes; the next request is served.
func TestGateway_RuleTimeout(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	progs := compileRules(t, "10-spin.lua", `return function(user, context, callback)
  if context.request.body.scope == "spin" then
    while true do end
  end
  callback(nil, user, context)
end`)
	gw := newTestGateway(t, up.URL, compat.Config{Rules: progs, NarrowScopes: true},
		func(c *Config) { c.RuleTimeout = 50 * time.Millisecond })

	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("spin"))
	if status != 500 || answer["error"] != "server_error" || answer["error_description"] != "the token rules did not finish in time" {
		t.Errorf("got %d %v, want 500 server_error for the timeout", status, answer)
	}
	if status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != 200 || answer["scope"] != "read:a" {
		t.Errorf("next request: got %d %v, want 200 read:a", status, answer)
	}
}

// TestGateway_NoBypass: whatever path variant or success status the
// upstream answers with, a token reaches the client only re-signed by the
// gateway, after its rules.
func TestGateway_NoBypass(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
	for _, p := range []string{"/OAuth/Token", "/oauth/token/", "//oauth/token", "/oauth/./token"} {
		status, _, answer := postForm(t, gw.URL+p, ccForm("admin"))
		if status != 200 || answer["scope"] != "admin" {
			t.Errorf("%s: got %d %v, want the gateway's narrowed token", p, status, answer)
			continue
		}
		verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	}

	for _, code := range []int{http.StatusCreated, http.StatusAccepted} {
		up.set(func(f *fakeIssuer) {
			f.answer = func(w http.ResponseWriter, r *http.Request) {
				writeTestJSON(w, code, map[string]any{"access_token": "aaa.bbb.ccc", "token_type": "Bearer"})
			}
		})
		status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
		if status != 502 || answer["access_token"] != nil {
			t.Errorf("upstream %d with a forged token: got %d %v, want 502 and no token", code, status, answer)
		}
	}
}

// TestParseTokenRequest_NoSecretsForRules: client credentials never reach
// the rules, from the body or the query.
func TestParseTokenRequest_NoSecretsForRules(t *testing.T) {
	body := "grant_type=client_credentials&client_id=m2m&client_secret=B0DY-SECRET&client_assertion=x.y.z"
	r, _ := http.NewRequest(http.MethodPost, "/oauth/token?client_secret=QUERY-SECRET&password=pw&keep=1", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := parseTokenRequest(r, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_secret", "client_assertion", "password"} {
		if tr.body[k] != nil || tr.query[k] != nil {
			t.Errorf("%s reaches the rules: body %v query %v", k, tr.body[k], tr.query[k])
		}
	}
	if tr.query["keep"] != "1" || tr.body["client_id"] != "m2m" {
		t.Errorf("other parameters lost: body %v query %v", tr.body, tr.query)
	}
}

// TestParseTokenRequest_RepeatedParameter: a parameter given twice is
// refused (RFC 6749 §3.2) in a form body and in a JSON one alike, with a
// description naming it; a name repeated inside a member's value is the
// value's own business.
func TestParseTokenRequest_RepeatedParameter(t *testing.T) {
	tests := []struct {
		name, contentType, body, want string
	}{
		{"form", "application/x-www-form-urlencoded", "scope=a&grant_type=client_credentials&scope=b",
			`the parameter "scope" is given more than once`},
		{"JSON", "application/json", `{"scope":"a","grant_type":"client_credentials","scope":"b"}`,
			`the parameter "scope" is given more than once`},
		{"JSON, escaped name", "application/json", `{"client_id":"a","client\u005fid":"b"}`,
			`the parameter "client_id" is given more than once`},
		{"JSON, same value", "application/json", `{"grant_type":"client_credentials","grant_type":"client_credentials"}`,
			`the parameter "grant_type" is given more than once`},
		{"JSON, empty name", "application/json", `{"":"a","":"b"}`,
			`the parameter "" is given more than once`},
		{"JSON, repeated then broken", "application/json", `{"scope":"a","scope":"b",`,
			"the body is not a JSON object"},
		{"JSON, repeated in a value", "application/json", `{"scope":"a","extra":{"x":1,"x":2}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			_, err := parseTokenRequest(r, []byte(tt.body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error: got %q, want %q", got, tt.want)
			}
		})
	}
}
