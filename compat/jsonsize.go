package compat

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// jsonSize returns the length of v encoded as encoding/json encodes it
// without HTML escaping, as the token will carry it. It stops counting
// once the length passes limit and then returns some length above limit:
// a rule can hand over a table holding one large string many times, and
// measuring it by encoding would build all of it. A value with no JSON
// form (a NaN, a channel) is an error.
func jsonSize(v any, limit int) (int, error) {
	w := sizeWalk{limit: limit}
	w.value(v)
	return w.n, w.err
}

// sizeWalk adds up an encoding's length until it passes limit or meets a
// value with no JSON form.
type sizeWalk struct {
	n, limit int
	err      error
}

// over reports whether the walk should stop.
func (w *sizeWalk) over() bool { return w.n > w.limit || w.err != nil }

func (w *sizeWalk) value(v any) {
	if w.over() {
		return
	}
	switch v := v.(type) {
	case nil:
		w.n += len("null")
	case bool:
		w.n += len(strconv.FormatBool(v))
	case string:
		w.string(v)
	case int64:
		var b [24]byte
		w.n += len(strconv.AppendInt(b[:0], v, 10))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			w.err = &json.UnsupportedValueError{Str: strconv.FormatFloat(v, 'g', -1, 64)}
			return
		}
		w.n += floatSize(v)
	case []any:
		w.n += len("[]") + max(len(v)-1, 0) // brackets and commas
		for _, e := range v {
			if w.value(e); w.over() {
				return
			}
		}
	case map[string]any:
		w.n += len("{}") + max(len(v)-1, 0) + len(v) // braces, commas and colons
		for k, e := range v {
			if w.string(k); w.over() {
				return
			}
			w.value(e)
		}
	default:
		// Not a shape rules.ToGo makes; measured the slow way.
		b, err := json.Marshal(v)
		w.n, w.err = w.n+len(b), err
	}
}

// string adds the length of s as a JSON string. Escaping only lengthens a
// string, so one whose raw bytes already pass the limit is not read.
func (w *sizeWalk) string(s string) {
	w.n += len(`""`) + len(s)
	if w.over() {
		return
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				w.n++ // a two-byte escape
			case c < 0x20:
				w.n += len(`\u00XX`) - 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.n += len(`\ufffd`) - 1 // invalid UTF-8 is replaced
		case r == '\u2028' || r == '\u2029':
			w.n += len(`\u2028`) - size // escaped for JavaScript's sake
		}
		i += size
	}
}

// floatSize returns the length of f as encoding/json writes a float64:
// the shortest form, in exponent notation below 1e-6 and from 1e21, with
// a two-digit negative exponent cut to one ("1e-7", not "1e-07").
func floatSize(f float64) int {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		return n - 1
	}
	return len(b)
}
