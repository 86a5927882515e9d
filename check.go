package mmdb

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
)

func cardOf(b *roaring.Bitmap) uint64 {
	if b == nil {
		return 0
	}
	return b.GetCardinality()
}

// CheckReport lists what Check found.
type CheckReport struct {
	// Items is the number of items.
	Items int `json:"items"`
	// Vectors counts stored vectors per modality.
	Vectors map[string]int `json:"vectors"`
	// Problems describes each inconsistency; empty means all is well.
	Problems []string `json:"problems"`
}

// OK reports whether Check found no problem.
func (r CheckReport) OK() bool { return len(r.Problems) == 0 }

// storedVectorOK checks what Put guarantees of a stored vector: finite,
// within modality.MaxNorm, and of unit length under Cosine.
func storedVectorOK(m Modality, v []float32) error {
	if err := modality.CheckQuery(v); err != nil {
		return err
	}
	if m.Metric == Cosine {
		if n := modality.Norm(v); math.Abs(float64(n)-1) > 1e-3 {
			return fmt.Errorf("%w: length %g under cosine, want 1", ErrInvalidVector, n)
		}
	}
	return nil
}

// maxProblems bounds the report: past it, the database is plainly broken.
const maxProblems = 1000

// Check verifies the database: the file's pages (a bounds-checked walk,
// then bbolt's own check), that the ID maps agree both ways, that the
// attribute postings match the records, that every stored vector has an
// item, the right length and finite values (unit length under cosine),
// that each index holds exactly the stored vectors, bit for bit, and that
// a search can reach every one of them. It blocks writers while it runs
// (readers go on). The error is for failures to run the check; what it
// finds is in the report.
func (db *DB) Check(ctx context.Context) (CheckReport, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return CheckReport{}, ErrClosed
	}
	schema, indexes := db.schema, db.indexes
	extIDs := append([]string(nil), db.extIDs...)
	count := db.count
	live := db.live.Clone()
	has := make([]*roaring.Bitmap, len(db.has))
	for i, h := range db.has {
		has[i] = h.Clone()
	}
	db.mu.RUnlock()

	rep := CheckReport{Vectors: map[string]int{}}
	add := func(format string, args ...any) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	err := db.store.View(func(tx *storage.Tx) error {
		for _, err := range tx.Check() {
			add("bbolt: %v", err)
		}
		// ID map, both ways.
		byID := map[uint32]string{}
		if err := tx.ForEachID(func(ext string, id uint32) error {
			byID[id] = ext
			r, ok, err := tx.Record(id)
			switch {
			case err != nil:
				add("item %q (internal %d): %v", ext, id, err)
			case !ok:
				add("ID %q maps to internal %d, which has no record", ext, id)
			case r.ID != ext:
				add("ID %q maps to internal %d, whose record says %q", ext, id, r.ID)
			}
			return ctx.Err()
		}); err != nil {
			return err
		}
		want := map[string]*roaring.Bitmap{} // attr + "\x00" + key -> ids
		records := roaring.New()
		if err := tx.ForEachRecord(0, func(id uint32, r storage.Record) (bool, error) {
			rep.Items++
			records.Add(id)
			for attr, v := range r.Attrs {
				for _, k := range storage.PostingKeys(v) {
					key := attr + "\x00" + string(k)
					if want[key] == nil {
						want[key] = roaring.New()
					}
					want[key].Add(id)
				}
			}
			if back, ok := tx.LookupID(r.ID); !ok || back != id {
				add("record %d (%q) is not in the ID map", id, r.ID)
			}
			if int(id) >= len(extIDs) || extIDs[id] != r.ID {
				add("record %d (%q) is not in the in-memory ID map", id, r.ID)
			}
			return true, ctx.Err()
		}); err != nil {
			return err
		}
		if rep.Items != count {
			add("%d records but Count() is %d", rep.Items, count)
		}
		if !records.Equals(live) {
			add("the in-memory set of live items (%d) differs from the records (%d)", live.GetCardinality(), records.GetCardinality())
		}
		// Attribute postings against the records.
		if err := tx.ForEachPosting(func(attr string, k []byte, ids *roaring.Bitmap) error {
			key := attr + "\x00" + string(k)
			if w := want[key]; w == nil || !w.Equals(ids) {
				add("posting %s=%x lists %d items, the records %d", attr, k, ids.GetCardinality(), cardOf(w))
			}
			delete(want, key)
			return ctx.Err()
		}); err != nil {
			return err
		}
		for key, w := range want {
			add("posting %q is missing for %d items", key, w.GetCardinality())
		}
		// Vectors against records and indexes.
		for i, m := range schema {
			n := 0
			stored := roaring.New()
			if err := tx.ForEachVector(m.Name, func(id uint32, v []float32) error {
				n++
				stored.Add(id)
				if _, ok := byID[id]; !ok {
					add("%s vector of internal %d belongs to no item", m.Name, id)
				}
				if len(v) != m.Dim {
					add("%s vector of internal %d has %d values, want %d", m.Name, id, len(v), m.Dim)
					return nil
				}
				if err := storedVectorOK(m, v); err != nil {
					add("%s vector of %q: %v", m.Name, byID[id], err)
				}
				iv, ok := indexes[i].Vector(id)
				if !ok {
					add("%s vector of %q is missing from its index", m.Name, byID[id])
					return nil
				}
				for j := range v {
					if math.Float32bits(v[j]) != math.Float32bits(iv[j]) {
						add("%s vector of %q differs from its index copy", m.Name, byID[id])
						break
					}
				}
				return ctx.Err()
			}); err != nil {
				return err
			}
			rep.Vectors[m.Name] = n
			if !stored.Equals(has[i]) {
				add("the in-memory set of items with a %s vector (%d) differs from the file (%d)", m.Name, has[i].GetCardinality(), n)
			}
			if l := indexes[i].Len(); l != n {
				add("%s index holds %d vectors, the file %d", m.Name, l, n)
			}
			if lost := indexes[i].Unreachable(); len(lost) > 0 {
				add("%s index: %d vectors no search can reach (e.g. %q); reopening rebuilds or repairs the graph", m.Name, len(lost), byID[lost[0]])
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("mmdb: check: %w", err)
	}
	sort.Strings(rep.Problems)
	return rep, nil
}
