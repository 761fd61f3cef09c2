package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
)

// TestRun_Serve runs `rulesgate serve` as an operator would: flags and
// environment, directories of rules, hooks, actions and shadow actions,
// clients, configuration and a PEM key, in front of an Auth0-like issuer;
// a client gets a narrowed token signed by that key, with what each shape
// added, and the admin listener reports it and the shadow run.
func TestRun_Serve(t *testing.T) {
	is, err := devissuer.New(map[string]devissuer.Client{"billing": {Secret: "b1ll1ng-secret",
		Grants: map[string][]string{"https://api.example.com": {"read:invoices", "write:invoices"}}}})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(is.Handler())
	defer upstream.Close()

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rules/10-team.lua", `return function(user, context, callback)
  context.accessToken[configuration.NS .. "team"] = context.clientMetadata.team
  callback(nil, user, context)
end`)
	write("hooks/10-hook.lua", `return function(client, scope, audience, context, cb)
  cb(nil, { scope = scope, [context.webtask.secrets.NS .. "hooked"] = client.name })
end`)
	write("actions/10-action.lua", `return { onExecuteCredentialsExchange = function(event, api)
  api.accessToken.setCustomClaim(event.secrets.NS .. "acted", event.resource_server.identifier)
end }`)
	write("shadow/10-nothing.lua", `return { onExecuteCredentialsExchange = function(event, api) end }`)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := write("key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	clients := write("clients.json", `{"billing": {"name": "Billing", "metadata": {"team": "finance"}}}`)
	configuration := write("configuration.json", `{"NS": "https://example.com/"}`)

	addr, admin := freeAddr(t), freeAddr(t)
	t.Setenv("RULESGATE_UPSTREAM", upstream.URL)
	t.Setenv("RULESGATE_SIGNING_KEY", keyFile)
	var stderr syncBuffer
	done := make(chan int, 1)
	ctx, cancel := contextWithCancel(t)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--admin-listen", admin,
			"--rules", filepath.Join(dir, "rules"), "--hooks", filepath.Join(dir, "hooks"),
			"--actions", filepath.Join(dir, "actions"), "--shadow-actions", filepath.Join(dir, "shadow"),
			"--clients", clients, "--configuration", configuration,
			"--issuer", "https://tokens.example.com/"}, nil, &stderr)
	}()
	waitFor(t, &stderr, "gateway listening")

	resp, err := http.PostForm("http://"+addr+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"billing"}, "client_secret": {"b1ll1ng-secret"}, "audience": {"https://api.example.com"},
		"scope": {"read:invoices"}})
	if err != nil {
		t.Fatal(err)
	}
	var answer map[string]any
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != 200 || answer["scope"] != "read:invoices" {
		t.Fatalf("got %d %v, want 200 read:invoices", resp.StatusCode, answer)
	}

	// Signed by the configured key, with its thumbprint as kid.
	jws, err := jose.ParseSigned(answer["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatalf("token not signed by --signing-key: %v", err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["iss"] != "https://tokens.example.com/" || claims["https://example.com/team"] != "finance" ||
		claims["https://example.com/hooked"] != "Billing" || claims["https://example.com/acted"] != "https://api.example.com" {
		t.Errorf("claims: got %v", claims)
	}

	// The shadow set adds none of the three claims: one mismatch, reported
	// in the background.
	var body []byte
	for range 50 {
		metrics, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(metrics.Body)
		metrics.Body.Close()
		if strings.Contains(string(body), `rulesgate_shadow_runs_total{result="mismatch"} 1`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, series := range []string{`rulesgate_token_requests_total{outcome="issued"} 1`,
		`rulesgate_shadow_runs_total{result="mismatch"} 1`,
		`rulesgate_shadow_mismatches_total{action="none",field="claim"} 3`,
		`rulesgate_heap_guard_stops_total 0`} {
		if !strings.Contains(string(body), series) {
			t.Errorf("admin metrics lack %s", series)
		}
	}
	for _, secret := range []string{"b1ll1ng-secret", answer["access_token"].(string),
		strings.SplitN(answer["access_token"].(string), ".", 3)[2]} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("the log contains a secret or a token")
		}
	}

	// One JSON line per token request, with the fields operators query.
	var rec map[string]any
	for line := range strings.Lines(stderr.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not JSON: %s", line)
		}
		if r["msg"] == "token request" {
			rec = r
		}
	}
	timings, _ := rec["timings_us"].(map[string]any)
	if rec["outcome"] != "issued" || rec["client_id"] != "billing" || rec["audience"] != "https://api.example.com" ||
		rec["request_id"] == "" || rec["duration_ms"] == nil || timings["10-team.lua"] == nil || timings["10-action.lua"] == nil {
		t.Errorf("token request log line: %v", rec)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code: got %d, want 0; stderr %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestHeapBudget: --rule-heap-mib in MiB, -1 for no guard, and by default
// three quarters of GOMEMLIMIT, or 1 GiB when there is none.
func TestHeapBudget(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	debug.SetMemoryLimit(math.MaxInt64)
	for _, tt := range []struct {
		mib  int
		want uint64
	}{{300, 300 << 20}, {-1, 0}, {0, 1 << 30}} {
		if got := heapBudget(tt.mib); got != tt.want {
			t.Errorf("heapBudget(%d) without GOMEMLIMIT = %d, want %d", tt.mib, got, tt.want)
		}
	}
	debug.SetMemoryLimit(200 << 20)
	if got := heapBudget(0); got != 150<<20 {
		t.Errorf("heapBudget(0) with GOMEMLIMIT=200MiB = %d, want %d", got, 150<<20)
	}
	if got := heapBudget(64); got != 64<<20 {
		t.Errorf("heapBudget(64) with GOMEMLIMIT = %d, want %d", got, 64<<20)
	}
}
