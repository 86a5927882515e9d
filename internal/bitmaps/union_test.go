package bitmaps

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnionMatchesOr: Union and a Unioner give what Or one by one gives,
// on dense sets (the bitset), sparse ones over a wide range (FastOr),
// empty ones and none, and leave their inputs unchanged.
func TestUnionMatchesOr(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name      string
		n, per    int
		universe  uint32
		withEmpty bool
	}{
		{"none", 0, 0, 1, false},
		{"one", 1, 50, 1000, false},
		{"dense, below 65,536", 300, 100, 60_000, false},
		{"dense, over several blocks", 700, 150, 300_000, true},
		{"sparse over a wide range", 40, 3, 4_000_000_000, true},
		{"empties only", 5, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bms []*roaring.Bitmap
			want := roaring.New()
			for i := range tt.n {
				bm := roaring.New()
				if !(tt.withEmpty && i%7 == 3) {
					for range tt.per {
						bm.Add(r.Uint32N(tt.universe))
					}
				}
				bms = append(bms, bm)
				want.Or(bm)
			}
			before := make([]string, len(bms))
			for i, b := range bms {
				before[i] = b.String()
			}
			got := Union(bms...)
			require.True(t, want.Equals(got), "Union: %d IDs, want %d", got.GetCardinality(), want.GetCardinality())
			var u Unioner
			for _, b := range bms {
				u.Add(b)
			}
			got = u.Result()
			require.True(t, want.Equals(got), "Unioner: %d IDs, want %d", got.GetCardinality(), want.GetCardinality())
			got.Add(12345) // the result is its own
			for i, b := range bms {
				assert.Equal(t, before[i], b.String(), "input %d changed", i)
			}
		})
	}
}

// TestUnionOfRunsFarUp: a run-length bitmap holds millions of IDs in a
// few bytes; near the top of the ID space its dense bitset would take 512
// MiB, which Union must not allocate.
func TestUnionOfRunsFarUp(t *testing.T) {
	a, b := roaring.New(), roaring.New()
	a.AddRange(1<<32-5_000_000, 1<<32-1)
	a.RunOptimize()
	b.Add(7)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := Union(a, b)
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated")
	assert.Equal(t, a.GetCardinality()+1, got.GetCardinality())
	assert.True(t, got.Contains(7) && got.Contains(1<<32-2))
}

// TestUnionSharesNothing: bitmaps read in place from bytes (as the
// database reads postings from the file's mapped memory, valid only
// inside a transaction) are unioned, then the bytes are overwritten; the
// union must not change. Arrays, dense blocks and runs, on the bitset's
// path and FastOr's, and through a Unioner.
func TestUnionSharesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	tests := []struct {
		name     string
		universe uint32 // IDs below it; past 16 words an ID, FastOr
		n        int
	}{
		{"bitset", 200_000, 40},
		{"FastOr", 4_000_000_000, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var views []*roaring.Bitmap
			var bufs [][]byte
			want := roaring.New()
			for i := range tt.n {
				bm := roaring.New()
				switch i % 3 {
				case 0: // an array
					for range 20 {
						bm.Add(r.Uint32N(tt.universe))
					}
				case 1: // a dense block
					base := r.Uint32N(tt.universe - 70_000)
					for j := range uint32(6000) {
						bm.Add(base + 7*j%65_536)
					}
				case 2: // a run
					base := r.Uint32N(tt.universe - 70_000)
					bm.AddRange(uint64(base), uint64(base)+5000)
					bm.RunOptimize()
				}
				want.Or(bm)
				buf, err := bm.ToBytes()
				require.NoError(t, err)
				view := roaring.New()
				_, err = view.FromUnsafeBytes(buf)
				require.NoError(t, err)
				views, bufs = append(views, view), append(bufs, buf)
			}
			got := Union(views...)
			var u Unioner
			for _, v := range views {
				u.Add(v)
			}
			got2 := u.Result()
			for _, b := range bufs {
				for i := range b {
					b[i] = 0xA5
				}
			}
			assert.True(t, want.Equals(got), "Union: %d IDs, want %d", got.GetCardinality(), want.GetCardinality())
			assert.True(t, want.Equals(got2), "Unioner: %d IDs, want %d", got2.GetCardinality(), want.GetCardinality())
		})
	}
}

func BenchmarkUnion(b *testing.B) {
	for _, k := range []int{100, 500} {
		var bms []*roaring.Bitmap
		for v := range k {
			bm := roaring.New()
			for id := v; id < 100_000; id += 1000 {
				bm.Add(uint32(id))
			}
			bms = append(bms, bm)
		}
		b.Run(fmt.Sprintf("bitmaps=%d/Or", k), func(b *testing.B) {
			for b.Loop() {
				out := roaring.New()
				for _, x := range bms {
					out.Or(x)
				}
			}
		})
		b.Run(fmt.Sprintf("bitmaps=%d/Union", k), func(b *testing.B) {
			for b.Loop() {
				Union(bms...)
			}
		})
		b.Run(fmt.Sprintf("bitmaps=%d/FastOr", k), func(b *testing.B) {
			for b.Loop() {
				roaring.FastOr(bms...)
			}
		})
		b.Run(fmt.Sprintf("bitmaps=%d/HeapOr", k), func(b *testing.B) {
			for b.Loop() {
				roaring.HeapOr(bms...)
			}
		})
	}
	// Many values of one ID each, through a Unioner (a range over a
	// timestamp): the batches' unions merged into the result.
	var ones []*roaring.Bitmap
	for id := range uint32(300_000) {
		ones = append(ones, roaring.BitmapOf(id*3))
	}
	b.Run("values=300k/Or", func(b *testing.B) {
		for b.Loop() {
			out := roaring.New()
			for _, x := range ones {
				out.Or(x)
			}
		}
	})
	b.Run("values=300k/Unioner", func(b *testing.B) {
		for b.Loop() {
			var u Unioner
			for _, x := range ones {
				u.Add(x)
			}
			u.Result()
		}
	})
}
