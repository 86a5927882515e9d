package jsonvec

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFloats(t *testing.T) {
	cases := []struct {
		in   string
		want []float32
		err  string
	}{
		{`[1, 2.5, -3e-2, 0, -0.0, 1E+2]`, []float32{1, 2.5, -3e-2, 0, 0, 100}, ""},
		{` [ ] `, []float32{}, ""},
		{`[1,null,3]`, nil, "element 1: null is not a number"},
		{`null`, nil, "null where a list of numbers is needed"},
		{`[1,"2"]`, nil, "element 1"},
		{`[NaN]`, nil, "element 0"},
		{`[Infinity]`, nil, "element 0"},
		{`[0x10]`, nil, "element 0"},
		{`[01]`, nil, "element 0"},
		{`[1.]`, nil, "element 0"},
		{`[.5]`, nil, "element 0"},
		{`[1e39]`, nil, "beyond float32's range"},
		{`[1,]`, nil, "element 1: missing number"},
		{`[1 2]`, nil, "element 1: unexpected '2'"},
		{`[1`, nil, "unterminated list"},
		{`[1] x`, nil, "text after the list"},
		{`{}`, nil, "not a list of numbers"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseFloats([]byte(c.in))
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestFields(t *testing.T) {
	var keys []string
	err := Fields([]byte(`{"a":1,"B":[2]}`), func(k string, _ json.RawMessage) error { keys = append(keys, k); return nil })
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "B"}, keys)
	for in, msg := range map[string]string{
		`{"a":1,"a":2}`: `key "a" appears twice`,
		`[1]`:           "not a JSON object",
		`{"a":1} {}`:    "text after the JSON object",
		`{"a":1} x`:     "text after the JSON object",
		`{"a":`:         "EOF",
	} {
		err := Fields([]byte(in), func(string, json.RawMessage) error { return nil })
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), msg, in)
	}
}

// ParseFloats accepts exactly what encoding/json reads as a list of
// numbers without nulls, within float32's range, and gives the same
// values; it never panics.
func FuzzParseFloats(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[]`, `[1,null]`, `[-0.0e-0]`, `[1e39]`, `[ 1 , 2 ]`, `["1"]`, `[1]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseFloats(b)
		var ref []*float64
		refErr := json.Unmarshal(b, &ref)
		ok := refErr == nil && ref != nil
		for _, p := range ref {
			ok = ok && p != nil && math.Abs(*p) <= math.MaxFloat32
		}
		if !ok {
			if err == nil && refErr == nil {
				// float64 in range but rounding to float32 overflows at
				// the edge: both answers are defensible only if ours erred.
				t.Fatalf("accepted %q, which encoding/json reads as %v", b, ref)
			}
			return
		}
		require.NoError(t, err, "%q", b)
		require.Len(t, got, len(ref))
		for i, p := range ref {
			assert.Equal(t, float32(*p), got[i])
		}
	})
}

func TestFloatsUnmarshal(t *testing.T) {
	var v struct{ E Floats }
	require.NoError(t, json.Unmarshal([]byte(`{"E":null}`), &v))
	assert.Nil(t, v.E)
	require.NoError(t, json.Unmarshal([]byte(`{"E":[1,2]}`), &v))
	assert.Equal(t, Floats{1, 2}, v.E)
	err := json.Unmarshal([]byte(`{"E":[1,null]}`), &v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "element 1: null is not a number")
}

func TestCheckEscapes(t *testing.T) {
	for in, bad := range map[string]bool{
		`{"id":"k\ud800"}`:             true,
		`{"id":"k\udbff","x":1}`:       true,
		`{"id":"\udc00"}`:              true,
		`{"id":"\ud800\u0041"}`:        true,
		`{"id":"\ud83d\ude00"}`:        false, // a valid pair: U+1F600
		`{"id":"\\ud800"}`:             false, // an escaped backslash, then text
		`{"id":"\u00e9\n\"\\"}`:        false,
		`{"ud800":"\\\\\ud83d\ude00"}`: false,
	} {
		err := CheckEscapes([]byte(in))
		if bad {
			assert.Error(t, err, in)
		} else {
			assert.NoError(t, err, in)
		}
	}
}

// What CheckEscapes passes, encoding/json decodes without inventing a
// U+FFFD.
func FuzzCheckEscapes(f *testing.F) {
	for _, s := range []string{`"k\ud800"`, `"\ud83d\ude00"`, `"\\ud800"`, `"a\u0041"`, `"\udc00\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckEscapes(b)
		var s string
		if err != nil || json.Unmarshal(b, &s) != nil || !utf8.Valid(b) {
			return
		}
		if bytes.Contains(b, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`)) {
			return
		}
		assert.NotContains(t, s, "\uFFFD", "%q", b)
	})
}

func TestNested(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{`[[1,2],[3,4]]`, true},
		{" \t[ \n[1]]", true},
		{`[[`, true},
		{`[1,[2]]`, false},
		{`[1,2]`, false},
		{`[]`, false},
		{`[ `, false},
		{`null`, false},
		{``, false},
	} {
		assert.Equal(t, c.want, Nested([]byte(c.in)), "%q", c.in)
	}
}
