package server

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/mmdb-go/mmdb/internal/jsonvec"
	"github.com/mmdb-go/mmdb/query"
)

// maxConditions bounds the conditions of one filter, so that a hostile
// request cannot make a filter the planner spends long on.
const maxConditions = 1024

// filterTranslator turns a Qdrant filter into mmdb's filter expression,
// counting conditions and depth as it goes.
type filterTranslator struct{ conds int }

// translateFilter reads a Qdrant filter (must / should / must_not of field
// conditions: match value, any, except; range; is_empty; is_null; and
// nested filters) as a query.Expr, nil for no filter. What mmdb cannot
// express is refused with a message naming it, never ignored: geo,
// full-text, values_count, nested-object and has_id conditions, and
// min_should.
func translateFilter(raw json.RawMessage) (query.Expr, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var t filterTranslator
	e, err := t.filter(raw, 0)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if err := query.Validate(e); err != nil {
			return nil, badf("filter: %v", err)
		}
	}
	return e, nil
}

// object decodes a JSON object into its members, refusing anything else
// and repeated keys (encoding/json would keep the last).
func object(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badf("%s: want a JSON object, got %s", what, abbreviate(raw))
	}
	if err := jsonvec.Fields(raw, func(k string, v json.RawMessage) error { m[k] = v; return nil }); err != nil {
		return nil, badf("%s: %v", what, err)
	}
	return m, nil
}

