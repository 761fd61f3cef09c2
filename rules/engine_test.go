package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// mustCompile compiles src under name or stops the test.
func mustCompile(t *testing.T, name, src string) *Program {
	t.Helper()
	p, err := Compile(name, []byte(src))
	if err != nil {
		t.Fatalf("Compile(%q): %v", name, err)
	}
	return p
}

// evalOn runs src as a plain chunk on e in a fresh environment and returns
// the chunk's first result in its JSON shape, and the state it ran on.
func evalOn(ctx context.Context, t *testing.T, e *Engine, src string) (any, *State, error) {
	t.Helper()
	p := mustCompile(t, "t.lua", src)
	var (
		got   any
		state *State
	)
	err := e.Run(ctx, func(s *State) error {
		state = s
		v, err := s.Load(p, s.NewEnv())
		if err != nil {
			return err
		}
		got, err = ToGo(v)
		return err
	})
	return got, state, err
}

// eval runs src as a plain chunk on e and returns its first result.
func eval(t *testing.T, e *Engine, src string) (any, error) {
	t.Helper()
	got, _, err := evalOn(context.Background(), t, e, src)
	return got, err
}

// mustEval is eval for a chunk that must not fail.
func mustEval(t *testing.T, e *Engine, src string) any {
	t.Helper()
	got, err := eval(t, e, src)
	if err != nil {
		t.Fatalf("run %q: %v", src, err)
	}
	return got
}

// withGlobal returns an engine whose states carry a table named global that
// outlives runs, as a shape's persistent table does, and a count of the
// states Setup built.
func withGlobal() (*Engine, *int) {
	setups := new(int)
	e := NewEngine(Options{Setup: func(s *State) {
		*setups++
		s.SetGlobal("global", s.Lua().NewTable())
	}})
	return e, setups
}

func TestEngine_RunIsolatesGlobals(t *testing.T) {
	// A request must never see a global written by an earlier request,
	// even when both ran on the same pooled state.
	e := NewEngine(Options{})
	var prev *State
	reused := 0
	for i := range 50 {
		got, s, err := evalOn(context.Background(), t, e, `
			local seen = leaked
			leaked = 1
			_G.leaked_via_G = 1
			return {leaked = seen == nil, via_G = leaked_via_G == 1}`)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		want := map[string]any{"leaked": true, "via_G": true}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: got %v, want %v", i, got, want)
		}
		if s == prev {
			reused++
		}
		prev = s
	}
	if reused == 0 {
		t.Fatalf("got no run on a reused state, want some: the test did not exercise the pool")
	}
}

