//go:build e2e

// The end-to-end test against Ory Hydra, a real OAuth 2 server issuing JWT
// access tokens. It needs a Hydra binary: scripts/e2e builds one (cached)
// and runs this file with `go test -tags e2e`; scripts/test runs it.

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// e2eAPI is the audience the test's clients ask tokens for.
const e2eAPI = "https://api.example.com"

// e2eTokenTTL is the lifetime, in seconds, of Hydra's access tokens in the
// test (TTL_ACCESS_TOKEN): not Hydra's default hour, so that a token that
// keeps it is told from one given a lifetime of its own.
const e2eTokenTTL = 600

// e2eReadOnly is the rule the test adds to the examples: clients marked
// read-only lose every write scope, whatever they were granted.
const e2eReadOnly = `return function(user, context, callback)
  if context.clientMetadata.readonly == "true" then
    local kept = {}
    for _, s in ipairs(context.accessToken.scope) do
      if not s:find("^write:") then table.insert(kept, s) end
    end
    context.accessToken.scope = kept
  end
  callback(nil, user, context)
end
`

// TestE2E_Hydra puts `rulesgate serve`, with the example rules and one
// more, in front of Hydra, once for each way Hydra can write the scopes in
// its tokens (STRATEGIES_JWT_SCOPE_CLAIM): the token path is discovered,
// the scope claims keep their shape, custom claims are added, denials and
// Hydra's own errors reach the client, and every token verifies against
// the gateway's JWKS and not Hydra's.
func TestE2E_Hydra(t *testing.T) {
	bin := hydraBinary(t)
	for _, mode := range []struct {
		claim           string
		scope, scpArray bool // which claims Hydra writes: "scope" (a string), "scp" (an array)
	}{
		{"list", false, true},
		{"string", true, false},
		{"both", true, true},
	} {
		t.Run("scope claim "+mode.claim, func(t *testing.T) {
			h := startHydra(t, bin, mode.claim)
			h.createClients(t)
			gw, logs := startGatewayFor(t, h)

			doc := getJSON(t, gw+"/.well-known/openid-configuration")
			if doc["token_endpoint"] != gw+"/oauth2/token" || doc["jwks_uri"] != gw+"/.well-known/jwks.json" || doc["issuer"] != gw+"/" {
				t.Fatalf("gateway discovery: got token_endpoint %v, jwks_uri %v, issuer %v; want the gateway's, with Hydra's token path",
					doc["token_endpoint"], doc["jwks_uri"], doc["issuer"])
			}
			tokenURL := doc["token_endpoint"].(string)

			direct, _ := hydraToken(t, h.public+"/oauth2/token", "billing", "read:a write:a")
			checkScopes := func(t *testing.T, claims map[string]any, want []string) {
				t.Helper()
				wantScp := make([]any, len(want))
				for i, s := range want {
					wantScp[i] = s
				}
				if got, ok := claims["scp"]; ok != mode.scpArray || (ok && !reflect.DeepEqual(got, wantScp)) {
					t.Errorf("scp: got %#v (present %v), want %#v (present %v)", got, ok, wantScp, mode.scpArray)
				}
				if got, ok := claims["scope"]; ok != mode.scope || (ok && got != strings.Join(want, " ")) {
					t.Errorf("scope: got %#v (present %v), want %q (present %v)", got, ok, strings.Join(want, " "), mode.scope)
				}
			}

			t.Run("token with a custom claim", func(t *testing.T) {
				answer := tokenAnswer(t, tokenURL, basicAuth("billing"), "read:a write:a", http.StatusOK)
				if answer["scope"] != "read:a write:a" || answer["token_type"] != "bearer" {
					t.Errorf("answer: got scope %v, token_type %v", answer["scope"], answer["token_type"])
				}
				claims := verifyWithJWKS(t, gw, answer["access_token"].(string))
				if claims["iss"] != gw+"/" || claims["client_id"] != "billing" || claims["sub"] != "billing" ||
					!reflect.DeepEqual(claims["aud"], []any{e2eAPI}) || claims["https://rulesgate.dev/tenant"] != "acme" {
					t.Errorf("claims: got %v", claims)
				}
				checkScopes(t, claims, []string{"read:a", "write:a"})
				checkScopes(t, direct, []string{"read:a", "write:a"}) // Hydra's own shape, for comparison
				// Hydra's exp and iat, kept: its 10 minutes, which it computes
				// apart and so rounds to a second or two less at times.
				if lifetime := claims["exp"].(float64) - claims["iat"].(float64); lifetime > e2eTokenTTL || lifetime < e2eTokenTTL-5 {
					t.Errorf("lifetime: got %vs, want Hydra's %vs", lifetime, e2eTokenTTL)
				}
				if _, err := verifyAgainst(t, h.public+"/.well-known/jwks.json", answer["access_token"].(string)); err == nil {
					t.Error("the gateway's token verifies with Hydra's keys: it was not re-signed")
				}
			})

			t.Run("a rule narrows the granted scopes", func(t *testing.T) {
				answer := tokenAnswer(t, tokenURL, basicAuth("reporting"), "read:a write:a", http.StatusOK)
				if answer["scope"] != "read:a" {
					t.Errorf("answer scope: got %v, want read:a", answer["scope"])
				}
				checkScopes(t, verifyWithJWKS(t, gw, answer["access_token"].(string)), []string{"read:a"})
			})

			t.Run("credentials in the body", func(t *testing.T) {
				answer := tokenAnswer(t, tokenURL, postAuth("poster"), "admin", http.StatusOK)
				checkScopes(t, verifyWithJWKS(t, gw, answer["access_token"].(string)), []string{"admin"})
			})

			t.Run("a rule denies", func(t *testing.T) {
				answer := tokenAnswer(t, tokenURL, basicAuth("suspended"), "read:a", http.StatusForbidden)
				if answer["error"] != "unauthorized" || answer["error_description"] != "client suspended is suspended" {
					t.Errorf("answer: got %v", answer)
				}
			})

			t.Run("Hydra's errors pass through", func(t *testing.T) {
				if answer := tokenAnswer(t, tokenURL, basicAuth("billing"), "delete:everything", http.StatusBadRequest); answer["error"] != "invalid_scope" {
					t.Errorf("unknown scope: got %v, want invalid_scope", answer)
				}
				wrong := func(r *http.Request, form url.Values) { r.SetBasicAuth("billing", "not-the-secret") }
				if answer := tokenAnswer(t, tokenURL, wrong, "read:a", http.StatusUnauthorized); answer["error"] != "invalid_client" {
					t.Errorf("wrong secret: got %v, want invalid_client", answer)
				}
			})

			for _, secret := range []string{clientSecret("billing"), clientSecret("reporting"), clientSecret("poster")} {
				if strings.Contains(logs.String(), secret) {
					t.Error("the gateway's log contains a client secret")
				}
			}
		})
	}

	t.Run("Hydra rotates its key", func(t *testing.T) {
		// Hydra signs with a new key as soon as its set is deleted, without
		// publishing it first. The gateway fetches Hydra's JWKS again for
		// the unknown kid, at most once per 10 s: until then it refuses,
		// with 502 and no token; after, it issues again.
		h := startHydra(t, bin, "list")
		h.createClients(t)
		gw, _ := startGatewayFor(t, h)
		tokenURL := gw + "/oauth2/token"
		tokenAnswer(t, tokenURL, basicAuth("billing"), "read:a", http.StatusOK)
		_, before := hydraToken(t, h.public+"/oauth2/token", "billing", "read:a")

		req, _ := http.NewRequest(http.MethodDelete, h.admin+"/admin/keys/hydra.jwt.access-token", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, after := hydraToken(t, h.public+"/oauth2/token", "billing", "read:a"); after == before {
			t.Fatalf("Hydra still signs with kid %s", before)
		}

		refused := 0
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway refused tokens for 30 s after Hydra's rotation")
			}
			status, body := postToken(t, tokenURL, basicAuth("billing"), "read:a")
			if status == http.StatusOK {
				var answer map[string]any
				json.Unmarshal(body, &answer)
				verifyWithJWKS(t, gw, answer["access_token"].(string))
				break
			}
			refused++
			if status != http.StatusBadGateway || bytes.Contains(body, []byte("access_token")) || bytes.Contains(body, []byte("eyJ")) {
				t.Fatalf("while the new key is unknown: got %d %s, want 502 without a token", status, body)
			}
		}
		t.Logf("refused %d requests after the rotation, then issued", refused)
	})
}

