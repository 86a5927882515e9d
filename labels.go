package mmdb

import (
	"fmt"

	"github.com/mmdb-go/mmdb/internal/storage"
)

// gone marks an item that left between the copy of its vectors and the
// reading of its label.
const gone = -2

// labels reads attribute attr of the given items as classes (items with
// equal values share one), in one read of the file: an item whose record
// is gone by then is marked gone (a write moved meanwhile), and a stored
// item without the attribute is an error naming it when required, else
// class -1.
func (db *DB) labels(attr string, ids []uint32, required bool) ([]int, error) {
	out := make([]int, len(ids))
	err := db.store.View(func(tx *storage.Tx) error {
		classes, err := tx.Classes(attr, db.items.Name)
		if err != nil {
			return fmt.Errorf("label %q: %w", attr, err)
		}
		for i, id := range ids {
			c, ok := classes[id]
			switch {
			case ok:
				out[i] = c
			case !required:
				out[i] = -1
			default:
				r, stored, err := tx.Record(id)
				switch {
				case err != nil:
					return err
				case !stored:
					out[i] = gone
				default:
					return fmt.Errorf("%w: item %q has no %q attribute, the label", ErrInvalidQuery, r.ID, attr)
				}
			}
		}
		return nil
	})
	return out, err
}

// labelSet gives Evaluate's queries and targets their classes: every query
// must have one (queries whose item left meanwhile are dropped); a target
// without one answers no query.
func (db *DB) labelSet(set *evalSet, attr string) error {
	var err error
	if set.qlab, err = db.labels(attr, set.qids, true); err != nil {
		return err
	}
	set.keep(func(i int) bool { return set.qlab[i] != gone })
	if len(set.qids) == 0 {
		return fmt.Errorf("%w: every query item left during the evaluation", ErrChanged)
	}
	if set.tlab, err = db.labels(attr, set.tids, false); err != nil {
		return err
	}
	set.label = attr
	return nil
}
