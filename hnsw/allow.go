package hnsw

import "github.com/RoaringBitmap/roaring/v2"

// allowed answers a walk's membership tests against an allow-list. A walk
// tests every node that would enter its results, hundreds a search, and a
// roaring bitmap answers each with a binary search wherever its IDs are
// sparse (an array container: fewer than 4,096 of a block of 65,536); so
// when it is cheap the walk copies the bitmap into a dense bitset once and
// tests a bit. On sift5k with every other ID allowed, at ef 56, a search
// then takes 0.85x the time (0.70-0.92 over 6 paired rounds); on 20k x 128
// with 10% allowed (BenchmarkAllowList), 0.93x.
type allowed struct {
	bm    *roaring.Bitmap   // nil: every ID, as far as bm goes
	words []uint64          // bm as a dense bitset, or nil to ask bm
	buf   []uint64          // kept for the next dense copy
	fn    func(uint32) bool // SearchOptions.Filter, or nil
}

// Limits of the dense copy: its length in words, absolutely (1 MiB a
// searcher, for IDs below 8M) and against the bitmap's cardinality (a few
// allowed IDs spread over a large range are tested faster than the range
// is cleared).
const (
	maxDenseWords     = 1 << 17
	denseWordsPerItem = 16
)

// set points a at bm (nil: no bitmap) and fn (nil: no filter function),
// reusing a's buffer for the dense copy.
func (a *allowed) set(bm *roaring.Bitmap, fn func(uint32) bool) {
	a.bm, a.words, a.fn = bm, nil, fn
	if bm == nil {
		return
	}
	n := bm.DenseSize()
	if n == 0 || n > maxDenseWords || n > denseWordsPerItem*bm.GetCardinality()+1024 {
		return
	}
	if uint64(cap(a.buf)) < n {
		a.buf = make([]uint64, n)
	}
	a.words = a.buf[:n]
	clear(a.words)
	bm.WriteDenseTo(a.words)
}

// perID is how many slots an exact scan tests for what finding one allowed
// ID's slot in the ID map costs: a bit test is cheaper than a binary
// search in the bitmap. On sift5k (4,900 slots), the map's way took 36 µs
// a search against 49 for the bits' at 10% allowed, 70 against 60 at 20%:
// even near 8.
func (a *allowed) perID() uint64 {
	if a.words != nil || a.bm == nil {
		return densePerID
	}
	return 4
}

// densePerID is perID with a dense copy.
const densePerID = 8

// reset lets go of the bitmap and the function, so a pooled searcher does
// not keep them.
func (a *allowed) reset() { a.bm, a.words, a.fn = nil, nil, nil }

// has reports whether id is allowed.
func (a *allowed) has(id uint32) bool {
	var in bool
	switch {
	case a.words != nil:
		w := int(id >> 6)
		in = w < len(a.words) && a.words[w]&(1<<(id&63)) != 0
	case a.bm != nil:
		in = a.bm.Contains(id)
	default:
		in = true
	}
	return in && (a.fn == nil || a.fn(id))
}
