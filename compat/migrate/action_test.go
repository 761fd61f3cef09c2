package migrate

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// TestTranslate_LuaActionDifferential runs every Lua action the rules
// translate to on rulesgate's own action runtime (compat's Actions, the
// shape `rulesgate serve --actions` runs), on the same cases as its rule:
// each must leave what its rule leaves.
func TestTranslate_LuaActionDifferential(t *testing.T) {
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
				if !tr.Complete(FormatLua) {
					t.Fatalf("the rule does not translate fully to Lua: %+v", tr.Issues)
				}
				cf := readCases(t, tr.Name)
				ruleOut := runRule(t, tr.File, src, cf)
				actionOut := runLuaAction(t, tr, cf)
				for i, c := range cf.Cases {
					if !reflect.DeepEqual(actionOut[i], ruleOut[i]) {
						t.Errorf("%s: Lua action gave %s, the rule %s\n%s", c.Name, toJSON(actionOut[i]), toJSON(ruleOut[i]), tr.Lua)
					}
				}
			})
		}
	}
}

// runLuaAction runs the Lua action on every case, through a compat
// pipeline whose only extension is the action.
func runLuaAction(t *testing.T, tr *Translation, cf *caseFile) []map[string]any {
	t.Helper()
	prog, err := rules.Compile(tr.Name+".lua", []byte(tr.Lua))
	if err != nil {
		t.Fatalf("compile the Lua action: %v\n%s", err, tr.Lua)
	}
	out := make([]map[string]any, len(cf.Cases))
	for i, c := range cf.Cases {
		p := compat.NewPipeline(compat.Config{
			Actions: []*rules.Program{prog}, Configuration: c.configuration(cf), Clients: cf.Clients,
			Logger: slog.New(slog.DiscardHandler),
		})
		res, err := p.Run(context.Background(), transaction(cf, c))
		out[i] = actionOutcome(t, c.Name, res, err)
	}
	return out
}

// actionOutcome is the canonical form of what an action pipeline gave,
// comparable with ruleOutcome's: a deny must be invalid_request, what the
// rule's UnauthorizedError becomes.
func actionOutcome(t *testing.T, name string, res *compat.Result, err error) map[string]any {
	t.Helper()
	var d *compat.Denial
	switch {
	case errors.As(err, &d):
		if d.Code != "invalid_request" {
			t.Errorf("%s: the action denied with %q, want invalid_request", name, d.Code)
		}
		return canonDeny(d.Code, d.Description)
	case err != nil:
		t.Logf("%s: %v", name, err)
		return map[string]any{"error": true}
	}
	return canonToken(res.Scopes, res.Claims)
}