// hydraBinary returns the Hydra binary named by RULESGATE_HYDRA.
func hydraBinary(t *testing.T) string {
	bin := os.Getenv("RULESGATE_HYDRA")
	if bin == "" {
		t.Fatal("RULESGATE_HYDRA is not set: run scripts/e2e, which builds Hydra (scripts/hydra) and sets it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("RULESGATE_HYDRA: %v", err)
	}
	return bin
}

// hydra is a running Hydra: its public and admin base URLs.
type hydra struct {
	public, admin string
}

// startHydra runs Hydra on two free loopback ports, in memory, issuing JWT
// access tokens with the scope claim written as scopeClaim says, and stops
// it when the test ends. A port taken between its choice and Hydra's bind
// makes Hydra exit: it is started again on others, up to three times.
func startHydra(t *testing.T, bin, scopeClaim string) *hydra {
	t.Helper()
	for attempt := 1; ; attempt++ {
		h, out, exited := launchHydra(t, bin, scopeClaim)
		if waitHydraReady(h, exited) {
			return h
		}
		if attempt == 3 {
			t.Fatalf("hydra not ready after 3 starts:\n%s", out.String())
		}
	}
}

// launchHydra starts one Hydra process, killed when the test ends, and
// returns its URLs, its output and a channel closed when it exits.
func launchHydra(t *testing.T, bin, scopeClaim string) (*hydra, *syncBuffer, chan struct{}) {
	t.Helper()
	public, admin := freeAddr(t), freeAddr(t)
	h := &hydra{public: "http://" + public, admin: "http://" + admin}
	_, publicPort, _ := strings.Cut(public, ":")
	_, adminPort, _ := strings.Cut(admin, ":")

	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SECRETS_SYSTEM="+rand.Text(),
		"URLS_SELF_ISSUER="+h.public,
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+publicPort,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+adminPort,
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"TTL_ACCESS_TOKEN=10m",
		"STRATEGIES_JWT_SCOPE_CLAIM="+scopeClaim,
		"LOG_LEVEL=warn")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hydra: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("hydra's output:\n%s", out.String())
		}
	})
	return h, out, exited
}

