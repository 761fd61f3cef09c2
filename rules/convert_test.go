package rules

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// newLua returns a bare Lua state closed at the end of the test.
func newLua(t *testing.T) *lua.LState {
	t.Helper()
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	t.Cleanup(l.Close)
	return l
}

// luaValue evaluates the Lua expression src on l.
func luaValue(t *testing.T, l *lua.LState, src string) lua.LValue {
	t.Helper()
	if err := l.DoString("return " + src); err != nil {
		t.Fatalf("eval %q: %v", src, err)
	}
	v := l.Get(-1)
	l.Pop(1)
	return v
}

func TestToLua_RoundTrip(t *testing.T) {
	// Claims and metadata go into Lua and come back out unchanged in shape:
	// whole numbers as int64, fractions as float64.
	l := newLua(t)
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"bool", true, true},
		{"string", "héllo", "héllo"},
		{"int", 42, int64(42)},
		{"int64", int64(-7), int64(-7)},
		{"whole float", 3.0, int64(3)},
		{"fraction", 1.5, 1.5},
		{"large whole float", 1e20, 1e20},
		{"2^53", float64(1 << 53), int64(1 << 53)},
		{"json.Number whole", json.Number("42"), int64(42)},
		{"json.Number fraction", json.Number("-0.25"), -0.25},
		{"json.Number exponent", json.Number("1e3"), int64(1000)},
		{"strings", []string{"openid", "email"}, []any{"openid", "email"}},
		{"string map", map[string]string{"a": "b"}, map[string]any{"a": "b"}},
		{"empty map", map[string]any{}, map[string]any{}},
		// Lua cannot tell an empty array from an empty object.
		{"empty array", []any{}, map[string]any{}},
		{"nested", map[string]any{
			"a": 1,
			"b": []any{"x", true, 2.5, map[string]any{"c": []any{int64(1), 2}}},
			"d": map[string]any{"e": map[string]any{"f": "g"}},
		}, map[string]any{
			"a": int64(1),
			"b": []any{"x", true, 2.5, map[string]any{"c": []any{int64(1), int64(2)}}},
			"d": map[string]any{"e": map[string]any{"f": "g"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToGo(ToLua(l, tc.in))
			if err != nil {
				t.Fatalf("ToGo: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestToLua_Values(t *testing.T) {
	// Each JSON-shaped Go value becomes the Lua value a rule expects.
	l := newLua(t)
	for _, tc := range []struct {
		name string
		in   any
		want lua.LValue
	}{
		{"nil", nil, lua.LNil},
		{"false", false, lua.LFalse},
		{"string", "s", lua.LString("s")},
		{"int", 3, lua.LNumber(3)},
		{"float", 0.5, lua.LNumber(0.5)},
		{"json.Number", json.Number("12"), lua.LNumber(12)},
		{"unsupported", struct{}{}, lua.LNil},
		{"unsupported slice", []int{1}, lua.LNil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ToLua(l, tc.in); got != tc.want {
				t.Fatalf("got %v (%T), want %v (%T)", got, got, tc.want, tc.want)
			}
		})
	}

	t.Run("array", func(t *testing.T) {
		tbl, ok := ToLua(l, []any{"a", 2}).(*lua.LTable)
		if !ok {
			t.Fatalf("got %T, want *lua.LTable", tbl)
		}
		got := []lua.LValue{lua.LNumber(tbl.Len()), tbl.RawGetInt(1), tbl.RawGetInt(2)}
		want := []lua.LValue{lua.LNumber(2), lua.LString("a"), lua.LNumber(2)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestToGo_Tables(t *testing.T) {
	// A table keyed 1..n is an array; any other table is an object whose
	// number keys are written as JSON keys.
	l := newLua(t)
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`{1, 2, 3}`, []any{int64(1), int64(2), int64(3)}},
		{`{"a", {"b"}}`, []any{"a", []any{"b"}}},
		{`{[1] = "a", [2] = "b"}`, []any{"a", "b"}},
		{`{a = 1, b = "x", c = false}`, map[string]any{"a": int64(1), "b": "x", "c": false}},
		{`{}`, map[string]any{}},
		{`{1, 2, x = 3}`, map[string]any{"1": int64(1), "2": int64(2), "x": int64(3)}},
		{`{1, nil, 3}`, map[string]any{"1": int64(1), "3": int64(3)}},
		{`{[2] = "b"}`, map[string]any{"2": "b"}},
		{`{[1.5] = "a", [-1] = "b"}`, map[string]any{"1.5": "a", "-1": "b"}},
		{`{x = {y = {z = 0.5}}}`, map[string]any{"x": map[string]any{"y": map[string]any{"z": 0.5}}}},
		{`2^53`, int64(1 << 53)},
		{`2^53 + 2`, float64(1<<53 + 2)},
		{`-0.5`, -0.5},
		{`"s"`, "s"},
		{`nil`, nil},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := ToGo(luaValue(t, l, tc.src))
			if err != nil {
				t.Fatalf("ToGo: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// nested returns n tables, each the only element of the one outside it.
func nested(l *lua.LState, n int) lua.LValue {
	var v lua.LValue = lua.LString("leaf")
	for range n {
		t := l.NewTable()
		t.Append(v)
		v = t
	}
	return v
}

func TestToGo_NotJSON(t *testing.T) {
	// A value with no JSON form is refused with ErrNotJSON, never encoded
	// as something else, and never loops.
	l := newLua(t)
	for _, tc := range []struct {
		name string
		v    func() lua.LValue
	}{
		{"function", func() lua.LValue { return luaValue(t, l, `function() end`) }},
		{"go function", func() lua.LValue { return l.NewFunction(func(*lua.LState) int { return 0 }) }},
		{"function in table", func() lua.LValue { return luaValue(t, l, `{f = function() end}`) }},
		{"NaN", func() lua.LValue { return luaValue(t, l, `0/0`) }},
		{"NaN in array", func() lua.LValue { return luaValue(t, l, `{1, 0/0}`) }},
		{"infinity", func() lua.LValue { return luaValue(t, l, `1/0`) }},
		{"minus infinity", func() lua.LValue { return lua.LNumber(math.Inf(-1)) }},
		{"too deep", func() lua.LValue { return nested(l, 33) }},
		{"contains itself", func() lua.LValue {
			if err := l.DoString(`local t = {} t.self = t return t`); err != nil {
				t.Fatal(err)
			}
			v := l.Get(-1)
			l.Pop(1)
			return v
		}},
		{"array contains itself", func() lua.LValue {
			tbl := l.NewTable()
			tbl.Append(tbl)
			return tbl
		}},
		{"boolean key", func() lua.LValue { return luaValue(t, l, `{[true] = 1}`) }},
		{"boolean key beside array", func() lua.LValue { return luaValue(t, l, `{1, 2, [false] = 3}`) }},
		{"table key", func() lua.LValue { return luaValue(t, l, `{[{}] = 1}`) }},
		{"userdata", func() lua.LValue { return l.NewUserData() }},
		{"thread", func() lua.LValue { th, _ := l.NewThread(); return th }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToGo(tc.v())
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("got %v, %v, want ErrNotJSON", got, err)
			}
		})
	}

	t.Run("depth limit", func(t *testing.T) {
		// Nesting up to 32 tables is fine; the 33rd is refused.
		if _, err := ToGo(nested(l, 32)); err != nil {
			t.Fatalf("32 deep: got %v, want nil", err)
		}
		if _, err := ToGo(nested(l, 33)); !errors.Is(err, ErrNotJSON) {
			t.Fatalf("33 deep: got %v, want ErrNotJSON", err)
		}
	})
}

func TestStrings(t *testing.T) {
	// A rule may set a scope as an array of strings or as one string of
	// space-separated words, as Auth0 accepts both.
	l := newLua(t)
	for _, tc := range []struct {
		src     string
		want    []string
		wantErr bool
	}{
		{`{"openid", "email"}`, []string{"openid", "email"}, false},
		{`"openid  email profile"`, []string{"openid", "email", "profile"}, false},
		{`" "`, []string{}, false},
		{`{}`, []string{}, false},
		{`nil`, nil, false},
		{`{"a", nil, "c"}`, nil, true},
		{`{"a", 1}`, nil, true},
		{`{"a", {"b"}}`, nil, true},
		{`{"a", x = "b"}`, nil, true},
		{`{x = "b"}`, nil, true},
		{`{[2] = "b"}`, nil, true},
		{`42`, nil, true},
		{`true`, nil, true},
		{`function() end`, nil, true},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := Strings(luaValue(t, l, tc.src))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (!reflect.DeepEqual(got, tc.want) || (got == nil) != (tc.want == nil)) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestJSONModule(t *testing.T) {
	// Rules build and parse JSON with the json module; what json.encode
	// writes must decode in Go to the same structure.
	e := NewEngine(Options{})

	t.Run("encode", func(t *testing.T) {
		for _, tc := range []struct {
			src  string
			want any
		}{
			{`json.encode({a = 1, b = {1, 2}})`, map[string]any{"a": 1.0, "b": []any{1.0, 2.0}}},
			{`json.encode({s = "x\"y", f = 0.5, t = true, e = {}})`, map[string]any{"s": `x"y`, "f": 0.5, "t": true, "e": map[string]any{}}},
			{`json.encode("plain")`, "plain"},
			{`json.encode(nil)`, nil},
			{`json.encode({{}, {"n"}})`, []any{map[string]any{}, []any{"n"}}},
		} {
			t.Run(tc.src, func(t *testing.T) {
				got := mustEval(t, e, `return `+tc.src)
				s, ok := got.(string)
				if !ok {
					t.Fatalf("got %T, want string", got)
				}
				var decoded any
				if err := json.Unmarshal([]byte(s), &decoded); err != nil {
					t.Fatalf("json.Unmarshal(%q): %v", s, err)
				}
				if !reflect.DeepEqual(decoded, tc.want) {
					t.Fatalf("got %#v, want %#v", decoded, tc.want)
				}
			})
		}
	})

	t.Run("decode", func(t *testing.T) {
		for _, tc := range []struct {
			src  string
			want any
		}{
			{`local v = json.decode('{"x":[1,2]}') return {#v.x, v.x[1] + v.x[2]}`, []any{int64(2), int64(3)}},
			{`local v = json.decode('{"a":{"b":"c"},"n":1.5,"t":true}') return {v.a.b, v.n, v.t}`, []any{"c", 1.5, true}},
			{`return json.decode('"s\\u00e9"')`, "sé"},
			{`return json.decode('null') == nil`, true},
			{`return json.decode(json.encode({k = {1, "two"}})).k[2]`, "two"},
			{`return json.decode('12345678901')`, int64(12345678901)},
		} {
			t.Run(tc.src, func(t *testing.T) {
				got := mustEval(t, e, tc.src)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %#v, want %#v", got, tc.want)
				}
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			src  string
			want string
		}{
			{`json.decode("{bad")`, "json.decode"},
			{`json.decode("")`, "json.decode"},
			{`json.decode('{"a":1} trailing')`, "data after the JSON value"},
			{`json.decode("[1] [2]")`, "data after the JSON value"},
			{`json.decode({})`, "string expected"},
			{`json.encode(function() end)`, "json.encode"},
			{`json.encode({0/0})`, "json.encode"},
			{`local t = {} t.t = t json.encode(t)`, "json.encode"},
			{`json.encode({[true] = 1})`, "json.encode"},
		} {
			t.Run(tc.src, func(t *testing.T) {
				_, err := eval(t, e, tc.src)
				if err == nil {
					t.Fatalf("got nil error, want an error")
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %q, want it to contain %q", err.Error(), tc.want)
				}
			})
		}
	})

	t.Run("error caught by pcall", func(t *testing.T) {
		got := mustEval(t, e, `local ok, err = pcall(json.decode, "{bad") return {ok, type(err)}`)
		if want := []any{false, "string"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestToGo_SharedTables(t *testing.T) {
	// A table that holds the same table twice at every level is a tree
	// far larger than its memory: the conversion refuses it instead of
	// walking it.
	e := NewEngine(Options{})
	_, err := eval(t, e, `local t = {} for i = 1, 25 do t = {a = t, b = t} end return json.encode(t)`)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("got %v, want a refusal for too many values", err)
	}
}
