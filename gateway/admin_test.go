package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

const adminToken = "admin-token-0123456789"

// validateForTest is what serve validates a push with.
func validateForTest(ctx context.Context, set *rules.Set) error {
	cfg, err := compat.ConfigOf(set, new(rules.Cache), compat.Config{})
	if err != nil {
		return err
	}
	return compat.Validate(ctx, cfg)
}

func newAdminServer(t *testing.T, token string) (*httptest.Server, rules.Store) {
	t.Helper()
	up := newFakeIssuer(t, "/oauth/token")
	st := rules.NewMemoryStore()
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) {
		c.Admin = &Admin{Store: st, Validate: validateForTest, Token: token}
	})
	srv := httptest.NewServer(gw.AdminHandler())
	t.Cleanup(srv.Close)
	return srv, st
}

func adminCall(t *testing.T, method, u, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func ruleSet(note, src string) map[string]any {
	return map[string]any{"note": note, "files": map[string]any{"rules": []map[string]string{{"name": "10-x.lua", "source": src}}}}
}

// TestAdmin_Auth: the rule store API answers only a bearer of the admin
// token, and nobody when no token is configured.
func TestAdmin_Auth(t *testing.T) {
	srv, _ := newAdminServer(t, adminToken)
	for _, tok := range []string{"", "wrong", adminToken + "x", strings.ToUpper(adminToken)} {
		if status, body := adminCall(t, http.MethodGet, srv.URL+"/admin/rules/versions", tok, nil); status != http.StatusUnauthorized {
			t.Errorf("token %q: got %d %s, want 401", tok, status, body)
		}
	}
	if status, _ := adminCall(t, http.MethodGet, srv.URL+"/admin/rules/versions", adminToken, nil); status != http.StatusOK {
		t.Errorf("the admin token: got %d, want 200", status)
	}

	off, _ := newAdminServer(t, "")
	if status, _ := adminCall(t, http.MethodGet, off.URL+"/admin/rules/versions", "", nil); status != http.StatusForbidden {
		t.Errorf("no token configured: got %d, want 403", status)
	}
	if status, _ := adminCall(t, http.MethodGet, off.URL+"/admin/rules/versions", "anything", nil); status != http.StatusForbidden {
		t.Errorf("no token configured, one sent: got %d, want 403", status)
	}
}

// TestAdmin_RuleVersions: push, list, show, diff and activate over the
// API, as the CLI does them; a broken push is refused and nothing stored.
func TestAdmin_RuleVersions(t *testing.T) {
	srv, st := newAdminServer(t, adminToken)
	base := srv.URL + "/admin/rules"
	rule := func(n string) string {
		return `return function(u, c, cb) c.accessToken["https://x/v"] = "` + n + `" cb(nil, u, c) end`
	}

	status, body := adminCall(t, http.MethodPost, base+"/versions", adminToken, ruleSet("one", rule("1")))
	if status != http.StatusCreated || !strings.Contains(string(body), `"version":1`) {
		t.Fatalf("push: %d %s", status, body)
	}
	status, body = adminCall(t, http.MethodPost, base+"/versions?activate=false", adminToken, ruleSet("two", rule("2")))
	if status != http.StatusCreated || !strings.Contains(string(body), `"active":false`) {
		t.Fatalf("push without activation: %d %s", status, body)
	}
	if ref, _ := st.ActiveVersion(context.Background()); ref.Version != 1 {
		t.Errorf("active: got %d, want 1", ref.Version)
	}

	status, body = adminCall(t, http.MethodPost, base+"/versions", adminToken, ruleSet("broken", "return function(u, c, cb)\n if then end"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "10-x.lua") || !strings.Contains(string(body), "nothing pushed") {
		t.Errorf("broken push: %d %s", status, body)
	}
	if status, body := adminCall(t, http.MethodPost, base+"/versions", adminToken, map[string]any{"files": map[string]any{}}); status != http.StatusBadRequest {
		t.Errorf("push without a note: %d %s", status, body)
	}

	status, body = adminCall(t, http.MethodGet, base+"/versions", adminToken, nil)
	var list []rules.Summary
	json.Unmarshal(body, &list)
	if status != http.StatusOK || len(list) != 2 || !list[0].Active || list[1].Note != "two" {
		t.Errorf("list: %d %s", status, body)
	}
	status, body = adminCall(t, http.MethodGet, base+"/versions/2", adminToken, nil)
	var set rules.Set
	json.Unmarshal(body, &set)
	if status != http.StatusOK || set.Files["rules"][0].Hash != rules.NewFile("10-x.lua", []byte(rule("2"))).Hash {
		t.Errorf("show: %d %s", status, body)
	}
	status, body = adminCall(t, http.MethodGet, base+"/diff/1/2", adminToken, nil)
	if status != http.StatusOK || !strings.Contains(string(body), `+return function(u, c, cb) c.accessToken["https://x/v"] = "2"`) {
		t.Errorf("diff: %d %s", status, body)
	}
	if status, _ := adminCall(t, http.MethodGet, base+"/versions/9", adminToken, nil); status != http.StatusNotFound {
		t.Errorf("show a missing version: %d, want 404", status)
	}

	if status, body := adminCall(t, http.MethodPut, base+"/active", adminToken, map[string]int{"version": 2}); status != http.StatusOK {
		t.Fatalf("activate: %d %s", status, body)
	}
	if ref, _ := st.ActiveVersion(context.Background()); ref.Version != 2 {
		t.Errorf("active after activate: got %d, want 2", ref.Version)
	}
	if status, _ := adminCall(t, http.MethodPut, base+"/active", adminToken, map[string]int{"version": 9}); status != http.StatusNotFound {
		t.Errorf("activate a missing version: %d, want 404", status)
	}
}

// TestGateway_FollowsStore: a gateway syncing with a store swaps to each
// activated version, and keeps the version it has when a version cannot
// be built.
func TestGateway_FollowsStore(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{})
	st := rules.NewMemoryStore()
	build := func(set *rules.Set) (*compat.Pipeline, error) {
		cfg, err := compat.ConfigOf(set, new(rules.Cache), compat.Config{NarrowScopes: true})
		if err != nil {
			return nil, err
		}
		return compat.NewPipeline(cfg), nil
	}
	push := func(src string) {
		set := &rules.Set{Note: "n", Files: map[string][]rules.File{"rules": {rules.NewFile("10-x.lua", []byte(src))}}}
		if _, err := st.Push(context.Background(), set, true); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func(n string) string {
		return `return function(u, c, cb) c.accessToken["https://x/v"] = "` + n + `" cb(nil, u, c) end`
	}

	push(stamp("1"))
	gw.SyncOnce(context.Background(), st, build)
	if v, _ := gw.RuleVersion(); v != "1" {
		t.Fatalf("version: got %q, want 1", v)
	}
	push("this does not compile (")
	gw.SyncOnce(context.Background(), st, build)
	if v, _ := gw.RuleVersion(); v != "1" {
		t.Errorf("a version that cannot be built replaced the one in use: %q", v)
	}
	rec := httptest.NewRecorder()
	gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `"rule_version":"1"`) ||
		!strings.Contains(body, `"load_error":"version 2: `) {
		t.Errorf("readyz while version 2 cannot be built: %d %s", rec.Code, body)
	}
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, answer)
	}
	if claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string)); claims["https://x/v"] != "1" {
		t.Errorf("claims: %v", claims)
	}
	push(stamp("3"))
	gw.SyncOnce(context.Background(), st, build)
	if v, _ := gw.RuleVersion(); v != "3" {
		t.Errorf("version: got %q, want 3", v)
	}
}