func TestEngine_RunReexecutesChunk(t *testing.T) {
	// A file-level local belongs to one run: the chunk runs afresh each time,
	// so a counter kept in it starts over on the next request.
	p := mustCompile(t, "counter.lua", `
		local counter = {n = 0}
		return function() counter.n = counter.n + 1; result = counter.n end`)
	e := NewEngine(Options{})
	for i := range 10 {
		var got []lua.LValue
		err := e.Run(context.Background(), func(s *State) error {
			env := s.NewEnv()
			fn, err := s.Load(p, env)
			if err != nil {
				return err
			}
			for range 2 {
				if err := s.Call(p.Name, fn); err != nil {
					return err
				}
				got = append(got, env.RawGetString("result"))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		want := []lua.LValue{lua.LNumber(1), lua.LNumber(2)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: got %v, want %v", i, got, want)
		}
	}
}

func TestEngine_RunSharesEnvAcrossLoads(t *testing.T) {
	// Extensions of one request share its environment: a global one writes
	// is read by the next one loaded into the same env.
	first := mustCompile(t, "10-a.lua", `shared = "from a"`)
	second := mustCompile(t, "20-b.lua", `return shared`)
	e := NewEngine(Options{})
	var got lua.LValue
	err := e.Run(context.Background(), func(s *State) error {
		env := s.NewEnv()
		if _, err := s.Load(first, env); err != nil {
			return err
		}
		var err error
		got, err = s.Load(second, env)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != lua.LString("from a") {
		t.Fatalf("got %v, want %v", got, "from a")
	}
}

func TestEngine_PersistentGlobal(t *testing.T) {
	// The table Setup installs outlives a run: what one run stores there,
	// the next run on the same state reads.
	const src = `global.n = (global.n or 0) + 1 return global.n`

	t.Run("two loads in one run", func(t *testing.T) {
		e, _ := withGlobal()
		p := mustCompile(t, "count.lua", src)
		var got []lua.LValue
		err := e.Run(context.Background(), func(s *State) error {
			for range 2 {
				v, err := s.Load(p, s.NewEnv())
				if err != nil {
					return err
				}
				got = append(got, v)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []lua.LValue{lua.LNumber(1), lua.LNumber(2)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("runs on a pooled state", func(t *testing.T) {
		e, setups := withGlobal()
		counts := map[*State]int64{}
		reused := 0
		for i := range 50 {
			got, s, err := evalOn(context.Background(), t, e, src)
			if err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
			if _, ok := counts[s]; ok {
				reused++
			}
			counts[s]++
			if got != counts[s] {
				t.Fatalf("run %d: got %v, want %v", i, got, counts[s])
			}
		}
		if reused == 0 {
			t.Fatalf("got no run on a reused state, want some: the test did not exercise the pool")
		}
		if *setups != len(counts) {
			t.Fatalf("Setup ran %d times for %d states, want once per state", *setups, len(counts))
		}
	})
}

func TestEngine_RunClosesFailedState(t *testing.T) {
	// A state whose run failed may be half-way through a run; it must be
	// closed and never handed to a later request.
	for _, tc := range []struct {
		name string
		fail func(*State) error
	}{
		{"lua error", func(s *State) error {
			p := mustCompile(t, "fail.lua", `global.poisoned = true error("fail")`)
			_, err := s.Load(p, s.NewEnv())
			return err
		}},
		{"go error", func(s *State) error {
			p := mustCompile(t, "poison.lua", `global.poisoned = true`)
			if _, err := s.Load(p, s.NewEnv()); err != nil {
				return err
			}
			return errors.New("caller failed")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := withGlobal()
			var failed *State
			err := e.Run(context.Background(), func(s *State) error {
				failed = s
				return tc.fail(s)
			})
			if err == nil {
				t.Fatalf("got nil error, want the run to fail")
			}
			if !failed.Lua().IsClosed() {
				t.Fatalf("failed state closed: got false, want true")
			}
			for i := range 20 {
				got, s, err := evalOn(context.Background(), t, e, `return global.poisoned == nil`)
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if s == failed {
					t.Fatalf("run %d: got the failed state back from the pool", i)
				}
				if got != true {
					t.Fatalf("run %d: global.poisoned unset: got %v, want %v", i, got, true)
				}
			}
		})
	}
}

func TestEngine_RunTimeout(t *testing.T) {
	// A program that never ends is stopped by the request's deadline, even
	// when it tries to catch the stop with pcall, and the engine keeps working.
	e := NewEngine(Options{})
	for _, tc := range []struct {
		name string
		src  string
	}{
		{"loop", `while true do end`},
		{"loop in pcall", `pcall(function() while true do end end)`},
		{"pcall in loop", `while true do pcall(function() while true do end end) end`},
		{"pcall result used", `local ok, err = pcall(function() while true do end end) return err`},
		{"loop in xpcall", `xpcall(function() while true do end end, function(e) return e end)`},
		{"recursion in pcall", `local function f() pcall(f) pcall(f) end f()`},
		{"loop in returned function", `return function() while true do end end`},
		// pcall catches the deadline's error and the chunk returns normally.
		{"deadline swallowed by pcall", `return pcall(function() while true do end end)`},
		{"deadline swallowed in returned function", `return function() return pcall(function() while true do end end) end`},
		// Work in Go, where the deadline does not reach, is bounded instead.
		{"concat with a huge range", `while true do pcall(table.concat, {}, "", -2^63) end`},
		{"unpack of a huge range", `while true do pcall(unpack, {}, 1, 300000) end`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, "loop.lua", tc.src)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := e.Run(ctx, func(s *State) error {
				fn, err := s.Load(p, s.NewEnv())
				if err != nil {
					return err
				}
				if fn.Type() == lua.LTFunction {
					return s.Call(p.Name, fn)
				}
				return nil
			})
			if !IsTimeout(err) {
				t.Fatalf("IsTimeout(%v): got false, want true", err)
			}
			var runErr *Error
			if !errors.As(err, &runErr) {
				t.Fatalf("got %T, want *Error", err)
			}
			if runErr.Program != "loop.lua" || runErr.Value != lua.LNil {
				t.Fatalf("got Program %q Value %v, want %q and nil", runErr.Program, runErr.Value, "loop.lua")
			}

			got := mustEval(t, e, `return 1 + 1`)
			if got != int64(2) {
				t.Fatalf("run after timeout: got %v, want %v", got, 2)
			}
		})
	}
}

func TestEngine_RunCanceledIsNotTimeout(t *testing.T) {
	// A request abandoned by its client fails, but is not counted as a
	// program running out of time.
	e := NewEngine(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := evalOn(ctx, t, e, `while true do end`)
	if err == nil {
		t.Fatalf("got nil error, want context.Canceled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("errors.Is(%v, context.Canceled): got false, want true", err)
	}
	if IsTimeout(err) {
		t.Fatalf("IsTimeout(%v): got true, want false", err)
	}
}

func TestEngine_RunErrorValues(t *testing.T) {
	// A shape reads what a program raised (a table such as an Auth0 error
	// object) from Error.Value, and logs the message of any other failure.
	for _, tc := range []struct {
		name      string
		src       string
		wantValue any
		wantMsg   []string
	}{
		{"table", `error({code = 7})`, map[string]any{"code": int64(7)}, nil},
		{"table from function", `return function() error({code = 7}) end`, map[string]any{"code": int64(7)}, nil},
		{"string", `error("boom")`, "err.lua:1: boom", []string{"boom", "err.lua"}},
		{"string from function", "return function()\n error(\"boom\")\nend", "err.lua:2: boom", []string{"boom", "err.lua"}},
		{"runtime error", `local t = nil return t.x`, nil, []string{"err.lua", "nil"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, "err.lua", tc.src)
			err := NewEngine(Options{}).Run(context.Background(), func(s *State) error {
				fn, err := s.Load(p, s.NewEnv())
				if err == nil && fn.Type() == lua.LTFunction {
					err = s.Call(p.Name, fn)
				}
				return err
			})
			var runErr *Error
			if !errors.As(err, &runErr) {
				t.Fatalf("got %T (%v), want *Error", err, err)
			}
			if runErr.Program != "err.lua" {
				t.Fatalf("Program: got %q, want %q", runErr.Program, "err.lua")
			}
			var apiErr *lua.ApiError
			if !errors.As(err, &apiErr) {
				t.Fatalf("Unwrap: got %T, want *lua.ApiError", runErr.Err)
			}
			if tc.wantValue != nil {
				value, convErr := ToGo(runErr.Value)
				if convErr != nil || !reflect.DeepEqual(value, tc.wantValue) {
					t.Fatalf("Value: got %v (%v), want %v", value, convErr, tc.wantValue)
				}
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("message: got %q, want it to contain %q", err.Error(), s)
				}
			}
		})
	}
}

func TestEngine_RunConcurrent(t *testing.T) {
	// Engine is shared by all requests: concurrent runs each get their own
	// state and their own globals.
	e := NewEngine(Options{})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			p, err := Compile("c.lua", fmt.Appendf(nil, `
				for j = 1, 200 do
					if mine ~= nil and mine ~= %d then error("saw another run's global") end
					mine = %d
				end
				return mine`, i, i))
			if err != nil {
				errs <- err
				return
			}
			for range 20 {
				err := e.Run(context.Background(), func(s *State) error {
					v, err := s.Load(p, s.NewEnv())
					if err == nil && v != lua.LNumber(i) {
						err = fmt.Errorf("got %v, want %v", v, i)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompile(t *testing.T) {
	// An operator fixing a broken rule needs the file and the line.
	for _, tc := range []struct {
		name string
		src  string
		line int
	}{
		{"bad-token.lua", "local x = 1\n\nlocal y = = 2\n", 3},
		{"missing-then.lua", "local x = 1\nif x\n  return 1\nend\n", 3},
		{"bad-call.lua", "local a = 1\nlocal b = 2\nprint(a b)\n", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.name, []byte(tc.src))
			if err == nil {
				t.Fatalf("got program %v, want a syntax error", p)
			}
			for _, want := range []string{tc.name, fmt.Sprintf("line:%d", tc.line)} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("got %q, want it to contain %q", err.Error(), want)
				}
			}
		})
	}

	t.Run("hash", func(t *testing.T) {
		src := []byte("return 1")
		p, err := Compile("one.lua", src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		if want := hex.EncodeToString(sum[:]); p.Hash != want || p.Name != "one.lua" {
			t.Fatalf("got %q %q, want %q %q", p.Name, p.Hash, "one.lua", want)
		}
	})
}

func TestCache_Compile(t *testing.T) {
	// Reloading an unchanged rule set must reuse its programs; a changed
	// file must be compiled anew.
	var c Cache
	a1, err := c.Compile("a.lua", []byte("return 1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, src string
		same            bool
	}{
		{"same name and source", "a.lua", "return 1", true},
		{"changed source", "a.lua", "return 2", false},
		{"same source, other name", "b.lua", "return 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Compile(tc.file, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := p == a1; got != tc.same {
				t.Fatalf("same *Program: got %v, want %v", got, tc.same)
			}
			if p.Name != tc.file {
				t.Fatalf("Name: got %q, want %q", p.Name, tc.file)
			}
		})
	}

	t.Run("syntax error", func(t *testing.T) {
		for range 2 {
			if _, err := c.Compile("bad.lua", []byte("return =")); err == nil {
				t.Fatalf("got nil error, want a syntax error every time")
			}
		}
	})
}

// reversedFS lists a directory in reverse name order, as a file system
// outside the standard library might.
type reversedFS struct{ fstest.MapFS }

func (f reversedFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := f.MapFS.ReadDir(name)
	slices.Reverse(entries)
	return entries, err
}

func TestLoadFS(t *testing.T) {
	// Extensions run in file-name order, and only .lua files are extensions.
	good := fstest.MapFS{
		"rules/20-b.lua":     {Data: []byte("return 'b'")},
		"rules/10-a.lua":     {Data: []byte("return 'a'")},
		"rules/b.txt":        {Data: []byte("not lua ((")},
		"rules/README":       {Data: []byte("docs")},
		"rules/sub/05-c.lua": {Data: []byte("return 'c'")},
		"other/00-x.lua":     {Data: []byte("return 'x'")},
	}
	broken := fstest.MapFS{
		"10-a.lua":   {Data: []byte("return 'a'")},
		"15-bad.lua": {Data: []byte("return 1\nreturn =\n")},
		"18-bad.lua": {Data: []byte("return )")},
		"20-b.lua":   {Data: []byte("return 'b'")},
	}

	for _, tc := range []struct {
		name      string
		fsys      fs.FS
		dir       string
		wantNames []string
		wantErr   []string
		notErr    string
	}{
		{"order and filter", good, "rules", []string{"10-a.lua", "20-b.lua"}, nil, ""},
		{"unsorted listing", reversedFS{good}, "rules", []string{"10-a.lua", "20-b.lua"}, nil, ""},
		{"first broken file", broken, ".", nil, []string{"15-bad.lua", "line:2"}, "18-bad.lua"},
		{"first broken file, unsorted listing", reversedFS{broken}, ".", nil, []string{"15-bad.lua"}, "18-bad.lua"},
		{"missing dir", good, "nope", nil, []string{"nope"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			progs, err := LoadFS(tc.fsys, tc.dir, nil)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got %d programs, want an error", len(progs))
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("got %q, want it to contain %q", err.Error(), want)
					}
				}
				if tc.notErr != "" && strings.Contains(err.Error(), tc.notErr) {
					t.Fatalf("got %q, want no mention of %q", err.Error(), tc.notErr)
				}
				if progs != nil {
					t.Fatalf("got %d programs with the error, want none", len(progs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range progs {
				names = append(names, p.Name)
			}
			if !reflect.DeepEqual(names, tc.wantNames) {
				t.Fatalf("got %v, want %v", names, tc.wantNames)
			}
		})
	}

	t.Run("cache", func(t *testing.T) {
		var c Cache
		first, err := LoadFS(good, "rules", &c)
		if err != nil {
			t.Fatal(err)
		}
		second, err := LoadFS(good, "rules", &c)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 2 || len(second) != 2 || first[0] != second[0] || first[1] != second[1] {
			t.Fatalf("got %v, want the cached %v", second, first)
		}
	})
}

func TestState_FunctionLoadsOncePerState(t *testing.T) {
	// Function runs the chunk once per state: file-level locals outlive a
	// run, as a persistent table does, while globals written anywhere in
	// the program, file-level helpers included, belong to the run.
	p := mustCompile(t, "helper.lua", `
		local loads = 0
		loads = loads + 1
		local function remember(v) last = v end
		return function(v)
			local seen = last
			remember(v)
			result = {loads = loads, seen = seen, last = last, cfg = configuration}
		end`)
	e := NewEngine(Options{})
	states := map[*State]bool{}
	for i := range 20 {
		err := e.Run(context.Background(), func(s *State) error {
			states[s] = true
			env := s.NewEnv()
			env.RawSetString("configuration", lua.LString("run"))
			fn, err := s.Function(p, env)
			if err != nil {
				return err
			}
			if err := s.Call(p.Name, fn, lua.LNumber(i)); err != nil {
				return err
			}
			got, err := ToGo(env.RawGetString("result"))
			if err != nil {
				return err
			}
			want := map[string]any{"loads": int64(1), "last": int64(i), "cfg": "run"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("run %d: got %v, want %v", i, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if len(states) == 20 {
		t.Fatal("no state was reused; the test proves nothing")
	}
}
