package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
	"github.com/rulesgate/rulesgate/rules/redistest"
)

// fleet is three gateway replicas on one Redis, in front of one issuer.
type fleet struct {
	redis    *redistest.Server
	issuer   string
	replicas []replica
}

type replica struct {
	addr, admin string
	stderr      *syncBuffer
}

func startFleet(t *testing.T, n int, extraArgs ...string) *fleet {
	t.Helper()
	is, err := devissuer.New(map[string]devissuer.Client{"m2m": {Secret: "fleet-secret",
		Grants: map[string][]string{"https://api.example.com": {"read:a", "write:a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(is.Handler())
	t.Cleanup(up.Close)
	f := &fleet{redis: redistest.Start(t), issuer: up.URL}
	for range n {
		r := replica{addr: freeAddr(t), admin: freeAddr(t), stderr: &syncBuffer{}}
		ctx, cancel := contextWithCancel(t)
		done := make(chan int, 1)
		args := append([]string{"serve", "--upstream", up.URL, "--listen", r.addr, "--admin-listen", r.admin,
			"--redis", f.redis.URL()}, extraArgs...)
		go func() { done <- run(ctx, args, nil, r.stderr) }()
		t.Cleanup(func() { cancel(); <-done })
		waitFor(t, r.stderr, "gateway listening")
		f.replicas = append(f.replicas, r)
	}
	return f
}

// token asks a replica for a token and returns the status and the claims
// of the token, verified with the replica's JWKS.
func (r replica) token(t *testing.T) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm("http://"+r.addr+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"m2m"}, "client_secret": {"fleet-secret"}, "audience": {"https://api.example.com"}, "scope": {"read:a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	json.NewDecoder(resp.Body).Decode(&answer)
	if resp.StatusCode != http.StatusOK {
		if _, ok := answer["access_token"]; ok {
			t.Errorf("an error answer carries a token: %v", answer)
		}
		return resp.StatusCode, answer
	}
	return resp.StatusCode, verifyWithJWKS(t, "http://"+r.addr, answer["access_token"].(string))
}

// verifyWithJWKS verifies token with the gateway at base's JWKS and
// returns its claims.
func verifyWithJWKS(t *testing.T, base, token string) map[string]any {
	t.Helper()
	claims, err := verifyAgainst(t, base+"/.well-known/jwks.json", token)
	if err != nil {
		t.Fatalf("verify with %s's JWKS: %v", base, err)
	}
	return claims
}

// verifyAgainst verifies a compact JWT with the key its kid names in the
// JWKS at jwksURL, and returns its claims.
func verifyAgainst(t *testing.T, jwksURL, token string) (map[string]any, error) {
	t.Helper()
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("GET %s: %v", jwksURL, err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		return nil, err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("kid %q is not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

// writeVersion writes a rule set whose rule and action both stamp n, so
// that a token from a half-applied set would show two numbers.
func writeVersion(t *testing.T, n int) (rulesDir, actionsDir string) {
	t.Helper()
	dir := t.TempDir()
	rulesDir, actionsDir = filepath.Join(dir, "rules"), filepath.Join(dir, "actions")
	os.MkdirAll(rulesDir, 0o755)
	os.MkdirAll(actionsDir, 0o755)
	os.WriteFile(filepath.Join(rulesDir, "10-stamp.lua"), []byte(fmt.Sprintf(`return function(user, context, callback)
  context.accessToken["https://example.com/rule"] = %d
  callback(nil, user, context)
end`, n)), 0o644)
	os.WriteFile(filepath.Join(actionsDir, "10-stamp.lua"), []byte(fmt.Sprintf(`return { onExecuteCredentialsExchange = function(event, api)
  api.accessToken.setCustomClaim("https://example.com/action", %d)
end }`, n)), 0o644)
	return rulesDir, actionsDir
}

func rulesCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(t.Context(), append([]string{"rules"}, args...), &out, &out)
	return code, out.String()
}

func push(t *testing.T, redisURL string, n int, note string) {
	t.Helper()
	rulesDir, actionsDir := writeVersion(t, n)
	code, out := rulesCmd(t, "push", "--redis", redisURL, "--rules", rulesDir, "--actions", actionsDir, "-m", note)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, out)
	}
}

// waitStamp waits until every replica issues tokens stamped n by both
// the rule and the action, and returns how long that took.
func (f *fleet) waitStamp(t *testing.T, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for _, r := range f.replicas {
		for {
			status, claims := r.token(t)
			if status == http.StatusOK && claims["https://example.com/rule"] == float64(n) {
				if claims["https://example.com/action"] != float64(n) {
					t.Fatalf("a half-applied version: %v", claims)
				}
				break
			}
			if time.Since(start) > within {
				t.Fatalf("replica %s still serves %d %v after %v, want version stamped %d", r.addr, status, claims, within, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestRules_ThreeReplicas: three replicas on one Redis and no rules dir
// are not ready and issue no token; a push through the CLI is served by
// all three within a second, never half-applied; a broken push is
// refused and the active version stays; activating an older version rolls
// back; list, show and diff tell the history.
func TestRules_ThreeReplicas(t *testing.T) {
	f := startFleet(t, 3)
	for _, r := range f.replicas {
		if status, answer := r.token(t); status != http.StatusServiceUnavailable || answer["error"] != "temporarily_unavailable" {
			t.Fatalf("no rule set yet: got %d %v, want 503 temporarily_unavailable", status, answer)
		}
		if resp, err := http.Get("http://" + r.admin + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("readyz with no rule set: %v %v, want 503", resp, err)
		}
	}

	push(t, f.redis.URL(), 1, "first")
	if d := f.waitStamp(t, 1, time.Second); d > time.Second {
		t.Errorf("version 1 reached every replica in %v", d)
	}
	push(t, f.redis.URL(), 2, "second")
	f.waitStamp(t, 2, time.Second)

	// A broken push: a syntax error, then a file of the wrong shape.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-broken.lua"), []byte("return function(user, context, callback)\n  if then\nend\n"), 0o644)
	code, out := rulesCmd(t, "push", "--redis", f.redis.URL(), "--rules", dir, "-m", "broken")
	if code != 1 || !strings.Contains(out, "10-broken.lua") || !strings.Contains(out, "line:2") || !strings.Contains(out, "nothing pushed") {
		t.Errorf("broken push: exit %d %q, want 1 naming 10-broken.lua line 2", code, out)
	}
	os.WriteFile(filepath.Join(dir, "10-broken.lua"), []byte("return 42\n"), 0o644)
	if code, out := rulesCmd(t, "push", "--redis", f.redis.URL(), "--rules", dir, "-m", "wrong shape"); code != 1 || !strings.Contains(out, "not a function") {
		t.Errorf("push of a wrong shape: exit %d %q", code, out)
	}
	f.waitStamp(t, 2, time.Second) // the active version stayed

	if code, out := rulesCmd(t, "activate", "--redis", f.redis.URL(), "1"); code != 0 || !strings.Contains(out, "version 1 is active") {
		t.Fatalf("activate 1: exit %d %q", code, out)
	}
	f.waitStamp(t, 1, time.Second)

	code, out = rulesCmd(t, "list", "--redis", f.redis.URL())
	if code != 0 || !strings.Contains(out, "first") || !strings.Contains(out, "second") || strings.Contains(out, "broken") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out = rulesCmd(t, "show", "2", "--redis", f.redis.URL())
	if code != 0 || !strings.Contains(out, `["https://example.com/rule"] = 2`) || !strings.Contains(out, "rules/10-stamp.lua") {
		t.Errorf("show 2: exit %d\n%s", code, out)
	}
	code, out = rulesCmd(t, "diff", "--redis", f.redis.URL(), "1", "2")
	if code != 0 || !strings.Contains(out, `-  context.accessToken["https://example.com/rule"] = 1`) ||
		!strings.Contains(out, `+  context.accessToken["https://example.com/rule"] = 2`) {
		t.Errorf("diff 1 2: exit %d\n%s", code, out)
	}
	if code, out := rulesCmd(t, "activate", "--redis", f.redis.URL(), "9"); code != 1 || !strings.Contains(out, "not in the store") {
		t.Errorf("activate a missing version: exit %d %q", code, out)
	}
}

// TestRules_RedisDown: Redis killed under steady load. No token request
// fails and none is issued without the rules; /readyz says the store is
// unreachable while the replica serves the version it holds; once Redis is
// back, a new push reaches every replica.
func TestRules_RedisDown(t *testing.T) {
	f := startFleet(t, 2)
	push(t, f.redis.URL(), 1, "first")
	f.waitStamp(t, 1, time.Second)

	var failed, served atomic.Int64
	var wrong atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, claims := r.token(t)
				served.Add(1)
				if status != http.StatusOK {
					failed.Add(1)
				} else if claims["https://example.com/rule"] != float64(1) || claims["https://example.com/action"] != float64(1) {
					wrong.Store(fmt.Sprint(claims))
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	f.redis.Stop()
	time.Sleep(7 * time.Second) // past a sync interval: every replica has tried Redis
	for _, r := range f.replicas {
		resp, err := http.Get("http://" + r.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var ready struct {
			Ready       bool   `json:"ready"`
			RuleVersion string `json:"rule_version"`
			Store       string `json:"store"`
		}
		json.NewDecoder(resp.Body).Decode(&ready)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !ready.Ready || ready.RuleVersion != "1" || !strings.HasPrefix(ready.Store, "unreachable") {
			t.Errorf("readyz with Redis down: %d %+v, want ready on version 1, store unreachable", resp.StatusCode, ready)
		}
	}
	f.redis.Restart()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || wrong.Load() != nil {
		t.Fatalf("with Redis down: %d of %d token requests failed; a token without the rules: %v", failed.Load(), served.Load(), wrong.Load())
	}
	t.Logf("%d token requests served while Redis was down", served.Load())

	// Redis came back empty: the next push is version 1 again, and still
	// reaches every replica.
	push(t, f.redis.URL(), 3, "after the outage")
	f.waitStamp(t, 3, 7*time.Second)
}

// TestRules_Test: `rulesgate rules test` runs a rule set on a recorded
// request and upstream token, without a server, and prints the token's
// claims, or the error the client would get.
func TestRules_Test(t *testing.T) {
	dir := t.TempDir()
	caseFile := filepath.Join(dir, "case.json")
	os.WriteFile(caseFile, []byte(`{
  "request": {"grant_type": "client_credentials", "client_id": "demo-m2m", "client_secret": "x", "scope": "read:claims"},
  "upstream_claims": {"iss": "https://tenant.auth0.com/", "sub": "demo-m2m@clients", "aud": "https://api.example.com",
    "azp": "demo-m2m", "exp": 4102444800, "scope": "read:claims write:claims"}
}`), 0o644)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"rules", "test", "--rules", "examples/rules", "--clients", "examples/clients.json",
		"--configuration", "examples/configuration.json", "--case", caseFile}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	var res struct {
		Status int            `json:"status"`
		Claims map[string]any `json:"claims"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %s", out.String())
	}
	if res.Status != 200 || res.Claims["scope"] != "read:claims" || res.Claims["https://rulesgate.dev/tenant"] != "acme" ||
		res.Claims["iss"] != "https://rulesgate.invalid/" || strings.Contains(out.String(), `"x"`) {
		t.Errorf("result: %s", out.String())
	}

	os.WriteFile(caseFile, []byte(`{"request": {"grant_type": "client_credentials", "client_id": "suspended-m2m"},
  "upstream_claims": {"sub": "suspended-m2m@clients", "azp": "suspended-m2m", "scope": "read:claims"}}`), 0o644)
	out.Reset()
	code = run(context.Background(), []string{"rules", "test", "--rules", "examples/rules", "--clients", "examples/clients.json",
		"--case", caseFile}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), `"error": "unauthorized"`) || !strings.Contains(out.String(), "suspended") {
		t.Errorf("denied client: exit %d %s", code, out.String())
	}
}

// TestRules_SharedActionCache: with --redis, api.cache is one cache for
// every replica, as Auth0's is for every container of a trigger.
func TestRules_SharedActionCache(t *testing.T) {
	f := startFleet(t, 2)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-count.lua"), []byte(`return { onExecuteCredentialsExchange = function(event, api)
  local seen = api.cache.get("seen")
  local n = (seen and tonumber(seen.value) or 0) + 1
  api.cache.set("seen", tostring(n), { ttl = 60000 })
  api.accessToken.setCustomClaim("https://example.com/seen", n)
end }`), 0o644)
	if code, out := rulesCmd(t, "push", "--redis", f.redis.URL(), "--actions", dir, "-m", "count"); code != 0 {
		t.Fatalf("push: %d %s", code, out)
	}
	for i, r := range []replica{f.replicas[0], f.replicas[1], f.replicas[0]} {
		var claims map[string]any
		for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
			var status int
			if status, claims = r.token(t); status == http.StatusOK || time.Now().After(deadline) {
				break
			}
		}
		if claims["https://example.com/seen"] != float64(i+1) {
			t.Fatalf("request %d, on replica %s: seen %v, want %d", i+1, r.addr, claims["https://example.com/seen"], i+1)
		}
	}
}

// TestRules_StartWhileRedisDown: a replica that starts while Redis is down
// and has no rules dir is not ready and issues no token; once Redis is up
// with an active version, it serves it.
func TestRules_StartWhileRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	redisURL := srv.URL()
	srv.Stop()
	f := &fleet{redis: srv}
	is, err := devissuer.New(map[string]devissuer.Client{"m2m": {Secret: "fleet-secret",
		Grants: map[string][]string{"https://api.example.com": {"read:a", "write:a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(is.Handler())
	defer up.Close()
	r := replica{addr: freeAddr(t), admin: freeAddr(t), stderr: &syncBuffer{}}
	ctx, cancel := contextWithCancel(t)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--upstream", up.URL, "--listen", r.addr, "--admin-listen", r.admin,
			"--redis", redisURL}, nil, r.stderr)
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, r.stderr, "gateway listening")
	f.replicas = []replica{r}

	if status, answer := r.token(t); status != http.StatusServiceUnavailable {
		t.Fatalf("Redis down, no rules dir: got %d %v, want 503", status, answer)
	}
	resp, err := http.Get("http://" + r.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"store":"unreachable`) {
		t.Errorf("readyz: %d %s, want 503 naming the unreachable store", resp.StatusCode, body)
	}

	srv.Restart()
	push(t, redisURL, 1, "first")
	f.waitStamp(t, 1, 7*time.Second) // the next sync, at most 5 s away
}

// TestRules_ReviewFindings pins what a review found: a replica with only
// documents (no extensions) and Redis down is not ready; a push whose
// group is misspelt is refused; show keeps the configuration's values
// out unless asked; a bad Redis URL's password stays out of the error.
func TestRules_ReviewFindings(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "configuration.json")
	os.WriteFile(cfg, []byte(`{"API_KEY": "v3ry-s3cret"}`), 0o644)
	rulesDir, _ := writeVersion(t, 1)
	if code, out := rulesCmd(t, "push", "--redis", srv.URL(), "--rules", rulesDir, "--configuration", cfg, "-m", "n"); code != 0 {
		t.Fatalf("push: %s", out)
	}
	code, out := rulesCmd(t, "show", "1", "--redis", srv.URL())
	if code != 0 || strings.Contains(out, "v3ry-s3cret") || !strings.Contains(out, "API_KEY") {
		t.Errorf("show without --reveal: %d\n%s", code, out)
	}
	if _, out := rulesCmd(t, "show", "1", "--redis", srv.URL(), "--reveal"); !strings.Contains(out, "v3ry-s3cret") {
		t.Errorf("show --reveal hides the value")
	}
	if code, out := rulesCmd(t, "list", "--redis", "redis://:p4ssw0rd@host:badport/0"); code != 2 || strings.Contains(out, "p4ssw0rd") {
		t.Errorf("bad URL: %d %q", code, out)
	}

	srv.Stop()
	is, err := devissuer.New(map[string]devissuer.Client{"m2m": {Secret: "fleet-secret",
		Grants: map[string][]string{"https://api.example.com": {"read:a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(is.Handler())
	defer up.Close()
	r := replica{addr: freeAddr(t), admin: freeAddr(t), stderr: &syncBuffer{}}
	ctx, cancel := contextWithCancel(t)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--upstream", up.URL, "--listen", r.addr, "--admin-listen", r.admin,
			"--redis", srv.URL(), "--clients", "examples/clients.json", "--configuration", cfg}, nil, r.stderr)
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, r.stderr, "gateway listening")
	if status, answer := r.token(t); status != http.StatusServiceUnavailable {
		t.Errorf("documents only, Redis down: got %d %v, want 503: a token without rules", status, answer)
	}
}
