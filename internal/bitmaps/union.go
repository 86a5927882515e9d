// Package bitmaps unions many roaring bitmaps quickly: what evaluating a
// filter does for a range over many attribute values, an IN list or an OR.
package bitmaps

import "github.com/RoaringBitmap/roaring/v2"

// Union returns the union of bms as a new bitmap that shares no memory
// with them (they may read the file's mapped memory, valid only inside a
// read transaction); bms are not changed. That holds while no input has
// roaring's copy-on-write flag set (SetCopyOnWrite, FrozenView): Clone
// would then share containers instead of copying them.
//
// Or one by one re-merges the growing result each time: while a block of
// 65,536 IDs holds fewer than 4,096 of them it is a sorted array, and a
// range filter over 100 values of 100 IDs each took 61% of a filtered
// search (BenchmarkFilteredPlanner's profile). roaring's FastOr did no
// better on such sets and HeapOr only at 100 bitmaps (BenchmarkUnion),
// and ParOr falls back to FastOr when every ID lies below 65,536. Union sets the
// IDs' bits in a dense bitset instead, when that costs at most 16 words
// an ID and 16 MiB (BenchmarkUnion: 100 bitmaps of 100 IDs over 100k, 26 µs against
// Or's 302; 500 of them, 101 against 439), and leaves sparser ones, whose
// arrays stay short, to FastOr.
func Union(bms ...*roaring.Bitmap) *roaring.Bitmap {
	var card uint64
	var top uint32
	for _, b := range bms {
		if !b.IsEmpty() {
			card += b.GetCardinality()
			top = max(top, b.Maximum())
		}
	}
	if card == 0 {
		return roaring.New()
	}
	words := uint64(top)/64 + 1
	if words > denseWordsPerID*card+1024 || words > maxDenseWords {
		// FastOr may share containers with its inputs, copy-on-write:
		// Clone copies them.
		return roaring.FastOr(bms...).Clone()
	}
	dense := make([]uint64, words)
	var buf [256]uint32
	for _, b := range bms {
		it := b.ManyIterator()
		for n := it.NextMany(buf[:]); n > 0; n = it.NextMany(buf[:]) {
			for _, x := range buf[:n] {
				dense[x>>6] |= 1 << (x & 63)
			}
		}
	}
	out := roaring.New()
	out.FromDense(dense, false)
	return out
}

// Bounds of the dense bitset Union may clear: in words an ID (few IDs
// spread over a wide range are merged faster as they are), and at all (16
// MiB, IDs below 134M; a run-length bitmap can hold millions of IDs in a
// few bytes).
const (
	denseWordsPerID = 16
	maxDenseWords   = 1 << 21
)

// Unioner unions bitmaps given one at a time (the values of a range, read
// from the file), a batch at a time, so that a range over very many
// values does not hold them all at once. Each batch's union is merged
// into the running result with Or, which costs what the batch's union
// holds, not what the result does (re-unioning the result with every
// batch took 5-8x Or's time over 200-400k values of one ID each). The
// zero value is empty.
type Unioner struct {
	acc   *roaring.Bitmap
	batch []*roaring.Bitmap
}

// Batch is how many bitmaps a Unioner holds at most before it unions
// them.
const Batch = 256

// Add adds bm, which the Unioner may keep until Result.
func (u *Unioner) Add(bm *roaring.Bitmap) {
	if u.batch = append(u.batch, bm); len(u.batch) == Batch {
		u.flush()
	}
}

func (u *Unioner) flush() {
	if len(u.batch) == 0 {
		return
	}
	b := Union(u.batch...)
	clear(u.batch)
	u.batch = u.batch[:0]
	if u.acc == nil {
		u.acc = b
	} else {
		u.acc.Or(b)
	}
}

// Result returns the union of what was added, as a new bitmap.
func (u *Unioner) Result() *roaring.Bitmap {
	u.flush()
	if u.acc == nil {
		return roaring.New()
	}
	return u.acc
}
