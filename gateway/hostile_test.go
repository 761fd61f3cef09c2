package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// The hostile suite runs rules written to hurt the gateway end to end: a
// real upstream, the token endpoint, the pipeline. Whatever such a rule
// does, the client gets 500 server_error and nothing of the Lua inside, the
// deadline wins, memory stays within a budget, and the next request on
// the same gateway is served as if nothing happened.

// hostileTimeout is the --rule-timeout of the suite: long enough for the
// probe rule under -race, short enough that dozens of timeouts stay within
// the suite's budget.
const hostileTimeout = 300 * time.Millisecond

// hostileHeapBudget bounds how far the heap may grow while one hostile
// request runs, and what it may keep once it is over.
const hostileHeapBudget = 200 << 20

// hostileOverrun is how long past the deadline a hostile request may take
// to be answered: the deadline is checked between Lua instructions, and a
// loaded machine (tests of other packages in parallel, -race) delays it.
const hostileOverrun = 2 * time.Second

// hostileRuleName is the file name of the hostile rule; the client must
// never read it.
const hostileRuleName = "10-hostile.lua"

// hostileConfiguration is the configuration global of the suite's rules.
var hostileConfiguration = map[string]any{"tier": "gold", "list": []any{"a", "b"}}

// hostileProbe is the Lua of the rule's normal path: it checks what a
// hostile run could have broken for the runs after it and writes what it
// found as a claim. hostileProbeWant is what a sound sandbox gives.
const hostileProbe = `
  local probe = {
    string.upper("a") .. ("b"):upper() .. string.rep("c", 2) .. string.format("%d", 7),
    type(os), type(io), type(debug), type(package), type(require), type(load),
    type(loadstring), type(dofile), type(loadfile), type(getfenv), type(setfenv),
    type(collectgarbage), type(newproxy), type(coroutine),
    tostring(getmetatable("")), tostring(getmetatable(configuration)),
    tostring(leaked), tostring(rawget(_G, "leaked")), tostring(global.probe),
    configuration.tier, table.concat(configuration.list, "+"),
    tostring(math.pi > 3.14), json.encode({1}), type(table.insert), type(UnauthorizedError),
  }
  context.accessToken["https://example.com/sandbox"] = table.concat(probe, ",")
`

const hostileProbeWant = "ABcc7,nil,nil,nil,nil,nil,nil,nil,nil,nil,nil,nil,nil,nil,nil," +
	"false,false,nil,nil,nil,gold,a+b,true,[1],function,function"

// hostileRule returns a rule that runs attack when the request carries
// hostile=1, and the probe otherwise.
func hostileRule(attack string) string {
	return `return function(user, context, callback)
  if context.request.body.hostile == "1" then
` + attack + `
  end
` + hostileProbe + `
  callback(nil, user, context)
end
`
}

// hostileCase is one attack.
type hostileCase struct {
	name   string
	attack string // Lua statements run inside the rule function
	// file makes attack the whole rule file: it runs when a state loads
	// the file, before any request-time code.
	file bool
	// unbounded names why the sandbox cannot bound this attack's memory or
	// time while it runs (see SECURITY.md); the suite then logs what it
	// measured instead of asserting it. What it keeps afterwards is still
	// asserted.
	unbounded string
}

