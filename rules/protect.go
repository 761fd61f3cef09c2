package rules

import lua "github.com/yuin/gopher-lua"

// Errors are caught without a stack traceback. gopher-lua builds one for
// every error a protected call catches unless the call has a message
// handler, and the traceback holds one entry per tail call the failing
// frames made (LState.stackTrace) before it is cut to 20 lines: a rule
// that loops by tail calls until its deadline makes millions, and the
// traceback then took seconds and GiBs past the deadline. Error messages
// keep their "file:line:" prefix, which is all rulesgate logs.

// installProtect makes the state's protected calls, the ones rulesgate
// makes and pcall and xpcall, catch errors through a handler that
// returns the error value as it is.
func (s *State) installProtect() {
	s.keep = s.l.NewFunction(func(l *lua.LState) int {
		l.SetTop(1)
		return 1
	})
	s.base.RawSetString("pcall", s.l.NewFunction(s.pcall))
	s.base.RawSetString("xpcall", s.l.NewFunction(s.xpcall))
}

// protect calls the function below the top nargs values of the stack in
// protected mode, leaving its results or returning its error.
func (s *State) protect(nargs int) error {
	return s.l.PCall(nargs, lua.MultRet, s.keep)
}

// pcall is Lua 5.1's pcall(f, ...).
func (s *State) pcall(l *lua.LState) int {
	l.CheckAny(1)
	if v := l.Get(1); v.Type() != lua.LTFunction && l.GetMetaField(v, "__call").Type() != lua.LTFunction {
		l.Push(lua.LFalse)
		l.Push(lua.LString("attempt to call a " + v.Type().String() + " value"))
		return 2
	}
	if err := s.protect(l.GetTop() - 1); err != nil {
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
	err := s.protect(0)
	if err == nil {
		l.Insert(lua.LTrue, 1)
		return l.GetTop()
	}

	l.SetTop(0)
	l.Push(handler)
	l.Push(errorValue(err))
	if err := s.protect(1); err != nil {
		return caught(l, err)
	}
	l.SetTop(1) // the handler's first result
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
