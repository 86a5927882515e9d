package hnsw

import (
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
)

// allowed answers as the bitmap does, dense or not, and a reused buffer
// keeps nothing of the bitmap before.
func TestAllowedMatchesBitmap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	every := func(step, n uint32) *roaring.Bitmap {
		bm := roaring.New()
		for i := uint32(0); i < n; i += step {
			bm.Add(i)
		}
		return bm
	}
	runs := roaring.New()
	runs.AddRange(1000, 70_000)
	runs.AddRange(200_000, 200_100)
	runs.RunOptimize()
	spread := roaring.BitmapOf(3, 4_000_000_000) // too sparse to copy densely
	random := roaring.New()
	for range 3000 {
		random.Add(r.Uint32N(300_000))
	}
	tests := []struct {
		name  string
		bm    *roaring.Bitmap
		dense bool
	}{
		{"every other of 4,900 (array container)", every(2, 4900), true},
		{"every other of 200,000 (bitmap containers)", every(2, 200_000), true},
		{"runs", runs, true},
		{"random", random, true},
		{"two far apart", spread, false},
		{"empty", roaring.New(), false},
	}
	var a allowed
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.set(tt.bm)
			assert.Equal(t, tt.dense, a.words != nil, "dense copy")
			probe := []uint32{0, 1, 2, 3, 4, 999, 1000, 4899, 4900, 69_999, 70_000, 199_999, 200_000, 200_099, 200_100, 1 << 20, 4_000_000_000, ^uint32(0)}
			for range 2000 {
				probe = append(probe, r.Uint32N(400_000))
			}
			for _, id := range probe {
				assert.Equal(t, tt.bm.Contains(id), a.has(id), "id %d", id)
			}
			a.reset()
			assert.Nil(t, a.bm, "reset lets go of the bitmap")
		})
	}
}
