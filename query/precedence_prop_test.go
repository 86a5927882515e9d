package query_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The precedence tests evaluate filters over four facts p, q, r, s, each
// an attribute that is 1 (true) or 0 (false), against the Go expression
// the filter must mean. Every one of the 16 assignments is tried.

type facts [4]bool // p, q, r, s

// item is the attribute map of an assignment; a holds 1.5 when p does
// (for BETWEEN), 3 otherwise.
func (f facts) item() map[string]any {
	m := map[string]any{"a": 3.0}
	for i, name := range []string{"p", "q", "r", "s"} {
		m[name] = int64(0)
		if f[i] {
			m[name] = int64(1)
		}
	}
	if f[0] {
		m["a"] = 1.5
	}
	return m
}

func allFacts() []facts {
	var out []facts
	for bits := range 16 {
		out = append(out, facts{bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0})
	}
	return out
}

// TestFilterPrecedence: NOT binds tighter than AND, AND tighter than OR,
// parentheses override both; BETWEEN's AND belongs to BETWEEN; keywords
// are case-insensitive. Each filter parses to the tree given and matches
// exactly where the Go expression holds.
func TestFilterPrecedence(t *testing.T) {
	p, q, r, s := query.Eq("p", 1), query.Eq("q", 1), query.Eq("r", 1), query.Eq("s", 1)
	tests := []struct {
		in   string
		tree query.Expr
		want func(p, q, r, s bool) bool
	}{
		{"NOT p = 1 AND q = 1", query.And(query.Not(p), q),
			func(p, q, r, s bool) bool { return !p && q }},
		{"NOT p = 1 OR q = 1", query.Or(query.Not(p), q),
			func(p, q, r, s bool) bool { return !p || q }},
		{"p = 1 OR q = 1 AND r = 1", query.Or(p, query.And(q, r)),
			func(p, q, r, s bool) bool { return p || q && r }},
		{"p = 1 AND q = 1 OR r = 1", query.Or(query.And(p, q), r),
			func(p, q, r, s bool) bool { return p && q || r }},
		{"p = 1 AND q = 1 OR r = 1 AND s = 1", query.Or(query.And(p, q), query.And(r, s)),
			func(p, q, r, s bool) bool { return p && q || r && s }},
		{"p = 1 OR q = 1 AND NOT r = 1 OR s = 1", query.Or(p, query.And(q, query.Not(r)), s),
			func(p, q, r, s bool) bool { return p || q && !r || s }},
		{"NOT p = 1 AND NOT q = 1 OR NOT r = 1", query.Or(query.And(query.Not(p), query.Not(q)), query.Not(r)),
			func(p, q, r, s bool) bool { return !p && !q || !r }},
		{"NOT NOT p = 1 AND q = 1", query.And(query.Not(query.Not(p)), q),
			func(p, q, r, s bool) bool { return p && q }},
		// Parentheses override.
		{"NOT (p = 1 AND q = 1)", query.Not(query.And(p, q)),
			func(p, q, r, s bool) bool { return !(p && q) }},
		{"NOT (p = 1 OR q = 1) AND r = 1", query.And(query.Not(query.Or(p, q)), r),
			func(p, q, r, s bool) bool { return !(p || q) && r }},
		{"(p = 1 OR q = 1) AND r = 1", query.And(query.Or(p, q), r),
			func(p, q, r, s bool) bool { return (p || q) && r }},
		{"p = 1 AND (q = 1 OR r = 1)", query.And(p, query.Or(q, r)),
			func(p, q, r, s bool) bool { return p && (q || r) }},
		{"(p = 1 OR q = 1) AND (r = 1 OR s = 1)", query.And(query.Or(p, q), query.Or(r, s)),
			func(p, q, r, s bool) bool { return (p || q) && (r || s) }},
		{"p = 1 AND (q = 1 OR (r = 1 AND NOT (s = 1 OR p = 1)))", query.And(p, query.Or(q, query.And(r, query.Not(query.Or(s, p))))),
			func(p, q, r, s bool) bool { return p && (q || (r && !(s || p))) }},
		{"(p = 1 AND q = 1) OR r = 1", query.Or(query.And(p, q), r),
			func(p, q, r, s bool) bool { return p && q || r }},
		// BETWEEN's AND is part of BETWEEN; a is in [1, 2] exactly when p.
		{"a BETWEEN 1 AND 2 AND q = 1", query.And(query.Range("a", 1, 2), q),
			func(p, q, r, s bool) bool { return p && q }},
		{"NOT a BETWEEN 1 AND 2 OR q = 1", query.Or(query.Not(query.Range("a", 1, 2)), q),
			func(p, q, r, s bool) bool { return !p || q }},
		{"q = 1 OR a BETWEEN 1 AND 2 AND r = 1", query.Or(q, query.And(query.Range("a", 1, 2), r)),
			func(p, q, r, s bool) bool { return q || p && r }},
		// IN and EXISTS are primaries too.
		{"NOT p IN (1) AND EXISTS q", query.And(query.Not(query.In("p", 1)), query.Has("q")),
			func(p, q, r, s bool) bool { return !p }},
		{"NOT EXISTS z OR p = 1 AND q = 1", query.Or(query.Not(query.Has("z")), query.And(p, q)),
			func(p, q, r, s bool) bool { return true }},
		{"p EXISTS AND NOT q = 1", query.And(query.Has("p"), query.Not(q)),
			func(p, q, r, s bool) bool { return !q }},
		// Keywords in any case.
		{"not p = 1 and q = 1 or r = 1", query.Or(query.And(query.Not(p), q), r),
			func(p, q, r, s bool) bool { return !p && q || r }},
		{"Not (p = 1 Or q = 1)", query.Not(query.Or(p, q)),
			func(p, q, r, s bool) bool { return !(p || q) }},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := query.ParseFilter(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.tree, got)
			for _, f := range allFacts() {
				assert.Equal(t, tc.want(f[0], f[1], f[2], f[3]), query.Match(got, f.item()), "facts p,q,r,s = %v", f)
			}
		})
	}
}

