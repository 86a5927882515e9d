package hnsw

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
)

// Multi is an index over sets of vectors: each ID owns 1 to
// modality.MaxSet vectors, given to Add laid end to end, and a query (one
// vector or a set) scores an ID by late interaction (modality.MaxSim or
// modality.MaxPair).
//
// Every vector of every set is a node of one HNSW graph, under a key of
// its own that maps back to its owner. A search runs in two stages: each
// query vector's nearest keys in the graph name the candidate owners, then
// each candidate is scored exactly against its whole stored set. The
// aggregated distance is, per query vector, the distance to its closest
// vector of the set, averaged over the query's vectors (MaxSim), or the
// smallest distance of any pair (MaxPair); Metric.Score turns it into a
// score as it does a single vector's distance.
type Multi struct {
	agg modality.Multi
	dim int

	// writers is held shared by Add and Delete and exclusively by Save
	// and Load, so a save sees no half-replaced set.
	writers sync.RWMutex
	// idMu serialises the Adds and Deletes of one ID (striped).
	idMu [64]sync.Mutex

	mu    sync.RWMutex // guards everything below
	g     *HNSW
	owner []uint32            // key -> owner ID, for keys handed out
	keys  map[uint32][]uint32 // owner ID -> its keys, in set order
	sizes setSizes            // owner ID -> how many keys
	free  []uint32            // keys given back, for reuse
	nodes int                 // keys held by live sets
}

// NewMulti returns an empty set index whose sets are scored by agg.
func NewMulti(dim int, metric modality.Metric, agg modality.Multi, cfg Config) *Multi {
	cfg.Source = nil // the graph's IDs are the sets' vectors, not items
	return &Multi{agg: agg, dim: dim, g: NewHNSW(dim, metric, cfg), keys: map[uint32][]uint32{}}
}

// New returns an empty index for modality m: a Multi for a multi-vector
// modality, else an HNSW graph.
func New(m modality.Modality, cfg Config) Index {
	if m.IsMulti() {
		return NewMulti(m.Dim, m.Metric, m.Multi, cfg)
	}
	return NewHNSW(m.Dim, m.Metric, cfg)
}

// Dim implements Index: the dimension of each vector of a set.
func (m *Multi) Dim() int { return m.dim }

// Metric implements Index.
func (m *Multi) Metric() modality.Metric { return m.graph().metric }

// Config returns the graph's configuration with defaults filled in.
func (m *Multi) Config() Config { return m.graph().cfg }

// Aggregation says how sets are scored.
func (m *Multi) Aggregation() modality.Multi { return m.agg }

// Len implements Index: the number of IDs with a set.
func (m *Multi) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.keys)
}

// Vectors is the number of vectors in all the sets.
func (m *Multi) Vectors() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nodes
}

func (m *Multi) graph() *HNSW {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.g
}

// count is how many vectors a value of n floats holds, 0 if it cannot be
// a set.
func (m *Multi) count(n int) int {
	if n == 0 || n%m.dim != 0 || n/m.dim > modality.MaxSet {
		return 0
	}
	return n / m.dim
}

// noOwner marks a key no set holds: handed out to an Add still
// inserting its vectors, or replaced and not yet freed. (So ID
// math.MaxUint32 cannot own a set.)
const noOwner = math.MaxUint32

