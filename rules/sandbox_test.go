package rules

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestSandbox_RemovedGlobals(t *testing.T) {
	// Nothing a program can reach may touch files, the process, other
	// programs' code or the real globals.
	e := NewEngine(Options{})
	for _, name := range []string{
		"os", "io", "debug", "package", "require", "dofile", "loadfile",
		"load", "loadstring", "collectgarbage", "getfenv", "setfenv",
		"module", "newproxy", "coroutine", "channel", "_printregs",
		"_GOPHER_LUA_VERSION",
	} {
		t.Run(name, func(t *testing.T) {
			got := mustEval(t, e, `return {type(`+name+`), type(_G.`+name+`)}`)
			if want := []any{"nil", "nil"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("type(%s), type(_G.%s): got %v, want %v", name, name, got, want)
			}
		})
	}
}

func TestSandbox_AvailableGlobals(t *testing.T) {
	// Rules written for plain Lua 5.1 rely on these working as usual.
	e := NewEngine(Options{})
	for _, tc := range []struct {
		name string
		src  string
		want any
	}{
		{"string", `return string.upper("ab") .. string.format("%d-%s", 7, "x") .. ("c"):rep(2)`, "AB7-xcc"},
		{"string.find", `return string.find("hello", "l+")`, int64(3)},
		{"table", `local t = {3, 1, 2} table.sort(t) table.insert(t, 4) return table.concat(t, ",")`, "1,2,3,4"},
		{"math", `return math.floor(2.5) + math.max(1, 4) + math.abs(-1)`, int64(7)},
		{"json", `return json.encode({1, "a"})`, `[1,"a"]`},
		{"pairs", `local n = 0 for k, v in pairs({a = 1, b = 2}) do n = n + v end return n`, int64(3)},
		{"ipairs", `local s = "" for i, v in ipairs({"a", "b", "c"}) do s = s .. i .. v end return s`, "1a2b3c"},
		{"pcall", `return {pcall(error, "x", 0)}`, []any{false, "x"}},
		{"pcall ok", `return {pcall(function(a) return a * 2 end, 21)}`, []any{true, int64(42)}},
		{"xpcall", `return {xpcall(function() error("x", 0) end, function(m) return "handled " .. m end)}`, []any{false, "handled x"}},
		{"error table", `local ok, e = pcall(function() error({code = 1}) end) return e.code`, int64(1)},
		{"tostring", `return tostring(12) .. tostring(nil) .. tostring(true)`, "12niltrue"},
		{"tonumber", `return tonumber("0x10") + tonumber("1.5") + tonumber("z", 36)`, 52.5},
		{"tonumber bad", `return tonumber("abc") == nil`, true},
		{"type", `return type({}) .. type("") .. type(1) .. type(print)`, "tablestringnumberfunction"},
		{"select", `return {select("#", 1, nil, 3), select(2, "a", "b")}`, []any{int64(3), "b"}},
		{"unpack", `local a, b, c = unpack({1, 2, 3}) return a + b + c`, int64(6)},
		{"setmetatable", `local t = setmetatable({}, {__index = function(_, k) return k .. "!" end}) return t.hi`, "hi!"},
		{"getmetatable", `local mt = {} return getmetatable(setmetatable({}, mt)) == mt`, true},
		{"getmetatable guard", `return getmetatable(setmetatable({}, {__metatable = "locked"}))`, "locked"},
		{"getmetatable none", `return getmetatable({}) == nil`, true},
		{"rawget", `local t = setmetatable({}, {__index = function() return 1 end}) return {rawget(t, "x") == nil, t.x}`, []any{true, int64(1)}},
		{"rawset", `local t = setmetatable({}, {__newindex = function() error("no") end}) return {rawset(t, "x", 2) == t, t.x}`, []any{true, int64(2)}},
		{"rawequal", `local a = {} return {rawequal(a, a), rawequal(a, {}), rawequal("s", "s")}`, []any{true, false, true}},
		{"next", `return {next({}) == nil, (next({5}))}`, []any{true, int64(1)}},
		{"assert", `return assert(7, "msg")`, int64(7)},
		{"assert fails", `local ok, e = pcall(assert, false, "nope") return {ok, e:find("nope") ~= nil}`, []any{false, true}},
		{"print", `print("hello", 1, nil) return true`, true},
		{"_VERSION", `return _VERSION`, "Lua 5.1"},
		{"_G is the env", `_G.x = 1 y = 2 return {x, _G.y, _G._G == _G}`, []any{int64(1), int64(2), true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eval(t, e, tc.src)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestSandbox_ReadOnlyModules(t *testing.T) {
	// No run may change a module the next run on the same state uses.
	e := NewEngine(Options{})
	reused := 0
	for _, tc := range []struct {
		src     string
		wantMsg string
	}{
		{`string.upper = nil`, "read-only"},
		{`string.upper = function() return "pwned" end`, "read-only"},
		{`string.extra = 1`, "read-only"},
		{`rawset(string, "upper", nil)`, "read-only"},
		{`rawset(string, "x", 1)`, "read-only"},
		{`setmetatable(string, {})`, "protected"},
		{`setmetatable(string, nil)`, "protected"},
		{`table.insert = nil`, "read-only"},
		{`rawset(table, "insert", print)`, "read-only"},
		{`math.pi = 3`, "read-only"},
		{`rawset(math, "pi", 3)`, "read-only"},
		{`json.encode = nil`, "read-only"},
		{`setmetatable(json, {})`, "protected"},
		{`setmetatable(_G, nil)`, "protected"},
		{`setmetatable("", {__index = {upper = print}})`, "table expected"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			// The attempt is caught, so the run succeeds and its state goes
			// back to the pool for the next run.
			got, s, err := evalOn(context.Background(), t, e,
				`local ok, err = pcall(function() `+tc.src+` end) return {ok, tostring(err)}`)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			res, _ := got.([]any)
			if len(res) != 2 || res[0] != false || !strings.Contains(res[1].(string), tc.wantMsg) {
				t.Fatalf("got %v, want false and an error containing %q", got, tc.wantMsg)
			}

			got, next, err := evalOn(context.Background(), t, e, `return {
				string.upper("a"), ("b"):upper(), type(string.extra), type(string.x),
				type(table.insert), math.pi > 3.14, json.encode({}), getmetatable(_G),
			}`)
			if err != nil {
				t.Fatalf("next run: %v", err)
			}
			want := []any{"A", "B", "nil", "nil", "function", true, "{}", false}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("next run: got %v, want %v", got, want)
			}
			if next == s {
				reused++
			}
		})
	}
	if reused == 0 {
		t.Fatalf("got no next run on the attacked state, want some: the test did not exercise the pool")
	}

	t.Run("caught in the same run", func(t *testing.T) {
		got := mustEval(t, e, `
			local ok = pcall(function() string.upper = nil end)
			return {ok, string.upper("a")}`)
		if want := []any{false, "A"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestSandbox_HiddenMetatables(t *testing.T) {
	// getmetatable must not hand out the string library, the sandbox's
	// globals or the modules behind their read-only fronts.
	e := NewEngine(Options{})
	for _, src := range []string{
		`getmetatable("")`,
		`getmetatable("abc")`,
		`getmetatable(_G)`,
		`getmetatable(string)`,
		`getmetatable(table)`,
		`getmetatable(math)`,
		`getmetatable(json)`,
	} {
		t.Run(src, func(t *testing.T) {
			got := mustEval(t, e, `return `+src)
			if got != false {
				t.Fatalf("got %v, want %v", got, false)
			}
		})
	}

	t.Run("modules are fronts", func(t *testing.T) {
		// A module is a front that holds nothing itself: next and pairs see
		// its functions, rawget does not reach them.
		got := mustEval(t, e, `return {next(string) ~= nil, rawget(string, "upper") == nil, rawget(_G, "string") == nil}`)
		if want := []any{true, true, true}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestSandbox_BoundedStrings(t *testing.T) {
	// string.rep, string.gsub and table.concat must refuse to build a
	// string longer than Limits.MaxStringSize, however small their inputs.
	e := NewEngine(Options{Limits: Limits{MaxStringSize: 1024}})
	for _, tc := range []struct {
		name    string
		src     string
		want    any
		wantErr string
	}{
		{"rep huge", `return string.rep("x", 2^30)`, nil, "string.rep"},
		{"rep huge method", `return ("x"):rep(2^30)`, nil, "string.rep"},
		{"rep long input", `return string.rep(string.rep("ab", 300), 2)`, nil, "string.rep"},
		{"rep one past limit", `return string.rep("x", 1025)`, nil, "string.rep"},
		{"rep at limit", `return #string.rep("x", 1024)`, int64(1024), ""},
		{"rep small", `return string.rep("ab", 10)`, "abababababababababab", ""},
		{"rep zero", `return string.rep("ab", 0)`, "", ""},
		{"rep negative", `return string.rep("ab", -3)`, "", ""},
		{"rep empty", `return string.rep("", 2^30)`, "", ""},

		{"concat over limit", `local t = {} for i = 1, 100 do t[i] = string.rep("x", 20) end return table.concat(t)`, nil, "table.concat"},
		{"concat separator over limit", `local t = {} for i = 1, 500 do t[i] = "a" end return table.concat(t, ",,")`, nil, "table.concat"},
		{"concat numbers over limit", `local t = {} for i = 1, 300 do t[i] = 1000 + i end return table.concat(t)`, nil, "table.concat"},
		{"concat self", `local t = {string.rep("x", 1000)} t[2] = t[1] return table.concat(t)`, nil, "table.concat"},
		{"concat under limit", `local t = {} for i = 1, 500 do t[i] = "a" end return #table.concat(t, ",")`, int64(999), ""},
		{"concat small", `return table.concat({"a", "b", 3}, "-")`, "a-b-3", ""},
		{"concat range", `return table.concat({"a", "b", "c"}, "", 2, 3)`, "bc", ""},
		{"concat empty", `return table.concat({})`, "", ""},

		{"gsub over limit", `return string.gsub(string.rep("x", 200), "x", "yyyyyyyyyy")`, nil, "string.gsub"},
		{"gsub over limit method", `return (string.rep("x", 200)):gsub("x", "yyyyyyyyyy")`, nil, "string.gsub"},
		{"gsub whole match repeated", `return string.gsub(string.rep("x", 300), ".+", "%0%0%0%0")`, nil, "string.gsub"},
		{"gsub empty matches", `return string.gsub(string.rep("x", 600), "", "--")`, nil, "string.gsub"},
		{"gsub small", `return (string.gsub("hello world", "o", "0"))`, "hell0 w0rld", ""},
		{"gsub captures", `return (string.gsub("hello", "(l)", "%1%1"))`, "hellllo", ""},
		{"gsub count", `return {string.gsub("a,b,c", ",", ";", 1)}`, []any{"a;b,c", int64(1)}, ""},
		{"gsub function", `return (string.gsub("abc", "%w", function(c) return c:upper() end))`, "ABC", ""},
		{"gsub table", `return (string.gsub("$a $b", "%$(%w)", {a = "1", b = "2"}))`, "1 2", ""},
		{"gsub table over limit", `return #string.gsub(string.rep("x", 1000), "x", {x = string.rep("y", 1000)})`, nil, "string.gsub"},
		{"gsub function over limit", `return #string.gsub(string.rep("x", 1000), "x", function() return string.rep("y", 1000) end)`, nil, "string.gsub"},
		{"gsub function keeps nil", `return (string.gsub("abc", "%w", function(c) if c == "b" then return nil end return "." end))`, ".b.", ""},
		{"rep count beyond int", `return ("x"):rep(1e300)`, nil, "string.rep"},
		{"concat exactly the limit", `local t = {} for i = 1, 342 do t[i] = "a" end return #table.concat(t, "bb")`, int64(1024), ""},
		{"concat huge range", `return table.concat({}, "", -2^63)`, nil, "table.concat"},
		{"format huge width", `return string.format("%2000d", 1)`, nil, "string.format"},
		{"format many strings", `local s = string.rep("x", 600) return string.format("%s%s", s, s)`, nil, "string.format"},
		{"format literal numbers", `return string.format("%s has 2000000 items, %5.2f%%", "a", 1.5)`, "a has 2000000 items,  1.50%", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eval(t, e, tc.src)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("got %.40v, want an error", got)
				}
				for _, want := range []string{tc.wantErr, "1024"} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("got %q, want it to contain %q", err.Error(), want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("default limit", func(t *testing.T) {
		// The zero Limits still bound string.rep, at 1 MiB.
		e := NewEngine(Options{})
		if _, err := eval(t, e, `return string.rep("x", 2^30)`); err == nil || !strings.Contains(err.Error(), "1048576") {
			t.Fatalf("got %v, want an error naming the limit 1048576", err)
		}
		if got := mustEval(t, e, `return #string.rep("x", 2^20)`); got != int64(1<<20) {
			t.Fatalf("got %v, want %v", got, 1<<20)
		}
	})
}

func TestSandbox_NoLeaksThroughLibraries(t *testing.T) {
	// What one run does to a library or a type's metatable must not reach
	// the next run on the same state.
	e := NewEngine(Options{})
	for _, tc := range []struct {
		attack, check string
		want          any
	}{
		{`pcall(function() string.__index.upper = function() return "pwned" end end)`, `return string.upper("a")`, "A"},
		{`pcall(function() rawset(("").__index, "lower", nil) end)`, `return ("A"):lower()`, "a"},
		{`pcall(setmetatable, 1, {__tostring = function() return "hacked" end})`, `return tostring(42)`, "42"},
		{`pcall(setmetatable, print, {__index = {x = 1}})`, `return (pcall(function() return print.x end))`, false},
	} {
		for range 5 { // enough runs for the pool to hand the same state back
			eval(t, e, tc.attack)
			if got := mustEval(t, e, tc.check); got != tc.want {
				t.Fatalf("after %s: got %v, want %v", tc.attack, got, tc.want)
			}
		}
	}
}

func TestState_Frozen(t *testing.T) {
	// A frozen value reads like a table, nested tables included, through
	// ., pairs, ipairs, next and #, and refuses every write.
	e := NewEngine(Options{Setup: func(s *State) {
		s.SetGlobal("settings", s.Frozen(map[string]any{
			"name": "acme", "list": []any{"a", "b", "c"}, "nested": map[string]any{"k": "v"},
		}))
	}})
	got := mustEval(t, e, `
		local keys = 0
		for _ in pairs(settings) do keys = keys + 1 end
		local joined = ""
		for _, v in ipairs(settings.list) do joined = joined .. v end
		return {settings.name, keys, #settings.list, joined, settings.nested.k, (next(settings.nested)), table.concat(settings.list, ","), select("#", unpack(settings.list)), json.encode(settings.nested)}`)
	if want := []any{"acme", int64(3), int64(3), "abc", "v", "k", "a,b,c", int64(3), `{"k":"v"}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("reads: got %v, want %v", got, want)
	}
	for _, write := range []string{
		`settings.name = "x"`, `settings.nested.k = "x"`, `rawset(settings, "name", "x")`,
		`rawset(settings.nested, "k", "x")`, `table.insert(settings.list, "d")`, `settings.list[1] = "z"`,
		`table.remove(settings.list)`, `table.sort(settings.list)`, `table.insert(string, "x")`,
	} {
		if _, err := eval(t, e, write); err == nil {
			t.Errorf("%s: got no error", write)
		}
	}
	if got := mustEval(t, e, `return settings.name .. settings.nested.k .. #settings.list`); got != "acmev3" {
		t.Errorf("after the writes: got %v, want acmev3", got)
	}
}

func TestSandbox_BoundedResults(t *testing.T) {
	// Calls that push one value per element refuse more than maxResults.
	e := NewEngine(Options{})
	for _, src := range []string{
		`return select("#", unpack({}, 1, 300000))`,
		`return select("#", string.byte(string.rep("x", 100000), 1, -1))`,
	} {
		if _, err := eval(t, e, src); err == nil || !strings.Contains(err.Error(), "too many results") {
			t.Errorf("%s: got %v, want too many results", src, err)
		}
	}
	if got := mustEval(t, e, `return select("#", unpack({1, 2, 3}))`); got != int64(3) {
		t.Errorf("unpack of three: got %v", got)
	}
}

func TestSandbox_DeepRecursion(t *testing.T) {
	// Unbounded recursion fails the run with a Lua error; it must not crash
	// the process, and the engine keeps working.
	e := NewEngine(Options{})
	for _, tc := range []struct {
		name string
		src  string
	}{
		{"plain", `local function f() return 1 + f() end f()`},
		{"method", `local t = {} function t:f() return 1 + self:f() end t:f()`},
		{"metamethod", `local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x`},
		{"in returned function", `local function f(n) return n + f(n + 1) end return function() return f(1) end`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, "deep.lua", tc.src)
			err := e.Run(context.Background(), func(s *State) error {
				fn, err := s.Load(p, s.NewEnv())
				if err == nil && fn.Type() == lua.LTFunction {
					err = s.Call(p.Name, fn)
				}
				return err
			})
			if err == nil {
				t.Fatalf("got nil error, want a stack overflow")
			}
			var runErr *Error
			if !errors.As(err, &runErr) || runErr.Program != "deep.lua" {
				t.Fatalf("got %T %v, want *Error for deep.lua", err, err)
			}
			if got := mustEval(t, e, `return "still up"`); got != "still up" {
				t.Fatalf("got %v, want %v", got, "still up")
			}
		})
	}

	t.Run("caught by pcall", func(t *testing.T) {
		got := mustEval(t, e, `local function f() return 1 + f() end return (pcall(f))`)
		if got != false {
			t.Fatalf("got %v, want %v", got, false)
		}
	})

	t.Run("small call stack", func(t *testing.T) {
		// Limits.CallStackSize bounds the depth a program reaches.
		e := NewEngine(Options{Limits: Limits{CallStackSize: 50}})
		src := `local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end return f(%d)`
		if got := mustEval(t, e, strings.Replace(src, "%d", "10", 1)); got != int64(10) {
			t.Fatalf("depth 10: got %v, want %v", got, 10)
		}
		if _, err := eval(t, e, strings.Replace(src, "%d", "100", 1)); err == nil {
			t.Fatalf("depth 100 with CallStackSize 50: got nil error, want a stack overflow")
		}
	})
}
