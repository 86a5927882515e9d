package mmdb

import (
	"context"
	"fmt"

	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/query"
)

// Delete removes items by ID. It is atomic: if any ID is unknown, it fails
// with ErrNotFound and deletes nothing.
func (db *DB) Delete(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.deleteLocked(ids)
}

// DeleteWhere deletes every item whose attributes match f, in one
// transaction, and returns how many it deleted (DELETE WHERE in
// statements). f must be given: to empty a database, delete its file.
func (db *DB) DeleteWhere(ctx context.Context, f query.Expr) (int, error) {
	if f == nil {
		return 0, fmt.Errorf("mmdb: delete: %w: DeleteWhere needs a filter", ErrInvalidQuery)
	}
	if err := query.Validate(f); err != nil {
		return 0, fmt.Errorf("mmdb: delete: %w: %w", ErrInvalidQuery, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	universe := db.items.LiveClone()
	bm, err := db.evalFilter(f, universe)
	if err != nil {
		return 0, fmt.Errorf("mmdb: delete: %w", err)
	}
	bm.And(universe)
	var ids []string
	for _, iid := range bm.ToArray() {
		if ext := db.items.Name(iid); ext != "" {
			ids = append(ids, ext)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return len(ids), db.deleteLocked(ids)
}

// deleteLocked is Delete; writeMu is held.
func (db *DB) deleteLocked(ids []string) error {
	names, err := db.readNames()
	if err != nil {
		return err
	}
	var changes []change
	var seq uint64
	err = db.store.Update(func(tx *storage.Tx) error {
		var post storage.PostingDelta
		seen := map[string]bool{}
		for _, ext := range ids {
			if seen[ext] {
				continue
			}
			seen[ext] = true
			iid, ok := tx.LookupID(ext)
			if !ok {
				return fmt.Errorf("item %q: %w", ext, ErrNotFound)
			}
			if old, ok, err := tx.Record(iid); err != nil {
				return fmt.Errorf("item %q: %w", ext, err)
			} else if ok {
				post.Update(iid, old.Attrs, nil)
			}
			if err := tx.DeleteItem(iid, ext, names); err != nil {
				return err
			}
			changes = append(changes, change{id: iid, ext: ext, deleted: true})
		}
		if err := tx.ApplyPostings(&post); err != nil {
			return err
		}
		seq = tx.Seq()
		return nil
	})
	if err != nil {
		return fmt.Errorf("mmdb: delete: %w", err)
	}
	db.apply(changes, seq)
	return nil
}