// boolTree is a random Boolean formula over p, q, r, s.
type boolTree struct {
	op    string // "leaf", "not", "and", "or"
	leaf  int
	terms []boolTree
}

func randomBoolTree(r *rand.Rand, depth int) boolTree {
	if depth == 0 || r.IntN(3) == 0 {
		return boolTree{op: "leaf", leaf: r.IntN(4)}
	}
	switch r.IntN(3) {
	case 0:
		return boolTree{op: "not", terms: []boolTree{randomBoolTree(r, depth-1)}}
	case 1:
		return boolTree{op: "and", terms: []boolTree{randomBoolTree(r, depth-1), randomBoolTree(r, depth-1)}}
	}
	return boolTree{op: "or", terms: []boolTree{randomBoolTree(r, depth-1), randomBoolTree(r, depth-1)}}
}

func (b boolTree) eval(f facts) bool {
	switch b.op {
	case "leaf":
		return f[b.leaf]
	case "not":
		return !b.terms[0].eval(f)
	case "and":
		return b.terms[0].eval(f) && b.terms[1].eval(f)
	}
	return b.terms[0].eval(f) || b.terms[1].eval(f)
}

// level is how tightly a node's text binds: leaves and NOT 3, AND 2, OR 1.
func (b boolTree) level() int {
	switch b.op {
	case "and":
		return 2
	case "or":
		return 1
	}
	return 3
}

// minimal renders b with only the parentheses that precedence needs (an
// operand binding more loosely than its operator), and now and then a
// redundant pair. AND and OR are associative, so "x AND y AND z" needs
// none whichever way the tree nests.
func (b boolTree) minimal(r *rand.Rand, relied *int) string {
	wrap := func(c boolTree, min int) string {
		s := c.minimal(r, relied)
		if c.level() < min || r.IntN(8) == 0 {
			return "(" + s + ")"
		}
		if c.level() > min && c.op != "leaf" {
			*relied++ // an AND under OR, or a NOT under either, left bare
		}
		return s
	}
	switch b.op {
	case "leaf":
		return fmt.Sprintf("%c = 1", "pqrs"[b.leaf])
	case "not":
		return "NOT " + wrap(b.terms[0], 3)
	case "and":
		return wrap(b.terms[0], 2) + " AND " + wrap(b.terms[1], 2)
	}
	return wrap(b.terms[0], 1) + " OR " + wrap(b.terms[1], 1)
}

// TestFilterPrecedenceRandom: random formulas printed with the fewest
// parentheses precedence allows mean, once parsed, what the formula means
// under Go's own precedence, on every assignment.
func TestFilterPrecedenceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	items := allFacts()
	relied := 0
	for range 500 {
		b := randomBoolTree(r, 5)
		text := b.minimal(r, &relied)
		e, err := query.ParseFilter(text)
		require.NoError(t, err, text)
		for _, f := range items {
			require.Equal(t, b.eval(f), query.Match(e, f.item()), "%s with p,q,r,s = %v", text, f)
		}
	}
	assert.Greater(t, relied, 300, "operands left bare for precedence to group")
}
