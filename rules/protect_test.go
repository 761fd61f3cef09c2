package rules

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// TestProtect_LuaSemantics: pcall and xpcall, which rulesgate replaces to
// catch errors without a traceback, behave as Lua 5.1's.
func TestProtect_LuaSemantics(t *testing.T) {
	e := NewEngine(Options{})
	for _, tt := range []struct {
		name, src string
		want      any
	}{
		{"pcall success", `return {pcall(function(a, b) return a + b, "two" end, 1, 2)}`, []any{true, int64(3), "two"}},
		{"pcall no results", `return {pcall(function() end)}`, []any{true}},
		{"pcall error string", `local ok, e = pcall(error, "boom", 0) return {ok, e}`, []any{false, "boom"}},
		{"pcall error position", `local ok, e = pcall(function() error("boom") end) return e`, "t.lua:1: boom"},
		{"pcall runtime error", `local ok, e = pcall(function() local x = nil; return x.y end) return e:find("attempt to index") ~= nil`, true},
		{"pcall error table", `local ok, e = pcall(error, {code = 7}) return e.code`, int64(7)},
		{"pcall not a function", `return {pcall(42)}`, []any{false, "attempt to call a number value"}},
		{"pcall callable table", `local t = setmetatable({}, {__call = function(self, x) return x * 2 end}) return {pcall(t, 21)}`, []any{true, int64(42)}},
		{"pcall nested", `return {pcall(pcall, error, "in", 0)}`, []any{true, false, "in"}},
		{"pcall then more work", `pcall(error, "x") local ok, v = pcall(function() return "after" end) return v`, "after"},
		{"xpcall success", `return {xpcall(function() return 1, 2 end, error)}`, []any{true, int64(1), int64(2)}},
		{"xpcall handler result", `return {xpcall(function() error("boom", 0) end, function(e) return "handled " .. e, "dropped" end)}`, []any{false, "handled boom"}},
		{"xpcall handler error", `return {xpcall(function() error("boom", 0) end, function(e) error("again", 0) end)}`, []any{false, "again"}},
		{"xpcall overflow", `local function f() return 1 + f() end local ok, e = xpcall(f, function(e) return "h" end) return {ok, e}`, []any{false, "h"}},
		// gopher-lua's difference, as the README tells rule authors: after
		// a caught error a running function's local and its closures each
		// keep their own copy; a table they share stays shared.
		{"a caught error parts a local from its closure", `local n = 0 local function inc() n = n + 1 end
pcall(error, "x") inc() return n`, int64(0)},
		{"a table stays shared", `local seen = {n = 0} local function inc() seen.n = seen.n + 1 end
pcall(error, "x") inc() return seen.n`, int64(1)},
		// A closure made in a frame that failed keeps its upvalues' values,
		// not the stack slots the next calls reuse (a message handler in
		// gopher-lua leaves them open: "C", or a Go nil).
		{"upvalues of a failed frame", `local f
pcall(function() local x = "secret" f = function() return x end error("boom") end)
local a, b, c = "A", "B", "C"
local d, e, g = "D", "E", "G"
return f()`, "secret"},
		{"upvalues of an overflowed frame", `local f
pcall(function() local x = "secret" f = function() return x end local function r() return 1 + r() end r() end)
local a, b, c = "A", "B", "C"
local d, e, g = "D", "E", "G"
return f()`, "secret"},
		{"upvalues of a frame xpcall unwound", `local f
xpcall(function() local x = "secret" f = function() return x end error("boom") end, function(e) local y, z = "Y", "Z" return e end)
local a, b, c = "A", "B", "C"
local d, e, g = "D", "E", "G"
return f()`, "secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustEval(t, e, tt.src); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}

	t.Run("error message keeps its position", func(t *testing.T) {
		_, err := eval(t, e, "local x = 1\nerror(\"boom\")")
		var runErr *Error
		if !errors.As(err, &runErr) || runErr.Value.String() != "t.lua:2: boom" {
			t.Fatalf("got %v, want the value t.lua:2: boom", err)
		}
	})

	t.Run("deadline not swallowed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := evalOn(ctx, t, e, `for i = 1, 3 do xpcall(function() while true do end end, function() while true do end end) end return 1`)
		if !IsTimeout(err) {
			t.Fatalf("got %v, want the deadline", err)
		}
	})
}

// TestProtect_TailCallsCostNothing: an error raised under many tail calls,
// whether it ends the run or a pcall catches it, allocates about what it
// allocates after them. gopher-lua's traceback would add an entry per tail
// call (about 23 MiB for these 250,000).
func TestProtect_TailCallsCostNothing(t *testing.T) {
	e := NewEngine(Options{})
	const loop = `local function f(n) if n == 0 then return g() end return f(n - 1) end `
	for _, tt := range []struct{ name, attack, control string }{
		{"run", loop + `g = function() error("x") end f(250000)`, loop + `g = function() end f(250000) error("x")`},
		{"pcall", loop + `g = function() error("x") end pcall(f, 250000) error("y")`, loop + `g = function() end pcall(f, 250000) error("y")`},
		{"xpcall", loop + `g = function() error("x") end xpcall(function() return f(250000) end, tostring) error("y")`,
			loop + `g = function() end xpcall(function() return f(250000) end, tostring) error("y")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			control, attack := allocated(t, e, tt.control), allocated(t, e, tt.attack)
			if attack > control+2<<20 {
				t.Errorf("allocated %d KiB, %d KiB after the tail calls; want at most 2 MiB more", attack>>10, control>>10)
			}
		})
	}
}

// allocated runs src, which must fail, and returns the bytes allocated.
func allocated(t *testing.T, e *Engine, src string) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := eval(t, e, src); err == nil {
		t.Fatalf("run %q: no error", src)
	}
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSandbox_Print: print goes to the log at debug level, joined with
// tabs and cut to 4 KiB, and costs nothing when debug logs are off: not
// even a __tostring is called.
func TestSandbox_Print(t *testing.T) {
	var logs bytes.Buffer
	debug := NewEngine(Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	mustEval(t, debug, `print("hello", 1, nil, setmetatable({}, {__tostring = function() return "meta" end})) return true`)
	if !strings.Contains(logs.String(), `message="hello\t1\tnil\tmeta"`) || !strings.Contains(logs.String(), "extension=t.lua") {
		t.Errorf("log: got %q, want the joined message and the extension", logs.String())
	}

	logs.Reset()
	mustEval(t, debug, `print(string.rep("x", 100000)) return true`)
	if _, message, _ := strings.Cut(logs.String(), "message="); strings.Count(message, "x") != 4<<10 {
		t.Errorf("printed %d x's, want 4 KiB of them", strings.Count(message, "x"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := evalOn(ctx, t, debug, `print(setmetatable({}, {__tostring = function() while true do end end}))`); !IsTimeout(err) {
		t.Errorf("a looping __tostring: got %v, want the deadline", err)
	}

	logs.Reset()
	info := NewEngine(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	got := mustEval(t, info, `local called = false
print(setmetatable({}, {__tostring = function() called = true return "" end}))
return called`)
	if got != false || logs.Len() != 0 {
		t.Errorf("debug off: __tostring called %v, log %q; want neither", got, logs.String())
	}
}

// TestEngine_RecoversPanics: a Go panic in a run, in a library call or in
// the code around the Lua, is the run's error, and the engine goes on.
func TestEngine_RecoversPanics(t *testing.T) {
	e := NewEngine(Options{})
	err := e.Run(context.Background(), func(s *State) error {
		s.running = "boom.lua"
		panic("something the sandbox did not foresee")
	})
	var runErr *Error
	if !errors.As(err, &runErr) || !errors.Is(err, ErrPanic) || runErr.Program != "boom.lua" {
		t.Fatalf("got %v, want an *Error of boom.lua wrapping ErrPanic", err)
	}
	if got := mustEval(t, e, `return "still up"`); got != "still up" {
		t.Fatalf("got %v after the panic", got)
	}
	if _, err := ToGo(nil); !errors.Is(err, ErrNotJSON) {
		t.Errorf("ToGo(Go nil): got %v, want ErrNotJSON", err)
	}
}

// protectEdge recurses through pcall until the call stack is full, at
// every alignment of the overflow against the frames pcall takes, after
// N tail calls (g is called from the last of them).
const protectEdge = `
local msgs = {}
local function r() local ok, e = pcall(r) if not ok then msgs[#msgs + 1] = tostring(e) end end
local function rx() local ok, e = xpcall(rx, function(e) return e end) if not ok then msgs[#msgs + 1] = tostring(e) end end
local function pad(k, top) if k == 0 then top() return 0 end return 1 + pad(k - 1, top) end
g = function() for k = 0, 12 do pad(k, r) pad(k, rx) end end
local function f(n) if n == 0 then return g() end return f(n - 1) end
f(N)
return msgs
`

// TestProtect_StackEdge: a stack overflow caught by pcall or xpcall, at
// whichever frame it happens, is an ordinary caught error: the run goes
// on with its frames intact (gopher-lua's growing call stack lost live
// frames there, and handed a segment still in use to other states), and
// no traceback is built for the tail calls below it.
func TestProtect_StackEdge(t *testing.T) {
	e := NewEngine(Options{})
	var wg sync.WaitGroup
	for range 4 { // states side by side, for the race detector
		wg.Go(func() {
			got, err := eval(t, e, strings.Replace(protectEdge, "N", "0", 1))
			if err != nil {
				t.Errorf("run: %v", err)
				return
			}
			msgs, _ := got.([]any)
			if len(msgs) != 26 {
				t.Errorf("caught %d overflows, want 26 (13 alignments, pcall and xpcall): %v", len(msgs), msgs)
			}
			for _, m := range msgs {
				if s, _ := m.(string); !strings.Contains(s, "stack overflow") {
					t.Errorf("caught %q, want a stack overflow", s)
				}
			}
		})
	}
	wg.Wait()

	control := allocatedOK(t, e, strings.Replace(protectEdge, "N", "0", 1))
	attack := allocatedOK(t, e, strings.Replace(protectEdge, "N", "250000", 1))
	if attack > control+2<<20 {
		t.Errorf("after 250,000 tail calls allocated %d KiB, without them %d KiB; want at most 2 MiB more", attack>>10, control>>10)
	}
}

// TestProtect_GoPanic: a Go panic under a protected call, as gopher-lua
// itself raises at times (an index out of range at a frame it has not
// finished setting up), is caught by pcall like any error, and unwind
// raises it again as a Lua error, so that no traceback is built for the
// tail calls below it.
func TestProtect_GoPanic(t *testing.T) {
	e := NewEngine(Options{Setup: func(s *State) {
		s.SetGlobal("boom", s.Lua().NewFunction(func(*lua.LState) int { panic("a Go panic") }))
	}})
	const src = `local seen = {}
g = function() local ok, e = pcall(boom) seen.caught = {ok, e} end
local function f(n) if n == 0 then return g() end return f(n - 1) end
f(N)
return seen.caught`
	if got := mustEval(t, e, strings.Replace(src, "N", "0", 1)); !reflect.DeepEqual(got, []any{false, "a Go panic"}) {
		t.Fatalf("got %#v, want false and the panic's value", got)
	}
	control := allocatedOK(t, e, strings.Replace(src, "N", "0", 1))
	attack := allocatedOK(t, e, strings.Replace(src, "N", "250000", 1))
	if attack > control+2<<20 {
		t.Errorf("after 250,000 tail calls allocated %d KiB, without them %d KiB; want at most 2 MiB more", attack>>10, control>>10)
	}
}

// allocatedOK runs src, which must succeed, and returns the bytes
// allocated.
func allocatedOK(t *testing.T, e *Engine, src string) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	mustEval(t, e, src)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
