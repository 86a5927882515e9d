package mmdb

import (
	"fmt"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/query"
)

// evalFilter evaluates a filter over the attribute postings. A filter that
// compares an attribute no item has ever had fails with
// ErrUnknownAttribute (as sqlite's "no such column"): it is almost always
// a typo, and would silently match nothing.
func (db *DB) evalFilter(e query.Expr, universe *roaring.Bitmap) (*roaring.Bitmap, error) {
	var out *roaring.Bitmap
	err := db.store.View(func(tx *storage.Tx) error {
		if err := checkComparisons(tx, query.Compared(e)); err != nil {
			return err
		}
		var err error
		out, err = query.Eval(e, postingSource{tx, universe})
		return err
	})
	return out, err
}

// checkComparisons refuses a filter that compares an attribute no item has
// (ErrUnknownAttribute, listing the known ones): it would silently match
// nothing. (A value of another kind than the attribute holds, a string
// against numbers, matches nothing too, as in sqlite, and is not refused.)
func checkComparisons(tx *storage.Tx, attrs []string) error {
	for _, a := range attrs {
		if !tx.HasAttribute(a) {
			// Listing the known ones walks every bucket: only on the error.
			list := "none"
			if known := tx.Attributes(); len(known) > 0 {
				list = strings.Join(known, ", ")
			}
			hint := ""
			if strings.EqualFold(a, "score") || strings.EqualFold(a, "distance") {
				hint = "; to bound the hits' score or distance, use SCORE >= x or DISTANCE <= x (Query.MinScore, MaxDistance), not WHERE"
			}
			return fmt.Errorf("%w: %q (known attributes: %s)%s", ErrUnknownAttribute, a, list, hint)
		}
	}
	return nil
}

// postingSource answers filter lookups from a read transaction.
type postingSource struct {
	tx       *storage.Tx
	universe *roaring.Bitmap
}

func (s postingSource) Universe() *roaring.Bitmap { return s.universe.Clone() }

func (s postingSource) Equal(attr string, v any) (*roaring.Bitmap, error) {
	return s.tx.PostingEqual(attr, v)
}

func (s postingSource) In(attr string, values []any) (*roaring.Bitmap, error) {
	return s.tx.PostingIn(attr, values)
}

func (s postingSource) Range(attr string, lo, hi any, loInc, hiInc bool) (*roaring.Bitmap, error) {
	return s.tx.PostingRange(attr, lo, hi, loInc, hiInc)
}

func (s postingSource) Exists(attr string) (*roaring.Bitmap, error) {
	return s.tx.PostingExists(attr)
}