// hostileCases are the attacks that must end in 500 server_error.
var hostileCases = []hostileCase{
	// Loops: the deadline stops every one of them.
	{name: "while true", attack: `while true do end`},
	{name: "repeat until false", attack: `repeat until false`},
	{name: "for with a huge bound", attack: `for i = 1, 2^53 do end`},
	{name: "for to math.huge", attack: `for i = 1, math.huge do end`},
	{name: "loop in __index", attack: `local t = setmetatable({}, {__index = function() while true do end end}) local _ = t.x`},
	{name: "loop in __tostring", attack: `local _ = tostring(setmetatable({}, {__tostring = function() while true do end end}))`},
	{name: "loop in a sort comparator", attack: `local t = {} for i = 1, 100 do t[i] = i end table.sort(t, function() while true do end end)`},
	{name: "loop in a gsub callback", attack: `string.gsub("aaa", "a", function() while true do end end)`},
	{name: "loop at file level", file: true, attack: `while true do end return function(user, context, callback) callback(nil, user, context) end`},

	// Recursion: the call stack limit or the deadline stops it.
	{name: "deep recursion", attack: `local function f(n) return f(n + 1) + 1 end f(1)`},
	{name: "vararg recursion", attack: `local function f(...) return 1 + f(1, ...) end f()`},
	{name: "recursion with wide frames", attack: `local function f(n) local t = {} for i = 1, 200 do t[i] = i end return 1 + f(unpack(t)) end f(1)`},
	{name: "recursion in __index", attack: `local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end local _ = t.x`},
	{name: "__index chain loop", attack: `local a, b = {}, {} setmetatable(a, {__index = b}) setmetatable(b, {__index = a}) local _ = a.x`},
	{name: "__newindex chain loop", attack: `local a, b = {}, {} setmetatable(a, {__newindex = b}) setmetatable(b, {__newindex = a}) a.x = 1`},
	{name: "recursion in __concat", attack: `local a = setmetatable({}, {__concat = function(a, b) return a .. b end}) local _ = a .. "x"`},
	{name: "recursion in __lt", attack: `local t = setmetatable({}, {__lt = function(a, b) return a < b end}) local _ = t < t`},
	{name: "recursion at file level", file: true, attack: `local function f() return 1 + f() end f() return function() end`},

	// String bombs: the string functions refuse results over 1 MiB.
	{name: "string.rep huge", attack: `local s = string.rep("x", 2^40)`},
	{name: "string.rep of a long string", attack: `local s = string.rep("x", 2^20) s = s:rep(2^20)`},
	{name: "string.rep count beyond int", attack: `local s = ("x"):rep(1e300)`},
	{name: "string.rep through a metatable", attack: `local s = setmetatable({}, {__index = string}).rep("x", 2^30)`},
	{name: "table.concat bomb", attack: `local t = {} for i = 1, 2^12 do t[i] = string.rep("x", 2^10) end local s = table.concat(t)`},
	{name: "table.concat separator bomb", attack: `local t = {} for i = 1, 2^12 do t[i] = "" end local s = table.concat(t, string.rep(",", 2^10))`},
	{name: "gsub bomb", attack: `local s = string.rep("x", 2^19) s = s:gsub("x", "%0%0%0")`},
	{name: "gsub function bomb", attack: `local s = string.rep("x", 2^10) s = s:gsub("x", function() return string.rep("y", 2^20) end)`},
	{name: "gsub table bomb", attack: `local s = string.rep("x", 2^10) s = s:gsub("x", {x = string.rep("y", 2^20)})`},
	{name: "format width bomb", attack: `local s = string.format("%099999999d", 1)`},
	{name: "format argument bomb", attack: `local s = string.rep("x", 2^20) s = string.format("%s%s", s, s)`},
	{name: "unpack bomb", attack: `local n = select("#", unpack({}, 1, 2^31))`},
	{name: "string.byte bomb", attack: `local n = select("#", string.byte(string.rep("x", 2^20), 1, -1))`},
	{name: "json.decode depth bomb", attack: `local v = json.decode(string.rep("[", 2^20))`},
	{name: "concatenation growing by a little", attack: `local s = "" for i = 1, 1e9 do s = s .. "x" end`},
	{name: "concatenation doubling", attack: `local s = "x" while true do s = s .. s end`,
		unbounded: "the .. operator is not bounded (TODO(sandbox) in rules/sandbox.go): one concatenation runs in Go past the deadline and builds a string as large as the last two"},
	{name: "concatenations kept in a table", attack: `local s = string.rep("x", 2^20) local t = {} for i = 1, 1e9 do t[i] = s .. i end`,
		unbounded: "the .. operator is not bounded and tables have no cap: without a heap guard (TestGateway_HostileHeapGuard), memory grows at the allocation rate until the deadline"},
	{name: "string.rep results kept in a table", attack: `local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 2^20) end`,
		unbounded: "each string.rep is bounded but tables have no cap: without a heap guard (TestGateway_HostileHeapGuard), memory grows at the allocation rate until the deadline"},

	// Huge tables: only the deadline stops them.
	{name: "array of 1e8 numbers", attack: `local t = {} for i = 1, 1e8 do t[i] = i end`},
	{name: "array of 1e8 tables", attack: `local t = {} for i = 1, 1e8 do t[#t + 1] = {} end`},
	{name: "hash of 1e8 keys", attack: `local t = {} for i = 1, 1e8 do t["k" .. i] = i end`},
	{name: "tables nested 1e8 deep", attack: `local t = {} for i = 1, 1e8 do t = {t} end`},

	// Metatable tricks on shared tables: refused, or trapped in a state
	// that is thrown away with the failed run.
	{name: "setmetatable on the string metatable", attack: `setmetatable(getmetatable(""), {})`},
	{name: "write through the string metatable", attack: `getmetatable("").__index.upper = nil`},
	{name: "write to the string library", attack: `string.upper = function() return "pwned" end`},
	{name: "setmetatable on a string", attack: `setmetatable("", {__index = {upper = print}})`},
	{name: "setmetatable on configuration", attack: `setmetatable(configuration, {})`},
	{name: "write to configuration", attack: `configuration.tier = "free"`},
	{name: "write to nested configuration", attack: `configuration.list[1] = "z"`},
	{name: "table.insert into configuration", attack: `table.insert(configuration.list, "z")`},
	{name: "table.sort of configuration", attack: `table.sort(configuration.list, function(a, b) return a > b end)`},
	{name: "write through configuration's metatable", attack: `getmetatable(configuration).__index = {}`},
	{name: "setmetatable on _G", attack: `setmetatable(_G, {__index = function() while true do end end})`},
	{name: "setmetatable on a number", attack: `setmetatable(1, {__tostring = function() return "pwned" end})`},
	{name: "setmetatable on a function", attack: `setmetatable(print, {__index = {x = 1}})`},
	{name: "setmetatable on a request view", attack: `setmetatable(context.request.body, {})`},
	{name: "trap on global's reads", attack: `setmetatable(global, {__index = function() while true do end end}) local _ = global.probe`},
	{name: "trap on global's writes", attack: `setmetatable(global, {__newindex = function() while true do end end}) global.x = 1`},
	{name: "__gc finalizer", attack: `setmetatable({}, {__gc = function() while true do end end}) error("boom")`},
	{name: "__call on itself", attack: `local t = setmetatable({}, {}) getmetatable(t).__call = t t()`},

	// What the sandbox leaves out.
	{name: "os", attack: `os.exit(1)`},
	{name: "os through _G", attack: `_G.os.execute("id")`},
	{name: "io", attack: `io.open("/etc/passwd")`},
	{name: "debug", attack: `debug.getregistry()`},
	{name: "package", attack: `package.loaded.os.exit(1)`},
	{name: "load", attack: `load("return 1")()`},
	{name: "loadstring", attack: `loadstring("return 1")()`},
	{name: "dofile", attack: `dofile("/etc/passwd")`},
	{name: "loadfile", attack: `loadfile("/etc/passwd")()`},
	{name: "require", attack: `require("os")`},
	{name: "module", attack: `module("x")`},
	{name: "getfenv", attack: `getfenv(0).os = 1`},
	{name: "setfenv", attack: `setfenv(1, {})`},
	{name: "collectgarbage", attack: `collectgarbage("collect")`},
	{name: "newproxy", attack: `newproxy(true)`},
	{name: "string.dump", attack: `local s = string.dump(function() end)`},
	{name: "coroutine.create", attack: `coroutine.create(function() end)`},
	{name: "coroutine.wrap", attack: `coroutine.wrap(function() while true do coroutine.yield() end end)()`},
	{name: "coroutine through _G", attack: `_G.coroutine.resume(_G.coroutine.create(print))`},
	{name: "gopher-lua channel", attack: `channel.make()`},
	{name: "real globals through a function environment", attack: `local env = getfenv(print) env.os.exit(1)`},
	{name: "reaching the module behind string", attack: `rawget(string, "upper")("x")`},
	{name: "rawset on configuration", attack: `rawset(configuration, "tier", "free")`},
	{name: "rawset on string", attack: `rawset(string, "upper", print)`},
	{name: "rawset on table", attack: `rawset(table, "insert", print)`},
	{name: "rawset on math", attack: `rawset(math, "pi", 3)`},
	{name: "rawset on json", attack: `rawset(json, "encode", print)`},
	{name: "rawset on nested configuration", attack: `rawset(configuration.list, 1, "z")`},
	{name: "rawget on protected tables", attack: `
    if rawget(configuration, "tier") == nil and rawget(string, "upper") == nil and rawget(math, "pi") == nil then
      error("refused")
    end
    callback(nil, user, context)
    return`},

	// pcall and errors: the deadline wins over pcall, and no error value's
	// metamethod runs outside the sandbox.
	{name: "pcall around an endless loop", attack: `pcall(function() while true do end end)`},
	{name: "pcall in an endless loop", attack: `while true do pcall(function() while true do end end) end`},
	{name: "pcall around recursion", attack: `local function f() pcall(f) f() end f()`},
	{name: "xpcall with an endless handler", attack: `xpcall(function() while true do end end, function() while true do end end)`},
	{name: "pcall swallowing the deadline, then calling back", attack: `
    local deadline = false
    while not deadline do
      deadline = not pcall(function() for i = 1, 1e6 do end end)
    end
    callback(nil, user, context)
    return`},
	{name: "error with a looping __tostring", attack: `error(setmetatable({}, {__tostring = function() while true do end end}))`},
	{name: "callback with a looping __tostring", attack: `callback(setmetatable({}, {__tostring = function() while true do end end})) return`},
	{name: "error with a looping __index", attack: `error(setmetatable({}, {__index = function() while true do end end}))`},
	{name: "error with a message that loops", attack: `error({message = setmetatable({}, {__tostring = function() while true do end end})})`},
	{name: "error naming the file", attack: `error("` + hostileRuleName + `:1: lua stack traceback")`},
	{name: "callback never called", attack: `return`},
	{name: "globals written before failing", attack: `
    leaked = "yes"
    rawset(_G, "leaked", "yes")
    global.probe = "poisoned"
    error("after writing")`},
}

