package hnsw

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// centresFor returns `clusters` random centres of dim values.
func centresFor(dim, clusters int, r *rand.Rand) [][]float32 {
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	return centres
}

// labelled returns n unit vectors around the centres, and the centre of
// each.
func labelled(n int, centres [][]float32, r *rand.Rand) (vecs [][]float32, labels []int) {
	vecs, labels = make([][]float32, n), make([]int, n)
	for i := range vecs {
		c := r.IntN(len(centres))
		v := make([]float32, len(centres[c]))
		for j := range v {
			v[j] = centres[c][j] + 0.5*float32(r.NormFloat64())
		}
		kernel.Normalize(v)
		vecs[i], labels[i] = v, c
	}
	return vecs, labels
}

// TestWalkStatsConfidence checks that a filtered walk's statistics tell a
// filter that ignores where vectors lie, which the walk answers well,
// from one that keeps only vectors far from the query, which it answers
// badly: the first must be confident on at least 95% of the queries, the
// second on none, and the second's recall must really be poor (else the
// test would show nothing).
func TestWalkStatsConfidence(t *testing.T) {
	if raceEnabled {
		t.Skip("single-threaded, and 36 s under the race detector")
	}
	const n, dim, clusters = 10_000, 48, 10
	r := rand.New(rand.NewPCG(7, 1))
	centres := centresFor(dim, clusters, r)
	vecs, labels := labelled(n, centres, r)
	h := NewHNSW(dim, modality.Cosine, Config{Seed: 1})
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	require.NoError(t, AddParallel(context.Background(), h, ids, vecs, 1, nil)) // one worker: the same graph every run
	queries, qlabels := labelled(60, centres, r)
	farthest := func(c int) int {
		best := -1
		for o := range clusters {
			if o != c && (best < 0 || kernel.DotProduct(centres[c], centres[o]) < kernel.DotProduct(centres[c], centres[best])) {
				best = o
			}
		}
		return best
	}
	// keep returns the allow-list keeping share of the vectors of which
	// in(label) holds.
	keep := func(share float64, in func(label int) bool, rr *rand.Rand) *roaring.Bitmap {
		bm := roaring.New()
		for i, l := range labels {
			if in(l) && rr.Float64() < share {
				bm.Add(uint32(i))
			}
		}
		return bm
	}
	// The graph's own recall at each ef, with no filter: what a walk
	// that is not misled by its filter should reach.
	unfiltered := map[int]float64{}
	for _, ef := range []int{10, 16} {
		hits := 0
		for _, q := range queries {
			hits += overlap(h.Search(q, 10, SearchOptions{Ef: ef}), h.Search(q, 10, SearchOptions{Exact: true}))
		}
		unfiltered[ef] = float64(hits) / float64(10*len(queries))
	}
	tests := []struct {
		name      string
		allow     func(qlabel int, rr *rand.Rand) *roaring.Bitmap
		confident bool
	}{
		{"any cluster, 5%", func(_ int, rr *rand.Rand) *roaring.Bitmap { return keep(0.05, func(int) bool { return true }, rr) }, true},
		{"any cluster, 20%", func(_ int, rr *rand.Rand) *roaring.Bitmap { return keep(0.20, func(int) bool { return true }, rr) }, true},
		{"the query's cluster", func(q int, rr *rand.Rand) *roaring.Bitmap { return keep(1, func(l int) bool { return l == q }, rr) }, true},
		{"the farthest cluster", func(q int, rr *rand.Rand) *roaring.Bitmap {
			return keep(1, func(l int) bool { return l == farthest(q) }, rr)
		}, false},
		{"half the farthest cluster", func(q int, rr *rand.Rand) *roaring.Bitmap {
			return keep(0.5, func(l int) bool { return l == farthest(q) }, rr)
		}, false},
	}
	for _, tt := range tests {
		for _, ef := range []int{10, 16} {
			t.Run(fmt.Sprintf("%s/ef=%d", tt.name, ef), func(t *testing.T) {
				rr := rand.New(rand.NewPCG(3, 3))
				hits, confident, stopped := 0, 0, 0
				var cands, budgeted int
				for i, q := range queries {
					bm := tt.allow(qlabels[i], rr)
					share := float64(bm.GetCardinality()) / n
					want := h.Search(q, 10, SearchOptions{Exact: true, Allow: bm})
					var ws WalkStats
					got := h.Search(q, 10, SearchOptions{Ef: ef, Allow: bm, Walk: &ws})
					require.Positive(t, ws.Candidates)
					require.LessOrEqual(t, ws.Accepted, ws.Candidates)
					require.False(t, ws.Stopped, "no budget, no stop")
					hits += overlap(got, want)
					if ws.Confident(share) {
						confident++
					}
					// With a budget, as the database sets it (20 allowed
					// expected, or more).
					wb := WalkStats{Share: share, Budget: int(20 / share)}
					h.Search(q, 10, SearchOptions{Ef: ef, Allow: bm, Walk: &wb})
					if wb.Stopped {
						stopped++
						assert.False(t, wb.Confident(share), "a stopped walk is not confident")
						assert.GreaterOrEqual(t, wb.Candidates, wb.Budget)
					}
					cands += ws.Candidates
					budgeted += wb.Candidates
				}
				recall := float64(hits) / float64(10*len(queries))
				if tt.confident {
					// A few walks of a filter that ignores the clusters
					// fall below ConfidentShare by chance: they are
					// rescanned, which costs time, not recall.
					assert.GreaterOrEqual(t, confident, len(queries)*95/100, "confident walks")
					assert.Zero(t, stopped, "walks stopped early")
					assert.GreaterOrEqual(t, recall, unfiltered[ef]-0.02, "recall@10 against an unfiltered walk's")
				} else {
					assert.Zero(t, confident, "confident walks")
					assert.Equal(t, len(queries), stopped, "walks stopped early")
					assert.Less(t, budgeted, cands/2, "candidates with a budget against without")
					assert.Less(t, recall, unfiltered[ef]-0.05, "recall@10 against an unfiltered walk's: the case must be a hard one")
				}
				t.Logf("recall@10 %.3f (unfiltered %.3f), %d of %d confident; with a budget %d stopped, %d candidates against %d", recall, unfiltered[ef], confident, len(queries), stopped, budgeted, cands)
			})
		}
	}
}

// TestWalkStatsLeftZero checks that only a filtered walk fills Walk.
func TestWalkStatsLeftZero(t *testing.T) {
	h := NewHNSW(8, modality.L2, Config{Seed: 1})
	for i, v := range clustered(200, 8, 3, 1) {
		require.NoError(t, h.Add(uint32(i), v))
	}
	q := clustered(1, 8, 3, 2)[0]
	allow := roaring.BitmapOf(1, 2, 3, 50, 60, 70, 100, 150)
	for _, opts := range []SearchOptions{{}, {Exact: true, Allow: allow}} {
		ws := WalkStats{Candidates: -1}
		opts.Walk = &ws
		h.Search(q, 5, opts)
		assert.Equal(t, WalkStats{Candidates: -1}, ws, "%+v", opts)
	}
	var ws WalkStats
	h.Search(q, 5, SearchOptions{Allow: allow, Walk: &ws})
	assert.Positive(t, ws.Candidates)
	assert.Positive(t, ws.Accepted)
	assert.False(t, WalkStats{}.Confident(0.5))
}
