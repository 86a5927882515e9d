package hnsw

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Config tunes an HNSW graph. Zero fields take the defaults.
type Config struct {
	// M is the number of links a node keeps on the upper layers; layer 0
	// keeps up to 2M. Default 16.
	M int
	// EfConstruction is the beam width used while inserting. Default 200.
	EfConstruction int
	// EfSearch is the default beam width of a search. Default 64.
	EfSearch int
	// Seed makes level draws, and so a single-threaded build, repeatable.
	Seed uint64
	// Float32Walk makes searches and inserts walk the graph on the float32
	// vectors. By default they walk on a copy of each vector quantized to
	// a byte a component (a quarter of the bytes to fetch per distance),
	// then re-score the nodes found on the float32 vectors: results carry
	// exact distances in exact order, and links are chosen on exact
	// distances. The copy costs about dim+12 bytes per node in memory (and
	// in what Save writes; SaveLinks computes it again on load). Without
	// it a graph holds less than hnswlib's memory (resident 720 bytes a
	// vector at 128-d against 864 and hnswlib's 784; 2,260 at 512-d
	// against 2,813 and 2,313). Its searches are level with the default's
	// while the vectors fit in 4 MiB (where the default walks on float32
	// too), 0.58-0.68x as fast where the codes fit the CPU's last-level
	// cache and the vectors do not (100k x 128 or 50k x 512 on 32 MiB),
	// and 0.90-0.93x where neither does (1M x 128), at equal recall; that
	// is 1.14 to 1.74x hnswlib's q/s at recall 0.95-0.99 throughout. Builds
	// are level in cache and 0.66-0.86x as fast out of it (BENCHMARKS.md,
	// "Twelfth round", on AMD Zen 4). Source goes further, keeping the
	// codes and not the vectors.
	Float32Walk bool
	// Source, when set, holds the graph's float32 vectors instead of the
	// graph (a low-memory mode): the graph keeps its byte codes and links,
	// always walks on the codes, chooses links on distances between codes,
	// and reads the float32 vectors of the nodes a search found back from
	// Source to re-score them, so results still carry exact distances in
	// exact order. It takes Float32Walk's place (which is then ignored). A
	// Multi index ignores it. See VectorSource.
	Source VectorSource
}

// Defaults for Config.
const (
	DefaultM              = 16
	DefaultEfConstruction = 200
	DefaultEfSearch       = 64
	// CompactAt is the share of tombstoned nodes at which Delete compacts
	// the graph.
	CompactAt = 0.20
	maxLevel  = 31
	maxEf     = 1 << 16
	noNode    = math.MaxUint32
)

func (c Config) withDefaults() Config {
	if c.Source != nil {
		c.Float32Walk = false
	}
	if c.M <= 0 {
		c.M = DefaultM
	}
	if c.M < 2 {
		c.M = 2
	}
	if c.EfConstruction <= 0 {
		c.EfConstruction = DefaultEfConstruction
	}
	if c.EfSearch <= 0 {
		c.EfSearch = DefaultEfSearch
	}
	c.M = min(c.M, 1024)
	c.EfConstruction = min(c.EfConstruction, maxEf)
	c.EfSearch = min(c.EfSearch, maxEf)
	return c
}

// HNSW is a hierarchical navigable small world graph (Malkov & Yashunin,
// 2018) over the vectors of one modality.
//
// Layout: nodes live in slots; a slot's vector is vecs[slot*dim:] (none
// with a Config.Source: its codes, rows[slot*rowSize:], stand in), its
// layer-0 links are the fixed block links0[slot*(2M+1):] holding a count and
// up to 2M neighbour slots, and its upper-layer links are blocks of M+1 in
// upper[slot]. No maps or per-hop allocation on the search path.
//
// Concurrency: searches and inserts hold mu shared; only growing the arrays,
// compaction and Load hold it exclusively. Link blocks are read with atomic
// loads and written with atomic stores under the owning node's lock
// (nodeLock: one of 1,024, chosen by slot; no code holds two), so a
// search never blocks on an insert; a reader may see a list mid-update, but
// every slot it sees is a valid, fully written node (a node's vector, level
// and links are written before any link to it is published).
type HNSW struct {
	mu sync.RWMutex
	// writers is held shared by Add and Delete and exclusively by Save, so
	// a save sees no half-inserted node while searches go on.
	writers sync.RWMutex
	cfg     Config
	dim     int
	metric  modality.Metric
	m, m0   int // link capacity on upper layers and on layer 0
	ml      float64
	// Cache lines to prefetch per row of codes and of float32 vectors.
	codeLines, vecLines, blockLines0, blockLinesUp int

	// Slot arrays, reallocated only under mu held exclusively.
	vecs []float32
	// rows holds a row of rowSize bytes per slot: the vector quantized
	// to a byte a component, padded to 4 bytes, then its scale. One row
	// is what a quantized walk reads of a node, in one run of cache lines.
	rows    []uint8
	rowSize int
	// centre is subtracted from every vector before it is quantized
	// (quant.go): the graph's first vector, set before any node is
	// quantized, and moved only with every row re-encoded, under mu held
	// exclusively (centre.go). nil under Float32Walk.
	centre []float32
	ids    []uint32 // slot -> caller's ID
	levels []uint8  // slot -> top layer
	links0 []uint32 // slot*(m0+1): count, then neighbours
	// upper holds, for a slot with a level above 0, its level*(m+1)
	// blocks for layers 1..level; nil for the others (15 in 16). A
	// pointer, 8 bytes a slot, rather than a slice header's 24.
	upper []*[]uint32
	// upperBytes is what the blocks behind upper hold (setUpper keeps it),
	// for MemoryBytes.
	upperBytes atomic.Int64
	deleted    []uint32 // a bit a slot, set if tombstoned (atomic: isDead, setDead)
	// nodeMu guards link writes, a lock per nodeLocks slots apart (no
	// code holds two at once): 8 KiB a graph instead of 8 bytes a node.
	nodeMu [nodeLocks]sync.Mutex

	// entry packs the entry point's level (high 32 bits) and slot; noNode
	// in the slot half means empty. Changed under epMu.
	entry atomic.Uint64
	epMu  sync.Mutex

	slotMu     sync.Mutex // guards everything below
	slotOf     slotMap
	used       int      // slots handed out, live or tombstoned
	free       []uint32 // compacted slots ready for reuse
	tombstones int
	rng        *rand.Rand

	searchers sync.Pool // *searcher

	// sinceCheck counts the writes since the last reachability check
	// (reach.go), checkAt is an eighth of the live nodes it counted, and
	// checking is held by the writer running one.
	sinceCheck, checkAt atomic.Int64
	checking            atomic.Bool
	relinks             atomic.Int64 // re-links made by repairs, for tests
	// sinceCentre counts the inserts since the centre was last checked
	// (centre.go), centreAt is the live nodes counted then, and
	// recentring is held by the writer running a check.
	sinceCentre, centreAt atomic.Int64
	recentring            atomic.Bool
	// scratch is the checks' working memory (reach), reused so that the
	// check every live/8 writes makes no garbage over a build: about 9
	// bytes a node once a check has run, let go by Repair and
	// Unreachable. Its lock is held over a check and the re-links that
	// use its answer (repairLocked, Unreachable).
	scratch struct {
		sync.Mutex
		seen        []bool
		indeg       []uint32
		order, lost []uint32
	}

	// outgrown is set when the float32 vectors outgrow cacheWalkBytes
	// (by an insert, for good; by Load, from the loaded size): walks then
	// score byte codes (walksOnCodes).
	outgrown atomic.Bool
}

