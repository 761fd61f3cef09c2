package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/gateway/devissuer"
)

// TestRunMigrate_Examples translates the example rules end to end: the
// Auth0 Deploy CLI layout, a report that moves the last rule first, and
// JavaScript that Node.js accepts.
func TestRunMigrate_Examples(t *testing.T) {
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := runMigrate([]string{"--rules", "examples/rules", "--out", out}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	names := []string{"10-narrow-to-requested", "20-tenant-claim", "30-deny-suspended"}

	for _, name := range names {
		var action struct {
			Name              string `json:"name"`
			Code              string `json:"code"`
			Runtime           string `json:"runtime"`
			Dependencies      []any  `json:"dependencies"`
			Secrets           []struct{ Name, Value string }
			SupportedTriggers []struct{ ID, Version string } `json:"supported_triggers"`
			Deployed          bool                           `json:"deployed"`
		}
		readMigrateJSON(t, filepath.Join(out, "actions", name+".json"), &action)
		if action.Name != name || action.Code != "./actions/"+name+"/code.js" || action.Runtime != "node22" ||
			action.Dependencies == nil || !action.Deployed {
			t.Errorf("actions/%s.json: got %+v", name, action)
		}
		want := []struct{ ID, Version string }{{"credentials-exchange", "v2"}}
		if !reflect.DeepEqual(action.SupportedTriggers, want) {
			t.Errorf("%s supported_triggers: got %+v, want %+v", name, action.SupportedTriggers, want)
		}
		code := filepath.Join(out, strings.TrimPrefix(action.Code, "./"))
		nodeCheckFile(t, code)
		if !migrateFileExists(filepath.Join(out, "lua", name+".lua")) {
			t.Errorf("lua/%s.lua: missing", name)
		}
	}

	var triggers map[string][]map[string]string
	readMigrateJSON(t, filepath.Join(out, "triggers", "triggers.json"), &triggers)
	var bound []string
	for _, b := range triggers["credentials-exchange"] {
		if b["action_name"] != b["display_name"] {
			t.Errorf("binding %v: action and display names differ", b)
		}
		bound = append(bound, b["action_name"])
	}
	if !reflect.DeepEqual(bound, names) || len(triggers) != 1 {
		t.Errorf("triggers.json: got %v, want credentials-exchange bound to %v in order", triggers, names)
	}

	report, err := os.ReadFile(filepath.Join(out, "MIGRATION.md"))
	if err != nil {
		t.Fatal(err)
	}
	order := "1. `30-deny-suspended.lua`: action `30-deny-suspended`\n" +
		"2. `20-tenant-claim.lua`: action `20-tenant-claim`\n" +
		"3. `10-narrow-to-requested.lua`: action `10-narrow-to-requested`\n"
	if !strings.Contains(string(report), order) {
		t.Errorf("MIGRATION.md does not move the last rule first:\n%s", report)
	}
	if !strings.Contains(stdout.String(), "30-deny-suspended.lua: translated fully\n") {
		t.Errorf("stdout: got %q", stdout.String())
	}
}

// TestRunMigrate_LuaFormat writes the Lua actions straight into --out.
func TestRunMigrate_LuaFormat(t *testing.T) {
	out := t.TempDir()
	if err := runMigrate([]string{"--rules", "examples/rules", "--out", out, "--format", "lua"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	want := []string{"10-narrow-to-requested.lua", "20-tenant-claim.lua", "30-deny-suspended.lua", "MIGRATION.md"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files: got %v, want %v", got, want)
	}
}

// TestRunMigrate_CommandLineErrors: a bad command line is a usage error
// (exit code 2) that says why.
func TestRunMigrate_CommandLineErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no rules", []string{"--out", "x"}, "--rules is required"},
		{"no out", []string{"--rules", "examples/rules"}, "--out is required"},
		{"bad format", []string{"--rules", "examples/rules", "--out", "x", "--format", "yaml"}, `not "yaml"`},
		{"unknown flag", []string{"--rule", "x"}, "flag provided but not defined: -rule"},
		{"stray argument", []string{"--rules", "r", "--out", "x", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runMigrate(tt.args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Fatalf("runMigrate: got %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}

	var help bytes.Buffer
	if err := runMigrate([]string{"-h"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(help.String(), "rulesgate migrate --rules DIR") || !strings.Contains(help.String(), "-format") {
		t.Errorf("-h: got %v, %q", err, help.String())
	}
}

// TestRunMigrate_Failures: a rule that does not compile fails the command
// with its file and line, and nothing is written.
func TestRunMigrate_Failures(t *testing.T) {
	rulesDir, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(filepath.Join(rulesDir, "10-bad.lua"), []byte("return function(u, c, cb)\n  x = = 1\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runMigrate([]string{"--rules", rulesDir, "--out", out}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "10-bad.lua: line 2") {
		t.Errorf("runMigrate: got %v, want an error naming 10-bad.lua line 2", err)
	}
	if migrateFileExists(out) {
		t.Error("a failed migration wrote files")
	}

	empty := t.TempDir()
	if err := runMigrate([]string{"--rules", empty, "--out", out}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "no .lua rules") {
		t.Errorf("no rules: got %v", err)
	}
}

func readMigrateJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func migrateFileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// nodeCheck fails unless Node.js parses the file: node --check.
func nodeCheckFile(t *testing.T, path string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: checking the generated actions needs Node.js: %v", err)
	}
	if out, err := exec.Command(node, "--check", path).CombinedOutput(); err != nil {
		t.Errorf("node --check %s: %v\n%s", path, err, out)
	}
}

// TestMigrateThenShadow walks the README's migration: migrate the example
// rules to Lua actions, run them as shadow actions beside the live rules
// on traffic that takes every branch (narrowed scopes, a claim, a denied
// client), and find no difference, then the same with an action edited
// wrong, and find it.
func TestMigrateThenShadow(t *testing.T) {
	is, err := devissuer.New(map[string]devissuer.Client{
		"demo-m2m":      {Secret: "demo-secret", Grants: map[string][]string{"https://api.example.com": {"read:claims", "write:claims"}}},
		"suspended-m2m": {Secret: "susp-secret", Grants: map[string][]string{"https://api.example.com": {"read:claims"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(is.Handler())
	defer upstream.Close()

	shadow := t.TempDir()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"migrate", "--rules", "examples/rules", "--out", shadow, "--format", "lua"}, &out, &out); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, out.String())
	}

	serveShadow := func(t *testing.T) string {
		addr, admin := freeAddr(t), freeAddr(t)
		var stderr syncBuffer
		ctx, cancel := contextWithCancel(t)
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--upstream", upstream.URL, "--listen", addr, "--admin-listen", admin,
				"--rules", "examples/rules", "--shadow-actions", shadow,
				"--clients", "examples/clients.json", "--configuration", "examples/configuration.json"}, nil, &stderr)
		}()
		t.Cleanup(func() { cancel(); <-done })
		waitFor(t, &stderr, "gateway listening")

		for _, req := range []struct{ client, secret, scope string }{
			{"demo-m2m", "demo-secret", "read:claims"},
			{"demo-m2m", "demo-secret", ""},
			{"suspended-m2m", "susp-secret", "read:claims"},
		} {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {req.client},
				"client_secret": {req.secret}, "audience": {"https://api.example.com"}}
			if req.scope != "" {
				form.Set("scope", req.scope)
			}
			resp, err := http.PostForm("http://"+addr+"/oauth/token", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		// The shadow runs report in the background: wait for all three.
		for range 100 {
			m := scrape(t, "http://"+admin+"/metrics")
			if strings.Contains(m, `rulesgate_shadow_runs_total{result="match"} `) &&
				shadowRuns(m, "match")+shadowRuns(m, "mismatch") == 3 {
				return m
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the three shadow runs were not reported")
		return ""
	}

	t.Run("as migrated", func(t *testing.T) {
		m := serveShadow(t)
		if got := shadowRuns(m, "match"); got != 3 {
			t.Errorf("shadow runs that matched the rules: got %d, want 3\n%s", got, m)
		}
	})

	t.Run("edited wrong", func(t *testing.T) {
		path := filepath.Join(shadow, "10-narrow-to-requested.lua")
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wrong := strings.Replace(string(src), "api.transaction.setTargetScopes(scopes)",
			"api.transaction.setTargetScopes(scopes); api.transaction.addTargetScope(\"write:claims\")", 1)
		if wrong == string(src) {
			t.Fatalf("the migrated narrowing action has no setTargetScopes call to edit:\n%s", src)
		}
		if err := os.WriteFile(path, []byte(wrong), 0o600); err != nil {
			t.Fatal(err)
		}
		m := serveShadow(t)
		if got := shadowRuns(m, "mismatch"); got != 1 {
			t.Errorf("shadow runs that differed: got %d, want 1 (the narrowed request)\n%s", got, m)
		}
		if !strings.Contains(m, `rulesgate_shadow_mismatches_total{action="10-narrow-to-requested.lua",field="scopes"} 1`) {
			t.Errorf("the mismatch is not counted against the edited action:\n%s", m)
		}
	})
}

// scrape returns the text of a metrics page.
func scrape(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// shadowRuns reads rulesgate_shadow_runs_total for one result.
func shadowRuns(metrics, result string) int {
	prefix := `rulesgate_shadow_runs_total{result="` + result + `"} `
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}
