package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	lua "github.com/yuin/gopher-lua"
)

// State is one sandboxed Lua state, held by a single Run at a time.
type State struct {
	l        *lua.LState
	base     *lua.LTable // globals every run reads through its environment
	envMeta  *lua.LTable // metatable of every run environment
	viewMeta *lua.LTable // metatable of every view
	// guarded holds the tables rawset refuses; for a read-only proxy, the
	// table it reads through to.
	guarded map[*lua.LTable]*lua.LTable
	logger  *slog.Logger
	running string         // name of the program being run, for print
	unwind  *lua.LFunction // runs protected calls (protect.go)
	noop    *lua.LFunction // takes a frame before a protected call
	maxOut  int            // the longest string a library call may build

	// Programs loaded once per state see globals through fileEnv, an empty
	// table whose metatable sends reads and writes to the current run's
	// environment, or to base while a file's top level runs: what it
	// assigns to globals stays for the life of the state, and runs read it
	// as they read the built-in globals.
	fileEnv  *lua.LTable
	fileMeta *lua.LTable
	loaded   map[*Program]lua.LValue
}

// Error is a failure inside a program: a Lua error, a raised value, or the
// deadline. Its message may carry Lua file and line details, so it belongs in
// logs, never in an answer to a client.
type Error struct {
	// Program names the program that failed.
	Program string
	// Value is what the program raised with error(); nil for a deadline.
	Value lua.LValue
	// Err is the cause: a *lua.ApiError, the context's error, or
	// ErrHeapBudget for a run a HeapGuard stopped.
	Err error
}

func (e *Error) Error() string { return "run " + e.Program + ": " + e.Err.Error() }

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) holds
// for a program stopped by the deadline.
func (e *Error) Unwrap() error { return e.Err }

// Lua returns the underlying state, for building argument tables and Go
// functions. It must not be kept past the Run that handed out s.
func (s *State) Lua() *lua.LState { return s.l }

// SetGlobal installs a value every run of this state can read, such as a
// shape's error constructors or its persistent table. Only Setup calls it.
func (s *State) SetGlobal(name string, v lua.LValue) { s.base.RawSetString(name, v) }

// Global returns a global installed with SetGlobal, or nil.
func (s *State) Global(name string) lua.LValue { return s.base.RawGetString(name) }

// NewEnv returns a fresh global environment for one run. Writes to globals
// land in it and vanish with it; reads fall through to the sandbox's globals.
func (s *State) NewEnv() *lua.LTable {
	env := s.l.CreateTable(0, 4)
	env.RawSetString("_G", env)
	env.Metatable = s.envMeta
	return env
}

// Load executes p's chunk in env and returns the chunk's first result: the
// function or table the extension file returns.
func (s *State) Load(p *Program, env *lua.LTable) (lua.LValue, error) {
	fn := s.l.NewFunctionFromProto(p.proto)
	fn.Env = env
	s.running = p.Name
	s.l.Push(fn)
	if err := s.protect(0, 1); err != nil {
		return nil, s.fail(p.Name, err)
	}
	v := s.l.Get(-1)
	s.l.Pop(1)
	return v, s.deadline(p.Name)
}

// Function returns what p's chunk returns, executing the chunk only the
// first time this state loads p, so a run only calls the functions it
// returned. What the file's top level sets up lives as long as the state,
// like a persistent table: its locals, and the globals it assigns (as a Lua
// module's are), which every program on the state sees. At run time,
// globals read or written by the functions it defined are those of env,
// which reads through to them.
func (s *State) Function(p *Program, env *lua.LTable) (lua.LValue, error) {
	v, ok := s.loaded[p]
	if !ok {
		s.bind(s.base)
		var err error
		if v, err = s.Load(p, s.fileEnv); err != nil {
			return nil, err
		}
		s.loaded[p] = v
	}
	s.bind(env)
	return v, nil
}

// bind sends the global reads and writes of loaded programs to t.
func (s *State) bind(t *lua.LTable) {
	s.fileMeta.RawSetString("__index", t)
	s.fileMeta.RawSetString("__newindex", t)
}

// Call calls fn with args in protected mode and discards its results.
// program names the extension fn belongs to, for errors and print.
func (s *State) Call(program string, fn lua.LValue, args ...lua.LValue) error {
	s.running = program
	s.l.Push(fn)
	for _, a := range args {
		s.l.Push(a)
	}
	if err := s.protect(len(args), 0); err != nil {
		return s.fail(program, err)
	}
	return s.deadline(program)
}

// deadline reports a passed deadline, or a run stopped by the heap guard,
// even when the program returned normally: a pcall can catch the error
// the deadline raises.
func (s *State) deadline(program string) error {
	if ctx := s.l.Context(); ctx != nil && ctx.Err() != nil {
		return &Error{Program: program, Value: lua.LNil, Err: context.Cause(ctx)}
	}
	return nil
}

// fail turns a Lua call error into an *Error, naming the deadline as the
// cause when it has passed.
func (s *State) fail(program string, err error) error {
	if err := s.deadline(program); err != nil {
		return err
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) {
		if apiErr.StackTrace == noTraceback {
			apiErr.StackTrace = "" // so that its message is the error's alone
		}
		return &Error{Program: program, Value: apiErr.Object, Err: apiErr}
	}
	return &Error{Program: program, Value: lua.LNil, Err: fmt.Errorf("call: %w", err)}
}

// IsTimeout reports whether err is a program stopped by its deadline.
func IsTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}