// abbreviate shortens raw JSON for an error message.
func abbreviate(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func (t *filterTranslator) filter(raw json.RawMessage, depth int) (query.Expr, error) {
	if depth > query.MaxFilterDepth {
		return nil, badf("filter: nests deeper than %d", query.MaxFilterDepth)
	}
	m, err := object(raw, "filter")
	if err != nil {
		return nil, err
	}
	var parts []query.Expr
	for _, k := range sortedKeys(m) {
		v := m[k]
		if isNull(v) {
			continue
		}
		switch k {
		case "must", "should", "must_not":
			conds, err := t.conditions(v, depth)
			if err != nil {
				if depth > 0 {
					return nil, err // named once, at the top
				}
				return nil, badf("filter %s: %v", k, message(err))
			}
			// A nil condition is one that always holds (an empty filter).
			always := slices.Contains(conds, nil)
			conds = slices.DeleteFunc(conds, func(e query.Expr) bool { return e == nil })
			switch {
			case len(conds) == 0 && !always:
				continue // Qdrant: an empty list restricts nothing
			case k == "must":
				if len(conds) > 0 {
					parts = append(parts, and(conds))
				}
			case k == "should":
				if !always {
					parts = append(parts, or(conds))
				}
			case always: // must_not of a condition that always holds
				return never(), nil
			default:
				parts = append(parts, query.Not(or(conds)))
			}
		case "min_should":
			return nil, badf("filter: min_should is not supported by mmdb serve (use should for at least one)")
		default:
			return nil, badf("filter: unknown member %q (want must, should, must_not)", k)
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	return and(parts), nil
}

func and(es []query.Expr) query.Expr {
	if len(es) == 1 {
		return es[0]
	}
	return query.And(es...)
}

func or(es []query.Expr) query.Expr {
	if len(es) == 1 {
		return es[0]
	}
	return query.Or(es...)
}

// never is a filter no item matches.
func never() query.Expr { return query.And(query.Has(neverKey), query.Not(query.Has(neverKey))) }

// neverKey is the attribute never's EXISTS tests name (any name will do:
// EXISTS may name an attribute no item has).
const neverKey = "_"

// conditions reads one condition or a list of them; a nil condition
// always holds.
func (t *filterTranslator) conditions(raw json.RawMessage, depth int) ([]query.Expr, error) {
	raw = bytes.TrimSpace(raw)
	var list []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, badf("want a condition or a list of conditions: %v", err)
		}
	} else {
		list = []json.RawMessage{raw}
	}
	out := make([]query.Expr, 0, len(list))
	for _, c := range list {
		e, err := t.condition(c, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (t *filterTranslator) condition(raw json.RawMessage, depth int) (query.Expr, error) {
	t.conds++
	if t.conds > maxConditions {
		return nil, badf("more than %d conditions", maxConditions)
	}
	m, err := object(raw, "condition")
	if err != nil {
		return nil, err
	}
	switch {
	case m["key"] != nil:
		return fieldCondition(m)
	case m["is_empty"] != nil, m["is_null"] != nil:
		return emptyOrNull(m)
	case m["has_id"] != nil:
		return nil, badf("has_id conditions are not supported by mmdb serve: filters read attributes (retrieve points by ID, or leave IDs out of a search with mmdb's EXCLUDE through POST /query)")
	case m["has_vector"] != nil:
		return nil, badf("has_vector conditions are not supported by mmdb serve")
	case m["nested"] != nil:
		return nil, badf("nested conditions are not supported: mmdb stores no nested payload objects")
	case m["must"] != nil, m["should"] != nil, m["must_not"] != nil, m["min_should"] != nil, len(m) == 0:
		return t.filter(raw, depth+1)
	}
	return nil, badf("unknown condition %s", abbreviate(raw))
}

// fieldCondition reads {"key": ..., "match" | "range" | "is_empty" | "is_null": ...}.
func fieldCondition(m map[string]json.RawMessage) (query.Expr, error) {
	var key string
	if err := json.Unmarshal(m["key"], &key); err != nil || key == "" {
		return nil, badf("condition key %s: want a non-empty string", abbreviate(m["key"]))
	}
	var out query.Expr
	for _, k := range sortedKeys(m) {
		v := m[k]
		if k == "key" || isNull(v) {
			continue
		}
		if out != nil {
			return nil, badf("condition on %q has more than one test (%s and another): give one per condition", key, k)
		}
		var err error
		switch k {
		case "match":
			out, err = matchCondition(key, v)
		case "range":
			out, err = rangeCondition(key, v)
		case "is_empty", "is_null":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return nil, badf("condition on %q: %s wants true or false", key, k)
			}
			out = emptyTest(key, k == "is_null", b)
		case "geo_bounding_box", "geo_radius", "geo_polygon", "values_count", "datetime_range":
			return nil, badf("condition on %q: %s is not supported by mmdb serve", key, k)
		default:
			return nil, badf("condition on %q: unknown test %q", key, k)
		}
		if err != nil {
			return nil, err
		}
	}
	if out == nil {
		return nil, badf("condition on %q tests nothing (want match, range, is_empty or is_null)", key)
	}
	return out, nil
}

// emptyTest is is_empty (no value: mmdb stores no nulls and no empty
// lists as values) or is_null (never true: mmdb stores no nulls), or their
// negation.
func emptyTest(key string, null, want bool) query.Expr {
	var e query.Expr
	if null {
		e = query.And(query.Has(key), query.Not(query.Has(key))) // matches nothing
	} else {
		e = query.Not(query.Has(key))
	}
	if !want {
		return query.Not(e)
	}
	return e
}

// emptyOrNull reads {"is_empty": {"key": ...}} and {"is_null": {"key": ...}}.
func emptyOrNull(m map[string]json.RawMessage) (query.Expr, error) {
	if len(m) != 1 {
		return nil, badf("an is_empty or is_null condition has one member")
	}
	for k, v := range m {
		var f struct {
			Key string `json:"key"`
		}
		if err := strictUnmarshal(v, &f); err != nil || f.Key == "" {
			return nil, badf("%s: want {\"key\": NAME}", k)
		}
		return emptyTest(f.Key, k == "is_null", true), nil
	}
	return nil, nil
}

// matchCondition reads match: {"value": v}, {"any": [...]}, {"except": [...]}.
func matchCondition(key string, raw json.RawMessage) (query.Expr, error) {
	m, err := object(raw, "match on "+key)
	if err != nil {
		return nil, err
	}
	if len(m) != 1 {
		return nil, badf("match on %q: want one of value, any, except", key)
	}
	for k, v := range m {
		switch k {
		case "value":
			lit, err := literal(v)
			if err != nil {
				return nil, badf("match on %q: %v", key, err)
			}
			return query.Eq(key, lit), nil
		case "any", "except":
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, badf("match %s on %q: want a list", k, key)
			}
			vals := make([]any, len(list))
			for i, e := range list {
				if vals[i], err = literal(e); err != nil {
					return nil, badf("match %s on %q: %v", k, key, err)
				}
			}
			if k == "any" {
				return query.In(key, vals...), nil
			}
			// except: the point has the key and none of the values, as
			// mmdb's != (an item without the attribute does not match).
			return query.And(query.Has(key), query.Not(query.In(key, vals...))), nil
		case "text", "text_any", "phrase", "prefix":
			return nil, badf("match %s on %q: full-text matching is not supported by mmdb serve", k, key)
		}
		return nil, badf("match on %q: unknown %q (want value, any, except)", key, k)
	}
	return nil, nil
}

// literal reads a match value: a string, a bool, an integer, or another
// number.
func literal(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		return number(x)
	}
	return nil, badf("value %s: want a string, a number or a bool", abbreviate(raw))
}

// number reads a JSON number: an integer (no fraction or exponent) as
// int64, refused beyond its range (a float64 would round it), and other
// numbers as finite float64.
func number(n json.Number) (any, error) {
	if !strings.ContainsAny(string(n), ".eE") {
		i, err := n.Int64()
		if err != nil {
			return nil, badf("integer %s is beyond int64, which mmdb stores integers as", n)
		}
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, badf("number %s is outside float64's range", n)
	}
	return f, nil
}

// rangeCondition reads range: {"gt", "gte", "lt", "lte"}.
func rangeCondition(key string, raw json.RawMessage) (query.Expr, error) {
	m, err := object(raw, "range on "+key)
	if err != nil {
		return nil, err
	}
	var parts []query.Expr
	for _, k := range sortedKeys(m) {
		v := m[k]
		if isNull(v) {
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, badf("range on %q: %s wants a number (datetime ranges are not supported)", key, k)
		}
		x, err := number(n)
		if err != nil {
			return nil, err
		}
		switch k {
		case "gt":
			parts = append(parts, query.Gt(key, x))
		case "gte":
			parts = append(parts, query.Ge(key, x))
		case "lt":
			parts = append(parts, query.Lt(key, x))
		case "lte":
			parts = append(parts, query.Le(key, x))
		default:
			return nil, badf("range on %q: unknown bound %q (want gt, gte, lt, lte)", key, k)
		}
	}
	if len(parts) == 0 {
		return nil, badf("range on %q has no bound", key)
	}
	return and(parts), nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
