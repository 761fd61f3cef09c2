package rules

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Limits bound the resources of one Lua state. A zero field takes its default.
type Limits struct {
	// CallStackSize is the deepest call nesting a program may reach; 0 means 200.
	CallStackSize int
	// RegistryMaxSize is the most value-stack slots a state may grow to;
	// 0 means 262144 (about 4 MiB).
	RegistryMaxSize int
	// MaxStringSize is the longest string string.rep, string.gsub and
	// table.concat may build; 0 means 1 MiB.
	MaxStringSize int
}

func (l Limits) withDefaults() Limits {
	if l.CallStackSize == 0 {
		l.CallStackSize = 200
	}
	if l.RegistryMaxSize == 0 {
		l.RegistryMaxSize = 256 * 1024
	}
	if l.MaxStringSize == 0 {
		l.MaxStringSize = 1 << 20
	}
	return l
}

// safeBase lists the functions of Lua's base library a program may call as
// they are. Left out on purpose: dofile, loadfile, load, loadstring, require,
// module, collectgarbage, getfenv and setfenv (they reach files, compile code
// at run time or reach the real globals), newproxy and _printregs.
var safeBase = []string{
	"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
	"rawget", "select", "setmetatable", "tonumber", "tostring", "type",
	"unpack", "xpcall", "_VERSION",
}

// newState builds a state whose programs see only the safe part of the base
// library, read-only string, table, math and json modules, and what Setup adds.
func newState(opts Options) *State {
	l := lua.NewState(lua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   opts.Limits.CallStackSize,
		RegistryMaxSize: opts.Limits.RegistryMaxSize,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.StringLibName, lua.OpenString},
		{lua.TabLibName, lua.OpenTable},
		{lua.MathLibName, lua.OpenMath},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}

	s := &State{l: l, base: l.NewTable(), guarded: map[*lua.LTable]bool{}, logger: opts.Logger}
	globals := l.G.Global
	for _, name := range safeBase {
		s.base.RawSetString(name, globals.RawGetString(name))
	}
	s.base.RawSetString("getmetatable", l.NewFunction(getMetatable))
	s.base.RawSetString("rawset", l.NewFunction(s.rawSet))
	s.base.RawSetString("print", l.NewFunction(s.print))

	s.boundStrings(globals, opts.Limits.MaxStringSize)
	s.base.RawSetString("string", s.readOnly(globals.RawGetString("string").(*lua.LTable)))
	s.base.RawSetString("table", s.readOnly(globals.RawGetString("table").(*lua.LTable)))
	s.base.RawSetString("math", s.readOnly(globals.RawGetString("math").(*lua.LTable)))
	s.base.RawSetString("json", s.readOnly(newJSONModule(l)))

	// getmetatable("") would hand out the string library itself.
	globals.RawGetString("string").(*lua.LTable).RawSetString("__metatable", lua.LFalse)

	s.envMeta = l.NewTable()
	s.envMeta.RawSetString("__index", s.base)
	s.envMeta.RawSetString("__metatable", lua.LFalse)

	if opts.Setup != nil {
		opts.Setup(s)
	}
	return s
}

// readOnly returns an empty table that reads through to t and refuses writes,
// so that no run can change a module the next run on this state will use.
func (s *State) readOnly(t *lua.LTable) *lua.LTable {
	meta := s.l.NewTable()
	meta.RawSetString("__index", t)
	meta.RawSetString("__newindex", s.l.NewFunction(func(l *lua.LState) int {
		l.RaiseError("attempt to modify a read-only table")
		return 0
	}))
	meta.RawSetString("__metatable", lua.LFalse)

	proxy := s.l.NewTable()
	proxy.Metatable = meta
	s.guarded[proxy] = true
	return proxy
}

// getMetatable is Lua 5.1's getmetatable: a __metatable field stands in for
// the real metatable. gopher-lua's own ignores the field.
func getMetatable(l *lua.LState) int {
	mt := l.GetMetatable(l.CheckAny(1))
	if t, ok := mt.(*lua.LTable); ok {
		if guard := t.RawGetString("__metatable"); guard != lua.LNil {
			l.Push(guard)
			return 1
		}
	}
	l.Push(mt)
	return 1
}

// rawSet is rawset that refuses the read-only tables of the sandbox.
func (s *State) rawSet(l *lua.LState) int {
	t := l.CheckTable(1)
	if s.guarded[t] {
		l.RaiseError("attempt to modify a read-only table")
	}
	t.RawSet(l.CheckAny(2), l.CheckAny(3))
	l.SetTop(1)
	return 1
}

// print sends what a program prints to the log at debug level.
func (s *State) print(l *lua.LState) int {
	parts := make([]string, l.GetTop())
	for i := range parts {
		parts[i] = l.ToStringMeta(l.Get(i + 1)).String()
	}
	s.logger.Debug("extension print", "extension", s.running, "message", strings.Join(parts, "\t"))
	return 0
}

// boundStrings replaces the library functions that can build a large string
// from small arguments with versions that refuse results over max bytes.
//
// TODO(sandbox): the .. operator and string.format are not bounded here;
// a loop of concatenations can still grow a string until the deadline.
func (s *State) boundStrings(globals *lua.LTable, max int) {
	strlib := globals.RawGetString("string").(*lua.LTable)
	tablib := globals.RawGetString("table").(*lua.LTable)
	tooLong := func(l *lua.LState, fn string) int {
		l.RaiseError("%s: result longer than %d bytes", fn, max)
		return 0
	}

	strlib.RawSetString("rep", s.l.NewFunction(func(l *lua.LState) int {
		str, n := l.CheckString(1), l.CheckInt(2)
		if n > 0 && len(str) > 0 && n > max/len(str) {
			return tooLong(l, "string.rep")
		}
		if n < 0 {
			n = 0
		}
		l.Push(lua.LString(strings.Repeat(str, n)))
		return 1
	}))

	gsub := strlib.RawGetString("gsub").(*lua.LFunction)
	strlib.RawSetString("gsub", s.l.NewFunction(func(l *lua.LState) int {
		str := l.CheckString(1)
		if repl, ok := l.Get(3).(lua.LString); ok && len(str)+(len(str)+1)*len(repl) > max {
			return tooLong(l, "string.gsub")
		}
		return gsub.GFunction(l)
	}))

	concat := tablib.RawGetString("concat").(*lua.LFunction)
	tablib.RawSetString("concat", s.l.NewFunction(func(l *lua.LState) int {
		t := l.CheckTable(1)
		sep := len(l.OptString(2, ""))
		i, j := l.OptInt(3, 1), l.OptInt(4, t.Len())
		if j-i > max {
			return tooLong(l, "table.concat")
		}
		total := 0
		for k := i; k <= j; k++ {
			total += len(lua.LVAsString(t.RawGetInt(k))) + sep
			if total > max {
				return tooLong(l, "table.concat")
			}
		}
		return concat.GFunction(l)
	}))
}
