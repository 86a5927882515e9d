package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/google/uuid"
	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/jsonvec"
)

// errBadRequest marks what the client sent wrong: HTTP 400.
var errBadRequest = errors.New("bad request")

// badf is a 400 error with a message.
func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// pointID reads a Qdrant point ID (an unsigned integer or a string) as
// mmdb's item ID: integers in decimal; UUIDs in Qdrant's canonical form
// (lower case, hyphenated), whichever form they came in; other strings as
// they are (Qdrant takes only UUIDs; mmdb takes any ID, so a database
// whose IDs are names, "cat-0001", is served with its IDs unchanged). A
// string holding an integer is refused: "5" and 5 would be one point.
func pointID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", badf("a point ID is missing (want an unsigned integer or a string)")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badf("point ID %s: %v", raw, err)
		}
		return stringID(s)
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return "", badf("point ID %s is not an unsigned integer or a string", raw)
	}
	return strconv.FormatUint(n, 10), nil
}

// stringID is a point ID given as a string. A UUID in the hyphenated form
// takes Qdrant's canonical form (lower case); other strings are kept as
// they are, so that every ID the server shows can be given back: 32 hex
// digits (a hash as an ID) stay as they are, and so does "007". Only the
// canonical decimal form of an integer is refused, since it names the
// point shown as that number.
func stringID(s string) (string, error) {
	if s == "" || len(s) > mmdb.MaxIDLen {
		return "", badf("point ID %q: want 1 to %d bytes", s, mmdb.MaxIDLen)
	}
	if isDecimal(s) {
		return "", badf("point ID %q is an integer written as a string: give it as a number", s)
	}
	if len(s) == 36 {
		if u, err := uuid.Parse(s); err == nil {
			return u.String(), nil
		}
	}
	return s, nil
}

// isDecimal: s is an unsigned 64-bit integer in its canonical decimal
// form, as outID shows a number.
func isDecimal(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && strconv.FormatUint(n, 10) == s
}

// pathID is a point ID from a URL path: an integer in decimal is that
// point; anything else is a string ID.
func pathID(s string) (string, error) {
	if isDecimal(s) {
		return s, nil
	}
	return stringID(s)
}

// pointIDs reads a list of point IDs.
func pointIDs(raws []json.RawMessage) ([]string, error) {
	ids := make([]string, len(raws))
	for i, r := range raws {
		id, err := pointID(r)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// outID is an item ID as a Qdrant client reads it: a number when it is the
// decimal form of an unsigned 64-bit integer, the string otherwise.
func outID(id string) any {
	if isDecimal(id) {
		n, _ := strconv.ParseUint(id, 10, 64)
		return n
	}
	return id
}

// payloadAttrs turns a Qdrant payload into mmdb attributes: strings, bools,
// integers (int64), other numbers (float64) and lists of strings. What mmdb
// cannot store (nested objects, null, lists of numbers) is refused, naming
// the point and the key: nothing is dropped or changed silently.
func payloadAttrs(id string, raw json.RawMessage) (map[string]any, error) {
	return payloadOf("point "+id, raw)
}

// payloadOf is payloadAttrs with who naming where the payload came from.
func payloadOf(who string, raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, badf("%s: payload: want a JSON object", who)
	}
	attrs := map[string]any{}
	err := jsonvec.Fields(raw, func(k string, v json.RawMessage) error {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return badf("%s: payload key %q: %v", who, k, err)
		}
		a, err := attrValue(x)
		if err != nil {
			return badf("%s: payload key %q: %v", who, k, message(err))
		}
		attrs[k] = a
		return nil
	})
	if err != nil {
		if errors.Is(err, errBadRequest) {
			return nil, err
		}
		return nil, badf("%s: payload: %v", who, err)
	}
	return attrs, nil
}

// attrValue converts one decoded JSON payload value.
func attrValue(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		return number(x)
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("a list must hold only strings (element %d is %s)", i, jsonKind(e))
			}
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, errors.New("null values are not stored by mmdb: leave the key out")
	default:
		return nil, fmt.Errorf("%s values are not stored by mmdb (strings, numbers, bools and lists of strings are)", jsonKind(v))
	}
}

