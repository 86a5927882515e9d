package mmdb

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

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

// storedVectorOK checks what Put guarantees of a stored vector (each
// vector of a set): finite, within modality.MaxNorm, and of unit length
// under Cosine.
func storedVectorOK(m Modality, set []float32) error {
	for j, v := range m.Split(set) {
		err := modality.CheckQuery(v)
		if err == nil && m.Metric == Cosine {
			if n := kernel.Norm(v); math.Abs(float64(n)-1) > 1e-3 {
				err = fmt.Errorf("%w: length %g under cosine, want 1", ErrInvalidVector, n)
			}
		}
		if err != nil && m.IsMulti() {
			return fmt.Errorf("vector %d of the set: %w", j, err)
		}
		if err != nil {
			return err
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
// that each index holds exactly the stored vectors, bit for bit (under
// Options.LowMemory, exactly their codes), and that a search can reach
// every one of them. It blocks writers while it runs
// (readers go on). The error is for failures to run the check; what it
// finds is in the report.
func (db *DB) Check(ctx context.Context) (CheckReport, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	c, err := db.snapshotForCheck()
	if err != nil {
		return CheckReport{}, err
	}
	c.ctx = ctx
	err = db.store.View(func(tx *storage.Tx) error {
		for _, err := range tx.Check() {
			c.add("bbolt: %v", err)
		}
		ic := storage.ItemCheck{ExtIDs: c.extIDs, Count: c.count, Live: c.live, Add: c.add}
		byID, err := tx.CheckItems(ctx, &ic)
		if err != nil {
			return err
		}
		c.rep.Items = ic.Items
		for i := range c.schema {
			if err := c.vectors(tx, i, byID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c.rep, fmt.Errorf("mmdb: check: %w", err)
	}
	sort.Strings(c.rep.Problems)
	return c.rep, nil
}

// checker is Check's state: a copy of the in-memory state taken under the
// read lock, compared with the file, and the report.
type checker struct {
	ctx     context.Context
	schema  []Modality
	indexes []hnsw.Index
	extIDs  []string
	count   int
	live    *roaring.Bitmap
	has     []*roaring.Bitmap
	rep     CheckReport
}

// snapshotForCheck copies what Check compares with the file (writeMu is
// held, so nothing changes meanwhile).
func (db *DB) snapshotForCheck() (*checker, error) {
	s, err := db.state()
	if err != nil {
		return nil, err
	}
	c := &checker{schema: s.schema, indexes: s.indexes, rep: CheckReport{Vectors: map[string]int{}}}
	cp := db.items.Copy()
	c.extIDs, c.count, c.live, c.has = cp.ExtIDs, cp.Count, cp.Live, cp.Has
	return c, nil
}

func (c *checker) add(format string, args ...any) {
	if len(c.rep.Problems) < maxProblems {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf(format, args...))
	}
}

// codeMatcher is an index that keeps codes instead of vectors
// (Options.LowMemory): Check compares those.
type codeMatcher interface {
	VectorsInMemory() bool
	MatchesCodes(id uint32, v []float32) (match, found bool)
}

// vectors checks modality i's stored vectors against their owners, what
// Put guarantees of them, and the index, which must hold exactly them and
// reach each.
func (c *checker) vectors(tx *storage.Tx, i int, byID map[uint32]string) error {
	m, idx := c.schema[i], c.indexes[i]
	n := 0
	stored := roaring.New()
	if err := tx.ForEachVector(m.Name, func(id uint32, v []float32) error {
		n++
		stored.Add(id)
		if _, ok := byID[id]; !ok {
			c.add("%s vector of internal %d belongs to no item", m.Name, id)
		}
		if m.Count(len(v)) == 0 {
			c.add("%s vector of internal %d: %v", m.Name, id, m.CheckLen(len(v)))
			return nil
		}
		if err := storedVectorOK(m, v); err != nil {
			c.add("%s vector of %q: %v", m.Name, byID[id], err)
		}
		if cm, ok := idx.(codeMatcher); ok && !cm.VectorsInMemory() {
			// Options.LowMemory: the index holds the vector's codes.
			switch match, found := cm.MatchesCodes(id, v); {
			case !found:
				c.add("%s vector of %q is missing from its index", m.Name, byID[id])
			case !match:
				c.add("%s vector of %q differs from its index's codes of it", m.Name, byID[id])
			}
			return c.ctx.Err()
		}
		iv, ok := idx.Vector(id)
		if !ok {
			c.add("%s vector of %q is missing from its index", m.Name, byID[id])
			return nil
		}
		if len(iv) != len(v) {
			c.add("%s vector of %q has %d values, its index copy %d", m.Name, byID[id], len(v), len(iv))
			return nil
		}
		for j := range v {
			if math.Float32bits(v[j]) != math.Float32bits(iv[j]) {
				c.add("%s vector of %q differs from its index copy", m.Name, byID[id])
				break
			}
		}
		return c.ctx.Err()
	}); err != nil {
		return err
	}
	c.rep.Vectors[m.Name] = n
	if !stored.Equals(c.has[i]) {
		c.add("the in-memory set of items with a %s vector (%d) differs from the file (%d)", m.Name, c.has[i].GetCardinality(), n)
	}
	if l := idx.Len(); l != n {
		c.add("%s index holds %d vectors, the file %d", m.Name, l, n)
	}
	if lost := idx.Unreachable(); len(lost) > 0 {
		c.add("%s index: %d vectors no search can reach (e.g. %q); reopening rebuilds or repairs the graph", m.Name, len(lost), byID[lost[0]])
	}
	return nil
}
