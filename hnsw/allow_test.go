package hnsw

import (
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			a.set(tt.bm, nil)
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

// The exact scan answers as a flat index does under every allow-list
// shape: walked by ID (few allowed), slot by slot on a dense copy, and
// slot by slot on the bitmap (IDs spread too far to copy), with deleted
// and replaced items among them.
func TestScanAllowListShapes(t *testing.T) {
	const n, dim = 600, 24
	data := clustered(n+10+50, dim, 6, 53) // items, queries, replacements: no ties
	queries, repl := data[n:n+10], data[n+10:]
	g := NewHNSW(dim, modality.L2, Config{Seed: 3})
	flat := NewFlat(dim, modality.L2)
	id := func(i int) uint32 {
		if i%7 == 0 {
			return uint32(i) + 3_000_000_000 // far from the rest
		}
		return uint32(i)
	}
	for i, v := range data[:n] {
		require.NoError(t, g.Add(id(i), v))
		require.NoError(t, flat.Add(id(i), v))
	}
	for i := 0; i < n; i += 11 {
		g.Delete(id(i))
		flat.Delete(id(i))
	}
	for i := 5; i < n; i += 13 { // replaced: the old node is a tombstone
		require.NoError(t, g.Add(id(i), repl[i/13]))
		require.NoError(t, flat.Add(id(i), repl[i/13]))
	}
	near := func(step int) *roaring.Bitmap {
		bm := roaring.New()
		for i := 1; i < n; i += step {
			if i%7 != 0 {
				bm.Add(id(i))
			}
		}
		return bm
	}
	all := roaring.New()
	for i := range n {
		all.Add(id(i))
	}
	tests := []struct {
		name  string
		allow *roaring.Bitmap
	}{
		{"by ID (1 in 50)", near(50)},
		{"dense (1 in 2)", near(2)},
		{"bitmap (IDs up to 3e9)", all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, q := range queries {
				for _, k := range []int{1, 10, 1000} {
					want := flat.Search(q, k, SearchOptions{Allow: tt.allow})
					got := g.Search(q, k, SearchOptions{Exact: true, Allow: tt.allow})
					assert.Equal(t, want, got, "k=%d", k)
				}
			}
		})
	}
}

// TestFilterFunction: SearchOptions.Filter restricts every engine as an
// allow-list of the IDs it accepts does, alone and together with Allow
// (their intersection), in graph walks and exact scans; and a walk under
// a filter returns only accepted IDs.
func TestFilterFunction(t *testing.T) {
	const n, dim = 800, 16
	data := clustered(n+20, dim, 8, 61)
	queries := data[n:]
	g := NewHNSW(dim, modality.L2, Config{Seed: 9})
	flat := NewFlat(dim, modality.L2)
	multi := NewMulti(dim, modality.L2, modality.MaxSim, Config{Seed: 9})
	for i, v := range data[:n] {
		require.NoError(t, g.Add(uint32(i), v))
		require.NoError(t, flat.Add(uint32(i), v))
		if i%2 == 0 { // sets of two vectors
			require.NoError(t, multi.Add(uint32(i), append(append([]float32(nil), v...), data[i+1]...)))
		}
	}
	g.Delete(4)
	flat.Delete(4)
	multi.Delete(4)
	third := func(id uint32) bool { return id%3 == 0 }
	bitmapOf := func(keep func(uint32) bool) *roaring.Bitmap {
		bm := roaring.New()
		for i := range uint32(n) {
			if keep(i) {
				bm.Add(i)
			}
		}
		return bm
	}
	low := bitmapOf(func(id uint32) bool { return id < n/2 })
	both := bitmapOf(func(id uint32) bool { return id < n/2 && id%3 == 0 })
	tests := []struct {
		name   string
		filter SearchOptions // with Filter
		allow  SearchOptions // the same IDs as a bitmap
	}{
		{"filter", SearchOptions{Filter: third}, SearchOptions{Allow: bitmapOf(third)}},
		{"filter and allow", SearchOptions{Filter: third, Allow: low}, SearchOptions{Allow: both}},
		{"filter, exact", SearchOptions{Filter: third, Exact: true}, SearchOptions{Allow: bitmapOf(third), Exact: true}},
		{"filter and allow, exact", SearchOptions{Filter: third, Allow: low, Exact: true}, SearchOptions{Allow: both, Exact: true}},
		{"none accepted", SearchOptions{Filter: func(uint32) bool { return false }}, SearchOptions{Allow: roaring.New()}},
	}
	engines := []struct {
		name string
		idx  Index
	}{{"hnsw", g}, {"flat", flat}, {"multi", multi}}
	for _, e := range engines {
		for _, tt := range tests {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				for _, q := range queries {
					for _, k := range []int{1, 10} {
						want := e.idx.Search(q, k, tt.allow)
						got := e.idx.Search(q, k, tt.filter)
						if len(want) == 0 {
							assert.Empty(t, got, "k=%d", k) // nil or empty
						} else {
							assert.Equal(t, want, got, "k=%d", k)
						}
						for _, r := range got {
							assert.True(t, tt.allow.Allow.Contains(r.ID), "ID %d not accepted", r.ID)
						}
					}
				}
			})
		}
	}
}
