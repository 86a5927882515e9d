package align

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// The eigenbasis solution of each fold gives the predictions of the
// direct solve, in both forms (more pairs than dimensions, and fewer), for
// both priors, under Cosine (compared as directions) and L2.
func TestFoldRidgeMatchesDirectSolve(t *testing.T) {
	for _, c := range []struct{ n, d int }{{60, 8}, {12, 30}} {
		for _, metric := range []modality.Metric{modality.Cosine, modality.L2} {
			for _, identity := range []bool{false, true} {
				t.Run(fmt.Sprintf("n%d_d%d_%v_identity%v", c.n, c.d, metric, identity), func(t *testing.T) {
					rng := testRNG(21)
					x := randRows(rng, c.n+5, c.d, nil)
					y := mapRows(rng, x, randDense(rng, c.d, c.d, 1), 1, nil, 0.3)
					train := Pairs{X: x[:c.n], Y: y[:c.n]}
					test := Pairs{X: x[c.n:], Y: y[c.n:]}
					fr, err := newFoldRidge(train, test)
					require.NoError(t, err)
					for _, lambda := range []float64{0.01, 1, 100} {
						proj, err := fitRidge(train, lambda, identity, metric)
						require.NoError(t, err)
						got, err := fr.predict(lambda, identity, metric)
						require.NoError(t, err)
						for i, xq := range test.X {
							want := proj.Apply(xq)
							g := got[i]
							if metric == modality.Cosine {
								g = append([]float32(nil), g...)
								kernel.Normalize(g)
							}
							for j := range want {
								require.InDelta(t, want[j], g[j], 1e-4, "lambda %g query %d dim %d", lambda, i, j)
							}
						}
					}
				})
			}
		}
	}
}

// The dual solve (fewer pairs than dimensions) is the primal one.
func TestRidgeDualMatchesPrimal(t *testing.T) {
	const n, d = 12, 30
	rng := testRNG(43)
	x := randRows(rng, n, d, nil)
	p := Pairs{X: x, Y: mapRows(rng, x, randDense(rng, d, d, 1), 1, nil, 0.3)}
	for _, identity := range []bool{false, true} {
		for _, lambda := range []float64{0.01, 1, 100} {
			dual, err := fitRidgeDual(p, lambda, identity, modality.L2)
			require.NoError(t, err)
			primal, err := newRidgeStats(p).solve(lambda, identity, modality.L2)
			require.NoError(t, err)
			require.Less(t, maxAbsDiff(t, dual.W, primal.W), 1e-6, "lambda %g identity %v", lambda, identity)
			require.Less(t, maxAbsVec(dual.Bias, primal.Bias), 1e-6)
			require.Equal(t, primal.Params, dual.Params)
		}
	}
}

// The chance level against an independent count: the first relevant of m
// among G sits at rank r in C(G-r, m-1) of the C(G, m) placements.
func TestChanceLevel(t *testing.T) {
	lbinom := func(n, k int) float64 { // log C(n, k)
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(k + 1))
		c, _ := math.Lgamma(float64(n - k + 1))
		return a - b - c
	}
	for _, c := range []struct{ g, m int }{{10, 1}, {10, 5}, {500, 1}, {3000, 300}} {
		var mrr float64
		atK := map[int]float64{}
		for r := 1; r <= c.g; r++ {
			if c.g-r < c.m-1 {
				break
			}
			p := math.Exp(lbinom(c.g-r, c.m-1) - lbinom(c.g, c.m))
			mrr += p / float64(r)
			for _, k := range []int{1, 5, 10} {
				if r <= k {
					atK[k] += p
				}
			}
		}
		ch := Chance(c.g, []int{c.m, c.m})
		assert.InDelta(t, mrr, ch.MRR, 1e-9, "G %d m %d", c.g, c.m)
		for k, want := range atK {
			assert.InDelta(t, want, ch.Recall(k), 1e-9, "G %d m %d R@%d", c.g, c.m, k)
		}
		assert.InDelta(t, float64(c.m)/float64(c.g), ch.P, 1e-12)
	}
	// Queries of different class sizes average.
	mixed := Chance(10, []int{1, 5})
	assert.InDelta(t, (0.1+0.5)/2, mixed.Recall(1), 1e-12)
}

