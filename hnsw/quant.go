package hnsw

import (
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/mmdb-go/mmdb/modality"
)

// Quantized walk. A graph search spends most of its time fetching the
// vectors of the nodes it scores, from memory rather than cache once the
// index outgrows the CPU's last-level cache (100k x 128 float32 is 51 MB).
// Searches therefore walk on a byte-per-component copy of each vector
// (modality.Quantize: 12.8 MB for the same set), and re-score the ef nodes
// they found on the float32 vectors, so the distances returned and the
// order of the top k are exact; only which nodes the walk visits can
// differ. Recall against brute force is in BENCHMARKS.md.

// scale reads a node's codes back: x[i] ≈ lo + step*code[i]. sq is the
// node's exact squared norm, for L2.
type scale struct{ lo, step, sq float32 }

// query is a search vector with what the quantized distance needs.
type query struct {
	v      []float32
	approx bool    // score on codes, not float32 vectors
	sum    float32 // sum of v's components
	sq     float32 // v·v
}

// searchQuery scores on codes when approx is set.
func (h *HNSW) searchQuery(v []float32, approx bool) query {
	q := query{v: v, approx: approx}
	if q.approx {
		for _, x := range v {
			q.sum += x
		}
		q.sq = modality.DotProduct(v, v)
	}
	return q
}

// quantize fills slot's codes from its float32 vector.
func (h *HNSW) quantize(slot uint32) {
	if h.rows == nil {
		return
	}
	o := int(slot) * h.dim
	v := h.vecs[o : o+h.dim]
	codes, sc := h.row(slot)
	lo, step := modality.Quantize(v, codes)
	*sc = scale{lo: lo, step: step, sq: modality.DotProduct(v, v)}
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
	d := sc.lo*q.sum + sc.step*modality.DotU8(q.v, codes)
	switch h.metric {
	case modality.L2:
		return q.sq + sc.sq - 2*d
	case modality.Dot:
		return -d
	}
	return 1 - d
}

// rescore replaces the walk's distances with exact ones and re-sorts.
func (h *HNSW) rescore(q []float32, found []Result) {
	if prefetchOn {
		for _, f := range found {
			prefetchLines(unsafe.Pointer(&h.vecs[int(f.ID)*h.dim]), h.vecLines)
		}
	}
	for i := range found {
		found[i].Dist = h.dist(q, h.vec(found[i].ID))
	}
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
			for s := w * used / workers; s < (w+1)*used/workers; s++ {
				h.quantize(uint32(s))
			}
		}()
	}
	wg.Wait()
}

// prefetchOn is switched off only by BenchmarkWalk, to measure what
// prefetching is worth.
var prefetchOn = true

// prefetch asks for the rows that scoring slots will read: codes and
// scales on a quantized walk, float32 vectors otherwise.
func (h *HNSW) prefetch(q *query, slots []uint32) {
	if len(slots) == 0 {
		return
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
		prefetchLines(unsafe.Pointer(&h.links0[int(slot)*(h.m0+1)]), h.blockLines)
		return
	}
	prefetchLines(unsafe.Pointer(&h.upper[slot][(l-1)*(h.m+1)]), h.blockLines)
}