// waitHydraReady polls Hydra's readiness for up to 30 s, and gives up
// early if it exits.
func waitHydraReady(h *hydra, exited chan struct{}) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := http.Get(h.admin + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// createClients registers the test's clients with Hydra's admin API, each
// allowed read:a, write:a and admin for e2eAPI.
func (h *hydra) createClients(t *testing.T) {
	t.Helper()
	for id, method := range map[string]string{"billing": "client_secret_basic", "reporting": "client_secret_basic",
		"suspended": "client_secret_basic", "poster": "client_secret_post"} {
		body, _ := json.Marshal(map[string]any{
			"client_id": id, "client_secret": clientSecret(id),
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": method,
			"scope": "read:a write:a admin", "audience": []string{e2eAPI},
		})
		resp, err := http.Post(h.admin+"/admin/clients", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create client %s: %d %s", id, resp.StatusCode, answer)
		}
	}
}

// clientSecret is the secret of the test client id.
func clientSecret(id string) string { return id + "-secret-for-the-e2e-test" }

// startGatewayFor runs `rulesgate serve` in front of h with the example
// rules and e2eReadOnly, and returns its base URL and its log.
func startGatewayFor(t *testing.T, h *hydra) (string, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	os.MkdirAll(rules, 0o755)
	examples, _ := filepath.Glob("examples/rules/*.lua")
	if len(examples) == 0 {
		t.Fatal("no example rules in examples/rules")
	}
	for _, p := range examples {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rules, filepath.Base(p)), src, 0o600)
	}
	os.WriteFile(filepath.Join(rules, "40-read-only.lua"), []byte(e2eReadOnly), 0o600)
	clients := filepath.Join(dir, "clients.json")
	os.WriteFile(clients, []byte(`{
  "billing": {"name": "Billing", "metadata": {"tenant": "acme"}},
  "reporting": {"name": "Reporting", "metadata": {"tenant": "acme", "readonly": "true"}},
  "suspended": {"name": "Suspended", "metadata": {"suspended": "true"}}
}`), 0o600)

	addr := freeAddr(t)
	logs := &syncBuffer{}
	ctx, cancel := contextWithCancel(t)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--upstream", h.public, "--rules", rules,
			"--clients", clients, "--configuration", "examples/configuration.json"}, nil, logs)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, logs, "gateway listening")
	return "http://" + addr, logs
}

// authenticate puts a client's credentials on a token request.
type authenticate func(r *http.Request, form url.Values)

// basicAuth sends id's credentials in the Authorization header.
func basicAuth(id string) authenticate {
	return func(r *http.Request, _ url.Values) { r.SetBasicAuth(id, clientSecret(id)) }
}

// postAuth sends id's credentials in the form.
func postAuth(id string) authenticate {
	return func(_ *http.Request, form url.Values) {
		form.Set("client_id", id)
		form.Set("client_secret", clientSecret(id))
	}
}

// postToken asks tokenURL for a client credentials token for e2eAPI and
// returns the status and body of the answer.
func postToken(t *testing.T, tokenURL string, auth authenticate, scope string) (int, []byte) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "audience": {e2eAPI}}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, nil)
	auth(req, form)
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// tokenAnswer is postToken for an answer of status want, decoded. An
// error answer must be OAuth JSON and carry no token.
func tokenAnswer(t *testing.T, tokenURL string, auth authenticate, scope string, want int) map[string]any {
	t.Helper()
	status, body := postToken(t, tokenURL, auth, scope)
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil || status != want {
		t.Fatalf("token answer: got %d %s, want %d with a JSON body", status, body, want)
	}
	if status != http.StatusOK {
		if _, ok := answer["error"].(string); !ok || bytes.Contains(body, []byte("eyJ")) {
			t.Errorf("error answer: got %s, want an OAuth error without a token", body)
		}
	}
	return answer
}

// hydraToken asks Hydra itself for id's token and returns its claims and
// kid, read without verification: they are only compared with the
// gateway's.
func hydraToken(t *testing.T, tokenURL, id, scope string) (map[string]any, string) {
	t.Helper()
	answer := tokenAnswer(t, tokenURL, basicAuth(id), scope, http.StatusOK)
	jws, err := jose.ParseSignedCompact(answer["access_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("hydra's token: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		t.Fatalf("hydra's token: %v", err)
	}
	return claims, jws.Signatures[0].Header.KeyID
}

// getJSON fetches a JSON object.
func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
	return doc
}
