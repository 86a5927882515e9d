package mmdb

import (
	"fmt"

	"github.com/mmdb-go/mmdb/internal/storage"
)

// classes reads attribute attr as classes: items with equal values share
// one. An item with several values is an error naming it.
func (db *DB) classes(attr string) (map[uint32]int, error) {
	var classes map[uint32]int
	err := db.store.View(func(tx *storage.Tx) error {
		var err error
		classes, err = tx.Classes(attr, db.items.name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("label %q: %w", attr, err)
	}
	return classes, nil
}

// labels gives the items' classes by attribute attr; an item without it
// is an error naming the item.
func (db *DB) labels(attr string, ids []uint32) ([]int, error) {
	classes, err := db.classes(attr)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		c, ok := classes[id]
		if !ok {
			return nil, fmt.Errorf("%w: item %q has no %q attribute, the label", ErrInvalidQuery, db.items.name(id), attr)
		}
		out[i] = c
	}
	return out, nil
}

// labelSet gives Evaluate's queries and targets their classes: every query
// must have one; a target without one answers no query.
func (db *DB) labelSet(set *evalSet, attr string) error {
	classes, err := db.classes(attr)
	if err != nil {
		return err
	}
	set.qlab = make([]int, len(set.qids))
	for i, id := range set.qids {
		c, ok := classes[id]
		if !ok {
			return fmt.Errorf("%w: query item %q has no %q attribute, the label", ErrInvalidQuery, db.items.name(id), attr)
		}
		set.qlab[i] = c
	}
	set.tlab = make([]int, len(set.tids))
	for j, id := range set.tids {
		set.tlab[j] = -1
		if c, ok := classes[id]; ok {
			set.tlab[j] = c
		}
	}
	set.label = attr
	return nil
}