// Add implements Index: vec is the set's vectors laid end to end, and
// replaces any set id had.
//
// A reader sees the old set or the new one, never a blend: the new
// vectors go into the graph under keys no set holds yet, then the set
// switches to them in one step under mu, and only then do the old keys
// leave the graph and become free. Readers that score sets hold mu shared
// throughout, so no key they read is switched or reused under them.
func (m *Multi) Add(id uint32, vec []float32) error {
	n := m.count(len(vec))
	switch {
	case n == 0:
		return fmt.Errorf("%w: %d values is not a set of 1 to %d %d-d vectors", ErrDimension, len(vec), modality.MaxSet, m.dim)
	case id == noOwner:
		return fmt.Errorf("hnsw: ID %d is reserved in a set index", id)
	}
	defer m.writing(id)()

	m.mu.Lock()
	g := m.g
	if len(m.free) < n && len(m.owner)+n-len(m.free) >= int(noOwner) {
		m.mu.Unlock()
		return fmt.Errorf("hnsw: a set index holds at most %d vectors", noOwner-1)
	}
	keys := make([]uint32, n)
	for j := range keys {
		if f := len(m.free); f > 0 {
			keys[j] = m.free[f-1]
			m.free = m.free[:f-1]
		} else {
			keys[j] = uint32(len(m.owner))
			m.owner = append(m.owner, noOwner)
		}
		m.owner[keys[j]] = noOwner
	}
	m.mu.Unlock()

	for j, k := range keys {
		if err := g.Add(k, vec[j*m.dim:(j+1)*m.dim]); err != nil {
			m.release(g, keys)
			return err
		}
	}
	m.mu.Lock()
	old := m.keys[id]
	for _, k := range old {
		m.owner[k] = noOwner
	}
	for _, k := range keys {
		m.owner[k] = id
	}
	m.keys[id] = keys
	m.sizes.set(id, n)
	m.nodes += n - len(old)
	m.mu.Unlock()
	m.release(g, old)
	return nil
}

// release takes keys no set holds out of the graph, then makes them free
// for reuse (in that order: a key reused before its node left would have
// its new node deleted).
func (m *Multi) release(g *HNSW, keys []uint32) {
	if len(keys) == 0 {
		return
	}
	for _, k := range keys {
		g.Delete(k)
	}
	m.mu.Lock()
	if g == m.g {
		m.free = append(m.free, keys...)
	}
	m.mu.Unlock()
}

// writing takes what a write of id holds throughout (id's stripe of
// idMu, and writers shared, so a Save sees no write half done) and
// returns their release.
func (m *Multi) writing(id uint32) func() {
	l := &m.idMu[id%uint32(len(m.idMu))]
	l.Lock()
	m.writers.RLock()
	return func() {
		m.writers.RUnlock()
		l.Unlock()
	}
}

// Delete implements Index.
func (m *Multi) Delete(id uint32) bool {
	defer m.writing(id)()
	m.mu.Lock()
	g := m.g
	old, ok := m.keys[id]
	if ok {
		delete(m.keys, id)
		m.sizes.set(id, 0)
		m.nodes -= len(old)
		for _, k := range old {
			m.owner[k] = noOwner
		}
	}
	m.mu.Unlock()
	m.release(g, old)
	return ok
}

// Vector implements Index: id's set, laid end to end.
func (m *Multi) Vector(id uint32) ([]float32, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	keys := m.keys[id]
	if keys == nil {
		return nil, false
	}
	out := make([]float32, 0, len(keys)*m.dim)
	for _, k := range keys {
		v, ok := m.g.Vector(k)
		if !ok {
			return nil, false // a set's keys are in the graph while it holds them
		}
		out = append(out, v...)
	}
	return out, true
}

// MultiStats says what a set search did: the query's vectors, the
// candidate IDs the graph gave, and the time of each stage.
type MultiStats struct {
	QueryVectors, Candidates int
	Walk, Rescore            time.Duration
}

// Search implements Index: q is one vector or a set laid end to end.
func (m *Multi) Search(q []float32, k int, opts SearchOptions) []Result {
	res, _ := m.SearchStats(q, k, opts)
	return res
}

// scanBudget bounds the per-set closest distances the one-pass exact scan
// keeps (sets x query vectors, 64 MiB of float32); past it the scan
// scores set by set, in constant memory.
const scanBudget = 1 << 24

