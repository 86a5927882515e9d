package hnsw

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/viterin/vek/vek32"
)

// Quantized walk. A graph search spends most of its time fetching the
// vectors of the nodes it scores, from memory rather than cache once the
// index outgrows the CPU's last-level cache (100k x 128 float32 is 51 MB).
// Searches therefore walk on a byte-per-component copy of each vector
// (kernel.Quantize: 12.8 MB for the same set), and re-score the ef nodes
// they found on the float32 vectors, so the distances returned and the
// order of the top k are exact; only which nodes the walk visits can
// differ. Recall against brute force is in BENCHMARKS.md.
//
// What is quantized is x - centre, where the centre is the graph's first
// vector (kept, and saved; moved to the data's mean only when the data
// has drifted far from it, centre.go). Data far from the origin
// (components of 1e4 ± 1, say) would otherwise lose everything to rounding
// twice: each vector's byte scale would span the offset, and L2 from
// norms (|q|² + |x|² - 2q·x) would subtract numbers of size 1e10 to get
// distances of size 1e2. Centred, both work on the spread alone.

// While the float32 vectors are small enough to stay in the CPU's caches,
// fetching them costs little and the codes save nothing: a walk then
// scores float32 rows, exactly, which is cheaper per row than widening and
// converting bytes (kernel.BenchmarkBatch) and needs no re-scoring. The
// codes are still kept, so the switch to them is free once the graph
// grows past cacheWalkBytes. The threshold is half of a small last-level
// cache (8 MiB): BenchmarkWalkSize measures both walks on either side.
const cacheWalkBytes = 4 << 20

// noteSize records that the vectors outgrew cacheWalkBytes (slotMu held).
// Slots are never given back to the allocator, so while a graph grows it
// is set once.
func (h *HNSW) noteSize() {
	if !h.outgrown.Load() && h.outgrowsCache() {
		h.outgrown.Store(true)
	}
}

// outgrowsCache reports whether the used slots' float32 vectors are more
// than cacheWalkBytes (slotMu held). Load sets outgrown from it.
func (h *HNSW) outgrowsCache() bool { return h.used*h.dim*4 > cacheWalkBytes }

// walksOnCodes reports whether a walk scores byte codes: the graph keeps
// them, and its vectors have outgrown the cache.
func (h *HNSW) walksOnCodes() bool { return h.rows != nil && (h.outgrown.Load() || h.lowMem()) }

// scale reads a node's codes back: x - centre ≈ x̂, x̂[i] = lo +
// step*code[i]. sq, for L2, is |x̂|² - |e|², where e = (x - centre) - x̂ is
// the rounding: the L2 estimate |q - centre|² + sq - 2(q - centre)·x̂ is
// then |q - centre - x̂|² - |e|², the distance to the decoded vector less
// its expected excess, whose error is 2(q - x)·e: small for the near
// nodes a walk must order, wherever the centre is. Until 2026-12-03 sq
// was |x - centre|², which made the error 2(q - centre)·e plus a bias:
// growing with the distance from the centre, so that a graph choosing
// links on codes (a Source) of data far from its centre lost a fifth of
// its nodes to unreachability (TestCodeDistanceFarFromCentre).
type scale struct{ lo, step, sq float32 }

// query is a search vector with what the quantized distance needs.
type query struct {
	v      []float32 // the query, for exact distances
	approx bool      // score on codes, not float32 vectors
	c      []float32 // what the codes are multiplied with: v, or v - centre under L2
	sum    float32   // sum of c's components
	off    float32   // v·centre (cosine, dot) or |v - centre|² (L2)
	// ci is c as 16-bit integers on the scale cs (kernel.QuantizeQuery):
	// the codes are scored with exact integer sums (kernel.DotI16U8x4),
	// about half the float kernel's time. Nil where the dimension is too
	// long for a useful integer scale (intQuery); c is scored then.
	ci []int16
	cs float32
}

// minQueryMax is the coarsest integer scale a query is quantized on: a
// step of 1/2,047 of its largest component (up to about 4,100 dimensions;
// up to 257 it is 1/32,767, and past that the scale shrinks so that the
// int32 sums cannot overflow), against the codes' step of 1/255 of a
// row's range. Past it, c is scored in float32 (DotU8x4).
const minQueryMax = 2047

// intScoring is whether queries are scored with the integer kernels where
// the dimension allows (intQuery); BenchmarkIntScoring turns it off to
// compare the float kernels on the same graph.
var intScoring = true

