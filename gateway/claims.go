package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Claims are the members of a JSON object, a token's claims or a token
// answer, each held as its raw JSON text. A member the gateway does not
// change is written back byte for byte as the upstream wrote it, and only
// the members it reads are ever decoded.
type Claims map[string]string

// decodeClaims splits a JSON object into its members. gjson validates and
// splits it in one pass over the text, without decoding the values.
func decodeClaims(data []byte) (Claims, error) {
	if !gjson.ValidBytes(data) {
		return nil, errors.New("decode claims: not valid JSON")
	}
	obj := gjson.ParseBytes(data)
	if !obj.IsObject() {
		return nil, errors.New("decode claims: not a JSON object")
	}
	c := make(Claims, 8)
	obj.ForEach(func(k, v gjson.Result) bool {
		c[k.String()] = v.Raw
		return true
	})
	return c, nil
}

// String returns the claim name if it is a JSON string.
func (c Claims) String(name string) (string, bool) {
	raw := c[name]
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Claims hold validated JSON: a string without escapes is its content.
	if strings.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return "", false
	}
	return s, true
}

// Strings returns the claim name if it is a JSON array of strings.
func (c Claims) Strings(name string) ([]string, bool) {
	raw := c[name]
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var out []string
	if json.Unmarshal([]byte(raw), &out) != nil {
		return nil, false
	}
	return out, true
}

// NumericDate returns the claim name as a time if it is a JSON number
// (RFC 7519 §2).
func (c Claims) NumericDate(name string) (time.Time, bool) {
	f, err := strconv.ParseFloat(c[name], 64)
	// RFC 7519 §2: seconds since the epoch. A value past year 9999, or
	// before 1970, is no date a token can mean (and 1e19 would wrap).
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// Set encodes v as the claim name.
func (c Claims) Set(name string, v any) error {
	if s, ok := v.(string); ok {
		if plainString(s) {
			c[name] = `"` + s + `"`
			return nil
		}
		c[name] = string(appendString(nil, s))
		return nil
	}
	raw, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("encode claim %q: %w", name, err)
	}
	c[name] = string(raw)
	return nil
}

// MarshalJSON writes the claims in key order, each value as it is held:
// values are valid JSON, decoded from the upstream or encoded by Set.
func (c Claims) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(c))
	size := 2
	for k, v := range c {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	slices.Sort(keys)

	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, k)
		out = append(out, ':')
		out = append(out, c[k]...)
	}
	return append(out, '}'), nil
}

// appendString appends s as a JSON string (RFC 8259 §7), leaving <, > and
// & as they are.
func appendString(out []byte, s string) []byte {
	if plainString(s) {
		out = append(out, '"')
		out = append(out, s...)
		return append(out, '"')
	}
	raw, _ := encodeJSON(s) // a string always encodes
	return append(out, raw...)
}

// plainString reports whether s is its own JSON string content: ASCII with
// nothing to escape.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// encodeJSON encodes v without escaping HTML, so values keep the form the
// upstream gave them.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
