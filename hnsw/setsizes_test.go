package hnsw

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
)

// setSizes.count against a map, walking the allow-list and walking the
// pages, over IDs spread across page boundaries and up to the top of the
// ID space, with sets replaced and removed.
func TestSetSizesCount(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var s setSizes
	want := map[uint32]int{}
	put := func(id uint32, n int) {
		s.set(id, n)
		if n == 0 {
			delete(want, id)
		} else {
			want[id] = n
		}
	}
	for range 3000 {
		id := r.Uint32N(20_000)
		if r.IntN(50) == 0 {
			id = math.MaxUint32 - 1 - r.Uint32N(600)
		}
		put(id, 1+r.IntN(256))
	}
	for id := range want {
		if r.IntN(5) == 0 {
			put(id, 0)
		}
	}
	put(7, 0) // removing what has no set
	tests := []struct {
		name  string
		allow *roaring.Bitmap
	}{
		{"none", roaring.New()},
		{"a few", roaring.BitmapOf(0, 255, 256, 257, 19_999, math.MaxUint32-1)},
		{"a third of the first 2,000 IDs (fewer than the sets)", func() *roaring.Bitmap {
			b := roaring.New()
			for id := uint32(0); id < 2000; id += 3 {
				b.Add(id)
			}
			return b
		}()},
		{"every other ID below 20,000 (more than the sets)", func() *roaring.Bitmap {
			b := roaring.New()
			for id := uint32(0); id < 20_000; id += 2 {
				b.Add(id)
			}
			return b
		}()},
		{"more IDs than sets", func() *roaring.Bitmap {
			b := roaring.New()
			b.AddRange(0, 1<<20)
			b.AddRange(math.MaxUint32-700, math.MaxUint32)
			return b
		}()},
	}
	for _, tt := range tests {
		wantSets, wantVectors := 0, 0
		for id, n := range want {
			if tt.allow.Contains(id) {
				wantSets++
				wantVectors += n
			}
		}
		sets, vectors := s.count(tt.allow, len(want))
		assert.Equal(t, []int{wantSets, wantVectors}, []int{sets, vectors}, tt.name)
	}
	assert.Positive(t, s.bytes())
}
