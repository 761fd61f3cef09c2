package migrate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rulesgate/rulesgate/rules"
)

func exampleTranslations(t *testing.T) []*Translation {
	t.Helper()
	ts, err := TranslateFS(os.DirFS("../../examples/rules"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("translations: got %d, want 3", len(ts))
	}
	return ts
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestWrite_Auth0 writes the Auth0 Deploy CLI's directory layout.
func TestWrite_Auth0(t *testing.T) {
	ts := exampleTranslations(t)
	dir := t.TempDir()
	if err := Write(dir, FormatAuth0, ts); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(filepath.Join(dir, "actions", "20-tenant-claim.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "20-tenant-claim", "code": "./actions/20-tenant-claim/code.js", "runtime": "node22",
		"dependencies":       []any{},
		"secrets":            []any{map[string]any{"name": "CLAIM_NAMESPACE", "value": ""}},
		"supported_triggers": []any{map[string]any{"id": "credentials-exchange", "version": "v2"}},
		"deployed":           true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("actions/20-tenant-claim.json: got %v, want %v", got, want)
	}

	code, err := os.ReadFile(filepath.Join(dir, "actions", "20-tenant-claim", "code.js"))
	if err != nil || string(code) != ts[1].JS {
		t.Errorf("code.js: got %q (%v), want the translation", code, err)
	}
	if exists(filepath.Join(dir, "lua")) {
		t.Error("the auth0 format wrote Lua actions")
	}
	if !exists(filepath.Join(dir, "MIGRATION.md")) {
		t.Error("no MIGRATION.md")
	}
}

// TestWrite_Lua writes a directory rulesgate serve --actions reads.
func TestWrite_Lua(t *testing.T) {
	ts := exampleTranslations(t)
	dir := t.TempDir()
	if err := Write(dir, FormatLua, ts); err != nil {
		t.Fatal(err)
	}
	progs, err := rules.LoadFS(os.DirFS(dir), ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range progs {
		names = append(names, p.Name)
	}
	want := []string{"10-narrow-to-requested.lua", "20-tenant-claim.lua", "30-deny-suspended.lua"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Lua actions: got %v, want %v", names, want)
	}
	if exists(filepath.Join(dir, "actions")) || exists(filepath.Join(dir, "triggers")) {
		t.Error("the lua format wrote the Auth0 layout")
	}
	report, err := os.ReadFile(filepath.Join(dir, "MIGRATION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(report), "Auth0 action (JavaScript)") {
		t.Errorf("the Lua format's report speaks of JavaScript actions:\n%s", report)
	}
}

// TestWrite_Both writes the Auth0 layout with the Lua actions in lua/.
func TestWrite_Both(t *testing.T) {
	ts := exampleTranslations(t)
	dir := t.TempDir()
	if err := Write(dir, FormatBoth, ts); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"actions/10-narrow-to-requested.json", "actions/10-narrow-to-requested/code.js",
		"triggers/triggers.json", "lua/10-narrow-to-requested.lua", "MIGRATION.md",
	} {
		if !exists(filepath.Join(dir, path)) {
			t.Errorf("%s: missing", path)
		}
	}
	if err := Write(dir, "yaml", ts); err == nil || !strings.Contains(err.Error(), `unknown format "yaml"`) {
		t.Errorf("Write yaml: got %v, want an unknown format error", err)
	}
}

// TestReport_Order: Auth0 advises moving the last rule first, since
// active rules run before actions.
func TestReport_Order(t *testing.T) {
	report := string(Report(FormatAuth0, exampleTranslations(t)))
	want := "1. `30-deny-suspended.lua`: action `30-deny-suspended`\n" +
		"2. `20-tenant-claim.lua`: action `20-tenant-claim`\n" +
		"3. `10-narrow-to-requested.lua`: action `10-narrow-to-requested`\n"
	if !strings.Contains(report, want) {
		t.Errorf("MIGRATION.md has no\n%s\nin\n%s", want, report)
	}
	for _, want := range []string{
		"| `20-tenant-claim.lua` | translated fully |",
		"Every rule translated fully.",
		"- `20-tenant-claim`: `CLAIM_NAMESPACE`",
		"`api.access.deny('invalid_request', msg)`",
		"None: every construct has a faithful translation.",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("MIGRATION.md has no %q:\n%s", want, report)
		}
	}
}