// TestGateway_HostileRules: each hostile rule costs its request 500
// server_error with nothing of the Lua inside, within the deadline and the
// heap budget (or, for what the sandbox cannot bound, with what it cost
// logged), keeps nothing once over, and the next request on the same
// pipeline, on the state the attack used when it survived, is served
// with the sandbox intact.
func TestGateway_HostileRules(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.RuleTimeout = hostileTimeout })
	normal := hostilePipeline(t, hostileRule(""))
	goroutines := runtime.NumGoroutine()

	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			src := hostileRule(tc.attack)
			if tc.file {
				src = tc.attack
			}
			p := hostilePipeline(t, src)
			gw.SetPipeline(p, "")
			if !tc.file {
				// A state that served a request waits in the pool, so that
				// the attack runs on a state that served before it.
				hostileServed(t, gw)
			}

			m := hostileAttack(t, gw)
			if tc.unbounded == "" {
				m.checkBounds(t, hostileOverrun)
			} else {
				t.Logf("not bounded by the sandbox (%s): answered in %v, heap grew by up to %d MiB",
					tc.unbounded, m.elapsed.Round(time.Millisecond), m.peak>>20)
			}

			if tc.file {
				gw.SetPipeline(normal, "")
			}
			hostileServed(t, gw)
			if retained := hostileRetained(m.base); retained > hostileHeapBudget {
				t.Errorf("heap kept %d MiB after the attack, want at most %d MiB", retained>>20, hostileHeapBudget>>20)
			}
		})
	}

	// The process is healthy: ready, and no goroutine left behind.
	admin := httpTestServer(gw.AdminHandler())
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the attacks: got %d, want 200", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	hostileGoroutinesSettle(t, goroutines)
}

