package storage

import (
	"context"

	"github.com/RoaringBitmap/roaring/v2"
)

// ItemCheck is the part of a database check that needs only the file: the
// ID maps agree both ways, every record is in them and in memory, and the
// attribute postings match the records.
type ItemCheck struct {
	// ExtIDs, Count and Live are the in-memory view to compare with:
	// internal ID -> external ID, the item count and the live items.
	ExtIDs []string
	Count  int
	Live   *roaring.Bitmap
	// Add reports a problem.
	Add func(format string, args ...any)
	// Items is set to the number of records.
	Items int
}

// CheckItems runs c on the file and returns the internal -> external ID
// map it read.
func (t *Tx) CheckItems(ctx context.Context, c *ItemCheck) (map[uint32]string, error) {
	byID, err := c.idMap(ctx, t)
	if err != nil {
		return nil, err
	}
	want, err := c.records(ctx, t)
	if err != nil {
		return nil, err
	}
	return byID, c.postings(ctx, t, want)
}

func cardOf(b *roaring.Bitmap) uint64 {
	if b == nil {
		return 0
	}
	return b.GetCardinality()
}

// idMap checks the external -> internal map against the records, and
// returns it inverted.
func (c *ItemCheck) idMap(ctx context.Context, tx *Tx) (map[uint32]string, error) {
	byID := map[uint32]string{}
	err := tx.ForEachID(func(ext string, id uint32) error {
		byID[id] = ext
		r, ok, err := tx.Record(id)
		switch {
		case err != nil:
			c.Add("item %q (internal %d): %v", ext, id, err)
		case !ok:
			c.Add("ID %q maps to internal %d, which has no record", ext, id)
		case r.ID != ext:
			c.Add("ID %q maps to internal %d, whose record says %q", ext, id, r.ID)
		}
		return ctx.Err()
	})
	return byID, err
}

// records checks each record against the ID maps and the live set, and
// returns the postings the records call for (attribute + "\x00" + key ->
// items).
func (c *ItemCheck) records(ctx context.Context, tx *Tx) (map[string]*roaring.Bitmap, error) {
	want := map[string]*roaring.Bitmap{}
	records := roaring.New()
	if err := tx.ForEachRecord(0, func(id uint32, r Record) (bool, error) {
		c.Items++
		records.Add(id)
		for attr, v := range r.Attrs {
			for _, k := range PostingKeys(v) {
				key := attr + "\x00" + string(k)
				if want[key] == nil {
					want[key] = roaring.New()
				}
				want[key].Add(id)
			}
		}
		if back, ok := tx.LookupID(r.ID); !ok || back != id {
			c.Add("record %d (%q) is not in the ID map", id, r.ID)
		}
		if int(id) >= len(c.ExtIDs) || c.ExtIDs[id] != r.ID {
			c.Add("record %d (%q) is not in the in-memory ID map", id, r.ID)
		}
		return true, ctx.Err()
	}); err != nil {
		return nil, err
	}
	if c.Items != c.Count {
		c.Add("%d records but Count() is %d", c.Items, c.Count)
	}
	if !records.Equals(c.Live) {
		c.Add("the in-memory set of live items (%d) differs from the records (%d)", c.Live.GetCardinality(), records.GetCardinality())
	}
	return want, nil
}

// postings checks the stored attribute postings against what the records
// call for.
func (c *ItemCheck) postings(ctx context.Context, tx *Tx, want map[string]*roaring.Bitmap) error {
	if err := tx.ForEachPosting(func(attr string, k []byte, ids *roaring.Bitmap) error {
		key := attr + "\x00" + string(k)
		if w := want[key]; w == nil || !w.Equals(ids) {
			c.Add("posting %s=%x lists %d items, the records %d", attr, k, ids.GetCardinality(), cardOf(w))
		}
		delete(want, key)
		return ctx.Err()
	}); err != nil {
		return err
	}
	for key, w := range want {
		c.Add("posting %q is missing for %d items", key, w.GetCardinality())
	}
	return nil
}