// intQuery fills q.ci and q.cs from q.c, in *buf (grown as needed), where
// the dimension allows a scale of at least minQueryMax steps and q.c's
// components a normal one.
func intQuery(q *query, buf *[]int16) {
	if !intScoring || kernel.QueryMax(len(q.c)) < minQueryMax {
		return
	}
	*buf = slices.Grow((*buf)[:0], len(q.c))[:len(q.c)]
	if q.cs = kernel.QuantizeQuery(q.c, *buf); q.cs == 0 {
		// Zero, or too small for a normal step (components below about
		// 1e-34): the float kernel scores what the integers would lose.
		return
	}
	q.ci = *buf
}

// searchQuery scores on codes when approx is set; under L2 it keeps
// v - centre in sc.
func (h *HNSW) searchQuery(v []float32, approx bool, sc *searcher) query {
	q := query{v: v, approx: approx, c: v}
	if !approx {
		return q
	}
	if h.metric == modality.L2 {
		sc.qc = append(sc.qc[:0], v...)
		for i, x := range h.centre {
			sc.qc[i] -= x
		}
		q.c = sc.qc
		q.off = kernel.DotProduct(q.c, q.c)
	} else {
		q.off = kernel.DotProduct(v, h.centre)
	}
	for _, x := range q.c {
		q.sum += x
	}
	intQuery(&q, &sc.qi)
	return q
}

// quantize fills slot's row from its float32 vector v; tmp is scratch of
// at least dim floats.
func (h *HNSW) quantize(slot uint32, v, tmp []float32) {
	if h.rows == nil {
		return
	}
	codes, sc := h.row(slot)
	*sc = h.encode(v, tmp, codes)
}

// encode quantizes v - centre into codes (dim bytes) and returns its
// scale; tmp is scratch of at least dim floats.
func (h *HNSW) encode(v, tmp []float32, codes []uint8) scale {
	x := tmp[:h.dim]
	for i, v := range v[:h.dim] {
		x[i] = v - h.centre[i]
	}
	lo, step := kernel.Quantize(x, codes)
	norm := kernel.DotProduct(x, x)
	if h.metric != modality.L2 {
		return scale{lo: lo, step: step, sq: norm} // sq is read under L2 only
	}
	// |x̂|² - |e|² (see scale) = Σ x̂² - (x - x̂)² = 2x·x̂ - |x|², and x·x̂
	// = lo·Σx + step·(x·codes): two kernel calls, no decoding. Written
	// x·x̂ - (|x|² - x·x̂) so that it is finite whenever |x|² is (2x·x̂
	// alone can overflow where |x|² does not).
	xx := lo*vek32.Sum(x) + step*kernel.DotU8(x, codes)
	return scale{lo: lo, step: step, sq: xx - (norm - xx)}
}

// row returns slot's codes and scale. The scale sits at a multiple of 4
// bytes into the row, and rows are a multiple of 4 bytes long, so the
// pointer is aligned for its float32s.
func (h *HNSW) row(slot uint32) ([]uint8, *scale) {
	o := int(slot) * h.rowSize
	r := h.rows[o : o+h.rowSize : o+h.rowSize]
	return r[:h.dim:h.dim], (*scale)(unsafe.Pointer(&r[h.rowSize-int(unsafe.Sizeof(scale{}))]))
}

// qdist is q's distance to slot under the metric: exact, or from codes.
func (h *HNSW) qdist(q *query, slot uint32) float32 {
	if !q.approx {
		return h.dist(q.v, h.vec(slot))
	}
	codes, sc := h.row(slot)
	if q.ci != nil {
		return h.codeDist(q, sc, q.cs*float32(kernel.DotI16U8(q.ci, codes)))
	}
	return h.codeDist(q, sc, kernel.DotU8(q.c, codes))
}

// codeDist is the distance under the metric from a row's scale and the
// dot product of q.c with its codes.
func (h *HNSW) codeDist(q *query, sc *scale, dot float32) float32 {
	d := sc.lo*q.sum + sc.step*dot // c·(x - centre)
	switch h.metric {
	case modality.L2:
		return q.off + sc.sq - 2*d
	case modality.Dot:
		return -(q.off + d)
	}
	return 1 - (q.off + d)
}