// TestGateway_HostileResults covers the work the gateway does in Go for a
// rule, in a library call or after the Lua returned: json.encode, print,
// the claims and scope guards. The deadline does not reach Go code, so
// that work must be bounded by size, as string.rep, string.gsub,
// string.format and table.concat are (1 MiB). Each case is kept small
// and measured exactly (bytes allocated, against a control request that
// does the same with one copy, or a result's length); what the same
// construct costs at scale is in each comment.
func TestGateway_HostileResults(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.RuleTimeout = hostileTimeout })
	// What an attack may allocate beyond its control request.
	const slack = 4 << 20

	t.Run("json.encode output", func(t *testing.T) {
		// json.encode builds its whole result whatever its size: one 1 MiB
		// string held 1,000 times is 1 GiB of JSON, encoded in Go for 16 s
		// past a 300 ms deadline, 3.5 GiB of heap at its peak.
		src := hostileRule(`
    local s = string.rep("x", 2^20)
    local ok, out = pcall(json.encode, {s, s, s})
    context.accessToken["https://example.com/encoded"] = ok and #out or "refused"`)
		// Encoding 3 MiB may take longer than the suite's deadline under
		// -race: this case measures a length, not a time.
		gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.RuleTimeout = 30 * time.Second })
		gw.SetPipeline(hostilePipeline(t, src), "")
		hostileServed(t, gw)

		m, _ := hostileSend(t, gw, "1")
		if m.status != http.StatusOK {
			t.Fatalf("status: got %d, want 200: %s", m.status, m.body)
		}
		var answer map[string]any
		json.Unmarshal(m.body, &answer)
		claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
		if n, ok := claims["https://example.com/encoded"].(float64); ok && n > 1<<20 {
			t.Errorf("json.encode built %d bytes, want at most 1 MiB (1048576), as the string functions", int(n))
		}
	})

	for _, tt := range []struct{ name, attack, control string }{
		// print joins its arguments before the logger sees its level: 8,000
		// arguments (unpack's bound) of one 1 MiB string are an 8 GiB
		// string; 250 of them, 251 MiB of heap in 40 ms.
		{"print", `print(s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s)`, `print(s)`},
		// The claims guard measured claims against 100 KB by encoding all
		// of them: 1,000 copies of one 1 MiB string in a claim took 4 s and
		// 1.8 GiB of heap past the deadline. It now counts, and stops at
		// the limit (compat/jsonsize.go).
		{"claims guard",
			`context.accessToken["https://example.com/bomb"] = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}`,
			`context.accessToken["https://example.com/bomb"] = {s}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := hostileVersus(`local s = string.rep("x", 2^20)`, tt.attack, tt.control)
			gw.SetPipeline(hostilePipeline(t, src), "")
			hostileServed(t, gw)

			control, controlAlloc := hostileSend(t, gw, "control")
			attack, attackAlloc := hostileSend(t, gw, "1")
			if attack.status != control.status {
				t.Errorf("status: got %d, want the control's %d", attack.status, control.status)
			}
			if attack.status != http.StatusOK {
				attack.checkBody(t)
			}
			if attackAlloc > controlAlloc+slack {
				t.Errorf("allocated %d MiB, the control %d MiB; want at most %d MiB more",
					attackAlloc>>20, controlAlloc>>20, slack>>20)
			}
			hostileServed(t, gw)
		})
	}

	t.Run("scope guard", func(t *testing.T) {
		// The scope guard looks each scope up in a map, hashing all of it:
		// 60,000 copies of one 1 MiB string are 120 GiB hashed, seconds
		// past the deadline; a million, minutes.
		src := hostileRule(`
    local s = string.rep("x", 2^20)
    local t = {}
    for i = 1, 60000 do t[i] = s end
    context.accessToken.scope = t`)
		gw.SetPipeline(hostilePipeline(t, src), "")
		hostileServed(t, gw)

		m := hostileMeasure(t, gw)
		if m.status != http.StatusOK && m.status != http.StatusInternalServerError {
			t.Errorf("status: got %d, want 200 or 500", m.status)
		}
		if m.status != http.StatusOK {
			m.checkBody(t)
		}
		// Work after the Lua is bounded by size: a second is ample even on
		// a loaded machine.
		m.checkBounds(t, time.Second)
		hostileServed(t, gw)
	})
}

// TestGateway_HostileTailCalls: a Lua error raised under many tail calls
// must cost no more than the same error raised after them. gopher-lua
// builds an error's stack traceback with one entry per tail call it
// counted (LState.stackTrace), before cutting it to 20 lines; a rule that
// loops by tail calls, "local function f() return f() end f()", is
// stopped by the deadline after millions of them, and the traceback then
// takes seconds and GiBs past the deadline (1.1 GiB, 5 s for a 1 s
// deadline). The count of tail calls here is fixed, so that what is
// measured does not depend on the machine's speed: bytes allocated, the
// error path against a control.
func TestGateway_HostileTailCalls(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.RuleTimeout = 30 * time.Second })
	const calls = 250_000
	// Beyond the control's allocations, what the error path may add.
	const slack = 4 << 20

	tests := []struct{ name, attack, control string }{
		{"error under tail calls",
			`local function f(n) if n == 0 then error("x") end return f(n - 1) end f(N)`,
			`local function f(n) if n == 0 then return 0 end return f(n - 1) end f(N) error("x")`},
		{"pcall of an error under tail calls",
			`local function f(n) if n == 0 then error("x") end return f(n - 1) end pcall(f, N) error("y")`,
			`local function f(n) if n == 0 then return 0 end return f(n - 1) end pcall(f, N) error("y")`},
		{"overflow under tail calls",
			`local function f(n, d) if n > 0 then return f(n - 1, d) end return 1 + f(N / 100, d + 1) end f(N / 100, 0)`,
			`local function f(n, d) if n > 0 then return f(n - 1, d) end if d == 100 then error("z") end return 1 + f(N / 100, d + 1) end f(N / 100, 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := strconv.Itoa(calls)
			src := hostileVersus("", strings.ReplaceAll(tt.attack, "N", n), strings.ReplaceAll(tt.control, "N", n))
			gw.SetPipeline(hostilePipeline(t, src), "")
			hostileServed(t, gw)

			control, controlAlloc := hostileSend(t, gw, "control")
			attack, attackAlloc := hostileSend(t, gw, "1")
			for _, m := range []hostileMeasured{control, attack} {
				if m.status != http.StatusInternalServerError {
					t.Errorf("status: got %d, want 500: %s", m.status, m.body)
				}
				m.checkBody(t)
			}
			if attackAlloc > controlAlloc+slack {
				t.Errorf("the error under %d tail calls allocated %d MiB, the same error after them %d MiB; want at most %d MiB more",
					calls, attackAlloc>>20, controlAlloc>>20, slack>>20)
			}
			hostileServed(t, gw)
		})
	}
}

