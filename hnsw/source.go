package hnsw

import (
	"math"
	"slices"
	"sync"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// VectorSource holds a graph's float32 vectors outside the graph: a graph
// given one (Config.Source) keeps only its byte codes and links in memory,
// and reads the float32 vectors back to re-score what a search found, for
// exact scans, Vector and Save. Add reads it too: a sample of up to 1,024
// vectors each time the graph doubles, and every vector when it moves the
// centre of the codes (Recentre), so a vector must be in the source before
// Add is called with it, and the source must not wait for a lock the
// caller of Add holds. The database gives one that reads its own file
// (Options.LowMemory).
type VectorSource interface {
	// ReadVectors copies the vectors stored under ids into dst, dim values
	// each in the order of ids (len(dst) == len(ids)*dim), and sets
	// found[i] to whether ids[i] has one. A vector the source cannot give
	// is taken as deleted: the graph leaves it out of results. It must be
	// safe for concurrent use and must not call the graph.
	ReadVectors(ids []uint32, dst []float32, found []bool)
}

// VectorScanner is a VectorSource that can also give every vector it
// holds in one pass, which costs a fraction of reading them one by one
// (for the database, a cursor over its file against a lookup each). An
// exact search that must score most of a graph's nodes scans instead.
type VectorScanner interface {
	VectorSource
	// ScanVectors calls fn with the ID and vector of every vector of dim
	// values it holds; v is valid only during the call.
	ScanVectors(dim int, fn func(id uint32, v []float32))
}

// lowMem reports whether the graph keeps no float32 vectors of its own.
func (h *HNSW) lowMem() bool { return h.cfg.Source != nil }

// pairBuf is scratch for a node's vector read back from its codes.
type pairBuf struct {
	v, c []float32
	qi   []int16 // nodeQuery's integers (intQuery)
}

var pairBufs = sync.Pool{New: func() any { return new(pairBuf) }}

// getPairBuf returns a pooled pairBuf for nodeQuery in a graph without
// vectors, or nil in one with them (nodeQuery needs none there); give it
// back with putPairBuf.
func (h *HNSW) getPairBuf() *pairBuf {
	if !h.lowMem() {
		return nil
	}
	return pairBufs.Get().(*pairBuf)
}

// putPairBuf returns what getPairBuf gave (nil: nothing).
func putPairBuf(b *pairBuf) {
	if b != nil {
		pairBufs.Put(b)
	}
}

// nodeQuery returns a query for comparing slot's vector with other nodes
// (qdist): its float32 vector, or, in a graph without them, its codes read
// back (buf holds them), scored on codes. Links are then chosen on those
// approximate distances.
func (h *HNSW) nodeQuery(slot uint32, buf *pairBuf) query {
	if !h.lowMem() {
		return query{v: h.vec(slot)}
	}
	v := h.decode(slot, buf)
	q := query{v: v, approx: true, c: v}
	if h.metric == modality.L2 {
		_, sc := h.row(slot)
		q.c = buf.c[:h.dim] // decode left v - centre there
		q.off = sc.sq
	} else {
		q.off = kernel.DotProduct(v, h.centre)
	}
	for _, x := range q.c {
		q.sum += x
	}
	intQuery(&q, &buf.qi)
	return q
}

// decode reads slot's vector back from its codes into buf.v (the centred
// values stay in buf.c) and returns it.
func (h *HNSW) decode(slot uint32, buf *pairBuf) []float32 {
	if cap(buf.v) < h.dim {
		buf.v, buf.c = make([]float32, h.dim), make([]float32, h.dim)
	}
	v, c := buf.v[:h.dim], buf.c[:h.dim]
	codes, sc := h.row(slot)
	for i, b := range codes {
		c[i] = sc.lo + sc.step*float32(b)
		v[i] = c[i] + h.centre[i]
	}
	return v
}

// readSlots reads the float32 vectors of slots from the source into dst
// (dim values a slot) and found; ids is scratch, returned for reuse.
func (h *HNSW) readSlots(slots []uint32, dst []float32, found []bool, ids []uint32) []uint32 {
	ids = slices.Grow(ids[:0], len(slots))
	for _, s := range slots {
		ids = append(ids, h.ids[s])
	}
	h.cfg.Source.ReadVectors(ids, dst[:len(slots)*h.dim], found[:len(slots)])
	return ids
}

// rescoreSigmas is how far a node's estimate on codes may lie beyond the
// k-th exact distance read so far, in standard deviations of the
// estimate's error (codeErrSigma), and still be read back from a
// Config.Source to be re-scored. Three leaves a node whose exact distance
// would enter the top k about one chance in 700 of being skipped, if the
// error is normal (TestCodeErrSigmaCalibrated measures the share beyond
// it). Recall@10, reads and q/s against the fixed count it replaced (k and
// half as many again) are in BENCHMARKS.md, "Ninth round".
const rescoreSigmas = 3

// codeErrSigma bounds the error of a distance estimated on codes
// (codeDist), est, for a row with scale sc, against query q (qnorm its
// norm, read under cosine and dot): a standard deviation, plus float32's
// rounding. Each component of a row is rounded by up to half its step, so
// its rounding e has variance step²/12 a component: under L2 the error is
// 2(q - x)·e (see scale), of deviation 2|q - x|·step/√12, with |q - x|
// taken from the estimate; under cosine and dot it is q·e, of deviation
// |q|·step/√12. The query's own rounding to integers (intQuery) adds
// step·Σ δ_i·code_i, δ_i within half its step cs: a deviation of at most
// step·cs·255·√dim/√12 (doubled under L2), which matters where the L2 term
// vanishes, between near-duplicates. And the estimate is a sum of terms
// of the size of |q - centre|² and |x - centre|², whose float32 rounding
// is a few units in their last place: a review's near-duplicates, 1e-4
// apart, fell beyond 3 deviations 4.25% of the time without these two.
func (h *HNSW) codeErrSigma(q *query, est float32, sc *scale, qnorm float32) float32 {
	const invSqrt12 = 0.28867513
	var v float32 // the variance in units of (step/√12)²
	if h.metric == modality.L2 {
		v = 4 * max(est, 0)
	} else {
		v = qnorm * qnorm
	}
	if q.ci != nil {
		qv := q.cs * q.cs * (255 * 255) * float32(h.dim)
		if h.metric == modality.L2 {
			qv *= 4
		}
		v += qv
	}
	const ulps = 8 * 0x1p-24
	return sc.step*invSqrt12*float32(math.Sqrt(float64(v))) + ulps*(abs32(q.off)+abs32(sc.sq)+abs32(est))
}

func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

// rescoreFromSource gives the closest of found (closest first on codes)
// exact distances from the source's vectors, and drops the others and
// those the source has no vector for (deleted from the store while the
// search ran). It reads the k closest on codes first, the next closest in
// place of any the store lacks, and of any whose ID an earlier one
// already had (a replace racing the search: the old node and the new read
// the one vector the store holds), so that k distinct IDs are read when
// the walk found them; then, in one more batch, every other node whose
// estimate is within rescoreSigmas of its error of the k-th exact
// distance so far. Where the walk's k-th and later nodes are far apart
// that is k reads; where they are close, as many as could be in the top
// k. It returns what is left, unsorted.
func (h *HNSW) rescoreFromSource(q *query, found []Result, k int, sc *searcher) []Result {
	k = min(k, len(found))
	out := found[:0] // written behind the window being read
	lo, distinct := 0, 0
	for lo < len(found) && distinct < k {
		hi := min(len(found), lo+k-distinct)
		out = h.readBack(q.v, found[lo:hi], out, sc)
		lo = hi
		distinct = h.distinctIDs(out, sc)
	}
	if distinct < k || lo == len(found) || k == 0 {
		return out
	}
	kth := out[0].Dist
	for _, r := range out {
		kth = max(kth, r.Dist)
	}
	var qnorm float32
	if h.metric != modality.L2 {
		qnorm = float32(math.Sqrt(float64(kernel.DotProduct(q.v, q.v))))
	}
	more := sc.srcMore[:0]
	for _, f := range found[lo:] {
		_, scl := h.row(f.ID)
		// <=: rows of step 0 (copies of the centre) have no error, and
		// one tied with the k-th is read.
		if f.Dist-rescoreSigmas*h.codeErrSigma(q, f.Dist, scl, qnorm) <= kth {
			more = append(more, f)
		}
	}
	sc.srcMore = more
	if len(more) == 0 {
		return out
	}
	// more is a copy, so out may grow over found[lo:].
	return h.readBack(q.v, more, out, sc)
}

// distinctIDs is how many different IDs the slots of rs hold.
func (h *HNSW) distinctIDs(rs []Result, sc *searcher) int {
	ids := sc.srcDistinct[:0]
	for _, r := range rs {
		ids = append(ids, h.ids[r.ID])
	}
	slices.Sort(ids)
	sc.srcDistinct = ids
	return len(slices.Compact(ids))
}

// readBack reads the source's vectors for the nodes of batch and appends
// those it has to out with exact distances.
func (h *HNSW) readBack(q []float32, batch, out []Result, sc *searcher) []Result {
	n := len(batch)
	sc.srcSlots = slices.Grow(sc.srcSlots[:0], n)
	for _, f := range batch {
		sc.srcSlots = append(sc.srcSlots, f.ID)
	}
	sc.srcVecs = slices.Grow(sc.srcVecs[:0], n*h.dim)[:n*h.dim]
	sc.srcFound = slices.Grow(sc.srcFound[:0], n)[:n]
	sc.srcIDs = h.readSlots(sc.srcSlots, sc.srcVecs, sc.srcFound, sc.srcIDs)
	for i, f := range batch {
		if sc.srcFound[i] {
			f.Dist = h.dist(q, sc.srcVecs[i*h.dim:(i+1)*h.dim])
			out = append(out, f)
		}
	}
	return out
}

// slotVector returns a copy of slot's float32 vector: its own, or the
// source's for a live node of a graph without them, or its codes read back
// for a tombstone (which no store holds). ok is false when the source has
// no vector for a live node.
func (h *HNSW) slotVector(slot uint32, live bool) ([]float32, bool) {
	if !h.lowMem() {
		return append([]float32(nil), h.vec(slot)...), true
	}
	v := make([]float32, h.dim)
	if !live {
		var buf pairBuf
		copy(v, h.decode(slot, &buf))
		return v, true
	}
	var found [1]bool
	h.cfg.Source.ReadVectors([]uint32{h.ids[slot]}, v, found[:])
	return v, found[0]
}

// flushFromSource scores the scanner's batch on the source's vectors,
// leaving out the slots it has none for.
func (sc *scanner) flushFromSource(h *HNSW) {
	slots := sc.slots[:sc.n]
	if cap(sc.buf) < len(sc.slots)*h.dim {
		sc.buf = make([]float32, len(sc.slots)*h.dim)
	}
	var found [len(sc.slots)]bool
	var ids [len(sc.slots)]uint32
	h.readSlots(slots, sc.buf, found[:], ids[:0])
	for i, s := range slots {
		if found[i] {
			sc.top.offer(Result{ID: s, Dist: h.dist(sc.q.v, sc.buf[i*h.dim:(i+1)*h.dim])}, sc.k)
		}
	}
	sc.n = 0
}

// readVectors returns the vectors of slots [0, used) of a graph without
// them: the source's for live nodes (read a batch at a time), and the
// codes read back for tombstones, free slots and a live node the source
// has no vector for (Save holds the writers' lock: no insert is half
// done, so that is a store out of step with the graph). It must not be
// called with slotMu held.
func (h *HNSW) readVectors(used int) []float32 {
	const batch = 256
	out := make([]float32, used*h.dim)
	found := make([]bool, batch)
	slots := make([]uint32, 0, batch)
	ids := make([]uint32, 0, batch)
	var buf pairBuf
	for lo := 0; lo < used; lo += batch {
		hi := min(lo+batch, used)
		slots = slots[:0]
		for s := lo; s < hi; s++ {
			slots = append(slots, uint32(s))
		}
		dst := out[lo*h.dim : hi*h.dim]
		ids = h.readSlots(slots, dst, found, ids)
		for i, s := range slots {
			if h.isDead(s) || !found[i] {
				copy(dst[i*h.dim:(i+1)*h.dim], h.decode(s, &buf))
			}
		}
	}
	return out
}

// scanSource is the exact search of a graph whose source can scan: over
// the live nodes' vectors that al allows (nil: all), as the source holds
// them.
func (h *HNSW) scanSource(vs VectorScanner, q []float32, k int, al *allowed) []Result {
	top := make(maxHeap, 0, min(k, 1024)+1)
	vs.ScanVectors(h.dim, func(id uint32, v []float32) {
		if al != nil && !al.has(id) {
			return
		}
		h.slotMu.Lock()
		s, ok := h.slotOf.get(id)
		h.slotMu.Unlock()
		if ok {
			top.offer(Result{ID: s, Dist: h.dist(q, v)}, k)
		}
	})
	return h.toIDs(top.sorted(), k)
}

// MatchesCodes reports whether id's node holds the codes that v quantizes
// to, bit for bit (found is false when id is not in the graph): what a
// graph with a Source can check of a stored vector, having no float32
// copy of its own.
func (h *HNSW) MatchesCodes(id uint32, v []float32) (match, found bool) {
	if len(v) != h.dim {
		return false, false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.slotMu.Lock()
	s, ok := h.slotOf.get(id)
	h.slotMu.Unlock()
	if !ok || h.rows == nil {
		return false, ok
	}
	codes := make([]uint8, h.dim)
	want := h.encode(v, make([]float32, h.dim), codes)
	got, sc := h.row(s)
	return slices.Equal(codes, got) && math.Float32bits(sc.lo) == math.Float32bits(want.lo) &&
		math.Float32bits(sc.step) == math.Float32bits(want.step) && math.Float32bits(sc.sq) == math.Float32bits(want.sq), true
}
