package rules

import (
	"bytes"
	"encoding/json"
	"io"

	lua "github.com/yuin/gopher-lua"
)

// newJSONModule builds the json module programs see: json.encode(value)
// returns a string, json.decode(string) returns a value; both raise a Lua
// error on input they cannot convert.
func (s *State) newJSONModule() *lua.LTable {
	return s.l.SetFuncs(s.l.NewTable(), map[string]lua.LGFunction{
		"encode": s.jsonEncode,
		"decode": jsonDecode,
	})
}

// jsonEncode encodes a value, read-only tables as what they show.
func (s *State) jsonEncode(l *lua.LState) int {
	v, err := s.ToGo(l.CheckAny(1))
	if err != nil {
		l.RaiseError("json.encode: %v", err)
		return 0
	}
	if over(v, s.maxOut) {
		l.RaiseError("json.encode: the result would be longer than %d bytes", s.maxOut)
		return 0
	}
	out, err := json.Marshal(v)
	if err != nil {
		l.RaiseError("json.encode: %v", err)
		return 0
	}
	l.Push(lua.LString(out))
	return 1
}

// over reports whether v's JSON is surely longer than max: it adds up
// what v holds and stops once past max, before anything is encoded.
func over(v any, max int) bool {
	n := 0
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			n += len(v) + 2
		case map[string]any:
			for k, e := range v {
				n += len(k) + 4
				if n > max || walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range v {
				n++
				if n > max || walk(e) {
					return true
				}
			}
		default:
			n += 8
		}
		return n > max
	}
	return walk(v)
}

func jsonDecode(l *lua.LState) int {
	dec := json.NewDecoder(bytes.NewReader([]byte(l.CheckString(1))))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		l.RaiseError("json.decode: %v", err)
		return 0
	}
	if _, err := dec.Token(); err != io.EOF {
		l.RaiseError("json.decode: data after the JSON value")
		return 0
	}
	l.Push(ToLua(l, v))
	return 1
}