// qdists writes q's distances to slots into out (at least as long), four
// slots a kernel call (kernel.L2Sq4 and friends: the query is read once
// for four rows).
func (h *HNSW) qdists(q *query, slots []uint32, out []float32) {
	out = out[:len(slots)]
	var d [4]float32
	var pad [4]uint32
	i := 0
	for ; i+2 <= len(slots); i += 4 {
		s := slots[i:min(i+4, len(slots))]
		if len(s) < 4 {
			// Two or three left: one four-row call, the last slot
			// repeated, costs less than two or three single ones.
			n := copy(pad[:], s)
			for k := n; k < 4; k++ {
				pad[k] = s[n-1]
			}
			s = pad[:]
		}
		if q.approx {
			c0, s0 := h.row(s[0])
			c1, s1 := h.row(s[1])
			c2, s2 := h.row(s[2])
			c3, s3 := h.row(s[3])
			if q.ci != nil {
				var di [4]int32
				kernel.DotI16U8x4(q.ci, c0, c1, c2, c3, &di)
				d = [4]float32{q.cs * float32(di[0]), q.cs * float32(di[1]), q.cs * float32(di[2]), q.cs * float32(di[3])}
			} else {
				kernel.DotU8x4(q.c, c0, c1, c2, c3, &d)
			}
			d = [4]float32{h.codeDist(q, s0, d[0]), h.codeDist(q, s1, d[1]), h.codeDist(q, s2, d[2]), h.codeDist(q, s3, d[3])}
		} else {
			v0, v1, v2, v3 := h.vec(s[0]), h.vec(s[1]), h.vec(s[2]), h.vec(s[3])
			switch h.metric {
			case modality.L2:
				kernel.L2Sq4(q.v, v0, v1, v2, v3, &d)
			case modality.Dot:
				kernel.Dot4(q.v, v0, v1, v2, v3, &d)
				d = [4]float32{-d[0], -d[1], -d[2], -d[3]}
			default:
				kernel.Dot4(q.v, v0, v1, v2, v3, &d)
				d = [4]float32{1 - d[0], 1 - d[1], 1 - d[2], 1 - d[3]}
			}
		}
		copy(out[i:], d[:])
	}
	for ; i < len(slots); i++ {
		out[i] = h.qdist(q, slots[i])
	}
}

// rescore replaces the walk's distances with exact ones and re-sorts.
func (h *HNSW) rescore(q []float32, found []Result) {
	if h.dim > 0 {
		for _, f := range found {
			prefetchLines(unsafe.Pointer(&h.vecs[int(f.ID)*h.dim]), h.vecLines)
		}
	}
	for i := range found {
		found[i].Dist = h.dist(q, h.vec(found[i].ID))
	}
	sortResults(found)
}

// sortResults sorts closest first, equal distances by slot.
func sortResults(found []Result) {
	slices.SortFunc(found, func(a, b Result) int {
		switch {
		case a.Dist < b.Dist:
			return -1
		case a.Dist > b.Dist:
			return 1
		}
		return int(a.ID) - int(b.ID)
	})
}

// quantizeAll fills the codes of slots [0, used) on every core.
func (h *HNSW) quantizeAll(used int) {
	if h.rows == nil || used == 0 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, used/4096))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := make([]float32, h.dim)
			for s := w * used / workers; s < (w+1)*used/workers; s++ {
				h.quantize(uint32(s), h.vec(uint32(s)), tmp)
			}
		}()
	}
	wg.Wait()
}

// prefetch asks for the rows that scoring slots will read: codes and
// scales on a quantized walk, float32 vectors otherwise.
func (h *HNSW) prefetch(q *query, slots []uint32) {
	if len(slots) == 0 || h.dim == 0 || !h.outgrown.Load() {
		return // in cache, a prefetch is an instruction per line for nothing
	}
	if q.approx {
		prefetchRows(unsafe.Pointer(&h.rows[0]), uintptr(h.rowSize), h.codeLines, slots)
		return
	}
	prefetchRows(unsafe.Pointer(&h.vecs[0]), uintptr(4*h.dim), h.vecLines, slots)
}

// prefetchBlock starts loading slot's link block on layer l.
func (h *HNSW) prefetchBlock(slot uint32, l int) {
	if l == 0 {
		prefetchLines(unsafe.Pointer(&h.links0[int(slot)*(h.m0+1)]), h.blockLines0)
		return
	}
	prefetchLines(unsafe.Pointer(&(*h.upper[slot])[(l-1)*(h.m+1)]), h.blockLinesUp)
}

// checkScales refuses loaded rows whose scales are not finite: the codes
// themselves are any bytes, but a NaN scale would make every distance to
// its node NaN.
func (h *HNSW) checkScales(used int) error {
	for s := range uint32(used) {
		_, sc := h.row(s)
		for _, x := range []float32{sc.lo, sc.step, sc.sq} {
			if !finite(x) {
				return fmt.Errorf("%w: slot %d has a scale of %v", ErrFormat, s, x)
			}
		}
	}
	return nil
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