// SearchStats is Search, with what it did. With opts.Exact every set (or
// every allowed one) is scored; otherwise each query vector's Ef nearest
// vectors in the graph name the candidates, which are then scored exactly.
// A walk that names fewer than k sets is widened (ef x4, three times at
// most), then replaced by the exact scan, so a search returns min(k,
// allowed sets) results: sets of many close vectors (a document's tokens)
// can fill one query vector's ef nearest with a few sets. With opts.Walk
// and a filter, the walks' statistics are summed (WalkStats: in vectors).
func (m *Multi) SearchStats(q []float32, k int, opts SearchOptions) ([]Result, MultiStats) {
	nq := m.count(len(q))
	st := MultiStats{QueryVectors: nq}
	if k <= 0 || nq == 0 {
		return nil, st
	}
	start := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if opts.Filter != nil {
		opts.Allow, opts.Filter = m.accepted(opts.Allow, opts.Filter), nil
	}
	g := m.g
	var cands []uint32
	if !opts.Exact {
		var stopped bool
		if cands, stopped = m.candidates(q, nq, k, opts); stopped {
			st.Walk = time.Since(start)
			return nil, st // incomplete: the caller scans
		}
	}
	if cands == nil {
		if opts.Allow == nil || opts.Allow.GetCardinality()*4 > uint64(len(m.keys)) {
			if len(m.keys)*nq <= scanBudget {
				// Most sets: one pass over the graph's vectors in slot order.
				res, n := m.scan(q, nq, k, opts.Allow)
				st.Candidates, st.Rescore = n, time.Since(start)
				return res, st
			}
		}
		cands = m.owners(opts.Allow)
	}
	st.Walk = time.Since(start)
	st.Candidates = len(cands)
	start = time.Now()
	res := m.rank(g, q, nq, cands, k)
	st.Rescore = time.Since(start)
	return res, st
}

// eachSet calls fn with each ID that has a set, and its keys (those
// allow holds, if it is not nil), mu held shared: by the allow-list when
// it is the shorter, else over the sets.
func (m *Multi) eachSet(allow *roaring.Bitmap, fn func(id uint32, keys []uint32)) {
	if allow != nil && allow.GetCardinality() < uint64(len(m.keys)) {
		it := allow.Iterator()
		for it.HasNext() {
			id := it.Next()
			if keys := m.keys[id]; keys != nil {
				fn(id, keys)
			}
		}
		return
	}
	for id, keys := range m.keys {
		if allow == nil || allow.Contains(id) {
			fn(id, keys)
		}
	}
}

// accepted is the IDs with a set that allow holds (if it is not nil) and
// fn accepts, fn asked once about each (mu held shared).
func (m *Multi) accepted(allow *roaring.Bitmap, fn func(uint32) bool) *roaring.Bitmap {
	out := roaring.New()
	m.eachSet(allow, func(id uint32, _ []uint32) {
		if fn(id) {
			out.Add(id)
		}
	})
	return out
}

// owners lists the IDs with a set (those allow holds, if it is not nil),
// in order (mu held shared).
func (m *Multi) owners(allow *roaring.Bitmap) []uint32 {
	var out []uint32
	m.eachSet(allow, func(id uint32, _ []uint32) { out = append(out, id) })
	slices.Sort(out)
	return out
}