// hostileVersus returns a rule that runs prelude, then attack for
// hostile=1 or control for hostile=control, then the sandbox probe.
func hostileVersus(prelude, attack, control string) string {
	return `return function(user, context, callback)
  ` + prelude + `
  if context.request.body.hostile == "1" then
    ` + attack + `
  elseif context.request.body.hostile == "control" then
    ` + control + `
  end
` + hostileProbe + `
  callback(nil, user, context)
end
`
}

// hostileSend sends a request with hostile=value and returns its answer
// and the bytes the process allocated meanwhile.
func hostileSend(t *testing.T, gw *testGateway, value string) (hostileMeasured, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	form := ccForm("read:a")
	form.Set("hostile", value)
	resp, err := http.Post(gw.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	return hostileMeasured{status: resp.StatusCode, body: body}, after.TotalAlloc - before.TotalAlloc
}

// TestGateway_HostileGlobalsDoNotLeak: whatever a rule writes to globals,
// by assignment, through _G, with rawset or by shadowing a built-in, the
// next request on the same Lua state does not see it; only global, which
// Auth0 keeps per container, carries over.
func TestGateway_HostileGlobalsDoNotLeak(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	src := `return function(user, context, callback)
  -- What the checks below use, kept from what the request overwrites.
  local tostr, typ, concat = tostring, type, table.concat
  if context.request.body.hostile == "1" then
    leaked = "plain"
    _G.leaked_g = "through _G"
    rawset(_G, "leaked_raw", "rawset")
    string = {upper = function() return "pwned" end}
    UnauthorizedError = function() return "pwned" end
    json = nil -- the run's own json is gone: the sandbox's shows through
    type = function() return "pwned" end
    tostring = function() return "pwned" end
    table = {concat = function() return "pwned" end}
    global.kept = "kept"
  end
  local seen = {
    tostr(leaked), tostr(leaked_g), tostr(rawget(_G, "leaked_raw")),
    string.upper("a"), typ(UnauthorizedError("x")), typ(json), tostr(global.kept),
  }
  context.accessToken["https://example.com/seen"] = concat(seen, ",")
  callback(nil, user, context)
end`
	p := compat.NewPipeline(compat.Config{
		Rules: compileRules(t, hostileRuleName, src), NarrowScopes: true,
		// One idle state: the second request runs on the first one's.
		Limits: rules.Limits{IdleStates: 1}, Logger: discardLogger(),
	})
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.Pipeline = p })

	form := ccForm("read:a")
	form.Set("hostile", "1")
	status, _, answer := postForm(t, gw.URL+"/oauth/token", form)
	if status != 200 {
		t.Fatalf("writing globals: got %d %v, want 200", status, answer)
	}
	claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	if got, want := claims["https://example.com/seen"], "plain,through _G,rawset,pwned,string,table,kept"; got != want {
		t.Errorf("in the writing request: got %v, want %v", got, want)
	}

	status, _, answer = postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != 200 {
		t.Fatalf("next request: got %d %v, want 200", status, answer)
	}
	claims = verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	if got, want := claims["https://example.com/seen"], "nil,nil,nil,A,table,table,kept"; got != want {
		t.Errorf("in the next request: got %v, want %v", got, want)
	}
}

