package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of tables converted to Go, which also stops
// a table that contains itself.
const maxDepth = 32

// ErrNotJSON is returned for a Lua value with no JSON form: a function, a
// coroutine, a NaN, a table nested too deep or keyed by something other
// than strings and numbers.
var ErrNotJSON = errors.New("value has no JSON form")

// ToLua converts a JSON-shaped Go value (nil, bool, string, numbers,
// json.Number, []any, []string, map[string]any, map[string]string) into a
// Lua value. Anything else becomes nil.
func ToLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return lua.LString(v.String())
		}
		return lua.LNumber(f)
	case []string:
		t := l.CreateTable(len(v), 0)
		for _, s := range v {
			t.Append(lua.LString(s))
		}
		return t
	case []any:
		t := l.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, ToLua(l, e))
		}
		return t
	case map[string]string:
		t := l.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, lua.LString(e))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, ToLua(l, e))
		}
		return t
	}
	return lua.LNil
}

// ToGo converts a Lua value into its JSON shape: nil, bool, string, int64
// for whole numbers that fit a float exactly, float64, []any for a table
// keyed 1..n, and map[string]any for any other table (an empty table is an
// empty object, as most Lua JSON libraries have it).
func ToGo(v lua.LValue) (any, error) { return (&converter{}).toGo(v, 0) }

// ToGo is the package's ToGo, reading read-only tables of this state as
// the tables they show.
func (s *State) ToGo(v lua.LValue) (any, error) {
	return (&converter{see: s.contents, l: s.l}).toGo(v, 0)
}

// maxValues bounds how many values one conversion visits: a table that
// holds the same table twice, nested, is a tree exponentially larger than
// the memory it takes.
const maxValues = 100_000

// converter turns Lua values into Go ones.
type converter struct {
	see    func(*lua.LTable) *lua.LTable // the table a table shows; nil for itself
	l      *lua.LState                   // to read views; nil refuses them
	values int
}

func (c *converter) view(v *view, depth int) (any, error) {
	obj := make(map[string]any)
	for _, k := range v.sortedKeys(c.l) {
		e, err := c.toGo(v.get(c.l, k), depth)
		if err != nil {
			return nil, err
		}
		obj[k] = e
	}
	return obj, nil
}

func (c *converter) toGo(v lua.LValue, depth int) (any, error) {
	if c.values++; c.values > maxValues {
		return nil, fmt.Errorf("%w: more than %d values", ErrNotJSON, maxValues)
	}
	switch v := v.(type) {
	case nil:
		// No Lua value is a Go nil; one read from a stale stack slot
		// would be (see protect.go).
		return nil, fmt.Errorf("%w: a Go nil", ErrNotJSON)
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LString:
		return string(v), nil
	case lua.LNumber:
		return number(float64(v))
	case *lua.LTable:
		if depth >= maxDepth {
			return nil, fmt.Errorf("%w: tables nested deeper than %d", ErrNotJSON, maxDepth)
		}
		if c.see != nil {
			v = c.see(v)
		}
		return c.table(v, depth+1)
	case *lua.LUserData:
		if view := viewOf(v); view != nil && c.l != nil {
			return c.view(view, depth+1)
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotJSON, v.Type())
}

func number(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, f)
	}
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f), nil
	}
	return f, nil
}

func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	n := t.Len()
	keys := 0
	t.ForEach(func(lua.LValue, lua.LValue) { keys++ })

	if n > 0 && keys == n {
		arr := make([]any, n)
		for i := range arr {
			e, err := c.toGo(t.RawGetInt(i+1), depth)
			if err != nil {
				return nil, err
			}
			arr[i] = e
		}
		return arr, nil
	}

	obj := make(map[string]any, keys)
	var err error
	t.ForEach(func(k, e lua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch k := k.(type) {
		case lua.LString:
			key = string(k)
		case lua.LNumber:
			key = strconv.FormatFloat(float64(k), 'f', -1, 64)
		default:
			err = fmt.Errorf("%w: table key of type %s", ErrNotJSON, k.Type())
			return
		}
		obj[key], err = c.toGo(e, depth)
	})
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// Strings reads a Lua array of strings, or a string of space-separated
// words, as Auth0 accepts both for a scope. Nil reads as no strings.
func Strings(v lua.LValue) ([]string, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LString:
		return strings.Fields(string(v)), nil
	case *lua.LTable:
		n, keys := v.Len(), 0
		v.ForEach(func(lua.LValue, lua.LValue) { keys++ })
		if keys != n {
			return nil, errors.New("table is not an array")
		}
		out := make([]string, n)
		for i := range out {
			s, ok := v.RawGetInt(i + 1).(lua.LString)
			if !ok {
				return nil, fmt.Errorf("entry %d is not a string", i+1)
			}
			out[i] = string(s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is neither an array nor a string", v.Type())
}
