// Package querytest holds test support for filters: a generator of random
// expressions for property tests that compare the database's bitmap
// evaluation (query.Eval over postings) against query.Match. It is
// internal so that the generator is not part of query's public API.
package querytest

import (
	"math/rand/v2"

	"github.com/mmdb-go/mmdb/query"
)

// RandomFilter returns a random expression of nesting up to depth over the
// attributes "a" (numbers), "s" (strings), "b" (bools), "tags" (string
// lists) and "m" (often missing): for property tests that compare Eval
// against Match.
func RandomFilter(r *rand.Rand, depth int) query.Expr {
	if depth > 0 && r.IntN(3) == 0 {
		switch r.IntN(3) {
		case 0:
			return query.And(RandomFilter(r, depth-1), RandomFilter(r, depth-1))
		case 1:
			return query.Or(RandomFilter(r, depth-1), RandomFilter(r, depth-1))
		default:
			return query.Not(RandomFilter(r, depth-1))
		}
	}
	attrs := []string{"a", "s", "b", "tags", "m"}
	attr := attrs[r.IntN(len(attrs))]
	val := func() any {
		switch r.IntN(4) {
		case 0:
			return int64(r.IntN(10))
		case 1:
			return float64(r.IntN(20)) / 2
		case 2:
			return string(rune('p' + r.IntN(6)))
		}
		return r.IntN(2) == 0
	}
	switch r.IntN(5) {
	case 0:
		return query.In(attr, val(), val())
	case 1:
		return query.Range(attr, val(), val())
	case 2:
		return query.Has(attr)
	}
	return query.Cmp{Attr: attr, Op: query.Op(r.IntN(6)), Value: val()}
}
