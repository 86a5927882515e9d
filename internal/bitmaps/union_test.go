package bitmaps

import (
	"fmt"
	"math/rand/v2"
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
	}
}