// hostilePipeline returns a pipeline running src as the one rule, with one
// idle state so that consecutive requests share it when it survives.
func hostilePipeline(t *testing.T, src string) *compat.Pipeline {
	t.Helper()
	return compat.NewPipeline(compat.Config{
		Rules: compileRules(t, hostileRuleName, src), NarrowScopes: true,
		Configuration: hostileConfiguration,
		Limits:        rules.Limits{IdleStates: 1}, Logger: discardLogger(),
	})
}

// hostileServed sends a normal request and checks that it is served: the
// narrowed scope, in a token the gateway signed, whose probe claim says the
// sandbox is as it should be.
func hostileServed(t *testing.T, gw *testGateway) {
	t.Helper()
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != 200 || answer["scope"] != "read:a" {
		t.Fatalf("normal request: got %d %v, want 200 with scope read:a", status, answer)
	}
	claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
	if got := claims["https://example.com/sandbox"]; got != hostileProbeWant {
		t.Errorf("sandbox probe: got %v, want %v", got, hostileProbeWant)
	}
}

// hostileMeasured is what one hostile request cost and got.
type hostileMeasured struct {
	status  int
	body    []byte
	elapsed time.Duration
	base    uint64 // live heap before the request
	peak    uint64 // most the heap grew while it ran
}

