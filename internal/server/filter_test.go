package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTranslateFilter(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"none", `null`, "<nil>"},
		{"empty", `{}`, "<nil>"},
		{"empty lists", `{"must": [], "should": []}`, "<nil>"},
		{"match string", `{"must": [{"key": "color", "match": {"value": "red"}}]}`, `color = 'red'`},
		{"one condition, not a list", `{"must": {"key": "n", "match": {"value": 3}}}`, `n = 3`},
		{"match bool", `{"must": [{"key": "ok", "match": {"value": true}}]}`, `ok = TRUE`},
		{"any", `{"must": [{"key": "tag", "match": {"any": ["a", "b"]}}]}`, `tag IN ('a', 'b')`},
		{"except", `{"must": [{"key": "tag", "match": {"except": ["a"]}}]}`, `EXISTS tag AND NOT tag IN ('a')`},
		{"range", `{"must": [{"key": "year", "range": {"gte": 2000, "lt": 2010.5}}]}`, `year >= 2000 AND year < 2010.5`},
		{"should", `{"should": [{"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": 2}}]}`, `a = 1 OR b = 2`},
		{"must_not", `{"must_not": [{"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": 2}}]}`, `NOT (a = 1 OR b = 2)`},
		{"all three", `{"must": {"key": "a", "match": {"value": 1}}, "should": [{"key": "b", "match": {"value": 2}}], "must_not": {"key": "c", "match": {"value": 3}}}`,
			`a = 1 AND NOT c = 3 AND b = 2`},
		{"nested filter", `{"must": [{"should": [{"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": 2}}]}, {"key": "c", "match": {"value": 3}}]}`,
			`(a = 1 OR b = 2) AND c = 3`},
		{"is_empty", `{"must": [{"is_empty": {"key": "tags"}}]}`, `NOT EXISTS tags`},
		{"is_null", `{"must": [{"is_null": {"key": "tags"}}]}`, `EXISTS tags AND NOT EXISTS tags`},
		{"empty filter in should", `{"should": [{}, {"key": "a", "match": {"value": 1}}], "must": {"key": "b", "match": {"value": 2}}}`, `b = 2`},
		{"empty filter in must_not", `{"must_not": [{}], "must": {"key": "b", "match": {"value": 2}}}`, `EXISTS _ AND NOT EXISTS _`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := translateFilter(json.RawMessage(c.in))
			require.NoError(t, err)
			if c.want == "<nil>" {
				assert.Nil(t, e)
				return
			}
			assert.Equal(t, query.MustParse(c.want).String(), fmt.Sprint(e))
		})
	}
}

