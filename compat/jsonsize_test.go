package compat

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// encodedLen is what jsonSize must agree with: encoding/json's length,
// without HTML escaping and without the encoder's newline.
func encodedLen(t testing.TB, v any) int {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	return buf.Len() - 1
}

func TestJSONSize_MatchesEncoding(t *testing.T) {
	for _, v := range []any{
		nil, true, false, "", "plain", `"quoted" and \back\`,
		"\b\f\n\r\t", "\x00\x01\x1f\x7f", "<html> & 'x'", "é漢字😀",
		"\xff\xfe bad \xc3", "\u2028\u2029", "a\u2028b",
		int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), 0.5, -2.25, 1e-6, 9.99e-7, 1e-7, 1.5e-300,
		1e20, 1e21, -1e21, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64,
		[]any{}, []any{nil}, []any{int64(1), "x", []any{}},
		map[string]any{}, map[string]any{"k": nil},
		map[string]any{"a\nb": []any{1.5, map[string]any{"\u2028": "\xff"}}},
		// Shapes rules.ToGo does not make, measured the slow way.
		[]string{"a", "b"}, map[string]string{"k": "v"}, json.Number("12.50"), 7,
	} {
		got, err := jsonSize(v, math.MaxInt)
		if err != nil {
			t.Errorf("jsonSize(%#v): %v", v, err)
			continue
		}
		if want := encodedLen(t, v); got != want {
			t.Errorf("jsonSize(%#v) = %d, want %d", v, got, want)
		}
	}
}

func TestJSONSize_RandomValues(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for i := range 2000 {
		v := randomJSON(r, 4)
		got, err := jsonSize(v, math.MaxInt)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if want := encodedLen(t, v); got != want {
			t.Fatalf("value %d, %#v: jsonSize = %d, want %d", i, v, got, want)
		}
	}
}

// randomJSON returns a value of the shapes rules.ToGo makes, with strings
// drawn from bytes that exercise every escape.
func randomJSON(r *rand.Rand, depth int) any {
	kind := r.IntN(7)
	if depth == 0 {
		kind = r.IntN(5)
	}
	switch kind {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return randomString(r)
	case 3:
		return int64(r.Uint64())
	case 4:
		return math.Float64frombits(r.Uint64()&^(0x7ff<<52) | uint64(r.IntN(0x7ff))<<52) // finite
	case 5:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randomJSON(r, depth-1)
		}
		return a
	}
	m := map[string]any{}
	for range r.IntN(5) {
		m[randomString(r)] = randomJSON(r, depth-1)
	}
	return m
}

func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", `"`, `\`, "\n", "\b", "\x00", "\x1f", "\x7f",
		"<", "&", "é", "漢", "😀", "\u2028", "\u2029", "\xff", "\xe2\x80", "\xed\xa0\x80"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestJSONSize_NoJSONForm(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), []any{"x", math.Inf(-1)}, map[string]any{"c": make(chan int)}} {
		if _, err := jsonSize(v, math.MaxInt); err == nil {
			t.Errorf("jsonSize(%#v): no error, want one", v)
		}
	}
}

// TestJSONSize_StopsAtLimit: claims that hold one large string many times
// are refused after reading about the limit, not all of it.
func TestJSONSize_StopsAtLimit(t *testing.T) {
	big := strings.Repeat("\x01", 1<<20) // 6 MiB once escaped
	bomb := map[string]any{"https://example.com/bomb": make([]any, 10_000)}
	for i := range bomb["https://example.com/bomb"].([]any) {
		bomb["https://example.com/bomb"].([]any)[i] = big
	}
	small := strings.Repeat("\x01", MaxClaimsSize/6)
	justOver := map[string]any{"a": []any{small, small}}

	for _, tt := range []struct {
		name   string
		claims map[string]any
	}{{"ten thousand copies of 1 MiB", bomb}, {"just over", justOver}} {
		var size int
		allocs := testing.AllocsPerRun(1, func() {
			var err error
			if size, err = jsonSize(tt.claims, MaxClaimsSize); err != nil {
				t.Fatal(err)
			}
		})
		if size <= MaxClaimsSize {
			t.Errorf("%s: size %d, want more than %d", tt.name, size, MaxClaimsSize)
		}
		if allocs > 0 {
			t.Errorf("%s: %v allocations, want none", tt.name, allocs)
		}
	}
}

// BenchmarkJSONSize_Bomb measures the refusal of a claim of 10,000 copies
// of a 1 MiB string: about the limit is read, not 10 GiB.
func BenchmarkJSONSize_Bomb(b *testing.B) {
	big := strings.Repeat("x", 1<<20)
	arr := make([]any, 10_000)
	for i := range arr {
		arr[i] = big
	}
	claims := map[string]any{"https://example.com/bomb": arr}
	for b.Loop() {
		if n, _ := jsonSize(claims, MaxClaimsSize); n <= MaxClaimsSize {
			b.Fatal("not over")
		}
	}
}

func FuzzJSONSize(f *testing.F) {
	f.Add("plain", 1.5, int64(3))
	f.Add("\u2028\xff\"\\\x00", 1e-7, int64(-1))
	f.Add("é漢😀\n", 1e21, int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		v := map[string]any{s: []any{s, x, n, map[string]any{"k": s}}}
		got, err := jsonSize(v, math.MaxInt)
		if err != nil {
			t.Fatal(err)
		}
		want := encodedLen(t, v)
		if got != want {
			t.Fatalf("jsonSize(%#v) = %d, want %d", v, got, want)
		}
		// With a limit, the answer is exact up to it and past it above.
		limit := want / 2
		if got, _ := jsonSize(v, limit); got <= limit {
			t.Fatalf("limit %d: got %d, want more", limit, got)
		}
	})
}