// jsonKind names a decoded JSON value's kind for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// payloadSelector is what with_payload asks for: nothing, everything, or
// some keys (include) or all but some (exclude).
type payloadSelector struct {
	all, none bool
	include   map[string]bool
	exclude   map[string]bool
}

// parsePayloadSelector reads with_payload: true, false, a list of keys, or
// {"include": [...]} / {"exclude": [...]}. Absent means def.
func parsePayloadSelector(raw json.RawMessage, def bool) (payloadSelector, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return payloadSelector{all: def, none: !def}, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return payloadSelector{all: b, none: !b}, nil
	}
	var keys []string
	if json.Unmarshal(raw, &keys) == nil {
		return payloadSelector{include: set(keys)}, nil
	}
	var sel struct {
		Include []string `json:"include"`
		Exclude []string `json:"exclude"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil || (sel.Include == nil) == (sel.Exclude == nil) {
		return payloadSelector{}, badf("with_payload %s: want true, false, a list of keys, {\"include\": [...]} or {\"exclude\": [...]}", raw)
	}
	if sel.Include != nil {
		return payloadSelector{include: set(sel.Include)}, nil
	}
	return payloadSelector{exclude: set(sel.Exclude)}, nil
}

func set(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// apply returns the payload to send for attrs, nil when none is asked for.
// A float that holds an integer keeps its point (5.0, not 5): it was
// stored as a float and reads back as one.
func (s payloadSelector) apply(attrs map[string]any) *map[string]any {
	if s.none {
		return nil
	}
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if !s.all && !((s.include != nil && s.include[k]) || (s.exclude != nil && !s.exclude[k])) {
			continue
		}
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1e21 {
			v = json.Number(strconv.FormatFloat(f, 'f', 1, 64))
		}
		out[k] = v
	}
	return &out
}

// vectorSelector is what with_vector asks for: nil for none, or the
// modality names.
func parseVectorSelector(raw json.RawMessage, mods []mmdb.Modality) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if !b {
			return nil, nil
		}
		names := make([]string, len(mods))
		for i, m := range mods {
			names[i] = m.Name
		}
		return names, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, badf("with_vector %s: want true, false or a list of vector names", raw)
	}
	for _, n := range names {
		if !hasModality(mods, n) {
			return nil, badf("with_vector: no vector named %q (have %s)", n, modalityNames(mods))
		}
	}
	return names, nil
}

// outVectors is an item's vectors as Qdrant shows named vectors: each a
// list of numbers, or a list of lists for a multi-vector modality; the
// vector itself in a collection of one unnamed vector.
func outVectors(it mmdb.Item, names []string, mods []mmdb.Modality) any {
	if isUnnamed(mods) {
		if v, ok := it.Vectors[defaultVector]; ok {
			return oneVector(mods[0], v)
		}
		return nil
	}
	out := map[string]any{}
	for _, n := range names {
		v, ok := it.Vectors[n]
		if !ok {
			continue
		}
		m, _ := modalityOf(mods, n)
		out[n] = oneVector(m, v)
	}
	return out
}

func oneVector(m mmdb.Modality, v []float32) any {
	if m.IsMulti() {
		return m.Split(v)
	}
	return v
}

// isUnnamed: a collection whose only modality is "vector" is shown as
// Qdrant shows a collection of one unnamed vector (its config and points
// carry the vector itself, not a map of names).
func isUnnamed(mods []mmdb.Modality) bool {
	return len(mods) == 1 && mods[0].Name == defaultVector
}

func hasModality(mods []mmdb.Modality, name string) bool {
	_, ok := modalityOf(mods, name)
	return ok
}

func modalityOf(mods []mmdb.Modality, name string) (mmdb.Modality, bool) {
	for _, m := range mods {
		if m.Name == name {
			return m, true
		}
	}
	return mmdb.Modality{}, false
}

func modalityNames(mods []mmdb.Modality) string {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = strconv.Quote(m.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return fmt.Sprint(names)
}
