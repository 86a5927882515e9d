package query

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/bitmaps"
)

// Source answers the primitive lookups a filter is built from. The
// database implements it over its attribute postings.
type Source interface {
	// Universe is every live item: what NOT subtracts from.
	Universe() *roaring.Bitmap
	// Equal is the items whose attr holds v (any element, for lists).
	Equal(attr string, v any) (*roaring.Bitmap, error)
	// Range is the items with a value of lo's (or hi's) kind between the
	// bounds; a nil bound is open.
	Range(attr string, lo, hi any, loInc, hiInc bool) (*roaring.Bitmap, error)
	// Exists is the items that have attr.
	Exists(attr string) (*roaring.Bitmap, error)
}

// InSource is a Source that answers an IN list in one lookup: the items
// whose attr holds any of values (any element, for lists), as the union
// of Equal over them. Eval uses it when the Source has it.
type InSource interface {
	Source
	In(attr string, values []any) (*roaring.Bitmap, error)
}

// Eval evaluates e to the bitmap of matching items, with the semantics of
// Match.
func Eval(e Expr, src Source) (*roaring.Bitmap, error) {
	switch x := e.(type) {
	case Cmp:
		switch x.Op {
		case OpEq:
			return src.Equal(x.Attr, x.Value)
		case OpNe:
			all, err := src.Exists(x.Attr)
			if err != nil {
				return nil, err
			}
			eq, err := src.Equal(x.Attr, x.Value)
			if err != nil {
				return nil, err
			}
			all.AndNot(eq)
			return all, nil
		case OpLt:
			return src.Range(x.Attr, nil, x.Value, false, false)
		case OpLe:
			return src.Range(x.Attr, nil, x.Value, false, true)
		case OpGt:
			return src.Range(x.Attr, x.Value, nil, false, false)
		case OpGe:
			return src.Range(x.Attr, x.Value, nil, true, false)
		}
	case InList:
		if in, ok := src.(InSource); ok {
			return in.In(x.Attr, x.Values)
		}
		bms := make([]*roaring.Bitmap, 0, len(x.Values))
		for _, v := range x.Values {
			bm, err := src.Equal(x.Attr, v)
			if err != nil {
				return nil, err
			}
			bms = append(bms, bm)
		}
		return bitmaps.Union(bms...), nil
	case Between:
		if compare(x.Lo, x.Hi) == cmpNone {
			return roaring.New(), nil
		}
		return src.Range(x.Attr, x.Lo, x.Hi, true, true)
	case Exists:
		return src.Exists(x.Attr)
	case Prefix:
		return evalPrefix(x, src)
	case AndExpr:
		var out *roaring.Bitmap
		for _, t := range x.Terms {
			bm, err := Eval(t, src)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = bm
			} else {
				out.And(bm)
			}
			if out.IsEmpty() {
				break
			}
		}
		if out == nil {
			out = src.Universe()
		}
		return out, nil
	case OrExpr:
		bms := make([]*roaring.Bitmap, 0, len(x.Terms))
		for _, t := range x.Terms {
			bm, err := Eval(t, src)
			if err != nil {
				return nil, err
			}
			bms = append(bms, bm)
		}
		return bitmaps.Union(bms...), nil
	case NotExpr:
		bm, err := Eval(x.Term, src)
		if err != nil {
			return nil, err
		}
		all := src.Universe()
		all.AndNot(bm)
		return all, nil
	}
	return nil, fmt.Errorf("query: unknown expression %T", e)
}
