// Package itemset is the database's in-memory map of items: internal ID to
// external ID, the live items, and per modality the items that have a
// vector of it. It has its own lock, held only inside its methods, so
// readers on a loaded state never lock anything else for it.
package itemset

import (
	"math"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/fusion"
)

// Set is the map of items. The zero value is not usable: call New.
type Set struct {
	mu     sync.RWMutex
	extIDs []string // internal ID -> external ID; "" for deleted
	count  int
	live   *roaring.Bitmap   // internal IDs of live items
	has    []*roaring.Bitmap // per modality: internal IDs with a vector
}

// New returns an empty set with no modalities.
func New() *Set { return &Set{live: roaring.New()} }

// Change is one committed change to an item, as the set records it.
type Change struct {
	ID      uint32
	Ext     string
	Deleted bool
	// Vecs holds, per modality, the item's new vector, or nil where the
	// change gave none.
	Vecs [][]float32
}

// read runs fn under the read lock.
func (t *Set) read(fn func()) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	fn()
}

// write runs fn under the write lock.
func (t *Set) write(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn()
}

// nameLocked is Name with the lock held.
func (t *Set) nameLocked(id uint32) string {
	if int(id) >= len(t.extIDs) {
		return ""
	}
	return t.extIDs[id]
}

// Name returns the external ID of internal ID id, "" if it is not live.
func (t *Set) Name(id uint32) (name string) {
	t.read(func() { name = t.nameLocked(id) })
	return name
}

// Names returns the external IDs of list's items ("" for one not live),
// under one lock, stopping after k live ones.
func (t *Set) Names(list []fusion.Ranked, k int) []string {
	out := make([]string, len(list))
	t.read(func() {
		found := 0
		for i, r := range list {
			if out[i] = t.nameLocked(r.ID); out[i] != "" {
				if found++; found == k {
					return
				}
			}
		}
	})
	return out
}

// EachName calls fn with each of list's items and its external ID ("" for
// one not live), in order, under one read lock, until fn returns false. A
// search's hits are named this way, with no slice of names in between.
func (t *Set) EachName(list []fusion.Ranked, fn func(r fusion.Ranked, name string) bool) {
	t.read(func() {
		for _, r := range list {
			if !fn(r, t.nameLocked(r.ID)) {
				return
			}
		}
	})
}

// Size is the number of live items.
func (t *Set) Size() (n int) {
	t.read(func() { n = t.count })
	return n
}

// LiveIDs lists the live items' internal IDs in order.
func (t *Set) LiveIDs() (ids []uint32) {
	t.read(func() { ids = t.live.ToArray() })
	return ids
}

// LiveClone is a copy of the live items.
func (t *Set) LiveClone() (live *roaring.Bitmap) {
	t.read(func() { live = t.live.Clone() })
	return live
}

// With is a copy of the items with a vector of modality mi.
func (t *Set) With(mi int) (with *roaring.Bitmap) {
	t.read(func() { with = t.has[mi].Clone() })
	return with
}

// WithAndLive is a copy of the items with a vector of modality mi, and of
// the live items, taken at one moment.
func (t *Set) WithAndLive(mi int) (with, live *roaring.Bitmap) {
	t.read(func() { with, live = t.has[mi].Clone(), t.live.Clone() })
	return with, live
}

// WithCount is the number of items with a vector of modality mi.
func (t *Set) WithCount(mi int) (n int) {
	t.read(func() { n = int(t.has[mi].GetCardinality()) })
	return n
}

// WithBoth is the items with vectors of both modalities a and b.
func (t *Set) WithBoth(a, b int) (both *roaring.Bitmap) {
	t.read(func() { both = roaring.And(t.has[a], t.has[b]) })
	return both
}

// Copy is a copy of everything, for Check.
type Copy struct {
	ExtIDs []string
	Count  int
	Live   *roaring.Bitmap
	Has    []*roaring.Bitmap
}

// Copy returns a copy of everything, taken at one moment.
func (t *Set) Copy() (c Copy) {
	t.read(func() {
		for _, h := range t.has {
			c.Has = append(c.Has, h.Clone())
		}
		c.ExtIDs, c.Count, c.Live = append([]string(nil), t.extIDs...), t.count, t.live.Clone()
	})
	return c
}

// AddModality makes room for one more modality's items.
func (t *Set) AddModality() {
	t.write(func() { t.has = append(t.has, roaring.New()) })
}

// SetWith replaces the items with a vector of modality mi.
func (t *Set) SetWith(mi int, bm *roaring.Bitmap) {
	t.write(func() { t.has[mi] = bm })
}

// Reserve makes room for the internal IDs below n, so that Open, which
// loads them in order, grows the map once rather than by doubling. The
// caller bounds n by what the file holds, not by what it claims.
func (t *Set) Reserve(n uint64) {
	t.write(func() {
		if n > uint64(len(t.extIDs)) && n <= math.MaxUint32 {
			t.extIDs = slices.Grow(t.extIDs, int(n)-len(t.extIDs))
		}
	})
}

// Load maps a stored item while the database opens.
func (t *Set) Load(id uint32, ext string) {
	t.write(func() { t.setLocked(id, ext) })
}

func (t *Set) setLocked(id uint32, ext string) {
	for int(id) >= len(t.extIDs) {
		t.extIDs = append(t.extIDs, "")
	}
	if t.extIDs[id] == "" {
		t.count++
	}
	t.extIDs[id] = ext
	t.live.Add(id)
}

// Added maps the IDs of committed changes (deletes aside) and records
// their vectors' modalities: before the vectors enter the indexes, so a
// search never returns a vector it cannot name.
func (t *Set) Added(changes []Change) {
	t.write(func() {
		for _, c := range changes {
			if c.Deleted {
				continue
			}
			t.setLocked(c.ID, c.Ext)
			for mi := range t.has {
				if mi < len(c.Vecs) && c.Vecs[mi] != nil {
					t.has[mi].Add(c.ID)
				}
			}
		}
	})
}

// Removed forgets the (modality, ID) pairs that lost their vector and
// unmaps deleted items: after their vectors left the indexes.
func (t *Set) Removed(changes []Change, gone [][2]uint32) {
	t.write(func() {
		for _, g := range gone {
			t.has[g[0]].Remove(g[1])
		}
		for _, c := range changes {
			if c.Deleted && t.nameLocked(c.ID) != "" {
				t.extIDs[c.ID] = ""
				t.count--
				t.live.Remove(c.ID)
			}
		}
	})
}