// InfoNCE's large products run in float32 (mul): on a batch large enough
// to take that path, the loss and its gradient agree with the float64
// computation (the one checked against finite differences) to 1e-4.
func TestInfoNCEFloat32ProductsMatchFloat64(t *testing.T) {
	const bsz, d1, d2 = 128, 64, 48
	rng := testRNG(51)
	x := randDense(rng, bsz, d1, 1)
	y := randDense(rng, bsz, d2, 1)
	for i := range bsz {
		r := y.RawRowView(i)
		n := norm64(r)
		for j := range r {
			r[j] /= n
		}
	}
	h := &head{w: randDense(rng, d2, d1, 0.2), b: randVec(rng, d2, 0.1), t: math.Log(0.05)}
	run := func() (float64, *grads) {
		g := &grads{w: mat.NewDense(d2, d1, nil), b: make([]float64, d2)}
		return h.loss(x, y, nil, g), g
	}
	require.GreaterOrEqual(t, bsz*d1*d2, mul32Min, "the batch must take the float32 path")
	l32, g32 := run()
	old := mul32Min
	mul32Min = math.MaxInt
	l64, g64 := run()
	mul32Min = old
	assert.InDelta(t, l64, l32, 1e-4*math.Abs(l64))
	assert.Less(t, maxAbsDiff(t, g64.w, g32.w), 1e-4*max(mat.Norm(g64.w, math.Inf(1)), 1e-9))
	assert.InDelta(t, g64.t, g32.t, 1e-4*math.Abs(g64.t)+1e-9)
}

// Pairs that repeat rows (pairs made by class pick the same image twice)
// span fewer dimensions than there are pairs: Procrustes reduces both
// sides to what they span instead of failing (found by the learning-curve
// benchmark: 100 digit pairs, "the vectors span fewer than 96
// dimensions").
func TestProcrustesRepeatedRowsSpanLess(t *testing.T) {
	rng := testRNG(61)
	base := randRows(rng, 30, 50, nil)
	var p Pairs
	for i := range 60 {
		x := base[i%30] // every row twice
		p.X = append(p.X, x)
		p.Y = append(p.Y, x[:40])
	}
	proj, err := Fit(context.Background(), Procrustes, p, Options{Metric: modality.L2})
	require.NoError(t, err)
	assert.Contains(t, proj.Params, "pca=29")
	for _, v := range proj.W.RawMatrix().Data {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
}

// Found in review (issue 19): pairs of a single group left a fold with no
// training pairs, and the soft pivot indexed into nothing (a panic).
func TestFitAutoNeedsTwoGroups(t *testing.T) {
	rng := testRNG(71)
	x := randRows(rng, 40, 4, nil)
	p := Pairs{X: x, Y: x, Groups: make([]int, 40)}
	_, _, err := FitAuto(context.Background(), p, Options{Epochs: 2})
	require.ErrorIs(t, err, ErrTooFewPairs)
	assert.Contains(t, err.Error(), "1 group")
}

// Under Dot the soft pivot picks the pairs by dot product, as the
// database's index does, and weighs them by cosine.
func TestSoftPivotUnderDot(t *testing.T) {
	p := Pairs{X: [][]float32{{1, 0}}, Y: [][]float32{{1, 0}}}
	for i := range 12 {
		p.X = append(p.X, []float32{10, 10 + float32(i)*0.01})
		p.Y = append(p.Y, []float32{0, 1})
	}
	out := newSoftPivot(p, modality.Dot).apply([]float32{1, 0})
	assert.InDelta(t, 0, out[0], 1e-6, "the largest dot products are the second kind of pair")
	assert.InDelta(t, 1, out[1], 1e-6)
	zero := newSoftPivot(p, modality.Dot).apply([]float32{0, 0})
	for _, v := range zero {
		assert.False(t, math.IsNaN(float64(v)))
	}
}
