package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// triggerID is the Auth0 trigger of Credentials Exchange Actions.
const triggerID = "credentials-exchange"

// deployAction is actions/<name>.json in the Auth0 Deploy CLI's directory
// format.
type deployAction struct {
	Name              string          `json:"name"`
	Code              string          `json:"code"`
	Runtime           string          `json:"runtime"`
	Dependencies      []deployPackage `json:"dependencies"`
	Secrets           []deploySecret  `json:"secrets"`
	SupportedTriggers []deployTrigger `json:"supported_triggers"`
	Deployed          bool            `json:"deployed"`
}

type deployPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type deploySecret struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type deployTrigger struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// deployBinding is one entry of triggers/triggers.json.
type deployBinding struct {
	ActionName  string `json:"action_name"`
	DisplayName string `json:"display_name"`
}

// Write writes translations, given in the order the rules run, to dir in
// format, with MIGRATION.md beside them:
//
//   - FormatAuth0: the Auth0 Deploy CLI's directory layout,
//     actions/<name>.json, actions/<name>/code.js and
//     triggers/triggers.json binding the actions in the rules' order;
//   - FormatLua: <name>.lua for each rule, a directory rulesgate serve
//     --actions reads;
//   - FormatBoth: the Deploy CLI layout, with the Lua actions in lua/.
//
// Files of the same names are replaced; others are left alone.
func Write(dir, format string, ts []*Translation) error {
	var err error
	switch format {
	case FormatAuth0:
		err = writeDeploy(dir, ts)
	case FormatLua:
		err = writeLua(dir, ts)
	case FormatBoth:
		if err = writeDeploy(dir, ts); err == nil {
			err = writeLua(filepath.Join(dir, "lua"), ts)
		}
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err == nil {
		err = writeFile(filepath.Join(dir, "MIGRATION.md"), Report(format, ts))
	}
	if err != nil {
		return fmt.Errorf("write actions: %w", err)
	}
	return nil
}

// writeDeploy writes the Auth0 Deploy CLI layout.
func writeDeploy(dir string, ts []*Translation) error {
	bindings := make([]deployBinding, 0, len(ts))
	for _, t := range ts {
		action := deployAction{
			Name:              t.Name,
			Code:              "./actions/" + t.Name + "/code.js",
			Runtime:           "node22",
			Dependencies:      []deployPackage{},
			Secrets:           make([]deploySecret, 0, len(t.Secrets)),
			SupportedTriggers: []deployTrigger{{ID: triggerID, Version: "v2"}},
			Deployed:          true,
		}
		for _, s := range t.Secrets {
			action.Secrets = append(action.Secrets, deploySecret{Name: s})
		}
		if err := writeJSON(filepath.Join(dir, "actions", t.Name+".json"), action); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, "actions", t.Name, "code.js"), []byte(t.JS)); err != nil {
			return err
		}
		bindings = append(bindings, deployBinding{ActionName: t.Name, DisplayName: t.Name})
	}
	triggers := map[string][]deployBinding{triggerID: bindings}
	return writeJSON(filepath.Join(dir, "triggers", "triggers.json"), triggers)
}

// writeLua writes one Lua action a rule.
func writeLua(dir string, ts []*Translation) error {
	for _, t := range ts {
		if err := writeFile(filepath.Join(dir, t.Name+".lua"), []byte(t.Lua)); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(data, '\n'))
}

// writeFile writes data to path, creating its directory.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
