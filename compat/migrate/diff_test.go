package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// ruleDirs hold the rules the differential check runs: the examples, the
// benchmark rules and this package's own.
var ruleDirs = []string{"../../examples/rules", "../testdata/bench", "testdata/rules"}

// caseFile is the cases of one rule, in testdata/cases/<action name>.json.
type caseFile struct {
	Configuration map[string]any           `json:"configuration"`
	Clients       map[string]compat.Client `json:"clients"`
	Granted       []string                 `json:"granted"` // every case's, unless it has its own
	Cases         []ruleCase               `json:"cases"`
}

// ruleCase is one token request.
type ruleCase struct {
	Name      string         `json:"name"`
	Client    string         `json:"client"`
	GrantType string         `json:"grantType"` // client_credentials when empty
	Granted   []string       `json:"granted"`
	Body      map[string]any `json:"body"`
	Query     map[string]any `json:"query"`
	IP        string         `json:"ip"`
	Hostname  string         `json:"hostname"`
	UserAgent string         `json:"userAgent"`
	// Configuration replaces the file's for this case when set.
	Configuration map[string]any `json:"configuration"`
	// Want is what the rule must give, in the form outcome returns:
	// {"scopes", "claims"}, {"deny": {"code", "reason"}} or {"error": true}.
	Want map[string]any `json:"want"`
}

func (c ruleCase) granted(cf *caseFile) []string {
	if c.Granted != nil {
		return c.Granted
	}
	return cf.Granted
}

func (c ruleCase) configuration(cf *caseFile) map[string]any {
	if c.Configuration != nil {
		return c.Configuration
	}
	return orEmpty(cf.Configuration)
}

func (c ruleCase) grantType() string {
	if c.GrantType == "" {
		return "client_credentials"
	}
	return c.GrantType
}

// stringParam returns body or query parameter name when it is a string.
func (c ruleCase) stringParam(name string) string {
	if s, ok := c.Body[name].(string); ok {
		return s
	}
	s, _ := c.Query[name].(string)
	return s
}

func readCases(t *testing.T, name string) *caseFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/cases", name+".json"))
	if err != nil {
		t.Fatalf("every rule of the differential check needs cases: %v", err)
	}
	var cf caseFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("read cases of %s: %v", name, err)
	}
	if len(cf.Cases) < 2 {
		t.Fatalf("cases of %s: got %d, want several", name, len(cf.Cases))
	}
	return &cf
}

// differential reports whether a translation takes part in the
// differential check: one with issues is not expected to behave as the
// rule does.
func differential(tr *Translation) bool { return tr.Complete(FormatAuth0) }

// TestTranslate_Differential runs every rule through the compat pipeline
// and its JavaScript translation through Node.js on the same cases: the
// scopes, claims and denials must be the same, and those the cases want.
func TestTranslate_Differential(t *testing.T) {
	node := nodePath(t)
	for _, dir := range ruleDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.lua"))
		if err != nil || len(files) == 0 {
			t.Fatalf("rules in %s: %v %v", dir, files, err)
		}
		for _, file := range files {
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				src, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := Translate(file, src)
				if err != nil {
					t.Fatal(err)
				}
				if !differential(tr) {
					t.Fatalf("the rule does not translate fully: %+v", tr.Issues)
				}
				cf := readCases(t, tr.Name)
				ruleOut := runRule(t, tr.File, src, cf)
				jsOut := runJS(t, node, tr, cf)
				for i, c := range cf.Cases {
					if want := canonWant(c.Want); !reflect.DeepEqual(ruleOut[i], want) {
						t.Errorf("%s: rule gave %s, the case wants %s", c.Name, toJSON(ruleOut[i]), toJSON(want))
					}
					if !reflect.DeepEqual(jsOut[i], ruleOut[i]) {
						t.Errorf("%s: action gave %s, the rule %s\n%s", c.Name, toJSON(jsOut[i]), toJSON(ruleOut[i]), tr.JS)
					}
				}
			})
		}
	}
}

// nodePath returns Node.js, failing the test without it: the check of
// the generated JavaScript cannot be skipped.
func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: the differential check runs the generated actions in Node.js; install Node.js 18 or later: %v", err)
	}
	return node
}

// runRule runs the rule through the compat pipeline on every case.
func runRule(t *testing.T, file string, src []byte, cf *caseFile) []map[string]any {
	t.Helper()
	prog, err := rules.Compile(file, src)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(cf.Cases))
	for i, c := range cf.Cases {
		p := compat.NewPipeline(compat.Config{
			Rules: []*rules.Program{prog}, Configuration: c.configuration(cf), Clients: cf.Clients,
			Logger: slog.New(slog.DiscardHandler),
		})
		res, err := p.Run(context.Background(), transaction(cf, c))
		out[i] = ruleOutcome(t, res, err)
	}
	return out
}