// hostileAttack sends the hostile request and checks its answer: 500
// server_error, with none of the Lua inside and no token.
func hostileAttack(t *testing.T, gw *testGateway) hostileMeasured {
	t.Helper()
	m := hostileMeasure(t, gw)
	if m.status != http.StatusInternalServerError {
		t.Errorf("status: got %d, want 500: %s", m.status, m.body)
	}
	m.checkBody(t)
	return m
}

// hostileMeasure sends the hostile request, sampling the heap while it
// runs.
func hostileMeasure(t *testing.T, gw *testGateway) hostileMeasured {
	t.Helper()
	var m hostileMeasured
	m.base = hostileLiveHeap()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(sample)
			if h := sample[0].Value.Uint64(); h > m.base && h-m.base > peak.Load() {
				peak.Store(h - m.base)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	form := ccForm("read:a")
	form.Set("hostile", "1")
	start := time.Now()
	resp, err := http.Post(gw.URL+"/oauth/token", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()))
	if err == nil {
		m.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		m.status = resp.StatusCode
	}
	m.elapsed = time.Since(start)
	close(stop)
	wg.Wait()
	m.peak = peak.Load()
	if err != nil {
		t.Fatalf("hostile request: %v", err)
	}
	return m
}

// hostileLeaks are what a hostile answer must not carry: a token, the
// rule's file, Lua, a stack or a line number.
var hostileLeaks = regexp.MustCompile(`(?i)lua|hostile|stack|traceback|goroutine|panic|eyJ|access_token|:\d+:|line \d+|0x[0-9a-f]+`)

