package server

import (
	"context"
	"errors"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

// withFilter runs fn with the filter f and, if mmdb refuses f because it
// compares an attribute no item has (mmdb's sqlite-like strictness), again
// with each such comparison replaced by one that matches nothing: in
// Qdrant a condition on a key no point has is simply false, so that
// must_not on it keeps every point.
func withFilter(ctx context.Context, db *mmdb.DB, f query.Expr, fn func(query.Expr) error) error {
	err := fn(f)
	if f == nil || !errors.Is(err, mmdb.ErrUnknownAttribute) {
		return err
	}
	known := map[string]bool{}
	for _, a := range query.Compared(f) {
		n, err := db.CountWhere(ctx, query.Has(a))
		if err != nil {
			return err
		}
		known[a] = n > 0
	}
	return fn(withoutUnknown(f, known))
}

// withoutUnknown replaces the comparisons of attributes not known by a
// filter that matches nothing.
func withoutUnknown(e query.Expr, known map[string]bool) query.Expr {
	switch x := e.(type) {
	case query.AndExpr:
		terms := make([]query.Expr, len(x.Terms))
		for i, t := range x.Terms {
			terms[i] = withoutUnknown(t, known)
		}
		return query.AndExpr{Terms: terms}
	case query.OrExpr:
		terms := make([]query.Expr, len(x.Terms))
		for i, t := range x.Terms {
			terms[i] = withoutUnknown(t, known)
		}
		return query.OrExpr{Terms: terms}
	case query.NotExpr:
		return query.NotExpr{Term: withoutUnknown(x.Term, known)}
	case query.Cmp:
		return unknownOr(x.Attr, x, known)
	case query.InList:
		return unknownOr(x.Attr, x, known)
	case query.Between:
		return unknownOr(x.Attr, x, known)
	case query.Prefix:
		return unknownOr(x.Attr, x, known)
	}
	return e
}

func unknownOr(attr string, e query.Expr, known map[string]bool) query.Expr {
	if known[attr] {
		return e
	}
	return never()
}
