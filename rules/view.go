package rules

import (
	"slices"

	lua "github.com/yuin/gopher-lua"
)

// view shows a Go map to programs as a table would, without copying it
// into one: reads look the map up, writes go to an overlay that lives as
// long as the view. Building a Lua table costs a run several allocations a
// key; most keys of a request are never read.
type view struct {
	strs    map[string]string
	anys    map[string]any
	overlay map[string]lua.LValue // written, or converted once; LNil is deleted
	keys    []string              // for next, sorted; nil until asked
}

// View returns a value programs read and write like a table of m's
// entries, for the current run: ., pairs, next and json.encode see its
// entries, and type() calls it a table. m must not change while the run lasts.
func (s *State) View(m map[string]any) lua.LValue { return s.newView(&view{anys: m}) }

// StringView is View for a map of strings.
func (s *State) StringView(m map[string]string) lua.LValue {
	return s.newView(&view{strs: m})
}

func (s *State) newView(v *view) lua.LValue {
	ud := s.l.NewUserData()
	ud.Value = v
	ud.Metatable = s.viewMeta
	return ud
}

// newViewMeta builds the metatable every view of a state shares.
func (s *State) newViewMeta() *lua.LTable {
	meta := s.l.NewTable()
	meta.RawSetString("__index", s.l.NewFunction(func(l *lua.LState) int {
		v := checkView(l)
		key, ok := l.Get(2).(lua.LString)
		if !ok {
			l.Push(lua.LNil)
			return 1
		}
		l.Push(v.get(l, string(key)))
		return 1
	}))
	meta.RawSetString("__newindex", s.l.NewFunction(func(l *lua.LState) int {
		checkView(l).set(viewKey(l), l.Get(3))
		return 0
	}))
	meta.RawSetString("__metatable", lua.LFalse)
	return meta
}

// viewKey returns the key argument of a write: a view has string keys only.
func viewKey(l *lua.LState) string {
	key, ok := l.Get(2).(lua.LString)
	if !ok {
		l.ArgError(2, "a string key expected")
	}
	return string(key)
}

func checkView(l *lua.LState) *view {
	v, _ := l.CheckUserData(1).Value.(*view)
	if v == nil {
		l.ArgError(1, "not a view")
	}
	return v
}

// viewOf returns the view behind v, or nil.
func viewOf(v lua.LValue) *view {
	if ud, ok := v.(*lua.LUserData); ok {
		view, _ := ud.Value.(*view)
		return view
	}
	return nil
}

// get returns the value of key. A table is converted once and kept, so
// that a program changing it finds its change on the next read.
func (v *view) get(l *lua.LState, key string) lua.LValue {
	if lv, ok := v.overlay[key]; ok {
		return lv
	}
	if s, ok := v.strs[key]; ok {
		return lua.LString(s)
	}
	e, ok := v.anys[key]
	if !ok {
		return lua.LNil
	}
	lv := ToLua(l, e)
	if _, isTable := lv.(*lua.LTable); isTable {
		v.set(key, lv)
	}
	return lv
}

// set writes key for the rest of the view's life.
func (v *view) set(key string, value lua.LValue) {
	if v.overlay == nil {
		v.overlay = make(map[string]lua.LValue)
	}
	v.overlay[key] = value
	v.keys = nil
}

// sortedKeys returns the keys that have a value, in order, so that next
// walks a view the same way every time.
func (v *view) sortedKeys(l *lua.LState) []string {
	if v.keys != nil {
		return v.keys
	}
	keys := make([]string, 0, len(v.strs)+len(v.anys)+len(v.overlay))
	for k := range v.strs {
		keys = append(keys, k)
	}
	for k := range v.anys {
		keys = append(keys, k)
	}
	for k := range v.overlay {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	keys = slices.DeleteFunc(keys, func(k string) bool { return v.get(l, k) == lua.LNil })
	v.keys = keys
	return keys
}

// next is Lua's next over a view.
func (v *view) next(l *lua.LState, after lua.LValue) (lua.LValue, lua.LValue) {
	keys := v.sortedKeys(l)
	i := 0
	if k, ok := after.(lua.LString); ok {
		i, _ = slices.BinarySearch(keys, string(k))
		i++
	}
	if i >= len(keys) {
		return lua.LNil, lua.LNil
	}
	return lua.LString(keys[i]), v.get(l, keys[i])
}