func TestTranslateFilterRefuses(t *testing.T) {
	cases := []struct {
		name, in, msg string
	}{
		{"has_id", `{"must": [{"has_id": [1, 2]}]}`, "has_id"},
		{"geo", `{"must": [{"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}}]}`, "geo_radius"},
		{"full text", `{"must": [{"key": "t", "match": {"text": "dog"}}]}`, "full-text"},
		{"nested object", `{"must": [{"nested": {"key": "a", "filter": {}}}]}`, "nested"},
		{"min_should", `{"min_should": {"conditions": [], "min_count": 1}}`, "min_should"},
		{"misspelt member", `{"mus": []}`, `"mus"`},
		{"unknown test", `{"must": [{"key": "a", "matches": {"value": 1}}]}`, `"matches"`},
		{"two tests", `{"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 0}}]}`, "more than one test"},
		{"empty range", `{"must": [{"key": "a", "range": {}}]}`, "no bound"},
		{"datetime range", `{"must": [{"key": "a", "range": {"gt": "2020-01-01"}}]}`, "datetime"},
		{"null value", `{"must": [{"key": "a", "match": {"value": null}}]}`, "want a string"},
		{"object value", `{"must": [{"key": "a", "match": {"value": {"x": 1}}}]}`, "want a string"},
		{"not an object", `[1]`, "want a JSON object"},
		{"empty key", `{"must": [{"key": "", "match": {"value": 1}}]}`, "non-empty"},
		{"huge number", `{"must": [{"key": "a", "match": {"value": 1e999}}]}`, "range"},
		{"too deep", deepFilter(200), "deeper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := translateFilter(json.RawMessage(c.in))
			require.Error(t, err)
			assert.ErrorIs(t, err, errBadRequest)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}

func deepFilter(n int) string {
	s := `{"key": "a", "match": {"value": 1}}`
	for range n {
		s = `{"must": [` + s + `]}`
	}
	return s
}

// qdrantMatch is Qdrant's filter semantics, written from its
// documentation independently of the translation: a condition on a list
// holds when any element does; must is all, should is at least one,
// must_not is none; except holds for a point that has the key and none of
// the values (mmdb's !=).
func qdrantMatch(f map[string]any, attrs map[string]any) bool {
	conds := func(k string) []any {
		switch v := f[k].(type) {
		case nil:
			return nil
		case []any:
			return v
		default:
			return []any{v}
		}
	}
	for _, c := range conds("must") {
		if !qdrantCond(c.(map[string]any), attrs) {
			return false
		}
	}
	if should := conds("should"); len(should) > 0 {
		if !slices.ContainsFunc(should, func(c any) bool { return qdrantCond(c.(map[string]any), attrs) }) {
			return false
		}
	}
	return !slices.ContainsFunc(conds("must_not"), func(c any) bool { return qdrantCond(c.(map[string]any), attrs) })
}

func qdrantCond(c map[string]any, attrs map[string]any) bool {
	if _, ok := c["key"]; !ok {
		if e, ok := c["is_empty"]; ok {
			_, has := attrs[e.(map[string]any)["key"].(string)]
			return !has
		}
		return qdrantMatch(c, attrs)
	}
	v, has := attrs[c["key"].(string)]
	values := []any{v}
	if list, ok := v.([]string); ok {
		values = values[:0]
		for _, s := range list {
			values = append(values, s)
		}
	}
	eq := func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
	anyOf := func(test func(any) bool) bool { return has && slices.ContainsFunc(values, test) }
	if m, ok := c["match"].(map[string]any); ok {
		switch {
		case m["value"] != nil:
			return anyOf(func(x any) bool { return eq(x, m["value"]) })
		case m["any"] != nil:
			return anyOf(func(x any) bool { return slices.ContainsFunc(m["any"].([]any), func(y any) bool { return eq(x, y) }) })
		case m["except"] != nil:
			return has && !anyOf(func(x any) bool {
				return slices.ContainsFunc(m["except"].([]any), func(y any) bool { return eq(x, y) })
			})
		}
	}
	r := c["range"].(map[string]any)
	return anyOf(func(x any) bool {
		var f float64
		switch n := x.(type) {
		case int64:
			f = float64(n)
		case float64:
			f = n
		default:
			return false
		}
		for op, b := range r {
			bound := b.(float64)
			if (op == "gt" && !(f > bound)) || (op == "gte" && !(f >= bound)) || (op == "lt" && !(f < bound)) || (op == "lte" && !(f <= bound)) {
				return false
			}
		}
		return true
	})
}

// randomQdrantFilter makes a random filter over the attributes of
// randomAttrs.
func randomQdrantFilter(r *rand.Rand, depth int) map[string]any {
	cond := func() any {
		if depth > 0 && r.IntN(4) == 0 {
			return randomQdrantFilter(r, depth-1)
		}
		switch r.IntN(7) {
		case 0:
			return map[string]any{"key": "color", "match": map[string]any{"value": []string{"red", "green", "blue"}[r.IntN(3)]}}
		case 1:
			return map[string]any{"key": "tags", "match": map[string]any{"any": []any{"x", "y"}[:1+r.IntN(2)]}}
		case 2:
			return map[string]any{"key": "color", "match": map[string]any{"except": []any{"red"}}}
		case 3:
			return map[string]any{"key": "n", "range": map[string]any{[]string{"gt", "gte", "lt", "lte"}[r.IntN(4)]: float64(r.IntN(20)) / 2}}
		case 4:
			return map[string]any{"key": "n", "match": map[string]any{"value": float64(r.IntN(10))}}
		case 5:
			return map[string]any{"is_empty": map[string]any{"key": "tags"}}
		default:
			return map[string]any{"key": "x", "range": map[string]any{"gte": float64(r.IntN(10)) / 4, "lt": 2.0}}
		}
	}
	f := map[string]any{}
	for _, k := range []string{"must", "should", "must_not"} {
		if n := r.IntN(3); n > 0 {
			list := make([]any, n)
			for i := range list {
				list[i] = cond()
			}
			f[k] = list
		}
	}
	return f
}

func randomAttrs(r *rand.Rand) map[string]any {
	a := map[string]any{}
	if r.IntN(5) > 0 {
		a["color"] = []string{"red", "green", "blue"}[r.IntN(3)]
	}
	if r.IntN(3) > 0 {
		a["tags"] = []string{"x", "y", "z"}[:1+r.IntN(3)]
	}
	if r.IntN(4) > 0 {
		a["n"] = int64(r.IntN(10))
	}
	a["x"] = float64(r.IntN(12)) / 4
	return a
}

// TestFilterSemantics checks random Qdrant filters, translated and run by
// mmdb's count, against Qdrant's semantics written independently.
func TestFilterSemantics(t *testing.T) {
	ctx := context.Background()
	db, err := mmdb.Open(filepath.Join(t.TempDir(), "f.mmdb"), nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "v", Dim: 2, Metric: mmdb.L2}))
	r := rand.New(rand.NewPCG(1, 2))
	var items []mmdb.Item
	for i := range 300 {
		items = append(items, mmdb.Item{ID: fmt.Sprint(i), Attrs: randomAttrs(r), Vectors: map[string][]float32{"v": {float32(i), 1}}})
	}
	require.NoError(t, db.Put(ctx, items...))
	nonTrivial := 0
	for i := range 400 {
		f := randomQdrantFilter(r, 2)
		raw, err := json.Marshal(f)
		require.NoError(t, err)
		e, err := translateFilter(raw)
		require.NoError(t, err, "%s", raw)
		got, err := db.CountWhere(ctx, e)
		require.NoError(t, err, "%s -> %v", raw, e)
		want := 0
		for _, it := range items {
			if qdrantMatch(f, it.Attrs) {
				want++
			}
		}
		require.Equal(t, want, got, "filter %d: %s translated to %v", i, raw, e)
		if want > 0 && want < len(items) {
			nonTrivial++
		}
	}
	assert.Greater(t, nonTrivial, 200, "most filters must select some items and not all")
}
