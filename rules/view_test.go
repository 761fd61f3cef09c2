package rules

import (
	"context"
	"reflect"
	"testing"
)

// TestState_View: a view reads and writes like the table it stands for,
// for the run it belongs to.
func TestState_View(t *testing.T) {
	e := NewEngine(Options{})
	body := map[string]any{"scope": "read:a write:a", "audience": "api", "n": 3, "obj": map[string]any{"k": "v"}}
	meta := map[string]string{"tenant": "acme", "plan": "gold"}
	p := mustCompile(t, "view.lua", `
		local keys = ""
		for k, v in pairs(body) do keys = keys .. k .. "," end
		local mkeys = ""
		for k in pairs(meta) do mkeys = mkeys .. k .. "," end
		body.obj.k = "changed"    -- a nested table keeps its changes
		body.added = "x"          -- writes stay in the view
		body.audience = nil
		rawset(meta, "plan", "silver")
		local n = 0
		for _ in ipairs(body) do n = n + 1 end
		return {
			scope = body.scope, n = body.n, missing = body.nope == nil,
			type = type(body), keys = keys, mkeys = mkeys,
			obj = body.obj.k, added = body.added, audience = body.audience == nil,
			plan = rawget(meta, "plan"), ipairs = n,
			json = json.encode(body),
		}`)
	var got any
	err := e.Run(context.Background(), func(s *State) error {
		env := s.NewEnv()
		env.RawSetString("body", s.View(body))
		env.RawSetString("meta", s.StringView(meta))
		v, err := s.Load(p, env)
		if err != nil {
			return err
		}
		got, err = ToGo(v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"scope": "read:a write:a", "n": int64(3), "missing": true, "type": "table",
		"keys": "audience,n,obj,scope,", "mkeys": "plan,tenant,", "obj": "changed",
		"added": "x", "audience": true, "plan": "silver", "ipairs": int64(0),
		"json": `{"added":"x","n":3,"obj":{"k":"changed"},"scope":"read:a write:a"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if body["audience"] != "api" || body["obj"].(map[string]any)["k"] != "v" || meta["plan"] != "gold" {
		t.Errorf("the Go maps changed: %v %v", body, meta)
	}
}

// TestState_ViewRefusesOtherKeys: a view has string keys only.
func TestState_ViewRefusesOtherKeys(t *testing.T) {
	e := NewEngine(Options{})
	p := mustCompile(t, "view.lua", `return function(v) v[1] = "x" end`)
	err := e.Run(context.Background(), func(s *State) error {
		fn, err := s.Load(p, s.NewEnv())
		if err != nil {
			return err
		}
		return s.Call(p.Name, fn, s.View(map[string]any{}))
	})
	if err == nil {
		t.Error("a number key was accepted")
	}
}
