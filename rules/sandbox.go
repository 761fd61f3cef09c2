package rules

import (
	"context"
	"log/slog"
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
	// MaxStringSize is the longest string string.rep, string.gsub,
	// string.format and table.concat may build; 0 means 1 MiB.
	MaxStringSize int
	// IdleStates is how many states an engine keeps between runs; 0 means
	// eight per CPU the process may use.
	IdleStates int
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
// setmetatable, rawset, unpack and print are replaced by safer versions;
// next, pairs, ipairs, rawget and type by ones that know read-only tables
// and views.
var safeBase = []string{
	"assert", "error", "getmetatable", "pcall", "rawequal", "select",
	"tonumber", "tostring", "xpcall", "_VERSION",
}

// maxResults bounds how many values one library call may push, as Lua 5.1's
// LUAI_MAXCSTACK does: the value stack grows in Go, where no deadline
// reaches.
const maxResults = 8000

// newState builds a state whose programs see only the safe part of the base
// library, read-only string, table, math and json modules, and what Setup adds.
func newState(opts Options) *State {
	l := lua.NewState(lua.Options{
		SkipOpenLibs:  true,
		CallStackSize: opts.Limits.CallStackSize,
		// A state's registry is scanned by every garbage collection while
		// it waits in the pool: keep it small until a program needs more.
		RegistrySize:     1024,
		RegistryMaxSize:  opts.Limits.RegistryMaxSize,
		RegistryGrowStep: 1024,
		// The call stack is fixed (CallStackSize frames, some 20 KiB).
		// gopher-lua's growing one (MinimizeStackMemory) overflows with a
		// Go panic, and a protected call that catches it at a segment's
		// edge drops live frames and returns a segment still in use to a
		// pool shared by every state: one tenant's frames then overwrite
		// another's. The fixed one raises a Lua error before it pushes.
		MinimizeStackMemory: false,
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

	s := &State{l: l, base: l.NewTable(), guarded: map[*lua.LTable]*lua.LTable{}, logger: opts.Logger,
		maxOut: opts.Limits.MaxStringSize}
	s.installBase()
	s.installProtect()
	s.installModules(opts.Limits.MaxStringSize)
	s.installEnvironments()
	if opts.Setup != nil {
		opts.Setup(s)
	}
	return s
}

// installBase puts the safe part of the base library into base, with the
// replaced functions.
func (s *State) installBase() {
	l, globals := s.l, s.l.G.Global
	for _, name := range safeBase {
		s.base.RawSetString(name, globals.RawGetString(name))
	}
	s.base.RawSetString("setmetatable", l.NewFunction(tablesOnly(globals.RawGetString("setmetatable"))))
	s.base.RawSetString("rawset", l.NewFunction(s.rawSet))
	s.base.RawSetString("rawget", l.NewFunction(rawGet(globals.RawGetString("rawget"))))
	s.base.RawSetString("type", l.NewFunction(typeOf(globals.RawGetString("type"))))
	s.base.RawSetString("print", l.NewFunction(s.print))
	next := l.NewFunction(s.next)
	s.base.RawSetString("next", next)
	s.base.RawSetString("pairs", l.NewFunction(func(l *lua.LState) int {
		if viewOf(l.Get(1)) == nil {
			l.CheckTable(1)
		}
		l.Push(next)
		l.Push(l.Get(1))
		l.Push(lua.LNil)
		return 3
	}))
	s.base.RawSetString("unpack", l.NewFunction(s.seeThrough(boundedUnpack(globals.RawGetString("unpack")))))
	s.base.RawSetString("ipairs", l.NewClosure(ipairs, l.NewFunction(s.ipairsStep)))
}

// installModules puts read-only string, table, math and json modules into
// base, their functions bounded to strings of max bytes.
func (s *State) installModules(max int) {
	l, globals := s.l, s.l.G.Global

	// gopher-lua's string library is also the strings' metatable, with
	// __index pointing at itself: a program could reach and change it
	// through string.__index. Programs get a copy behind a metatable of
	// their own instead.
	strlib := l.NewTable()
	globals.RawGetString("string").(*lua.LTable).ForEach(func(k, v lua.LValue) {
		if k.String() != "__index" {
			strlib.RawSet(k, v)
		}
	})
	tablib := globals.RawGetString("table").(*lua.LTable)
	s.guardTables(tablib)
	s.boundStrings(strlib, tablib, max)
	strMeta := l.NewTable()
	strMeta.RawSetString("__index", strlib)
	strMeta.RawSetString("__metatable", lua.LFalse)
	l.SetMetatable(lua.LString(""), strMeta)

	s.base.RawSetString("string", s.readOnly(strlib))
	s.base.RawSetString("table", s.readOnly(tablib))
	s.base.RawSetString("math", s.readOnly(globals.RawGetString("math").(*lua.LTable)))
	s.base.RawSetString("json", s.readOnly(s.newJSONModule()))
}

// installEnvironments builds the metatables of run environments, views and
// the file environment of programs loaded once per state.
func (s *State) installEnvironments() {
	l := s.l
	s.base.RawSetString("_G", s.base) // as file-level code sees it; runs have their own

	s.envMeta = l.NewTable()
	s.envMeta.RawSetString("__index", s.base)
	s.envMeta.RawSetString("__metatable", lua.LFalse)

	s.viewMeta = s.newViewMeta()

	s.fileMeta = l.NewTable()
	s.fileMeta.RawSetString("__metatable", lua.LFalse)
	s.fileEnv = l.NewTable()
	s.fileEnv.Metatable = s.fileMeta
	s.guarded[s.fileEnv] = nil
	s.loaded = make(map[*Program]lua.LValue)
}

// readOnly returns an empty table that reads through to t and refuses writes,
// so that no run can change a module the next run on this state will use.
// pairs, ipairs, next and # see t's contents through it.
func (s *State) readOnly(t *lua.LTable) *lua.LTable {
	meta := s.l.NewTable()
	meta.RawSetString("__index", t)
	meta.RawSetString("__newindex", s.l.NewFunction(func(l *lua.LState) int {
		l.RaiseError("attempt to modify a read-only table")
		return 0
	}))
	meta.RawSetString("__len", s.l.NewFunction(func(l *lua.LState) int {
		l.Push(lua.LNumber(t.Len()))
		return 1
	}))
	meta.RawSetString("__metatable", lua.LFalse)

	proxy := s.l.NewTable()
	proxy.Metatable = meta
	s.guarded[proxy] = t
	return proxy
}

// Frozen converts a JSON-shaped Go value for programs to read and never
// change: every table in it, nested ones included, is read-only. Built once
// per state, it costs a run nothing.
func (s *State) Frozen(v any) lua.LValue { return s.freeze(ToLua(s.l, v)) }

func (s *State) freeze(v lua.LValue) lua.LValue {
	t, ok := v.(*lua.LTable)
	if !ok {
		return v
	}
	t.ForEach(func(k, e lua.LValue) {
		if _, nested := e.(*lua.LTable); nested {
			t.RawSet(k, s.freeze(e))
		}
	})
	return s.readOnly(t)
}

// contents returns the table whose entries t shows: the one behind a
// read-only proxy, or t itself.
func (s *State) contents(t *lua.LTable) *lua.LTable {
	if real := s.guarded[t]; real != nil {
		return real
	}
	return t
}

// next is Lua's next, seeing through read-only proxies.
func (s *State) next(l *lua.LState) int {
	var k, v lua.LValue
	if view := viewOf(l.Get(1)); view != nil {
		k, v = view.next(l, l.Get(2))
	} else {
		k, v = s.contents(l.CheckTable(1)).Next(l.Get(2))
	}
	if k == lua.LNil {
		l.Push(lua.LNil)
		return 1
	}
	l.Push(k)
	l.Push(v)
	return 2
}

// ipairs and ipairsStep are Lua's ipairs, seeing through read-only proxies.
func ipairs(l *lua.LState) int {
	if viewOf(l.Get(1)) == nil {
		l.CheckTable(1)
	}
	l.Push(l.Get(lua.UpvalueIndex(1)))
	l.Push(l.Get(1))
	l.Push(lua.LNumber(0))
	return 3
}

func (s *State) ipairsStep(l *lua.LState) int {
	if viewOf(l.Get(1)) != nil {
		return 0 // a view has string keys only
	}
	t := s.contents(l.CheckTable(1))
	i := l.CheckInt(2) + 1
	v := t.RawGetInt(i)
	if v == lua.LNil {
		return 0
	}
	l.Push(lua.LNumber(i))
	l.Push(v)
	return 2
}

// tablesOnly is setmetatable as Lua 5.1 has it: for tables only. gopher-lua's
// also sets the metatable shared by all numbers, booleans or functions of a
// state, which would carry from one run to the next.
func tablesOnly(setmetatable lua.LValue) lua.LGFunction {
	set := setmetatable.(*lua.LFunction).GFunction
	return func(l *lua.LState) int {
		l.CheckTable(1)
		return set(l)
	}
}

// boundedUnpack is unpack refusing more than maxResults values.
func boundedUnpack(unpack lua.LValue) lua.LGFunction {
	fn := unpack.(*lua.LFunction).GFunction
	return func(l *lua.LState) int {
		t := l.CheckTable(1)
		i, j := l.OptInt(2, 1), l.OptInt(3, t.Len())
		if i <= j && (j-i < 0 || j-i >= maxResults) {
			l.RaiseError("too many results to unpack")
		}
		return fn(l)
	}
}

// guardTables makes the table library see through read-only proxies when
// it reads, and refuse them when it would write: its functions work on a
// table's own entries, where a proxy's __index and __newindex do not apply.
func (s *State) guardTables(tablib *lua.LTable) {
	for _, name := range []string{"concat", "getn", "maxn"} {
		fn := tablib.RawGetString(name).(*lua.LFunction).GFunction
		tablib.RawSetString(name, s.l.NewFunction(s.seeThrough(fn)))
	}
	for _, name := range []string{"insert", "remove", "sort"} {
		fn := tablib.RawGetString(name).(*lua.LFunction).GFunction
		tablib.RawSetString(name, s.l.NewFunction(func(l *lua.LState) int {
			if _, ok := s.guarded[l.CheckTable(1)]; ok {
				l.RaiseError("attempt to modify a read-only table")
			}
			return fn(l)
		}))
	}
}

// seeThrough wraps fn so that a read-only proxy as its first argument is
// replaced by the table behind it.
func (s *State) seeThrough(fn lua.LGFunction) lua.LGFunction {
	return func(l *lua.LState) int {
		if t, ok := l.Get(1).(*lua.LTable); ok {
			l.Replace(1, s.contents(t))
		}
		return fn(l)
	}
}

// rawSet is rawset that refuses the read-only tables of the sandbox.
func (s *State) rawSet(l *lua.LState) int {
	if v := viewOf(l.Get(1)); v != nil {
		v.set(viewKey(l), l.CheckAny(3))
		l.SetTop(1)
		return 1
	}
	t := l.CheckTable(1)
	if _, ok := s.guarded[t]; ok {
		l.RaiseError("attempt to modify a read-only table")
	}
	t.RawSet(l.CheckAny(2), l.CheckAny(3))
	l.SetTop(1)
	return 1
}

// rawGet is rawget that reads views as the tables they stand for.
func rawGet(rawget lua.LValue) lua.LGFunction {
	fn := rawget.(*lua.LFunction).GFunction
	return func(l *lua.LState) int {
		if v := viewOf(l.Get(1)); v != nil {
			key, _ := l.Get(2).(lua.LString)
			l.Push(v.get(l, string(key)))
			return 1
		}
		return fn(l)
	}
}

// typeOf is type that calls a view a table, as programs written for tables
// expect.
func typeOf(typ lua.LValue) lua.LGFunction {
	fn := typ.(*lua.LFunction).GFunction
	return func(l *lua.LState) int {
		if viewOf(l.Get(1)) != nil {
			l.Push(lua.LString("table"))
			return 1
		}
		return fn(l)
	}
}

// maxPrint bounds one printed message in the log (Auth0 keeps 256
// characters of each console.log).
const maxPrint = 4 << 10

// print sends what a program prints to the log at debug level, cut to
// maxPrint bytes; nothing is built when debug logs are off.
func (s *State) print(l *lua.LState) int {
	if !s.logger.Enabled(context.Background(), slog.LevelDebug) {
		return 0
	}
	var b strings.Builder
	for i := 1; i <= l.GetTop() && b.Len() < maxPrint; i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		part := l.ToStringMeta(l.Get(i)).String()
		b.WriteString(part[:min(len(part), maxPrint-b.Len())])
	}
	s.logger.Debug("extension print", "extension", s.running, "message", b.String())
	return 0
}

// boundStrings replaces the library functions that can build a large string
// or many values from small arguments with versions that refuse results
// over max bytes or maxResults values.
//
// TODO(sandbox): the .. operator is not bounded; a loop of concatenations
// can still grow a string until the deadline. Pattern matching (find,
// match, gmatch, gsub) runs in Go, where the deadline does not reach: a
// backtracking pattern on a long subject can outrun --rule-timeout. Running
// the pipeline apart from the request, and giving up on it at the
// deadline, would bound the answer's wait but not the CPU spent.
func (s *State) boundStrings(strlib, tablib *lua.LTable, max int) {
	tooLong := func(l *lua.LState, fn string) int {
		l.RaiseError("%s: result longer than %d bytes", fn, max)
		return 0
	}

	strlib.RawSetString("rep", s.l.NewFunction(func(l *lua.LState) int {
		str, n := l.CheckString(1), float64(l.CheckNumber(2))
		if n > 0 && float64(len(str))*n > float64(max) {
			return tooLong(l, "string.rep")
		}
		if n < 0 || len(str) == 0 {
			n = 0
		}
		l.Push(lua.LString(strings.Repeat(str, int(n))))
		return 1
	}))

	byteFn := strlib.RawGetString("byte").(*lua.LFunction).GFunction
	strlib.RawSetString("byte", s.l.NewFunction(func(l *lua.LState) int {
		str := l.CheckString(1)
		i, j := l.OptInt(2, 1), l.OptInt(3, -1)
		if i < 0 {
			i += len(str) + 1
		}
		if j < 0 {
			j += len(str) + 1
		}
		if l.GetTop() != 2 && j-i >= maxResults {
			l.RaiseError("string.byte: too many results")
		}
		return byteFn(l)
	}))

	gsub := strlib.RawGetString("gsub").(*lua.LFunction).GFunction
	strlib.RawSetString("gsub", s.l.NewFunction(func(l *lua.LState) int {
		str := l.CheckString(1)
		switch repl := l.Get(3).(type) {
		case lua.LString:
			// Each replacement is repl with every %n expanded to at most str.
			each := len(repl) + strings.Count(string(repl), "%")*len(str)
			if len(str)+(len(str)+1)*each > max {
				return tooLong(l, "string.gsub")
			}
		case *lua.LTable, *lua.LFunction:
			l.Replace(3, boundedReplacement(l, repl, max-len(str), tooLong))
		}
		return gsub(l)
	}))

	format := strlib.RawGetString("format").(*lua.LFunction).GFunction
	strlib.RawSetString("format", s.l.NewFunction(func(l *lua.LState) int {
		if formatBound(l.CheckString(1), l) > max {
			return tooLong(l, "string.format")
		}
		return format(l)
	}))

	concat := tablib.RawGetString("concat").(*lua.LFunction).GFunction
	tablib.RawSetString("concat", s.l.NewFunction(func(l *lua.LState) int {
		t := l.CheckTable(1)
		sep := len(l.OptString(2, ""))
		i, j := l.OptInt(3, 1), l.OptInt(4, t.Len())
		if i > j {
			return concat(l)
		}
		if j-i < 0 || j-i >= max {
			return tooLong(l, "table.concat")
		}
		total := -sep
		for k := i; k <= j; k++ {
			total += len(lua.LVAsString(t.RawGetInt(k))) + sep
			if total > max {
				return tooLong(l, "table.concat")
			}
		}
		return concat(l)
	}))
}

// formatBound returns an upper bound of the length string.format can give
// for format and the arguments on l's stack: the format itself, every width
// and precision in it, the strings among the arguments, and 32 bytes for
// any other argument.
func formatBound(format string, l *lua.LState) int {
	total := len(format)
	number := func(i int) (int, int) {
		n := 0
		for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
			n = min(n*10+int(format[i]-'0'), 1<<30)
		}
		return n, i
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		if i++; i < len(format) && format[i] == '%' {
			continue
		}
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			i++
		}
		width, j := number(i)
		precision := 0
		if j < len(format) && format[j] == '.' {
			precision, j = number(j + 1)
		}
		total += width + precision
		i = j
	}
	for i := 2; i <= l.GetTop(); i++ {
		if str, ok := l.Get(i).(lua.LString); ok {
			total += len(str)
		} else {
			total += 32
		}
	}
	return total
}

// boundedReplacement wraps a table or function replacement of string.gsub
// so that what the replacements add together stays within budget bytes.
func boundedReplacement(l *lua.LState, repl lua.LValue, budget int, tooLong func(*lua.LState, string) int) *lua.LFunction {
	used := 0
	return l.NewFunction(func(l *lua.LState) int {
		var v lua.LValue
		if t, ok := repl.(*lua.LTable); ok {
			v = l.GetTable(t, l.Get(1))
		} else {
			n := l.GetTop()
			l.Push(repl)
			for i := 1; i <= n; i++ {
				l.Push(l.Get(i))
			}
			l.Call(n, 1)
			v = l.Get(-1)
		}
		if used += len(lua.LVAsString(v)); used > budget {
			return tooLong(l, "string.gsub")
		}
		l.Push(v)
		return 1
	})
}
