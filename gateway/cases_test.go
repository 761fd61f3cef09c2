package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ruleCase is one golden case under testdata/cases: the rules (the case's
// own .lua files, or those of rules_dir), hooks and actions (hooks_dir,
// actions_dir: directories of the case), the client's request, the claims
// of the upstream token, and what the client must get back.
type ruleCase struct {
	RulesDir       string                   `json:"rules_dir"`
	HooksDir       string                   `json:"hooks_dir"`
	ActionsDir     string                   `json:"actions_dir"`
	Clients        map[string]compat.Client `json:"clients"`
	Configuration  map[string]any           `json:"configuration"`
	NarrowOff      bool                     `json:"narrow_scopes_off"`
	TokenPath      string                   `json:"token_path"`
	UpstreamClaims map[string]any           `json:"upstream_claims"`
	Request        struct {
		Form  map[string]string `json:"form"`
		JSON  map[string]any    `json:"json"`
		Basic []string          `json:"basic"`
	} `json:"request"`
	Want struct {
		Status      int            `json:"status"`
		Scope       *string        `json:"scope"`
		Claims      map[string]any `json:"claims"`
		Error       string         `json:"error"`
		Description string         `json:"error_description"`
		NotInBody   []string       `json:"not_in_body"`
	} `json:"want"`
}

// TestGateway_Cases runs every golden case end to end: a real HTTP request
// to the gateway, a fake upstream that issues the case's token, the case's
// rules, and the re-signed token verified through the gateway's JWKS.
func TestGateway_Cases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/cases/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { runCase(t, dir) })
	}
}

func runCase(t *testing.T, dir string) {
	var c ruleCase
	data, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("case.json: %v", err)
	}
	if c.TokenPath == "" {
		c.TokenPath = "/oauth/token"
	}
	rulesDir := dir
	if c.RulesDir != "" {
		rulesDir = filepath.Join(dir, c.RulesDir)
	}
	progs := loadCaseDir(t, rulesDir)
	var hooks, actions []*rules.Program
	if c.HooksDir != "" {
		hooks = loadCaseDir(t, filepath.Join(dir, c.HooksDir))
	}
	if c.ActionsDir != "" {
		actions = loadCaseDir(t, filepath.Join(dir, c.ActionsDir))
	}

	up := newFakeIssuer(t, c.TokenPath)
	up.set(func(f *fakeIssuer) { f.claims = c.UpstreamClaims })
	gw := newTestGateway(t, up.URL, compat.Config{
		Rules: progs, Hooks: hooks, Actions: actions, Tenant: "acme",
		Clients: c.Clients, Configuration: c.Configuration, NarrowScopes: !c.NarrowOff,
	})

	resp := sendCaseRequest(t, gw.URL+c.TokenPath, &c)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != c.Want.Status {
		t.Fatalf("status: got %d, want %d; body %s", resp.StatusCode, c.Want.Status, raw)
	}
	for _, s := range c.Want.NotInBody {
		if strings.Contains(string(raw), s) {
			t.Errorf("body %s contains %q", raw, s)
		}
	}
	var answer map[string]any
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("answer is not JSON: %s", raw)
	}

	if c.Want.Error != "" {
		if got := answer["error"]; got != c.Want.Error {
			t.Errorf("error: got %v, want %s", got, c.Want.Error)
		}
		if c.Want.Description != "" && answer["error_description"] != c.Want.Description {
			t.Errorf("error_description: got %v, want %s", answer["error_description"], c.Want.Description)
		}
		if _, ok := answer["access_token"]; ok {
			t.Errorf("an error answer carries an access token: %s", raw)
		}
		return
	}

	if c.Want.Scope != nil && answer["scope"] != *c.Want.Scope {
		t.Errorf("answer scope: got %v, want %q", answer["scope"], *c.Want.Scope)
	}
	claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	for _, k := range []string{"iat", "exp"} {
		if claims[k] == nil {
			t.Errorf("claim %s missing", k)
		}
		delete(claims, k)
	}
	if !reflect.DeepEqual(claims, c.Want.Claims) {
		got, _ := json.MarshalIndent(claims, "", "  ")
		want, _ := json.MarshalIndent(c.Want.Claims, "", "  ")
		t.Errorf("claims:\ngot  %s\nwant %s", got, want)
	}
}

// loadCaseDir compiles the .lua files of one directory of a case.
func loadCaseDir(t *testing.T, dir string) []*rules.Program {
	t.Helper()
	progs, err := rules.LoadFS(os.DirFS(dir), ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	return progs
}

func sendCaseRequest(t *testing.T, endpoint string, c *ruleCase) *http.Response {
	t.Helper()
	var body io.Reader
	contentType := "application/x-www-form-urlencoded"
	if c.Request.JSON != nil {
		b, _ := json.Marshal(c.Request.JSON)
		body, contentType = strings.NewReader(string(b)), "application/json"
	} else {
		form := url.Values{}
		for k, v := range c.Request.Form {
			form.Set(k, v)
		}
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "case-runner/1.0")
	if len(c.Request.Basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(c.Request.Basic[0]), url.QueryEscape(c.Request.Basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// verifyThroughGateway checks token as a resource server would: discovery
// document, then JWKS, then signature and issuer. It returns the claims.
func verifyThroughGateway(t testing.TB, gwURL, token string) map[string]any {
	t.Helper()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, gwURL+"/.well-known/openid-configuration", &doc)
	var set jose.JSONWebKeySet
	getJSON(t, doc.JWKSURI, &set)

	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("parse gateway token: %v", err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the gateway JWKS", jws.Signatures[0].Header.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("verify gateway token: %v", err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["iss"] != doc.Issuer {
		t.Errorf("iss: got %v, want the discovery issuer %s", claims["iss"], doc.Issuer)
	}
	return claims
}

func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