// candidates is the first stage of a graph search (mu held shared): the
// owners of each query vector's nearest keys, distinct, in order; nil
// when even a widened walk names fewer than min(k, allowed sets), and the
// caller scores every set instead. stopped: a walk stopped early
// (WalkStats.Budget), and the search answers nothing.
func (m *Multi) candidates(q []float32, nq, k int, opts SearchOptions) (cands []uint32, stopped bool) {
	g := m.g
	ef := opts.Ef
	if ef <= 0 {
		ef = g.cfg.EfSearch
	}
	ef = max(ef, k)
	sub, sets := SearchOptions{}, len(m.keys)
	var allowedKeys int
	if opts.Allow != nil {
		// Counting the allowed sets that exist, so that a walk is not
		// widened looking for sets that do not.
		if sets, allowedKeys = m.sizes.count(opts.Allow, len(m.keys)); sets == 0 {
			return []uint32{}, false
		}
		// The walk tests the keys it meets by their owners (mu is held
		// shared: owner does not change; a key still being added is
		// owned by no set).
		var sets allowed // the graph's dense copy of an allow-list, when cheap
		sets.set(opts.Allow, nil)
		owner := m.owner
		sub.Filter = func(key uint32) bool {
			return int(key) < len(owner) && owner[key] != noOwner && sets.has(owner[key])
		}
	}
	want := min(k, sets)
	// ws is the caller's WalkStats in vectors; it sums the counts of every
	// walk, widened rounds included, and goes back to the caller.
	var ws, one WalkStats
	walk := opts.Walk != nil && opts.Allow != nil
	if walk {
		ws = m.inVectors(*opts.Walk, allowedKeys, sets)
		defer func() {
			opts.Walk.Share, opts.Walk.Candidates, opts.Walk.Accepted, opts.Walk.Stopped = ws.Share, ws.Candidates, ws.Accepted, ws.Stopped
		}()
	}
	var out []uint32
	for range 4 {
		sub.Ef = ef
		out = out[:0]
		for i := range nq {
			if walk {
				one = WalkStats{Share: ws.Share, Budget: ws.Budget, Floor: ws.Floor}
				sub.Walk = &one
			}
			for _, r := range g.Search(q[i*m.dim:(i+1)*m.dim], ef, sub) {
				if int(r.ID) < len(m.owner) && m.owner[r.ID] != noOwner {
					out = append(out, m.owner[r.ID])
				}
			}
			if walk {
				ws.Candidates += one.Candidates
				ws.Accepted += one.Accepted
				if one.Stopped {
					ws.Stopped = true
					return nil, true
				}
			}
		}
		slices.Sort(out)
		out = slices.Compact(out)
		if len(out) >= want {
			return out, false
		}
		if ef >= m.nodes {
			break
		}
		ef *= 4
	}
	return nil, false
}

// inVectors is w, whose Share, Budget and Floor are given in sets (the
// share of the sets a filter allows; the candidates a walk may take, and
// the least it takes), for the walks of the graph of vectors, its counts
// zero: Share becomes the share of the graph's live vectors that the
// allowed sets' keys (sets of them) are, Budget grows by the allowed
// sets' mean size (it stands for a number of allowed sets to scan), and
// Floor by the ratio of the shares (it stands for a number of allowed
// candidates expected by chance). mu held shared.
func (m *Multi) inVectors(w WalkStats, keys, sets int) WalkStats {
	out := WalkStats{Share: float64(keys) / float64(max(1, m.nodes))}
	if w.Share > 0 && out.Share > 0 {
		out.Budget = int(min(float64(w.Budget)*float64(keys)/float64(max(1, sets)), 1<<30))
		out.Floor = int(min(float64(w.Floor)*w.Share/out.Share, 1<<30))
	}
	return out
}

// rank scores the candidate owners exactly and keeps the k closest (mu
// held shared: every key of a set is in the graph).
func (m *Multi) rank(g *HNSW, q []float32, nq int, cands []uint32, k int) []Result {
	top := make(maxHeap, 0, min(k, len(cands))+1)
	var slots []uint32
	var dists []float32
	near := make([]float32, nq)
	qs := m.queries(q, nq)
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, id := range cands {
		slots = slots[:0]
		g.slotMu.Lock()
		for _, key := range m.keys[id] {
			if s, ok := g.slotOf.get(key); ok {
				slots = append(slots, s)
			}
		}
		g.slotMu.Unlock()
		if len(slots) == 0 {
			continue
		}
		dists = slices.Grow(dists[:0], len(slots))[:len(slots)]
		for i := range qs {
			g.qdists(&qs[i], slots, dists)
			near[i] = slices.Min(dists)
		}
		if d, ok := m.aggregate(near); ok {
			top.offer(Result{ID: id, Dist: d}, k)
		}
	}
	return top.sorted()
}

func (m *Multi) queries(q []float32, nq int) []query {
	qs := make([]query, nq)
	for i := range qs {
		qs[i] = query{v: q[i*m.dim : (i+1)*m.dim]}
	}
	return qs
}

