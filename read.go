package mmdb

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb/internal/storage"
)

// Get returns the item with the given ID, or an error wrapping ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	names, err := db.readNames()
	if err != nil {
		return Item{}, err
	}
	var it Item
	err = db.store.View(func(tx *storage.Tx) error {
		iid, ok := tx.LookupID(id)
		if !ok {
			return fmt.Errorf("item %q: %w", id, ErrNotFound)
		}
		r, ok, err := tx.Record(iid)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: ID map points at missing item %d", ErrCorrupt, iid)
		}
		it = readItem(tx, iid, r, names)
		return nil
	})
	if err != nil {
		return Item{}, fmt.Errorf("mmdb: get: %w", err)
	}
	return it, nil
}

// readItem assembles an item from its record and stored vectors.
func readItem(tx *storage.Tx, iid uint32, r storage.Record, names []string) Item {
	it := Item{ID: r.ID, Attrs: r.Attrs}
	for _, name := range names {
		if v, ok := tx.Vector(name, iid); ok {
			if it.Vectors == nil {
				it.Vectors = map[string][]float32{}
			}
			it.Vectors[name] = v
		}
	}
	return it
}

func (db *DB) readNames() ([]string, error) {
	s, err := db.state()
	if err != nil {
		return nil, err
	}
	return s.names(), nil
}

// itemsPage is how many items Items reads per read transaction.
const itemsPage = 256

// Cursor marks where a Scroll stopped: pass it to the next Scroll to go
// on. The zero Cursor is the start; Scroll returns the zero Cursor when
// there is nothing after. Its text form (String, ParseCursor) can travel
// between processes; it stays valid however the items change (items
// written after it was made are seen, deleted ones are not).
type Cursor struct{ next uint32 }

// String is the cursor's text form, "" for the start.
func (c Cursor) String() string {
	if c.next == 0 {
		return ""
	}
	return "c" + strconv.FormatUint(uint64(c.next), 10)
}

// ParseCursor reads a Cursor's text form.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "c"), 10, 32)
	if err != nil || !strings.HasPrefix(s, "c") || n == 0 {
		return Cursor{}, fmt.Errorf("%w: %q is not a cursor that Scroll gave", ErrInvalidQuery, s)
	}
	return Cursor{uint32(n)}, nil
}

// CursorAfter is the cursor that resumes a Scroll just after item id (in
// insertion order): a scan can restart from the last ID it handled. An
// ID not stored is ErrNotFound (a cursor from Scroll survives its item's
// deletion; an ID does not).
func (db *DB) CursorAfter(id string) (Cursor, error) { return db.cursorOf(id, 1) }

// CursorAt is the cursor from which Scroll returns item id first: a page
// that starts at a given item, as Qdrant's scroll offset. An ID not
// stored is ErrNotFound.
func (db *DB) CursorAt(id string) (Cursor, error) { return db.cursorOf(id, 0) }

func (db *DB) cursorOf(id string, past uint32) (Cursor, error) {
	var c Cursor
	err := db.store.View(func(tx *storage.Tx) error {
		iid, ok := tx.LookupID(id)
		if !ok {
			return fmt.Errorf("item %q: %w", id, ErrNotFound)
		}
		c = Cursor{iid + past}
		return nil
	})
	if err != nil {
		return Cursor{}, fmt.Errorf("mmdb: cursor: %w", err)
	}
	return c, nil
}

// Scroll returns up to n items (1..MaxK) in insertion order, starting at
// from, and the cursor to go on from ("" when none are left): a scan of a
// large set in pages, resumable across processes, as Qdrant's scroll.
func (db *DB) Scroll(ctx context.Context, from Cursor, n int) ([]Item, Cursor, error) {
	if n < 1 || n > MaxK {
		return nil, Cursor{}, fmt.Errorf("mmdb: scroll: %w: page of %d items, want 1..%d", ErrInvalidQuery, n, MaxK)
	}
	if err := ctx.Err(); err != nil {
		return nil, Cursor{}, err
	}
	names, err := db.readNames()
	if err != nil {
		return nil, Cursor{}, err
	}
	var page []Item
	next, more := from.next, false
	err = db.store.View(func(tx *storage.Tx) error {
		return tx.ForEachRecord(from.next, func(iid uint32, r storage.Record) (bool, error) {
			if len(page) == n {
				more = true
				return false, nil
			}
			page = append(page, readItem(tx, iid, r, names))
			next = iid + 1
			return true, nil
		})
	})
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("mmdb: scroll: %w", err)
	}
	if !more {
		return page, Cursor{}, nil
	}
	return page, Cursor{next}, nil
}

// Items iterates over every item in insertion order. It reads in pages of
// short read transactions, so the loop body may write to the database;
// items written or deleted during the iteration may or may not be seen.
// Iteration stops at the first error, which is yielded with a zero Item.
func (db *DB) Items(ctx context.Context) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		var next uint32
		for {
			if err := ctx.Err(); err != nil {
				yield(Item{}, err)
				return
			}
			names, err := db.readNames()
			if err != nil {
				yield(Item{}, err)
				return
			}
			page := make([]Item, 0, itemsPage)
			err = db.store.View(func(tx *storage.Tx) error {
				return tx.ForEachRecord(next, func(iid uint32, r storage.Record) (bool, error) {
					page = append(page, readItem(tx, iid, r, names))
					next = iid + 1
					return len(page) < itemsPage, nil
				})
			})
			if err != nil {
				yield(Item{}, fmt.Errorf("mmdb: items: %w", err))
				return
			}
			for _, it := range page {
				if !yield(it, nil) {
					return
				}
			}
			if len(page) < itemsPage {
				return
			}
		}
	}
}
