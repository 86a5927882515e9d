package mmdb

import (
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
)

// state is what reads need of the schema and what hangs off it: the
// modalities, their indexes, the alignments, calibrations and broken
// indexes. A published state never changes: a writer (holding writeMu)
// copies it, changes the copy and publishes that (update), and a reader
// takes the current one with one atomic load (DB.state), holding no lock.
// The indexes are safe for concurrent use; the items are in itemSet.
type state struct {
	closed  bool
	schema  []Modality
	byName  map[string]int // modality name -> index in schema and indexes
	indexes []hnsw.Index
	aligns  map[[2]string]*Alignment
	calibs  map[[2]string]*Calibration
	broken  map[string]error // modality -> why its index cannot serve
}

func newState() *state {
	return &state{byName: map[string]int{}, aligns: map[[2]string]*Alignment{}, calibs: map[[2]string]*Calibration{}, broken: map[string]error{}}
}

// clone copies s one level deep: enough for a writer to change any field
// of the copy without touching s.
func (s *state) clone() *state {
	c := *s
	c.schema = append([]Modality(nil), s.schema...)
	c.indexes = append([]hnsw.Index(nil), s.indexes...)
	c.byName = maps.Clone(s.byName)
	c.aligns = maps.Clone(s.aligns)
	c.calibs = maps.Clone(s.calibs)
	c.broken = maps.Clone(s.broken)
	return &c
}

// state returns the current state, or ErrClosed.
func (db *DB) state() (*state, error) {
	s := db.st.Load()
	if s.closed {
		return nil, ErrClosed
	}
	return s, nil
}

// update publishes a changed copy of the state; writeMu is held.
func (db *DB) update(change func(*state)) {
	s := db.st.Load().clone()
	change(s)
	db.st.Store(s)
}

// modality returns the named modality and its index.
func (s *state) modality(name string) (Modality, hnsw.Index, error) {
	i, ok := s.byName[name]
	if !ok {
		return Modality{}, nil, fmt.Errorf("%w %q (defined: %s)", ErrUnknownModality, name, s.namesList())
	}
	if err := s.broken[name]; err != nil {
		return Modality{}, nil, err
	}
	return s.schema[i], s.indexes[i], nil
}

// pair is a probe modality and a target modality, with their indexes, on
// one state.
type pair struct {
	s          *state
	pm, tm     Modality
	pidx, tidx hnsw.Index
}

// pair looks up the modalities probe and target on the current state.
func (db *DB) pair(probe, target string) (pair, error) {
	s, err := db.state()
	if err != nil {
		return pair{}, err
	}
	pm, pidx, err := s.modality(probe)
	if err != nil {
		return pair{}, err
	}
	tm, tidx, err := s.modality(target)
	if err != nil {
		return pair{}, err
	}
	return pair{s: s, pm: pm, tm: tm, pidx: pidx, tidx: tidx}, nil
}

// names lists the modality names in definition order.
func (s *state) names() []string {
	names := make([]string, len(s.schema))
	for i, m := range s.schema {
		names[i] = m.Name
	}
	return names
}

func (s *state) namesList() string {
	if len(s.schema) == 0 {
		return "none"
	}
	return strings.Join(s.names(), ", ")
}

// itemSet is the in-memory map of items: internal ID -> external ID, the
// live items, and per modality the items with a vector. It has its own
// lock, held only inside its methods.
type itemSet struct {
	mu     sync.RWMutex
	extIDs []string // internal ID -> external ID; "" for deleted
	count  int
	live   *roaring.Bitmap   // internal IDs of live items
	has    []*roaring.Bitmap // per modality: internal IDs with a vector
}

func newItemSet() *itemSet { return &itemSet{live: roaring.New()} }

// name returns the external ID of internal ID id, "" if it is not live.
func (t *itemSet) name(id uint32) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if int(id) >= len(t.extIDs) {
		return ""
	}
	return t.extIDs[id]
}

// names returns the external IDs of list's items ("" for one not live),
// under one lock, stopping after k live ones.
func (t *itemSet) names(list []fusion.Ranked, k int) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, len(list))
	found := 0
	for i, r := range list {
		if int(r.ID) < len(t.extIDs) {
			out[i] = t.extIDs[r.ID]
		}
		if out[i] != "" {
			if found++; found == k {
				break
			}
		}
	}
	return out
}

// eachName calls fn with each of list's items and its external ID ("" for
// one not live), in order, under one read lock, until fn returns false. A
// search's hits are named this way, with no slice of names in between.
func (t *itemSet) eachName(list []fusion.Ranked, fn func(r fusion.Ranked, name string) bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range list {
		name := ""
		if int(r.ID) < len(t.extIDs) {
			name = t.extIDs[r.ID]
		}
		if !fn(r, name) {
			return
		}
	}
}

// size is the number of live items.
func (t *itemSet) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// liveIDs lists the live items' internal IDs in order.
func (t *itemSet) liveIDs() []uint32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.live.ToArray()
}

// liveClone is a copy of the live items.
func (t *itemSet) liveClone() *roaring.Bitmap {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.live.Clone()
}

// with is a copy of the items with a vector of modality mi.
func (t *itemSet) with(mi int) *roaring.Bitmap {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.has[mi].Clone()
}

// withAndLive is a copy of the items with a vector of modality mi, and of
// the live items, taken at one moment.
func (t *itemSet) withAndLive(mi int) (with, live *roaring.Bitmap) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.has[mi].Clone(), t.live.Clone()
}

// withCount is the number of items with a vector of modality mi.
func (t *itemSet) withCount(mi int) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int(t.has[mi].GetCardinality())
}

// withBoth is the items with vectors of both modalities a and b.
func (t *itemSet) withBoth(a, b int) *roaring.Bitmap {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return roaring.And(t.has[a], t.has[b])
}

// addModality makes room for one more modality's items.
func (t *itemSet) addModality() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.has = append(t.has, roaring.New())
}

// setWith replaces the items with a vector of modality mi.
func (t *itemSet) setWith(mi int, bm *roaring.Bitmap) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.has[mi] = bm
}

// copyAll returns copies of everything, for Check.
func (t *itemSet) copyAll() (extIDs []string, count int, live *roaring.Bitmap, has []*roaring.Bitmap) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, h := range t.has {
		has = append(has, h.Clone())
	}
	return append([]string(nil), t.extIDs...), t.count, t.live.Clone(), has
}

// added maps the IDs of committed changes (deletes aside) and records
// their vectors' modalities: before the vectors enter the indexes, so a
// search never returns a vector it cannot name.
func (t *itemSet) added(changes []change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range changes {
		if c.deleted {
			continue
		}
		for int(c.id) >= len(t.extIDs) {
			t.extIDs = append(t.extIDs, "")
		}
		if t.extIDs[c.id] == "" {
			t.count++
		}
		t.extIDs[c.id] = c.ext
		t.live.Add(c.id)
		for mi := range t.has {
			if mi < len(c.vecs) && c.vecs[mi] != nil {
				t.has[mi].Add(c.id)
			}
		}
	}
}

// removed forgets the (modality, ID) pairs that lost their vector and
// unmaps deleted items: after their vectors left the indexes.
func (t *itemSet) removed(changes []change, gone [][2]uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range gone {
		t.has[g[0]].Remove(g[1])
	}
	for _, c := range changes {
		if c.deleted && t.extIDs[c.id] != "" {
			t.extIDs[c.id] = ""
			t.count--
			t.live.Remove(c.id)
		}
	}
}