func transaction(cf *caseFile, c ruleCase) *compat.Transaction {
	return &compat.Transaction{
		ClientID: c.Client, GrantType: c.grantType(), Audience: c.stringParam("audience"),
		RequestedScopes: strings.Fields(c.stringParam("scope")),
		GrantedScopes:   c.granted(cf),
		Request: compat.Request{
			IP: c.IP, Hostname: c.Hostname, UserAgent: c.UserAgent,
			Query: orEmpty(c.Query), Body: orEmpty(c.Body),
		},
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// ruleOutcome is the canonical form of what the pipeline gave. Auth0's
// guide maps UnauthorizedError to api.access.deny('invalid_request').
func ruleOutcome(t *testing.T, res *compat.Result, err error) map[string]any {
	t.Helper()
	var d *compat.Denial
	switch {
	case errors.As(err, &d):
		if d.Code != "unauthorized" {
			t.Fatalf("denial code %q", d.Code)
		}
		return canonDeny("invalid_request", d.Description)
	case err != nil:
		return map[string]any{"error": true}
	}
	return canonToken(res.Scopes, res.Claims)
}

func canonDeny(code, reason string) map[string]any {
	return map[string]any{"deny": map[string]any{"code": code, "reason": reason}}
}

// canonToken is the canonical form of scopes and claims: JSON values,
// with an empty array written as an empty object since a Lua table has
// no such difference and rulesgate encodes it as {}.
func canonToken(scopes []string, claims map[string]any) map[string]any {
	s := make([]any, len(scopes))
	for i, v := range scopes {
		s[i] = v
	}
	if claims == nil {
		claims = map[string]any{}
	}
	return map[string]any{"scopes": s, "claims": emptyAsObject(jsonValue(claims))}
}

// canonWant is a case's want in canonical form; claims default to none.
func canonWant(want map[string]any) map[string]any {
	if want == nil {
		return nil
	}
	v := jsonValue(want).(map[string]any)
	if _, ok := v["scopes"]; ok {
		if _, ok := v["claims"]; !ok {
			v["claims"] = map[string]any{}
		}
		v["claims"] = emptyAsObject(v["claims"])
	}
	return v
}

// jsonValue returns v as encoding/json decodes it into an any.
func jsonValue(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

func emptyAsObject(v any) any {
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			return map[string]any{}
		}
		for i := range v {
			v[i] = emptyAsObject(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = emptyAsObject(v[k])
		}
	}
	return v
}

func toJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// jsResult is what the harness prints for one case.
type jsResult struct {
	Scopes []string       `json:"scopes"`
	Claims map[string]any `json:"claims"`
	Deny   *struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"deny"`
	Error string `json:"error"`
}

// runJS runs the generated code.js on every case in one Node.js process.
func runJS(t *testing.T, node string, tr *Translation, cf *caseFile) []map[string]any {
	t.Helper()
	code := filepath.Join(t.TempDir(), "code.js")
	if err := os.WriteFile(code, []byte(tr.JS), 0o644); err != nil {
		t.Fatal(err)
	}
	events := make([]map[string]any, len(cf.Cases))
	for i, c := range cf.Cases {
		events[i] = event(cf, c)
	}
	input, err := json.Marshal(map[string]any{"code": code, "events": events})
	if err != nil {
		t.Fatal(err)
	}
	harness, err := filepath.Abs("testdata/harness.js")
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, harness)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(input), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s\n%s", tr.Name, err, stderr.String(), tr.JS)
	}
	var results []jsResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil || len(results) != len(cf.Cases) {
		t.Fatalf("harness output %q: %v", stdout.String(), err)
	}
	out := make([]map[string]any, len(results))
	for i, r := range results {
		switch {
		case r.Error != "":
			out[i] = map[string]any{"error": true}
		case r.Deny != nil:
			out[i] = canonDeny(r.Deny.Code, r.Deny.Reason)
		default:
			out[i] = guarded(r.Scopes, r.Claims, cf.Cases[i].granted(cf))
		}
	}
	return out
}

// guarded is the canonical form of what an action left, after the guards
// Auth0 applies: target scopes cut to the grant (first occurrence kept),
// restricted claims dropped.
func guarded(scopes []string, claims map[string]any, granted []string) map[string]any {
	var kept []string
	for _, s := range scopes {
		if slices.Contains(granted, s) && !slices.Contains(kept, s) {
			kept = append(kept, s)
		}
	}
	for name := range claims {
		if compat.Restricted(name) {
			delete(claims, name)
		}
	}
	return canonToken(kept, claims)
}

// event builds the Credentials Exchange Action event for a case, as
// Auth0 does, from the same request the rule sees.
func event(cf *caseFile, c ruleCase) map[string]any {
	client := cf.Clients[c.Client]
	metadata := map[string]any{}
	for k, v := range client.Metadata {
		metadata[k] = v
	}
	granted := c.granted(cf)
	return map[string]any{
		"accessToken": map[string]any{"customClaims": map[string]any{}, "scope": granted},
		"client":      map[string]any{"client_id": c.Client, "name": client.Name, "metadata": metadata},
		"request": map[string]any{
			"body": orEmpty(c.Body), "query": orEmpty(c.Query), "ip": c.IP, "hostname": c.Hostname,
			"user_agent": c.UserAgent, "geoip": map[string]any{}, "language": "", "method": "POST",
		},
		"resource_server": map[string]any{"identifier": c.stringParam("audience")},
		"secrets":         c.configuration(cf),
		"tenant":          map[string]any{"id": "rulesgate-test"},
		"transaction": map[string]any{
			"correlation_id": c.Name, "protocol": protocol(c.grantType()),
			"requested_scopes": strings.Fields(c.stringParam("scope")), "target_scopes": granted,
		},
	}
}

// protocol names a grant as Auth0's context.protocol and
// event.transaction.protocol do.
func protocol(grantType string) string {
	switch grantType {
	case "client_credentials":
		return "oauth2-client-credentials"
	case "refresh_token":
		return "oauth2-refresh-token"
	}
	return grantType
}