// NewHNSW returns an empty graph.
func NewHNSW(dim int, metric modality.Metric, cfg Config) *HNSW {
	cfg = cfg.withDefaults()
	h := &HNSW{
		cfg:    cfg,
		dim:    dim,
		metric: metric,
		m:      cfg.M,
		m0:     2 * cfg.M,
		ml:     1 / math.Log(float64(cfg.M)),
		slotOf: newSlotMap(0),
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
	}
	h.rowSize = (dim+3)&^3 + int(unsafe.Sizeof(scale{}))
	h.codeLines = min((h.rowSize+63)/64+1, 8)
	h.vecLines = min((4*dim+63)/64+1, 4)
	h.blockLines0 = min((4*(h.m0+1)+63)/64+1, 8)
	h.blockLinesUp = min((4*(h.m+1)+63)/64+1, 8)
	h.entry.Store(noNode)
	return h
}

// Config returns the graph's configuration with defaults filled in.
func (h *HNSW) Config() Config { return h.cfg }

// Dim implements Index.
func (h *HNSW) Dim() int { return h.dim }

// Metric implements Index.
func (h *HNSW) Metric() modality.Metric { return h.metric }

// Len implements Index.
func (h *HNSW) Len() int {
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	return h.slotOf.len()
}

// dist is the metric's distance, written as a switch rather than a
// function value so the compiler can inline it into the search loops.
func (h *HNSW) dist(a, b []float32) float32 {
	switch h.metric {
	case modality.L2:
		return kernel.L2Sq(a, b)
	case modality.Dot:
		return -kernel.DotProduct(a, b)
	}
	return 1 - kernel.DotProduct(a, b)
}

func (h *HNSW) vec(slot uint32) []float32 {
	o := int(slot) * h.dim
	return h.vecs[o : o+h.dim : o+h.dim]
}

// block returns slot's link block on layer l: count, then neighbours.
func (h *HNSW) block(slot uint32, l int) []uint32 {
	if l == 0 {
		o := int(slot) * (h.m0 + 1)
		return h.links0[o : o+h.m0+1 : o+h.m0+1]
	}
	o := (l - 1) * (h.m + 1)
	return (*h.upper[slot])[o : o+h.m+1 : o+h.m+1]
}

// isDead reports whether slot is a tombstone, a free slot or one being
// inserted.
func (h *HNSW) isDead(slot uint32) bool {
	return atomic.LoadUint32(&h.deleted[slot/32])&(1<<(slot%32)) != 0
}

// setDead sets or clears slot's tombstone bit.
func (h *HNSW) setDead(slot uint32, dead bool) {
	if dead {
		atomic.OrUint32(&h.deleted[slot/32], 1<<(slot%32))
	} else {
		atomic.AndUint32(&h.deleted[slot/32], ^uint32(1<<(slot%32)))
	}
}

// upperOf returns slot's upper-layer blocks (nil at level 0).
func (h *HNSW) upperOf(slot uint32) []uint32 {
	if p := h.upper[slot]; p != nil {
		return *p
	}
	return nil
}

// setUpper sets slot's upper-layer blocks (nil or empty: none).
func (h *HNSW) setUpper(slot uint32, b []uint32) {
	if old := h.upper[slot]; old != nil {
		h.upperBytes.Add(-int64(unsafe.Sizeof(*old)) - 4*int64(cap(*old)))
	}
	if len(b) == 0 {
		h.upper[slot] = nil
		return
	}
	p := new([]uint32) // not &b: that would move b to the heap on every call
	*p = b
	h.upper[slot] = p
	h.upperBytes.Add(int64(unsafe.Sizeof(b)) + 4*int64(cap(b)))
}

