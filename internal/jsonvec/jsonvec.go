// Package jsonvec reads JSON strictly where encoding/json is lenient:
// arrays of numbers into []float32 (null, strings and out-of-range numbers
// are errors, not zeros or infinities), and objects whose keys must match
// exactly and appear once (encoding/json matches struct fields without
// regard to case and keeps the last of repeated keys).
package jsonvec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Floats is a JSON array of numbers read strictly into float32s: null,
// strings, NaN/Infinity spellings and numbers beyond float32's range are
// errors that name the element.
type Floats []float32

// UnmarshalJSON implements json.Unmarshaler. A JSON null as the whole
// value leaves f nil (as for any slice); null among the numbers is an
// error.
func (f *Floats) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*f = nil
		return nil
	}
	v, err := ParseFloats(b)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseFloats parses a JSON array of numbers into float32s (see Floats).
func ParseFloats(b []byte) ([]float32, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return nil, errors.New("null where a list of numbers is needed")
		}
		return nil, errors.New("not a list of numbers")
	}
	i = skipSpace(b, i+1)
	out := make([]float32, 0, len(b)/8)
	if i < len(b) && b[i] == ']' {
		return out, trailing(b, i+1)
	}
	for {
		start := i
		for i < len(b) && !isDelim(b[i]) {
			i++
		}
		tok := b[start:i]
		if err := checkNumber(tok); err != nil {
			return nil, fmt.Errorf("element %d: %w", len(out), err)
		}
		x, err := strconv.ParseFloat(string(tok), 32)
		if err != nil || math.IsInf(x, 0) {
			return nil, fmt.Errorf("element %d: %s is beyond float32's range", len(out), tok)
		}
		out = append(out, float32(x))
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errors.New("unterminated list")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return out, trailing(b, i+1)
		default:
			return nil, fmt.Errorf("element %d: unexpected %q", len(out), b[i])
		}
	}
}

func trailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errors.New("text after the list")
	}
	return nil
}

// Nested reports whether b is a JSON list whose first element is a list
// ([[...], ...]): a set of vectors rather than one.
func Nested(b []byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return false
	}
	i = skipSpace(b, i+1)
	return i < len(b) && b[i] == '['
}

func isDelim(c byte) bool {
	return c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// checkNumber accepts exactly JSON's number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func checkNumber(t []byte) error {
	bad := func() error {
		if len(t) == 0 {
			return errors.New("missing number")
		}
		if string(t) == "null" {
			return errors.New("null is not a number")
		}
		return fmt.Errorf("%.40q is not a number", t)
	}
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(t) && t[i] == '0' {
		i++
	} else if digits() == 0 {
		return bad()
	}
	if i < len(t) && t[i] == '.' {
		i++
		if digits() == 0 {
			return bad()
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		if digits() == 0 {
			return bad()
		}
	}
	if i != len(t) {
		return bad()
	}
	return nil
}

// Fields calls fn with each key of the JSON object in b and its raw value,
// in order. Keys are compared exactly (no case folding); a repeated key, or
// anything but an object, is an error.
func Fields(b []byte, fn func(key string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // inside an object, the decoder gives keys as strings
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if err := fn(key, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("text after the JSON object")
	}
	return nil
}

// CheckEscapes reports a \u escape in b's strings that encodes half of a
// surrogate pair without the other half: encoding/json decodes it to
// U+FFFD, so "k\ud800" and "k\udbff" would become one string. b is JSON
// text; only its strings are looked at.
func CheckEscapes(b []byte) error {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(b):
			if b[i+1] != 'u' {
				i++ // a one-character escape, \\ among them
				continue
			}
			r, ok := hex4(b, i+2)
			switch {
			case !ok:
				continue // not valid JSON: the decoder says so
			case r >= 0xDC00 && r <= 0xDFFF:
				return fmt.Errorf("a lone low surrogate \\u%04x at byte %d", r, i)
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), false
				if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
					lo, ok = hex4(b, i+8)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return fmt.Errorf("a lone high surrogate \\u%04x at byte %d", r, i)
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}