// Unreachable implements Index: the IDs with a vector no search reaches.
// (Keys no set holds, of an Add in progress, are not reported; mu is held
// shared throughout, so no key changes owner while they are mapped.)
func (m *Multi) Unreachable() []uint32 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	lost := m.g.Unreachable()
	if len(lost) == 0 {
		return lost
	}
	out := make([]uint32, 0, len(lost))
	for _, k := range lost {
		if int(k) < len(m.owner) && m.owner[k] != noOwner {
			out = append(out, m.owner[k])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Repair re-links the graph's unreachable nodes (HNSW.Repair).
func (m *Multi) Repair() int { return m.graph().Repair() }

// Recentre re-centres the graph's codes if their centre is stale
// (HNSW.Recentre).
func (m *Multi) Recentre() bool { return m.graph().Recentre() }

// scan is the exact search over every set (or every set allow holds), mu
// held shared: one pass over the graph's live slots in order, four rows a
// kernel call per query vector, keeping per set the closest distance of
// each query vector. It returns the k closest sets and the number scored.
// The distances are those rank computes, bit for bit (the same kernels,
// the same sums).
func (m *Multi) scan(q []float32, nq, k int, allow *roaring.Bitmap) ([]Result, int) {
	g := m.g
	sets := m.owners(allow)
	if len(sets) == 0 {
		return nil, 0
	}
	// row: a set's place in near (sets[row] is its ID).
	row := make(map[uint32]int32, len(sets))
	for i, id := range sets {
		row[id] = int32(i)
	}
	near := make([]float32, len(sets)*nq)
	for i := range near {
		near[i] = float32(math.Inf(1))
	}
	qs := m.queries(q, nq)
	var slots [64]uint32
	var rows [64]int32
	var dists [64]float32
	n := 0
	flush := func() {
		for i := range qs {
			g.qdists(&qs[i], slots[:n], dists[:])
			for j, d := range dists[:n] {
				if p := &near[int(rows[j])*nq+i]; d < *p {
					*p = d
				}
			}
		}
		n = 0
	}
	g.mu.RLock()
	g.slotMu.Lock()
	used := g.used
	g.slotMu.Unlock()
	for s := range uint32(used) {
		if g.isDead(s) {
			continue // (a slot being inserted is flagged until published)
		}
		key := g.ids[s]
		if int(key) >= len(m.owner) || m.owner[key] == noOwner {
			continue
		}
		r, ok := row[m.owner[key]]
		if !ok {
			continue
		}
		slots[n], rows[n] = s, r
		if n++; n == len(slots) {
			flush()
		}
	}
	flush()
	g.mu.RUnlock()
	top := make(maxHeap, 0, min(k, len(sets))+1)
	for i, id := range sets {
		if d, ok := m.aggregate(near[i*nq : (i+1)*nq]); ok {
			top.offer(Result{ID: id, Dist: d}, k)
		}
	}
	return top.sorted(), len(sets)
}

// aggregate is a set's distance from each query vector's closest
// distance to it: their mean (MaxSim) or their minimum (MaxPair), summed
// in one order whatever the path. Under L2 the index's distances are
// squared, and MaxSim averages the Euclidean distances (the square of
// their mean is returned, which Metric.Score takes the root of). ok is
// false for a set none of whose vectors was seen.
func (m *Multi) aggregate(near []float32) (float32, bool) {
	var sum float64
	best := near[0]
	l2 := m.g.metric == modality.L2
	for _, d := range near {
		if math.IsInf(float64(d), 1) {
			return 0, false
		}
		if l2 {
			sum += math.Sqrt(max(float64(d), 0))
		} else {
			sum += float64(d)
		}
		best = min(best, d)
	}
	if m.agg != modality.MaxSim {
		return best, true
	}
	mean := sum / float64(len(near))
	if l2 {
		return float32(mean * mean), true
	}
	return float32(mean), true
}