// nodeLocks is how many locks guard the nodes' links (nodeLock).
const nodeLocks = 1024

// nodeLock is the lock of slot's links.
func (h *HNSW) nodeLock(slot uint32) *sync.Mutex { return &h.nodeMu[slot%nodeLocks] }

func (h *HNSW) capAt(l int) int {
	if l == 0 {
		return h.m0
	}
	return h.m
}

// grow makes room for at least n slots, doubling. mu must be held
// exclusively.
func (h *HNSW) grow(n int) {
	if n <= len(h.ids) {
		return
	}
	h.resize(max(n, 2*len(h.ids), minSlots))
}

// minSlots is the least a graph grows to. It was 1,024, which gave a
// 128-d modality of a few items 806 KiB of index (TestSmallGraphIsSmall):
// a file with many small modalities paid that for each. The doublings up
// to 1,024 it now costs copy fewer than 1,024 slots in all.
const minSlots = 16

// Reserve makes room for n more nodes in one step, so that a bulk load
// copies no arrays as it goes: grown a node at a time, the arrays double,
// and while a doubling copies them the old and the new are both held,
// three times the nodes' memory at the peak. It reserves only when n is
// more than the next doubling would give, and reports false, doing
// nothing, before the graph's first node (whose vector must reach Add
// first: it becomes the centre of the codes; a Float32Walk graph has no
// centre and reserves from empty). It takes the graph's write lock, and so
// waits for searches, only when it resizes.
func (h *HNSW) Reserve(n int) bool {
	grow := func() (need int, ok, do bool) {
		if h.centre == nil && !h.cfg.Float32Walk {
			return 0, false, false
		}
		h.slotMu.Lock()
		need = h.used - len(h.free) + n
		h.slotMu.Unlock()
		return need, true, n > 0 && need > 2*len(h.ids)
	}
	h.mu.RLock()
	_, ok, do := grow()
	h.mu.RUnlock()
	if !ok || !do {
		return ok
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if need, ok, do := grow(); ok && do {
		h.resize(need)
	}
	return true
}

// resize reallocates the slot arrays to c slots (c >= len(h.ids)), mu held
// exclusively.
func (h *HNSW) resize(c int) {
	if !h.lowMem() {
		h.vecs = append(make([]float32, 0, c*h.dim), h.vecs...)[:c*h.dim]
	}
	if !h.cfg.Float32Walk {
		h.rows = append(make([]uint8, 0, c*h.rowSize), h.rows...)[:c*h.rowSize]
	}
	h.ids = append(make([]uint32, 0, c), h.ids...)[:c]
	h.levels = append(make([]uint8, 0, c), h.levels...)[:c]
	h.links0 = append(make([]uint32, 0, c*(h.m0+1)), h.links0...)[:c*(h.m0+1)]
	h.upper = append(make([]*[]uint32, 0, c), h.upper...)[:c]
	h.deleted = append(make([]uint32, 0, (c+31)/32), h.deleted...)[:(c+31)/32]
}

func (h *HNSW) randomLevel() int {
	l := int(-math.Log(1-h.rng.Float64()) * h.ml)
	return min(l, maxLevel)
}

// claim reserves a slot and draws its level. It returns ok=false when the
// arrays are full and must grow first. The slot stays flagged deleted, so
// no search returns it, until insert publishes it.
func (h *HNSW) claim() (slot uint32, level int, ok bool) {
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	if n := len(h.free); n > 0 {
		slot = h.free[n-1]
		h.free = h.free[:n-1]
	} else if h.used < len(h.ids) {
		slot = uint32(h.used)
		h.used++
		h.noteSize()
	} else {
		return 0, 0, false
	}
	h.setDead(slot, true)
	return slot, h.randomLevel(), true
}

// publish maps id to its freshly linked slot and makes it visible to
// searches. A node id had before becomes a tombstone and is unlinked.
func (h *HNSW) publish(id, slot uint32) {
	h.slotMu.Lock()
	old, had := h.slotOf.get(id)
	h.slotOf.set(id, slot)
	if had {
		h.setDead(old, true)
		h.tombstones++
	}
	h.setDead(slot, false)
	h.slotMu.Unlock()
	if had {
		h.unlink(old)
	}
}

// Add implements Index. An existing id is replaced: the new vector is
// inserted as a fresh node, then the old node becomes a tombstone and its
// neighbours are re-linked. Concurrent Adds of the same id: the last to
// finish wins. Safe to call from many goroutines at once: that is how
// AddParallel builds on every core.
func (h *HNSW) Add(id uint32, vec []float32) error {
	if len(vec) != h.dim {
		return fmt.Errorf("%w: %d, want %d", ErrDimension, len(vec), h.dim)
	}
	h.writers.RLock()
	defer h.writers.RUnlock()
	h.maybeRecentre()
	h.mu.RLock()
	if h.centre == nil && !h.cfg.Float32Walk {
		// The graph's first vector becomes the centre of the codes,
		// before any node is quantized (a graph loaded with only free
		// slots has none yet either).
		h.mu.RUnlock()
		h.mu.Lock()
		if h.centre == nil {
			h.centre = append([]float32(nil), vec...)
		}
		h.mu.Unlock()
		h.mu.RLock()
	}
	slot, level, ok := h.claim()
	for !ok {
		h.mu.RUnlock()
		h.mu.Lock()
		h.slotMu.Lock()
		need := h.used + 1
		h.slotMu.Unlock()
		h.grow(need)
		h.mu.Unlock()
		h.mu.RLock()
		slot, level, ok = h.claim()
	}
	defer h.mu.RUnlock()
	h.insert(slot, id, vec, level)
	h.publish(id, slot)
	h.maybeCompactLocked()
	h.maybeRepairLocked()
	return nil
}

// insert links a claimed slot into the graph (mu held shared).
func (h *HNSW) insert(slot, id uint32, vec []float32, level int) {
	sc := h.getSearcher()
	defer h.searchers.Put(sc)
	q := vec
	if !h.lowMem() {
		copy(h.vecs[int(slot)*h.dim:], vec)
		q = h.vec(slot)
	}
	sc.xt = slices.Grow(sc.xt[:0], h.dim)[:h.dim]
	h.quantize(slot, q, sc.xt)
	h.ids[slot] = id
	h.levels[slot] = uint8(level)
	clear(h.block(slot, 0)) // a reused slot may hold old links
	if level > 0 {
		h.setUpper(slot, make([]uint32, level*(h.m+1)))
	} else {
		h.setUpper(slot, nil)
	}

	ep := h.entry.Load()
	if uint32(ep) == noNode || level > int(ep>>32) {
		// A new top level (or the first node) changes the entry point: do
		// the whole insert under epMu so two such inserts cannot race.
		h.epMu.Lock()
		defer h.epMu.Unlock()
		ep = h.entry.Load()
		if uint32(ep) == noNode {
			h.entry.Store(uint64(level)<<32 | uint64(slot))
			return
		}
	}
	neigh := h.neighbours(q, level, ep, slot, sc)
	top := len(neigh) - 1
	// Write the node's own lists on every layer first, and only then link
	// other nodes to it: a concurrent search that reaches the node on any
	// layer finds all of its lists already in place (linking layer by
	// layer would leave it a dead end below).
	for l := top; l >= 0; l-- {
		h.setLinks(slot, l, neigh[l])
	}
	for l := top; l >= 0; l-- {
		for _, n := range neigh[l] {
			h.addLink(n.ID, slot, n.Dist, l)
		}
	}
	if len(neigh) > 0 {
		h.hangCopy(slot, neigh[0], sc)
	}
	if level > int(ep>>32) {
		h.entry.Store(uint64(level)<<32 | uint64(slot))
	}
}

// neighbours chooses the links of a node at level with vector q, on each
// layer from min(level, the entry point's level) down to 0 (neigh[l] for
// layer l), by searching from the entry point ep. Tombstones and self are
// walked through but never chosen: a link to a tombstone is scrubbed at
// compaction, and a node whose in-links came from tombstones would be cut
// off from the graph then.
func (h *HNSW) neighbours(q []float32, level int, ep uint64, self uint32, sc *searcher) [][]Result {
	epSlot, epLevel := uint32(ep), int(ep>>32)
	qq := h.searchQuery(q, h.walksOnCodes(), sc)
	cur := Result{ID: epSlot, Dist: h.qdist(&qq, epSlot)}
	for l := epLevel; l > level; l-- {
		cur = h.greedy(&qq, cur, l, sc)
	}
	// Choose the neighbours on every layer first: the caller writes them.
	top := min(level, epLevel)
	for len(sc.neigh) <= top {
		sc.neigh = append(sc.neigh, nil)
	}
	neigh := sc.neigh[:top+1]
	sc.ep[0] = cur
	eps := sc.ep[:]
	for l := top; l >= 0; l-- {
		found := h.searchLayer(&qq, eps, h.cfg.EfConstruction, l, nil, false, sc)
		if qq.approx && !h.lowMem() {
			// The heuristic below compares exact distances.
			h.rescore(q, found)
		}
		cands := sc.cands[:0]
		for _, f := range found {
			if f.ID != self && !h.isDead(f.ID) {
				cands = append(cands, f)
			}
		}
		sc.cands = cands
		sortLinks(cands, self)
		neigh[l] = h.selectNeighbours(self, neigh[l][:0], cands, h.m)
		if qq.approx && !h.lowMem() && l > 0 {
			// The next layer's walk compares code distances.
			for i := range found {
				found[i].Dist = h.qdist(&qq, found[i].ID)
			}
		}
		eps = found
	}
	return neigh
}

// greedy walks layer l from cur to a local minimum (ef = 1).
func (h *HNSW) greedy(q *query, cur Result, l int, sc *searcher) Result {
	for changed := true; changed; {
		changed = false
		b := h.block(cur.ID, l)
		n := atomic.LoadUint32(&b[0])
		nb := sc.nb[:0]
		for i := uint32(1); i <= n; i++ {
			nb = append(nb, atomic.LoadUint32(&b[i]))
		}
		h.prefetch(q, nb)
		sc.nb = nb
		ds := sc.distsFor(len(nb))
		h.qdists(q, nb, ds)
		for i, e := range nb {
			if d := ds[i]; d < cur.Dist {
				cur, changed = Result{ID: e, Dist: d}, true
			}
		}
	}
	return cur
}

// searchLayer is the beam search of Algorithm 2 on layer l, returning up
// to ef results closest first, in sc.out (valid until sc is used again).
// Nodes that are tombstoned (when skipDeleted) or outside allow are walked
// through but never returned, as in hnswlib; while fewer than ef results
// are found the walk goes on.
func (h *HNSW) searchLayer(q *query, eps []Result, ef, l int, allow *allowed, skipDeleted bool, sc *searcher) []Result {
	if allow == nil {
		return h.searchBeam(q, eps, ef, l, skipDeleted, sc)
	}
	// With an allow-list the beam would hold the nodes it leaves out
	// too: it took 1.03x the heaps' time on sift5k with half the nodes
	// allowed, 1.2x with a tenth (a throwaway A/B, BENCHMARKS.md).
	return h.searchHeaps(q, eps, ef, l, allow, skipDeleted, sc)
}

// searchHeaps is searchLayer on the two heaps of Algorithm 2: candidates
// closest first, results farthest first.
func (h *HNSW) searchHeaps(q *query, eps []Result, ef, l int, allow *allowed, skipDeleted bool, sc *searcher) []Result {
	vis := &sc.vis
	vis.reset(len(h.ids))
	cand, res := sc.kcand[:0], sc.kres[:0]
	// seen and accepted count live candidates and the allowed among
	// them, for WalkStats.
	var seen, accepted int
	eligible := func(s uint32) bool {
		if skipDeleted && h.isDead(s) {
			return false
		}
		seen++
		if allow != nil && !allow.has(h.ids[s]) {
			return false
		}
		accepted++
		return true
	}
	for _, e := range eps {
		if vis.visit(e.ID) {
			k := beamKey(e)
			cand.push(k)
			if eligible(e.ID) {
				res.offer(k, ef)
			}
		}
	}
	stopped := false
	for len(cand) > 0 {
		if sc.walkBudget > 0 && seen >= sc.walkBudget && float64(accepted) < StopShare*sc.walkShare*float64(seen) {
			stopped = true
			break
		}
		c := cand.pop()
		if len(res) >= ef && c > res[0] {
			break
		}
		if len(cand) > 0 {
			// The likely next node to expand: its links are read after
			// this node's neighbours are scored.
			h.prefetchBlock(uint32(cand[0]), l)
		}
		b := h.block(uint32(c), l)
		n := atomic.LoadUint32(&b[0])
		nb := sc.unvisited(b[1 : n+1])
		h.prefetch(q, nb)
		ds := sc.distsFor(len(nb))
		h.qdists(q, nb, ds)
		for i, e := range nb {
			if k := beamKey(Result{ID: e, Dist: ds[i]}); len(res) < ef || k < res[0] {
				cand.push(k)
				if eligible(e) {
					res.offer(k, ef)
				}
			}
		}
	}
	sc.walk = WalkStats{Candidates: seen, Accepted: accepted, Stopped: stopped}
	out := sc.out[:0]
	for range res {
		out = append(out, Result{})
	}
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = keyResult(res.pop())
	}
	sc.kcand, sc.kres, sc.out = cand, res, out
	return out
}

