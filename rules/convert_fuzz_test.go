package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// errDiscard makes Engine.Run close the state it lent: frozen tables are
// remembered by their state for its whole life.
var errDiscard = errors.New("discard the state")

// FuzzToLua_RoundTrip takes JSON documents, as claims, request bodies and
// json.decode bring them, into Lua and back: ToLua, then ToGo, State.ToGo
// and State.ToGo of the frozen value, and json.encode(json.decode(doc))
// inside a program. None may panic. A document nested deeper than maxDepth
// or with more than maxValues values is refused with ErrNotJSON; any other
// comes back as roundTrip says: objects, arrays, strings, booleans and
// whole numbers unchanged, with the known exceptions it lists.
func FuzzToLua_RoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"sub":"auth0|42","aud":["https://api.example.com"],"exp":1900003600,"app_metadata":{"plan":"pro","roles":["a","b"]}}`,
		`[1,null,3]`, `[1,2,null]`, `[null]`, `[]`, `{}`, `[[]]`, `{"a":[],"b":{},"c":null}`,
		`{"1":"a","2":"b"}`, `0`, `-0`, `1.5`, `1e400`, `-1e400`, `1e-400`, `9007199254740993`,
		`123456789012345678901234567890`, `[1.0,2e0,3E2,0.1]`, `true`, `null`, `"h\u00e9llo \ud83d\ude00 \u0000"`,
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
		strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	} {
		f.Add([]byte(s))
	}
	// One array of exactly maxValues values, and one of a value more.
	f.Add([]byte("[" + strings.Repeat("0,", maxValues-2) + "0]"))
	f.Add([]byte("[" + strings.Repeat("0,", maxValues-1) + "0]"))

	eng := NewEngine(Options{Logger: slog.New(slog.DiscardHandler)})
	prog, err := Compile("roundtrip.lua", []byte(`return json.encode(json.decode(doc))`))
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, doc []byte) {
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		_, err := dec.Token()
		whole := err == io.EOF // doc is one JSON value, as json.decode wants
		want, depth, values := roundTrip(v)
		fits := depth <= maxDepth && values <= maxValues

		check := func(what string, got any, err error) {
			t.Helper()
			switch {
			case !fits && !errors.Is(err, ErrNotJSON):
				t.Errorf("%s: %d deep, %d values: got %v, want ErrNotJSON", what, depth, values, err)
			case fits && err != nil:
				t.Errorf("%s: %v", what, err)
			case fits && !reflect.DeepEqual(got, want):
				t.Errorf("%s: got %#v, want %#v", what, got, want)
			}
		}
		err = eng.Run(t.Context(), func(s *State) error {
			lv := ToLua(s.Lua(), v)
			got, err := ToGo(lv)
			check("ToGo", got, err)
			got, err = s.ToGo(lv)
			check("State.ToGo", got, err)
			got, err = s.ToGo(s.Frozen(v))
			check("State.ToGo of the frozen value", got, err)

			if whole {
				env := s.NewEnv()
				env.RawSetString("doc", lua.LString(doc))
				out, err := s.Load(prog, env)
				encoded, _ := json.Marshal(want)
				switch {
				case !fits && err == nil:
					t.Errorf("json.encode(json.decode(doc)): got %v, want an error", out)
				case fits && err != nil:
					t.Errorf("json.encode(json.decode(doc)): %v", err)
				case fits && out != lua.LString(encoded):
					t.Errorf("json.encode(json.decode(doc)): got %s, want %s", out, encoded)
				}
			}
			return errDiscard
		})
		if err != errDiscard {
			t.Errorf("run: %v", err)
		}
	})
}

// roundTrip returns what a JSON value decoded with UseNumber becomes after
// ToLua and ToGo, how deep its tables nest and how many values ToGo visits.
// The known exceptions, all from Lua's single table and number types:
//
//   - null in an object or array is no entry: Lua tables hold no nil. An
//     array's trailing nulls are dropped; an array with a null before its
//     last value has a hole and becomes an object keyed by the positions of
//     its values ("1", "3").
//   - An empty array is an empty object: Lua has one empty table.
//   - Numbers are float64: a whole number up to 2^53 comes back an int64,
//     1.0 and 1e3 included; beyond that a float64, rounded (2^53+1 comes
//     back 2^53); a fraction a float64; a number float64 cannot hold
//     (1e400) comes back as its text, a string.
func roundTrip(v any) (want any, depth, values int) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return v.String(), 0, 1
		}
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int64(f), 0, 1
		}
		return f, 0, 1

	case []any:
		n := len(v)
		for n > 0 && v[n-1] == nil {
			n--
		}
		holes := false
		for _, e := range v[:n] {
			holes = holes || e == nil
		}
		if n > 0 && !holes {
			arr := make([]any, n)
			values = 1
			for i, e := range v[:n] {
				var d, c int
				arr[i], d, c = roundTrip(e)
				depth, values = max(depth, d), values+c
			}
			return arr, depth + 1, values
		}
		obj := map[string]any{}
		values = 1
		for i, e := range v[:n] {
			if e != nil {
				var d, c int
				obj[strconv.Itoa(i+1)], d, c = roundTrip(e)
				depth, values = max(depth, d), values+c
			}
		}
		return obj, depth + 1, values

	case map[string]any:
		obj := map[string]any{}
		values = 1
		for k, e := range v {
			if e != nil {
				var d, c int
				obj[k], d, c = roundTrip(e)
				depth, values = max(depth, d), values+c
			}
		}
		return obj, depth + 1, values
	}
	return v, 0, 1 // nil, a bool or a string
}