// checkBody checks a hostile answer: server_error, a description that
// says nothing of the Lua inside, and no token.
func (m hostileMeasured) checkBody(t *testing.T) {
	t.Helper()
	var answer map[string]any
	if err := json.Unmarshal(m.body, &answer); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, m.body)
	}
	if answer["error"] != "server_error" {
		t.Errorf("error: got %v, want server_error", answer["error"])
	}
	switch d := answer["error_description"]; d {
	case "the token rules failed", "the token rules did not finish in time":
	default:
		t.Errorf("error_description: got %q, want one that says nothing of the rule", d)
	}
	if len(answer) != 2 {
		t.Errorf("answer: got %v, want error and error_description only", answer)
	}
	if leak := hostileLeaks.Find(m.body); leak != nil {
		t.Errorf("answer carries %q: %s", leak, m.body)
	}
}

// checkBounds checks that an attack was answered within overrun of the
// deadline, and within the heap budget.
func (m hostileMeasured) checkBounds(t *testing.T, overrun time.Duration) {
	t.Helper()
	if limit := hostileTimeout + overrun; m.elapsed > limit {
		t.Errorf("answered after %v, want within %v of a %v deadline", m.elapsed.Round(time.Millisecond), overrun, hostileTimeout)
	}
	if m.peak > hostileHeapBudget {
		t.Errorf("heap grew by %d MiB while the request ran, want at most %d MiB", m.peak>>20, hostileHeapBudget>>20)
	}
}

// hostileLiveHeap returns the live heap after a full collection; two, so
// that what sync.Pools hold since the last one is gone too.
func hostileLiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// hostileRetained returns how much more live heap there is than base.
func hostileRetained(base uint64) uint64 {
	if now := hostileLiveHeap(); now > base {
		return now - base
	}
	return 0
}

// hostileGoroutinesSettle waits for the goroutine count to come back near
// before, and fails when it does not.
func hostileGoroutinesSettle(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+5 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines: %d after the attacks, %d before", n, before)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGateway_HostileHeapGuard: with a heap guard, as serve runs, the
// attacks that only the deadline stopped (tables that grow, strings kept
// in them) are stopped once the heap passes the budget, with 500
// server_error, where the deadline would answer 504. Without the guard,
// each would hold GiBs by the deadline.
func TestGateway_HostileHeapGuard(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	// Long enough for the slowest attack to pass the budget under -race;
	// short enough that a guard that fails costs GiBs, not tens.
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) { c.RuleTimeout = 6 * time.Second })
	const headroom = 32 << 20
	guard := rules.NewHeapGuard(hostileLiveHeap() + headroom)
	defer guard.Close()

	for _, attack := range []string{
		`local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 2^20) end`,
		`local s = string.rep("x", 2^20) local t = {} for i = 1, 1e9 do t[i] = s .. i end`,
		`local t = {} for i = 1, 1e9 do t[#t + 1] = {} end`,
		`local k = string.rep("k", 64) local t = {} for i = 1, 1e9 do t[k .. i] = i end`,
	} {
		t.Run(attack, func(t *testing.T) {
			gw.SetPipeline(compat.NewPipeline(compat.Config{
				Rules: compileRules(t, hostileRuleName, hostileRule(attack)), NarrowScopes: true,
				Configuration: hostileConfiguration, Limits: rules.Limits{IdleStates: 1},
				Logger: discardLogger(), HeapGuard: guard,
			}), "")
			hostileServed(t, gw)

			m := hostileAttack(t, gw) // 500; a 504 would be the deadline's
			// The guard reads the heap every 5 ms and collects before it
			// stops a run; the attack allocates meanwhile.
			if m.peak > 2*headroom {
				t.Errorf("heap grew by %d MiB, want at most %d MiB with a budget %d MiB over the live heap",
					m.peak>>20, 2*headroom>>20, headroom>>20)
			}
			t.Logf("stopped after %v, heap grew by up to %d MiB", m.elapsed.Round(time.Millisecond), m.peak>>20)
			hostileServed(t, gw)
		})
	}
}