// selectNeighbours is the heuristic of Algorithm 4: walk candidates closest
// first and keep one only if it is closer to the base than to every
// neighbour already kept. It spreads links across directions, which keeps
// clustered data navigable. cands must be sorted closest first. The kept
// ones are appended to out, which must not overlap cands.
//
// Copies of base's vector (copyOf) take at most half the links, and the
// links left over at the end go to copies passed over. The heuristic never
// prunes one copy for another (nothing is closer to a copy than base is),
// so a node with more copies than m among its candidates linked to copies
// only: with a tenth of 60,000 16-d vectors one vector, a walk that entered
// them could not leave, and recall@10 at ef 64 was 0.67 (BenchmarkCopies;
// copies.go).
func (h *HNSW) selectNeighbours(base uint32, out, cands []Result, m int) []Result {
	if len(out)+len(cands) <= m {
		return append(out, cands...)
	}
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	start, copies, skipped := len(out), 0, false
	for _, s := range out {
		if h.copyOf(base, s.ID) {
			copies++
		}
	}
	for _, c := range cands {
		isCopy := h.copyOf(base, c.ID)
		if isCopy && copies >= m/2 {
			skipped = true
			continue
		}
		good := true
		cq := h.nodeQuery(c.ID, buf)
		for _, s := range out {
			if h.qdist(&cq, s.ID) < c.Dist {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
			if isCopy {
				copies++
			}
			if len(out) == m {
				return out
			}
		}
	}
	if !skipped {
		return out
	}
	// Links left over go to the copies passed over, so that a list of
	// copies only (a copy's, once its candidates are all copies) keeps as
	// many as before and prunes one at a time: cutting it to half at once
	// left the copies cut off without an in-link.
	for _, c := range cands {
		if len(out) == m {
			break
		}
		if h.copyOf(base, c.ID) && !slices.ContainsFunc(out[start:], func(s Result) bool { return s.ID == c.ID }) {
			out = append(out, c)
		}
	}
	return out
}

// setLinks replaces slot's list on layer l.
func (h *HNSW) setLinks(slot uint32, l int, neigh []Result) {
	h.nodeLock(slot).Lock()
	h.writeBlock(h.block(slot, l), neigh)
	h.nodeLock(slot).Unlock()
}

// writeBlock stores neighbours then the count, so a concurrent reader sees
// valid slots whatever it reads.
func (h *HNSW) writeBlock(b []uint32, neigh []Result) {
	for i, n := range neigh {
		atomic.StoreUint32(&b[i+1], n.ID)
	}
	atomic.StoreUint32(&b[0], uint32(len(neigh)))
}

// addLink adds a link from node to newSlot on layer l, pruning node's list
// with the heuristic when it is full.
func (h *HNSW) addLink(node, newSlot uint32, d float32, l int) {
	h.nodeLock(node).Lock()
	defer h.nodeLock(node).Unlock()
	b := h.block(node, l)
	n := int(b[0])
	for i := 1; i <= n; i++ {
		if b[i] == newSlot {
			return
		}
	}
	if c := h.capAt(l); n < c {
		atomic.StoreUint32(&b[n+1], newSlot)
		atomic.StoreUint32(&b[0], uint32(n+1))
		return
	}
	if h.copyOf(node, newSlot) && h.copiesIn(node, b[1:n+1]) >= h.capAt(l)/2 {
		// A full list that holds its share of copies keeps them: one
		// taken for the new copy would lose what may be its only
		// in-link. The new copy is hung elsewhere (hangCopy). (With
		// fewer, the new copy competes as any node: an item re-added
		// with its vector unchanged takes the old node's place.)
		return
	}
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	nq := h.nodeQuery(node, buf)
	// Up to 2M = 64 links (M 32) without allocating: a build makes no
	// garbage here, so the collector's heap does not swell over it.
	var dbuf [64]float32
	var cbuf [65]Result
	var sbuf [64]Result
	ds, cands, kept := dbuf[:], cbuf[:0], sbuf[:0]
	if n > len(dbuf) {
		ds, cands, kept = make([]float32, n), make([]Result, 0, n+1), make([]Result, 0, n)
	}
	h.qdists(&nq, b[1:n+1], ds)
	if h.lowMem() {
		// d came from the new node's side (its vector against node's
		// codes); the others are node's codes read back against theirs.
		// Compared across the two estimates, the new link lost more
		// often than it should, and nodes lost their last in-links.
		d = h.qdist(&nq, newSlot)
	}
	cands = append(cands, Result{ID: newSlot, Dist: d})
	for i, dd := range ds[:n] {
		cands = append(cands, Result{ID: b[i+1], Dist: dd})
	}
	sortLinks(cands, node)
	h.writeBlock(b, h.selectNeighbours(node, kept, cands, h.capAt(l)))
}

// sortLinks sorts the candidate links of node closest first (insertion
// sort: lists are short), and orders equal distances by a hash of the
// candidate and node: pseudo-random, and different for each node. Equal
// distances are copies of one vector; kept in the order they came, every
// node would keep the same few copies (or the latest ones), the others
// would lose every in-link, and no search would reach them.
func sortLinks(r []Result, node uint32) {
	less := func(a, b Result) bool {
		if a.Dist != b.Dist {
			return a.Dist < b.Dist
		}
		return tieHash(a.ID, node) < tieHash(b.ID, node)
	}
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && less(r[j], r[j-1]); j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// tieHash mixes id and salt (a 32-bit finaliser: every input bit moves
// every output bit).
func tieHash(id, salt uint32) uint32 {
	x := id ^ (salt * 0x9e3779b9)
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x
}

// Search implements Index. It walks on byte codes unless the graph is
// configured with Float32Walk.
func (h *HNSW) Search(q []float32, k int, opts SearchOptions) []Result {
	if k <= 0 || len(q) != h.dim {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if opts.Exact {
		return h.scan(q, k, opts.Allow, opts.Filter)
	}
	ep := h.entry.Load()
	if uint32(ep) == noNode {
		return nil
	}
	ef := opts.Ef
	if ef <= 0 {
		ef = h.cfg.EfSearch
	}
	ef = max(ef, k)
	// With an allow-list, ef is deliberately not widened: the walk already
	// goes on until ef allowed nodes are found, which widens the search by
	// itself. Widening ef by (live/allowed)^0.5 or ^1 on top cost 4-10x the
	// time for at most +0.003 recall@10 (BenchmarkAllowList).
	if opts.Allow != nil && opts.Allow.IsEmpty() {
		return nil
	}
	sc := h.getSearcher()
	qq := h.searchQuery(q, h.walksOnCodes(), sc)
	cur := Result{ID: uint32(ep), Dist: h.qdist(&qq, uint32(ep))}
	for l := int(ep >> 32); l > 0; l-- {
		cur = h.greedy(&qq, cur, l, sc)
	}
	var allow *allowed
	if opts.Allow != nil || opts.Filter != nil {
		sc.allow.set(opts.Allow, opts.Filter)
		allow = &sc.allow
	}
	if allow != nil && opts.Walk != nil && opts.Walk.Share > 0 {
		sc.walkShare, sc.walkBudget = opts.Walk.Share, opts.Walk.stopAt()
	}
	found := h.searchLayer(&qq, []Result{cur}, ef, 0, allow, true, sc)
	sc.allow.reset()
	sc.walkShare, sc.walkBudget = 0, 0
	if allow != nil && opts.Walk != nil {
		opts.Walk.Candidates, opts.Walk.Accepted, opts.Walk.Stopped = sc.walk.Candidates, sc.walk.Accepted, sc.walk.Stopped
	}
	if h.lowMem() {
		found = h.rescoreFromSource(&qq, found, k, sc)
		sortResults(found)
	} else if qq.approx {
		h.rescore(q, found)
	}
	res := h.toIDs(found, k)
	h.searchers.Put(sc)
	return res
}

// scan is the exact search over live nodes (mu held shared), among those
// allow holds and filter accepts (either nil: no limit).
func (h *HNSW) scan(q []float32, k int, allow *roaring.Bitmap, filter func(uint32) bool) []Result {
	h.slotMu.Lock()
	used := h.used
	h.slotMu.Unlock()
	// A small allow-list is walked by ID: the cost follows the allowed
	// count, not the index size. A larger one is tested slot by slot, on a
	// dense copy when that is cheap, a bit a slot (allowed.perID says
	// where the two cost the same).
	var al *allowed
	byID := false
	if allow != nil || filter != nil {
		card := uint64(used)
		if allow != nil {
			card = allow.GetCardinality()
		}
		if byID = card*densePerID < uint64(used); !byID {
			sr := h.getSearcher()
			defer h.searchers.Put(sr)
			defer sr.allow.reset()
			sr.allow.set(allow, filter)
			al = &sr.allow
			byID = card*al.perID() < uint64(used)
		}
	}
	if vs, ok := h.cfg.Source.(VectorScanner); ok && !byID {
		return h.scanSource(vs, q, k, al)
	}
	var slots []uint32
	if byID {
		slots = make([]uint32, 0, allow.GetCardinality())
		h.slotMu.Lock()
		it := allow.Iterator()
		for it.HasNext() {
			if s, ok := h.slotOf.get(it.Next()); ok {
				slots = append(slots, s)
			}
		}
		h.slotMu.Unlock()
	}
	// Live slots are scored in batches, four rows a kernel call.
	sc := &scanner{top: make(maxHeap, 0, min(k, 1024)+1), q: query{v: q}, k: k}
	if slots != nil {
		for _, s := range slots {
			if !h.isDead(s) && (filter == nil || filter(h.ids[s])) {
				sc.add(h, s)
			}
		}
	} else {
		for s := range uint32(used) {
			if !h.isDead(s) && (al == nil || al.has(h.ids[s])) {
				sc.add(h, s)
			}
		}
	}
	sc.flush(h)
	return h.toIDs(sc.top.sorted(), k)
}

// scanner keeps the k closest of the slots it is given, scoring them a
// batch at a time.
type scanner struct {
	top   maxHeap
	q     query
	k     int
	slots [64]uint32
	dists [64]float32
	n     int
	buf   []float32 // the batch's vectors, from a Config.Source
}

func (sc *scanner) add(h *HNSW, s uint32) {
	sc.slots[sc.n] = s
	if sc.n++; sc.n == len(sc.slots) {
		sc.flush(h)
	}
}

func (sc *scanner) flush(h *HNSW) {
	if h.lowMem() {
		sc.flushFromSource(h)
		return
	}
	h.qdists(&sc.q, sc.slots[:sc.n], sc.dists[:])
	for i, s := range sc.slots[:sc.n] {
		sc.top.offer(Result{ID: s, Dist: sc.dists[i]}, sc.k)
	}
	sc.n = 0
}

// toIDs maps slots to IDs, closest first, keeping the first k distinct
// IDs: while an ID is being replaced, its old and new nodes can both be
// live for a moment.
func (h *HNSW) toIDs(found []Result, k int) []Result {
	res := make([]Result, 0, min(k, len(found)))
	var seen map[uint32]bool // for long lists: a scan of res per result is quadratic
	if len(found) > 64 {
		seen = make(map[uint32]bool, len(found))
	}
	for _, f := range found {
		id := h.ids[f.ID]
		dup := false
		if seen != nil {
			dup = seen[id]
			seen[id] = true
		} else {
			for _, r := range res {
				if r.ID == id {
					dup = true
					break
				}
			}
		}
		if !dup {
			res = append(res, Result{ID: id, Dist: f.Dist})
			if len(res) == k {
				break
			}
		}
	}
	return res
}

// Vector implements Index.
func (h *HNSW) Vector(id uint32) ([]float32, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.slotMu.Lock()
	s, ok := h.slotOf.get(id)
	h.slotMu.Unlock()
	if !ok {
		return nil, false
	}
	return h.slotVector(s, true)
}

// Delete implements Index: the node becomes a tombstone, excluded from
// results at once and still walkable, and the nodes it links to are
// re-linked around it. When tombstones pass CompactAt of the nodes, the
// graph is compacted.
func (h *HNSW) Delete(id uint32) bool {
	h.writers.RLock()
	defer h.writers.RUnlock()
	h.mu.RLock()
	h.slotMu.Lock()
	s, ok := h.slotOf.get(id)
	if ok {
		h.slotOf.del(id)
		h.setDead(s, true)
		h.tombstones++
	}
	h.slotMu.Unlock()
	if ok {
		h.unlink(s)
	}
	h.maybeCompactLocked()
	h.maybeRepairLocked()
	h.mu.RUnlock()
	return ok
}

// unlink repairs the lists that point at the tombstoned slot d: each of
// d's neighbours that links back to d gets d's other neighbours as
// candidates in its place, chosen by the heuristic. (Links in HNSW are
// mostly mutual, so d's out-neighbours are most of its in-neighbours; the
// rest are scrubbed at compaction.)
func (h *HNSW) unlink(d uint32) {
	for l := int(h.levels[d]); l >= 0; l-- {
		h.nodeLock(d).Lock()
		db := h.block(d, l)
		dn := append([]uint32(nil), db[1:1+db[0]]...)
		h.nodeLock(d).Unlock()
		for _, n := range dn {
			if h.isDead(n) {
				continue
			}
			h.replaceLink(n, d, dn, l)
		}
	}
}

func (h *HNSW) replaceLink(n, d uint32, dn []uint32, l int) {
	h.nodeLock(n).Lock()
	defer h.nodeLock(n).Unlock()
	b := h.block(n, l)
	cnt := int(b[0])
	found := false
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	nq := h.nodeQuery(n, buf)
	cands := make([]Result, 0, cnt+len(dn))
	seen := func(s uint32) bool {
		for _, c := range cands {
			if c.ID == s {
				return true
			}
		}
		return false
	}
	for i := 1; i <= cnt; i++ {
		if b[i] == d {
			found = true
			continue
		}
		cands = append(cands, Result{ID: b[i], Dist: h.qdist(&nq, b[i])})
	}
	if !found {
		return
	}
	if h.copiesIn(n, b[1:cnt+1]) > 0 {
		h.replaceAmongCopies(n, d, dn, l, b, cands)
		return
	}
	for _, s := range dn {
		if s == n || s == d || h.isDead(s) || seen(s) {
			continue
		}
		cands = append(cands, Result{ID: s, Dist: h.qdist(&nq, s)})
	}
	sortLinks(cands, n)
	h.writeBlock(b, h.selectNeighbours(n, nil, cands, h.capAt(l)))
}

// maybeCompactLocked compacts when tombstones pass CompactAt. Called with
// mu held shared; it upgrades to exclusive for the compaction itself.
func (h *HNSW) maybeCompactLocked() {
	h.slotMu.Lock()
	due := h.tombstones > 0 && float64(h.tombstones) > CompactAt*float64(h.used-len(h.free))
	h.slotMu.Unlock()
	if !due {
		return
	}
	h.mu.RUnlock()
	h.mu.Lock()
	if h.compact() {
		// Scrubbing the links of tombstones can cut off a node that only
		// tombstones linked to: re-link any such.
		h.repairLocked()
	}
	h.mu.Unlock()
	h.mu.RLock()
}

// compact scrubs every link to a tombstone, frees tombstoned slots for
// reuse, and moves the entry point off a tombstone; it reports whether
// there was anything to compact. mu is held exclusively, so no search or
// insert is running. Cost: one pass over the link lists, no distance
// computations.
func (h *HNSW) compact() bool {
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	if h.tombstones == 0 {
		return false
	}
	isFree := make([]bool, h.used)
	for _, s := range h.free {
		isFree[s] = true
	}
	best, bestLevel := uint32(noNode), -1
	for s := range uint32(h.used) {
		if isFree[s] {
			continue
		}
		if h.isDead(s) {
			h.free = append(h.free, s)
			isFree[s] = true
			h.levels[s] = 0
			h.setUpper(s, nil)
			b := h.block(s, 0)
			b[0] = 0
			continue
		}
	}
	for s := range uint32(h.used) {
		if isFree[s] {
			continue
		}
		for l := int(h.levels[s]); l >= 0; l-- {
			b := h.block(s, l)
			w := 1
			for i := 1; i <= int(b[0]); i++ {
				if !isFree[b[i]] {
					b[w] = b[i]
					w++
				}
			}
			b[0] = uint32(w - 1)
		}
		if int(h.levels[s]) > bestLevel {
			best, bestLevel = s, int(h.levels[s])
		}
	}
	h.tombstones = 0
	if best == noNode {
		h.entry.Store(noNode)
	} else {
		h.entry.Store(uint64(bestLevel)<<32 | uint64(best))
	}
	return true
}

// searcher holds the reusable state of one search: pooled, so a search
// allocates nothing but its result slice.
type searcher struct {
	nb []uint32  // the unvisited neighbours of the node being expanded
	ds []float32 // their distances
	// allow is the allow-list of the search under way.
	allow allowed
	qc    []float32 // the query minus the centre (L2 on codes)
	qi    []int16   // the query as integers (intQuery)
	xt    []float32 // an inserted vector minus the centre, to quantize
	vis   visitedSet
	beam  beam
	kcand keyMin    // a filtered walk's candidates
	kres  keyMax    // and results
	walk  WalkStats // what the last filtered walk saw
	// walkShare and walkBudget stop a filtered walk early
	// (WalkStats.Budget and Floor); zero budget: never.
	walkShare  float64
	walkBudget int
	out        []Result
	// cands holds the live nodes of a search's results, to choose links
	// from.
	cands []Result
	// neigh holds an insert's chosen links per layer (neighbours), and ep
	// its entry point on each layer's walk: reused, so an insert makes no
	// garbage.
	neigh [][]Result
	ep    [1]Result
	// hang is hangCopy's queue of copies to look through.
	hang []uint32
	// What a search of a graph with a Config.Source reads back: the
	// slots, their IDs, their vectors and whether each was found.
	srcSlots, srcIDs []uint32
	srcVecs          []float32
	srcFound         []bool
	srcMore          []Result // rescoreFromSource's second batch
	srcDistinct      []uint32 // and its count of distinct IDs
}

// distsFor returns room for n distances.
func (sc *searcher) distsFor(n int) []float32 {
	if cap(sc.ds) < n {
		sc.ds = make([]float32, n)
	}
	return sc.ds[:n]
}

func (h *HNSW) getSearcher() *searcher {
	if sc, ok := h.searchers.Get().(*searcher); ok {
		return sc
	}
	return &searcher{}
}

// visitedSet marks visited slots with a generation stamp, so clearing it
// between searches is one increment instead of a memset.
type visitedSet struct {
	stamp []uint32
	gen   uint32
}

func (v *visitedSet) reset(n int) {
	if len(v.stamp) < n {
		v.stamp = make([]uint32, n)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 { // wrapped: clear for real
		clear(v.stamp)
		v.gen = 1
	}
}

// visit marks s and reports whether it was unvisited.
func (v *visitedSet) visit(s uint32) bool {
	if v.stamp[s] == v.gen {
		return false
	}
	v.stamp[s] = v.gen
	return true
}
