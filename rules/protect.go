package rules

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// Errors are caught without a stack traceback. gopher-lua builds one for
// every error a protected call catches without a message handler, with
// one entry per tail call the failing frames made (LState.stackTrace)
// before it is cut to 20 lines: a rule that loops by tail calls until its
// deadline makes millions, and the traceback then took seconds and GiBs
// past the deadline. A message handler would skip it, but with one
// gopher-lua leaves the failed frames' upvalues open, pointing at stack
// slots the next calls reuse: a closure made there would read other
// frames' locals, or a Go nil. So every protected call instead runs the
// function through unwind, which raises errors as *lua.ApiError values
// that already carry a (placeholder) traceback, and which gopher-lua then
// takes as they are. Error messages keep their "file:line:" prefix,
// which is all rulesgate logs.
//
// Like gopher-lua's own pcall, an error closes the upvalues of every
// frame on the stack, the caller's included: a closure over a caller's
// local and the local part ways at the error, and later writes by either
// are not seen by the other. That is gopher-lua's behaviour, not Lua
// 5.1's; it is not unsafe.
//
// TODO(sandbox): the fix for both, closing only the failed frames'
// upvalues and bounding the traceback, belongs in gopher-lua.

// noTraceback stands in for the traceback of the errors rulesgate raises.
const noTraceback = "(no traceback)"

// installProtect makes the state's protected calls, the ones rulesgate
// makes and pcall and xpcall, build no traceback.
func (s *State) installProtect() {
	s.unwind = s.l.NewFunction(unwind)
	s.noop = s.l.NewFunction(func(*lua.LState) int { return 0 })
	s.base.RawSetString("pcall", s.l.NewFunction(s.pcall))
	s.base.RawSetString("xpcall", s.l.NewFunction(s.xpcall))
}

// protect calls the function below the top nargs values of the stack in
// protected mode, leaving nret results (or all, for lua.MultRet) or
// returning its error.
func (s *State) protect(nargs, nret int) error {
	// A stack too full to push unwind would overflow inside PCall, under
	// gopher-lua's own Panic, and build the traceback: the empty call
	// takes the frame unwind needs first, and overflows under the caller's.
	s.l.Push(s.noop)
	s.l.Call(0, 0)
	s.l.Insert(s.unwind, s.l.GetTop()-nargs)
	return s.l.PCall(nargs+1, nret, nil)
}

// unwind calls its first argument with the others and returns all its
// results. An error raised meanwhile is an *lua.ApiError with a
// traceback already; a Go panic inside gopher-lua (an index out of range
// at a frame it has not finished setting up) is raised again as a Lua
// error, which closes the upvalues the panic left open.
func unwind(l *lua.LState) int {
	l.Panic = panicWithoutTraceback
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, ok := r.(*lua.ApiError); ok {
			panic(r)
		}
		// Level 0: no position. A panic inside gopher-lua may have left
		// the current frame where its position cannot be read.
		l.Error(lua.LString(fmt.Sprint(r)), 0)
	}()
	l.Call(l.GetTop()-1, lua.MultRet)
	return l.GetTop()
}

// panicWithoutTraceback is the state's Panic while unwind runs: the error
// on top of the stack, raised with a placeholder traceback so that
// LState.PCall builds none.
func panicWithoutTraceback(l *lua.LState) {
	panic(&lua.ApiError{Type: lua.ApiErrorRun, Object: l.Get(-1), StackTrace: noTraceback})
}

// pcall is Lua 5.1's pcall(f, ...).
func (s *State) pcall(l *lua.LState) int {
	l.CheckAny(1)
	if v := l.Get(1); v.Type() != lua.LTFunction && l.GetMetaField(v, "__call").Type() != lua.LTFunction {
		l.Push(lua.LFalse)
		l.Push(lua.LString("attempt to call a " + v.Type().String() + " value"))
		return 2
	}
	if err := s.protect(l.GetTop()-1, lua.MultRet); err != nil {
		return caught(l, err)
	}
	l.Insert(lua.LTrue, 1)
	return l.GetTop()
}

// xpcall is Lua 5.1's xpcall(f, handler). The handler is called once the
// stack has unwound, not at the point of the error: with no debug library
// a handler cannot tell, and it then has the whole stack to run in.
func (s *State) xpcall(l *lua.LState) int {
	fn, handler := l.CheckFunction(1), l.CheckFunction(2)
	l.SetTop(0)
	l.Push(fn)
	err := s.protect(0, lua.MultRet)
	if err == nil {
		l.Insert(lua.LTrue, 1)
		return l.GetTop()
	}

	l.SetTop(0)
	l.Push(handler)
	l.Push(errorValue(err))
	if err := s.protect(1, 1); err != nil {
		return caught(l, err)
	}
	l.Insert(lua.LFalse, 1)
	return 2
}

// caught pushes false and the value err carries, as pcall returns them.
func caught(l *lua.LState, err error) int {
	l.Push(lua.LFalse)
	l.Push(errorValue(err))
	return 2
}

// errorValue returns the value a Lua error raised.
func errorValue(err error) lua.LValue {
	if apiErr, ok := err.(*lua.ApiError); ok {
		return apiErr.Object
	}
	return lua.LString(err.Error())
}
