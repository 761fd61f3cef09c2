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
	out, err := json.Marshal(v)
	if err != nil {
		l.RaiseError("json.encode: %v", err)
		return 0
	}
	l.Push(lua.LString(out))
	return 1
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
