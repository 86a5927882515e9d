package hnsw

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIntScoringAgreesWithFloat checks the integer scoring of codes
// (intQuery) against the float kernel's on the same rows: the walk takes
// the integer path wherever the dimension allows a scale of minQueryMax
// steps and the float one past it, one slot or four a call give the same
// distance, and the two kernels' distances differ by no more than the
// query's rounding allows (half its step on each component, times the
// codes and the row's step), on data near and far from the centre.
func TestIntScoringAgreesWithFloat(t *testing.T) {
	cases := []struct {
		dim     int
		metric  modality.Metric
		offset  float32 // added to every component: data away from the origin
		intPath bool
	}{
		{3, modality.L2, 0, true},
		{128, modality.L2, 0, true},
		{128, modality.L2, 30, true},
		{128, modality.Cosine, 0, true},
		{512, modality.Dot, 0, true},
		{512, modality.L2, 1e4, true},
		{4114, modality.L2, 0, true},
		{4115, modality.L2, 0, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d-%v-offset%g", tc.dim, tc.metric, tc.offset), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.dim), 9))
			n := 40
			vecs := make([][]float32, n+1)
			for i := range vecs {
				v := make([]float32, tc.dim)
				for j := range v {
					v[j] = float32(r.NormFloat64()) + tc.offset
				}
				if tc.metric == modality.Cosine {
					n := float32(math.Sqrt(float64(kernel.DotProduct(v, v))))
					for j := range v {
						v[j] /= n
					}
				}
				vecs[i] = v
			}
			g := onCodes(NewHNSW(tc.dim, tc.metric, Config{Seed: 1}))
			for i, v := range vecs[:n] {
				require.NoError(t, g.Add(uint32(i), v))
			}
			sc := g.getSearcher()
			defer g.searchers.Put(sc)
			q := g.searchQuery(vecs[n], true, sc)
			require.Equal(t, tc.intPath, q.ci != nil, "integer path taken")
			if !tc.intPath {
				return
			}
			float := q
			float.ci = nil
			slots := make([]uint32, n)
			for i := range slots {
				slots[i] = uint32(i)
			}
			four := make([]float32, n)
			g.qdists(&q, slots, four)
			for _, s := range slots {
				codes, scl := g.row(s)
				di, df := g.qdist(&q, s), g.qdist(&float, s)
				assert.Equal(t, di, four[s], "slot %d: one slot and four a call agree", s)
				// |Σ δ_i code_i| <= cs/2 Σ code_i, scaled by the row's
				// step (twice under L2), plus float32 rounding of the
				// sums either way.
				var codeSum float64
				for _, c := range codes {
					codeSum += float64(c)
				}
				bound := float64(q.cs) / 2 * codeSum * float64(scl.step)
				if tc.metric == modality.L2 {
					bound *= 2
				}
				mag := math.Abs(float64(q.off)) + math.Abs(float64(scl.sq)) + float64(kernel.DotProduct(q.c, q.c))
				assert.InDelta(t, df, di, bound+1e-5*mag+1e-6, "slot %d: integer %v float %v", s, di, df)
				assert.False(t, math.IsNaN(float64(di)) || math.IsInf(float64(di), 0), "slot %d: %v", s, di)
			}
		})
	}
}

// TestIntScoringTinyQueryFallsBack: a query whose components are too
// small for a normal integer step (below about 1e-34) is scored with the
// float kernel, and under Dot, where scaling a query changes no ranking,
// finds what the query at its usual scale finds (on the integers, all
// zero, it found 1 in 100; found by a review).
func TestIntScoringTinyQueryFallsBack(t *testing.T) {
	data := clustered(2100, 64, 20, 7)
	g := onCodes(NewHNSW(64, modality.Dot, Config{Seed: 1}))
	for i, v := range data[:2000] {
		require.NoError(t, g.Add(uint32(i), v))
	}
	sc := g.getSearcher()
	defer g.searchers.Put(sc)
	for _, q := range data[2000:] {
		tiny := make([]float32, len(q))
		for j, x := range q {
			tiny[j] = x * 1e-34
		}
		assert.Nil(t, g.searchQuery(tiny, true, sc).ci, "a tiny query is scored in float32")
		assert.NotNil(t, g.searchQuery(q, true, sc).ci, "an ordinary one on integers")
		want, got := g.Search(q, 10, SearchOptions{Ef: 32}), g.Search(tiny, 10, SearchOptions{Ef: 32})
		require.Len(t, got, len(want))
		for i := range want {
			assert.Equal(t, want[i].ID, got[i].ID, "rank %d", i)
		}
	}
}
