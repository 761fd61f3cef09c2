package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// testKey returns a new RSA signing key with a kid, as an issuer has.
func testKey(t testing.TB, kid string) jose.JSONWebKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// fakeIssuer is an upstream issuer whose tokens and JWKS a test controls.
// By default it behaves like Auth0: discovery, RS256 tokens with a scope
// string, every granted scope whatever the request asks.
type fakeIssuer struct {
	*httptest.Server
	tokenPath   string
	noDiscovery bool

	mu     sync.Mutex
	key    jose.JSONWebKey   // signs tokens
	jwks   []jose.JSONWebKey // published; nil means key's public half
	claims map[string]any    // claims of the next token, before iss/iat/exp
	answer http.HandlerFunc  // replaces the token endpoint when set
	header map[string]any    // extra protected headers of the next token

	jwksDown atomic.Bool // the JWKS endpoint answers 503

	tokenCalls atomic.Int32
	jwksCalls  atomic.Int32
	lastForm   atomic.Value // url.Values of the last token request
}

func newFakeIssuer(t testing.TB, tokenPath string) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{tokenPath: tokenPath, key: testKey(t, "upstream-1")}
	f.claims = map[string]any{
		"sub": "m2m@clients", "aud": "https://api.example.com", "azp": "m2m",
		"gty": "client-credentials", "scope": "read:a write:a admin",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if f.noDiscovery {
			http.NotFound(w, r)
			return
		}
		writeTestJSON(w, 200, map[string]any{
			"issuer": f.URL + "/", "token_endpoint": f.URL + f.tokenPath,
			"jwks_uri": f.URL + "/.well-known/jwks.json", "authorization_endpoint": f.URL + "/authorize",
		})
	})
	mux.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		f.jwksCalls.Add(1)
		if f.jwksDown.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		keys := f.jwks
		if keys == nil {
			keys = []jose.JSONWebKey{f.key.Public()}
		}
		f.mu.Unlock()
		writeTestJSON(w, 200, jose.JSONWebKeySet{Keys: keys})
	})
	mux.HandleFunc(tokenPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		f.tokenCalls.Add(1)
		r.ParseForm()
		f.lastForm.Store(r.PostForm)
		f.mu.Lock()
		answer := f.answer
		f.mu.Unlock()
		if answer != nil {
			answer(w, r)
			return
		}
		claims := f.nextClaims()
		writeTestJSON(w, 200, map[string]any{
			"access_token": f.sign(t, claims), "token_type": "Bearer", "expires_in": 86400,
			"scope": claims["scope"],
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream-Path", r.URL.RequestURI())
		w.Header().Set("X-Upstream-Method", r.Method)
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("upstream says hello"))
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// nextClaims returns the claims of the next token: the configured ones with
// iss, iat and exp filled in unless set.
func (f *fakeIssuer) nextClaims() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	claims := map[string]any{"iss": f.URL + "/", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range f.claims {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	return claims
}

func (f *fakeIssuer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	f.mu.Lock()
	key, extra := f.key, f.header
	f.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range extra {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func (f *fakeIssuer) set(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// testGateway is a gateway served on loopback in front of an upstream.
type testGateway struct {
	*Gateway
	URL string
}

// testIssuer is the iss of tokens the gateways in these tests sign.
const testIssuer = "https://gateway.example/"

func newTestGateway(t testing.TB, upstream string, pc compat.Config, edit ...func(*Config)) *testGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := GenerateKeySet(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(upstream)
	cfg := Config{
		Upstream: u, PublicURL: "http://" + ln.Addr().String(), Issuer: testIssuer,
		Pipeline: compat.NewPipeline(pc), Keys: keys, Logger: discardLogger(),
	}
	for _, e := range edit {
		e(&cfg)
	}
	gw, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: gw.Handler()}}
	srv.Start()
	t.Cleanup(srv.Close)
	return &testGateway{Gateway: gw, URL: srv.URL}
}

// compileRules compiles rule sources given as name, source pairs.
func compileRules(t testing.TB, nameSrc ...string) []*rules.Program {
	t.Helper()
	var progs []*rules.Program
	for i := 0; i < len(nameSrc); i += 2 {
		p, err := rules.Compile(nameSrc[i], []byte(nameSrc[i+1]))
		if err != nil {
			t.Fatal(err)
		}
		progs = append(progs, p)
	}
	return progs
}

// postForm sends a form token request and returns the status, headers and
// decoded JSON answer.
func postForm(t testing.TB, endpoint string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t testing.TB, resp *http.Response) (int, http.Header, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}

// ccForm is a client-credentials request for scope.
func ccForm(scope string) url.Values {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"m2m"},
		"client_secret": {"s3cret-value"}, "audience": {"https://api.example.com"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return form
}

func httpTestServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

// TestDiscover_Documents: the endpoints a discovery document names are
// used; an endpoint it leaves out (absent, null or empty) gets Auth0's
// path; one it names wrongly, a value that is no string included, is an
// error rather than a guess.
func TestDiscover_Documents(t *testing.T) {
	tests := []struct {
		name, doc       string
		token, jwks     string // want, after the server's URL when relative
		wantErrContains string
	}{
		{name: "both named", doc: `{"token_endpoint":"https://issuer.example/oauth2/token","jwks_uri":"https://issuer.example/keys"}`,
			token: "https://issuer.example/oauth2/token", jwks: "https://issuer.example/keys"},
		{name: "none named", doc: `{"issuer":"https://issuer.example/"}`,
			token: "/tenant/oauth/token", jwks: "/tenant/.well-known/jwks.json"},
		{name: "null", doc: `{"token_endpoint":null,"jwks_uri":null}`,
			token: "/tenant/oauth/token", jwks: "/tenant/.well-known/jwks.json"},
		{name: "empty", doc: `{"token_endpoint":"","jwks_uri":""}`,
			token: "/tenant/oauth/token", jwks: "/tenant/.well-known/jwks.json"},
		{name: "relative", doc: `{"token_endpoint":"/oauth/token"}`,
			wantErrContains: "token_endpoint \"/oauth/token\" is not an absolute http(s) URL"},
		{name: "token_endpoint a number", doc: `{"token_endpoint":5}`,
			wantErrContains: "discover upstream: token_endpoint is not a string"},
		{name: "token_endpoint true", doc: `{"token_endpoint":true}`,
			wantErrContains: "discover upstream: token_endpoint is not a string"},
		{name: "token_endpoint an array", doc: `{"token_endpoint":["https://issuer.example/oauth/token"]}`,
			wantErrContains: "discover upstream: token_endpoint is not a string"},
		{name: "jwks_uri an object", doc: `{"token_endpoint":"https://issuer.example/oauth/token","jwks_uri":{"a":1}}`,
			wantErrContains: "discover upstream: jwks_uri is not a string"},
		{name: "jwks_uri a number", doc: `{"jwks_uri":0}`,
			wantErrContains: "discover upstream: jwks_uri is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/tenant/.well-known/openid-configuration" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tt.doc))
			}))
			defer srv.Close()
			base, _ := url.Parse(srv.URL + "/tenant")

			up, err := Discover(t.Context(), srv.Client(), base)
			if tt.wantErrContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrContains) {
					t.Fatalf("error: got %v, want one with %q", err, tt.wantErrContains)
				}
				if up != nil {
					t.Errorf("an upstream with the error: %+v", up)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []struct {
				name string
				got  *url.URL
				want string
			}{{"token_endpoint", up.TokenURL, tt.token}, {"jwks_uri", up.JWKSURL, tt.jwks}} {
				if strings.HasPrefix(e.want, "/") {
					e.want = srv.URL + e.want
				}
				if e.got.String() != e.want {
					t.Errorf("%s: got %s, want %s", e.name, e.got, e.want)
				}
			}
		})
	}
}
