package align

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// --- helpers ---------------------------------------------------------------

func testRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xa11a)) }

// randRows returns n standard normal rows of dimension d, shifted by offset
// (when not nil).
func randRows(rng *rand.Rand, n, d int, offset []float64) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, d)
		for j := range out[i] {
			v := rng.NormFloat64()
			if offset != nil {
				v += offset[j]
			}
			out[i][j] = float32(v)
		}
	}
	return out
}

func randVec(rng *rand.Rand, d int, sd float64) []float64 {
	v := make([]float64, d)
	for i := range v {
		v[i] = sd * rng.NormFloat64()
	}
	return v
}

func randDense(rng *rand.Rand, r, c int, sd float64) *mat.Dense {
	return mat.NewDense(r, c, randVec(rng, r*c, sd))
}

// randOrthogonal returns the Q factor of a random Gaussian matrix.
func randOrthogonal(rng *rand.Rand, d int) *mat.Dense {
	var qr mat.QR
	qr.Factorize(randDense(rng, d, d, 1))
	var q mat.Dense
	qr.QTo(&q)
	return &q
}

// mapRows returns s * x M + t + noise * N(0, 1) for every row x (row
// vectors: M is d1 x d2).
func mapRows(rng *rand.Rand, rows [][]float32, m *mat.Dense, s float64, t []float64, noise float64) [][]float32 {
	d1, d2 := m.Dims()
	out := make([][]float32, len(rows))
	for i, x := range rows {
		out[i] = make([]float32, d2)
		for j := range d2 {
			v := 0.0
			for k := range d1 {
				v += float64(x[k]) * m.At(k, j)
			}
			v *= s
			if t != nil {
				v += t[j]
			}
			if noise > 0 {
				v += noise * rng.NormFloat64()
			}
			out[i][j] = float32(v)
		}
	}
	return out
}

// linear is W x + Bias without the normalisation Apply does.
func linear(p *Projection, x []float32) []float64 {
	out, _ := p.W.Dims()
	y := make([]float64, out)
	for i := range out {
		s := p.Bias[i]
		for j, w := range p.W.RawRowView(i) {
			s += w * float64(x[j])
		}
		y[i] = s
	}
	return y
}

func norm64(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// relErr is |a - b| / |b|.
func relErr(a []float64, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := a[i] - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

// maxAbsDiff returns max |a_ij - b_ij| for same-shaped matrices.
func maxAbsDiff(t *testing.T, a, b mat.Matrix) float64 {
	t.Helper()
	ar, ac := a.Dims()
	br, bc := b.Dims()
	require.Equal(t, []int{ar, ac}, []int{br, bc}, "shapes differ")
	var m float64
	for i := range ar {
		for j := range ac {
			m = max(m, math.Abs(a.At(i, j)-b.At(i, j)))
		}
	}
	return m
}

func maxAbsVec(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// paramFloat reads name=<number> out of a Params string.
func paramFloat(t *testing.T, params, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?:^|[ (])` + regexp.QuoteMeta(name) + `=([-+0-9.eE]+)`).FindStringSubmatch(params)
	require.NotNil(t, m, "no %s= in params %q", name, params)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// --- 1. Procrustes -----------------------------------------------------------

func procrustesProblem(seed uint64) (p Pairs, r *mat.Dense, s float64, tr []float64) {
	const n, d = 400, 16
	rng := testRNG(seed)
	x := randRows(rng, n, d, randVec(rng, d, 3)) // a source mean away from 0
	r = randOrthogonal(rng, d)
	s = 2
	tr = randVec(rng, d, 5)
	return Pairs{X: x, Y: mapRows(rng, x, r, s, tr, 0)}, r, s, tr
}

func TestLearnersProcrustesRecoversRotation(t *testing.T) {
	p, r, s, tr := procrustesProblem(1)
	proj, err := Fit(context.Background(), Procrustes, p, Options{Metric: modality.L2})
	require.NoError(t, err)
	assert.Equal(t, Procrustes, proj.Method)
	in, out := proj.Dims()
	assert.Equal(t, []int{16, 16}, []int{in, out})

	// y = s x R + t as row vectors, so W = s R' and Bias = t.
	var want mat.Dense
	want.Scale(s, r.T())
	assert.Less(t, maxAbsDiff(t, proj.W, &want), 1e-5, "W != s R'")
	assert.Less(t, maxAbsVec(proj.Bias, tr), 1e-4, "Bias != t (L2 keeps the target mean)")
	assert.InDelta(t, s, paramFloat(t, proj.Params, "scale"), 1e-2, proj.Params)
	assert.NotContains(t, proj.Params, "pca", "equal dimensions need no PCA")

	// Under L2 the output is not normalised: Apply reproduces every target,
	// and an exact map ranks every own target first.
	assert.False(t, proj.Normalize, "L2 keeps the real position")
	var worst float64
	for i, x := range p.X {
		worst = max(worst, relErr(f64(proj.Apply(x)), p.Y[i]))
	}
	assert.Less(t, worst, 1e-6, "Apply(x) != y")
	s2 := Evaluate(proj, p, modality.L2)
	assert.Equal(t, 1.0, s2.R1)
	assert.InDelta(t, 0.1, s2.P10, 1e-12, "one relevant target per query")

	// Under Cosine the target mean is dropped on purpose: Bias = -W mx.
	pc, err := Fit(context.Background(), Procrustes, p, Options{Metric: modality.Cosine})
	require.NoError(t, err)
	assert.Less(t, maxAbsDiff(t, pc.W, &want), 1e-5)
	mx := centre(dense(p.X))
	var wmx mat.VecDense
	wmx.MulVec(&want, mat.NewVecDense(len(mx), mx))
	negWmx := make([]float64, len(mx))
	for i := range negWmx {
		negWmx[i] = -wmx.AtVec(i)
	}
	assert.Less(t, maxAbsVec(pc.Bias, negWmx), 1e-4, "Cosine bias should be -W mx")
	// So Apply lands on the centred target, normalised.
	assert.True(t, pc.Normalize)
	my := centre(dense(p.Y))
	worst = 0
	centred := Pairs{X: p.X, Y: make([][]float32, len(p.Y))}
	for i, x := range p.X {
		want := make([]float32, len(my))
		for j := range my {
			want[j] = float32(float64(p.Y[i][j]) - my[j])
		}
		centred.Y[i] = want
		got := f64(pc.Apply(x))
		assert.InDelta(t, 1, norm64(got), 1e-6)
		worst = max(worst, relErr(got, unit(want)))
	}
	assert.Less(t, worst, 1e-5, "Apply(x) != unit(y - my) under Cosine")
	assert.Equal(t, 1.0, Evaluate(pc, centred, modality.Cosine).R1)
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestLearnersProcrustesPCAWhenDimsDiffer(t *testing.T) {
	// Y lives in 12 dims but only spans 6 (X's 6 dims embedded by an
	// orthonormal 6 x 12 map): PCA to 6 must recover the map exactly.
	const n, d1, d2 = 300, 6, 12
	rng := testRNG(2)
	x := randRows(rng, n, d1, nil)
	q := randOrthogonal(rng, d2)
	e := mat.DenseCopyOf(q.Slice(0, d1, 0, d2)) // 6 x 12, orthonormal rows
	tr := randVec(rng, d2, 1)
	p := Pairs{X: x, Y: mapRows(rng, x, e, 1.5, tr, 0)}
	proj, err := Fit(context.Background(), Procrustes, p, Options{Metric: modality.L2})
	require.NoError(t, err)
	assert.Contains(t, proj.Params, "pca=6")
	var want mat.Dense
	want.Scale(1.5, e.T())
	assert.Less(t, maxAbsDiff(t, proj.W, &want), 1e-5)
	assert.Less(t, maxAbsVec(proj.Bias, tr), 1e-4)
}

// With fewer pairs than dimensions Procrustes works in the pairs' span:
// it still carries the pairs onto their targets (a rotation within the
// span), and a direction outside the span goes to zero rather than
// wherever an arbitrary completion of the rotation would send it.
func TestLearnersProcrustesFewPairsStaysInTheSpan(t *testing.T) {
	const n, d = 20, 40
	rng := testRNG(31)
	x := randRows(rng, n, d, nil)
	q := randOrthogonal(rng, d)
	p := Pairs{X: x, Y: mapRows(rng, x, q, 1, nil, 0)}
	proj, err := Fit(context.Background(), Procrustes, p, Options{Metric: modality.L2})
	require.NoError(t, err)
	assert.Contains(t, proj.Params, "pca=19 (the span of 20 pairs)")
	// With nearly as many pairs as dimensions, the truncated SVD; the
	// same checks follow for both.
	p36 := Pairs{X: randRows(rng, 36, d, nil)}
	p36.Y = mapRows(rng, p36.X, q, 1, nil, 0)
	proj36, err := Fit(context.Background(), Procrustes, p36, Options{Metric: modality.L2})
	require.NoError(t, err)
	assert.Contains(t, proj36.Params, "rank=35 (the span of 36 pairs)")
	for i := range 36 {
		got := proj36.Apply(p36.X[i])
		for j := range got {
			require.InDelta(t, p36.Y[i][j], got[j], 1e-3)
		}
	}
	for i := range n { // the pairs still land on their targets
		got := proj.Apply(p.X[i])
		for j := range got {
			require.InDelta(t, p.Y[i][j], got[j], 1e-3)
		}
	}
	// A direction orthogonal to the centred pairs goes to zero.
	xm := dense(x)
	centre(xm)
	v := make([]float64, d)
	for j := range v {
		v[j] = rng.NormFloat64()
	}
	var qr mat.QR // an orthonormal basis holding the span
	qr.Factorize(xm.T())
	var basis mat.Dense
	qr.QTo(&basis)
	for range 2 { // project the span out, twice for accuracy
		for c := range n {
			var dot float64
			for j := range d {
				dot += basis.At(j, c) * v[j]
			}
			for j := range d {
				v[j] -= dot * basis.At(j, c)
			}
		}
	}
	out := mat.NewVecDense(d, nil)
	out.MulVec(proj.W, mat.NewVecDense(d, v))
	assert.Less(t, mat.Norm(out, 2), 1e-6*mat.Norm(mat.NewVecDense(d, v), 2)+1e-9)
}

// --- 2. Ridge ----------------------------------------------------------------

func ridgeProblem(seed uint64) (p Pairs, a *mat.Dense, b []float64) {
	const n, d1, d2 = 2000, 20, 12
	rng := testRNG(seed)
	x := randRows(rng, n, d1, randVec(rng, d1, 1))
	a = randDense(rng, d1, d2, 1/math.Sqrt(d1))
	b = randVec(rng, d2, 2)
	return Pairs{X: x, Y: mapRows(rng, x, a, 1, b, 0.01)}, a, b
}

func TestLearnersRidgeRecoversLinearMap(t *testing.T) {
	p, a, b := ridgeProblem(3)
	// The noise is 0.01 on 2000 pairs: each coefficient is off by about
	// 0.01/sqrt(2000) = 2e-4, the worst of 240 by about 4 times that.
	const tol = 2e-3
	check := func(t *testing.T, proj *Projection) {
		t.Helper()
		assert.Less(t, maxAbsDiff(t, proj.W, a.T()), tol, "W != A'")
		assert.Less(t, maxAbsVec(proj.Bias, b), tol, "Bias != b")
		in, out := proj.Dims()
		assert.Equal(t, []int{20, 12}, []int{in, out})
	}
	t.Run("fitRidge", func(t *testing.T) {
		proj, err := fitRidge(p, 1e-6, false, modality.L2)
		require.NoError(t, err)
		assert.Equal(t, Ridge, proj.Method)
		assert.Equal(t, "lambda=1e-06 prior=zero", proj.Params)
		check(t, proj)
		// A huge penalty shrinks W to nothing and the bias to the mean.
		big, err := fitRidge(p, 1e9, false, modality.L2)
		require.NoError(t, err)
		assert.Less(t, mat.Norm(big.W, 2), 1e-6)
		my := centre(dense(p.Y))
		assert.Less(t, maxAbsVec(big.Bias, my), 1e-5)
	})
	t.Run("Fit", func(t *testing.T) {
		proj, err := Fit(context.Background(), Ridge, p, Options{Metric: modality.L2, Lambdas: []float64{1e-6}})
		require.NoError(t, err)
		check(t, proj)
	})
	t.Run("identity prior refuses unequal dims", func(t *testing.T) {
		_, err := fitRidge(p, 1, true, modality.L2)
		require.ErrorIs(t, err, ErrBadInput)
		assert.Contains(t, err.Error(), "20 and 12")
	})
	t.Run("penalty is relative to the mean source variance", func(t *testing.T) {
		// Closed form on centred data: B = (X'X + lambda tr(X'X)/d1 I)^-1 X'Y.
		q := p.subset(seq(0, 300))
		const lambda = 0.5
		x, y := dense(q.X), dense(q.Y)
		centre(x)
		centre(y)
		var g, rhs, b mat.Dense
		g.Mul(x.T(), x)
		reg := lambda * mat.Trace(&g) / 20
		for i := range 20 {
			g.Set(i, i, g.At(i, i)+reg)
		}
		rhs.Mul(x.T(), y)
		require.NoError(t, b.Solve(&g, &rhs))
		proj, err := fitRidge(q, lambda, false, modality.L2)
		require.NoError(t, err)
		assert.Less(t, maxAbsDiff(t, proj.W, b.T()), 1e-9)
		// Scaling the sources by 100 scales W by 1/100 at the same lambda.
		scaled := Pairs{X: make([][]float32, q.Len()), Y: q.Y}
		for i, r := range q.X {
			scaled.X[i] = make([]float32, len(r))
			for j, v := range r {
				scaled.X[i][j] = 100 * v
			}
		}
		ps, err := fitRidge(scaled, lambda, false, modality.L2)
		require.NoError(t, err)
		var w100 mat.Dense
		w100.Scale(100, ps.W)
		assert.Less(t, maxAbsDiff(t, &w100, proj.W), 1e-5)
		assert.Less(t, maxAbsVec(ps.Bias, proj.Bias), 1e-5)
	})
	t.Run("identity prior shrinks to the identity", func(t *testing.T) {
		rng := testRNG(4)
		x := randRows(rng, 200, 6, nil)
		q := Pairs{X: x, Y: randRows(rng, 200, 6, nil)} // unrelated
		proj, err := fitRidge(q, 1e9, true, modality.L2)
		require.NoError(t, err)
		assert.Contains(t, proj.Params, "prior=identity")
		assert.Less(t, maxAbsDiff(t, proj.W, eye(6)), 1e-6)
	})
}

func eye(d int) *mat.Dense {
	m := mat.NewDense(d, d, nil)
	for i := range d {
		m.Set(i, i, 1)
	}
	return m
}

// --- 3. CCA ------------------------------------------------------------------

func ccaProblem(seed uint64, n int, noise float64) Pairs {
	const k, d1, d2 = 3, 10, 8
	rng := testRNG(seed)
	z := randRows(rng, n, k, nil)
	ax := randDense(rng, k, d1, 1)
	ay := randDense(rng, k, d2, 1)
	return Pairs{X: mapRows(rng, z, ax, 1, nil, noise), Y: mapRows(rng, z, ay, 1, nil, noise)}
}

func TestLearnersCCARecoversSharedMap(t *testing.T) {
	t.Run("L2 prediction", func(t *testing.T) {
		p := ccaProblem(5, 1200, 0.01)
		train, test := p.subset(seq(0, 1000)), p.subset(seq(1000, 1200))
		proj, err := Fit(context.Background(), CCA, train, Options{Metric: modality.L2, Components: 3, CCAReg: 1e-4})
		require.NoError(t, err)
		assert.Equal(t, CCA, proj.Method)
		assert.Contains(t, proj.Params, "components=3")
		assert.InDelta(t, 1, paramFloat(t, proj.Params, "rho1"), 1e-3, proj.Params)
		// R^2 of the predicted targets on held-out pairs.
		my := centre(dense(test.Y))
		var sse, sst float64
		for i, x := range test.X {
			pred := linear(proj, x)
			for j, v := range test.Y[i] {
				sse += (pred[j] - float64(v)) * (pred[j] - float64(v))
				sst += (float64(v) - my[j]) * (float64(v) - my[j])
			}
		}
		r2 := 1 - sse/sst
		t.Logf("held-out R^2 %.5f (%s)", r2, proj.Params)
		assert.Greater(t, r2, 0.99)
	})
	t.Run("cosine retrieval", func(t *testing.T) {
		p := ccaProblem(6, 700, 0.01)
		// Centre the targets on the training mean: under Cosine the map
		// drops the target mean (see affine), which on this problem alone
		// costs R@1 0.35 (targets near the mean change direction).
		my := centre(dense(p.Y[:500]))
		for _, y := range p.Y {
			for j := range y {
				y[j] -= float32(my[j])
			}
		}
		train, test := p.subset(seq(0, 500)), p.subset(seq(500, 700))
		// A small CCAReg: the default 0.5 shrinks the directions unevenly,
		// which costs R@1 when 200 targets share a 3-d subspace.
		proj, err := Fit(context.Background(), CCA, train, Options{Components: 3, CCAReg: 1e-3})
		require.NoError(t, err)
		s := Evaluate(proj, test, modality.Cosine)
		t.Logf("held-out %v", s)
		assert.Greater(t, s.R1, 0.9)
		assert.Equal(t, 1.0, s.R10)
		// The baseline cannot even be scored (10 vs 8 dims), and a map
		// that ignores the shared part does far worse.
		rnd := &Projection{W: randDense(testRNG(7), 8, 10, 1), Bias: make([]float64, 8), Normalize: true}
		assert.Less(t, Evaluate(rnd, test, modality.Cosine).R1, 0.2)
	})
}

// With every component kept, CCA's map has a closed form: row vectors
// y = x (Cxx + rx I)^-1 Cxy (Cyy + ry I)^-1 Cyy, r the CCAReg share of each
// side's mean variance. With a tiny CCAReg that is least squares.
func TestLearnersCCAAllComponentsClosedForm(t *testing.T) {
	const n, d1, d2 = 300, 7, 5
	rng := testRNG(18)
	x := randRows(rng, n, d1, randVec(rng, d1, 1))
	y := mapRows(rng, x, randDense(rng, d1, d2, 0.5), 1, randVec(rng, d2, 1), 1) // noisy: rho well below 1
	p := Pairs{X: x, Y: y}
	for _, reg := range []float64{1e-9, 0.5, 3} {
		t.Run(fmt.Sprint("reg=", reg), func(t *testing.T) {
			proj, err := Fit(context.Background(), CCA, p, Options{Components: d2, CCAReg: reg, Metric: modality.L2})
			require.NoError(t, err)
			rho1 := paramFloat(t, proj.Params, "rho1")
			assert.Less(t, rho1, 0.99)
			xc, yc := dense(x), dense(y)
			mx, my := centre(xc), centre(yc)
			cxx, _ := gram(xc, reg)
			cyy, _ := gram(yc, reg)
			raw, _ := gram(yc, 0)
			var cxy, left, right, b mat.Dense
			cxy.Mul(xc.T(), yc)
			cxy.Scale(1/float64(n), &cxy)
			require.NoError(t, left.Solve(cxx, &cxy))
			require.NoError(t, right.Solve(cyy, raw))
			b.Mul(&left, &right)
			assert.Less(t, maxAbsDiff(t, proj.W, b.T()), 1e-8)
			var bmx mat.VecDense
			bmx.MulVec(b.T(), mat.NewVecDense(d1, mx))
			for i := range d2 {
				assert.InDelta(t, my[i]-bmx.AtVec(i), proj.Bias[i], 1e-8)
			}
			if reg < 1e-6 {
				ols, err := fitRidge(p, 0, false, modality.L2)
				require.NoError(t, err)
				assert.Less(t, maxAbsDiff(t, proj.W, ols.W), 1e-6)
			}
		})
	}
}

func seq(a, b int) []int {
	out := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

// --- 4. InfoNCE gradient -----------------------------------------------------

func TestLearnersInfoNCEGradient(t *testing.T) {
	const d1, d2, bsz = 5, 4, 6
	for _, tc := range []struct {
		name    string
		classes []int
	}{
		{"no classes", nil},
		{"classes with repeats", []int{0, 1, 0, 2, 1, 0}},
		{"all distinct classes", []int{5, 4, 3, 2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := testRNG(8)
			x := randDense(rng, bsz, d1, 1)
			y := randDense(rng, bsz, d2, 1)
			for i := range bsz { // targets are unit vectors
				r := y.RawRowView(i)
				n := norm64(r)
				for j := range r {
					r[j] /= n
				}
			}
			h := &head{w: randDense(rng, d2, d1, 1), b: randVec(rng, d2, 0.5), t: math.Log(0.1)}
			g := &grads{w: mat.NewDense(d2, d1, nil), b: make([]float64, d2)}
			l := h.loss(x, y, tc.classes, g)
			require.False(t, math.IsNaN(l))
			assert.InDelta(t, l, h.loss(x, y, tc.classes, nil), 0, "loss differs with and without gradient")

			const eps = 1e-5
			fd := func(p *float64) float64 {
				old := *p
				*p = old + eps
				lp := h.loss(x, y, tc.classes, nil)
				*p = old - eps
				lm := h.loss(x, y, tc.classes, nil)
				*p = old
				return (lp - lm) / (2 * eps)
			}
			var worst float64
			cmpGrad := func(name string, analytic, numeric float64) {
				rel := math.Abs(analytic-numeric) / max(math.Abs(analytic), math.Abs(numeric), 1e-4)
				worst = max(worst, rel)
				assert.Less(t, rel, 1e-5, "%s: analytic %g, finite difference %g", name, analytic, numeric)
			}
			wd := h.w.RawMatrix().Data
			gw := g.w.RawMatrix().Data
			for i := range wd {
				cmpGrad(fmt.Sprintf("w[%d]", i), gw[i], fd(&wd[i]))
			}
			for i := range h.b {
				cmpGrad(fmt.Sprintf("b[%d]", i), g.b[i], fd(&h.b[i]))
			}
			cmpGrad("t", g.t, fd(&h.t))
			assert.Greater(t, math.Abs(g.t), 1e-3, "the temperature gradient should not vanish here")
			t.Logf("worst relative error %.2g", worst)
		})
	}
}

func TestLearnersInfoNCEMaskedNegatives(t *testing.T) {
	// With classes, same-class pairs are not negatives: if every pair has
	// one class the loss is zero (each row's softmax has one entry).
	rng := testRNG(9)
	x := randDense(rng, 4, 3, 1)
	y := randDense(rng, 4, 3, 1)
	h := &head{w: randDense(rng, 3, 3, 1), b: make([]float64, 3), t: math.Log(0.1)}
	g := &grads{w: mat.NewDense(3, 3, nil), b: make([]float64, 3)}
	assert.InDelta(t, 0, h.loss(x, y, []int{7, 7, 7, 7}, g), 1e-12)
	assert.InDelta(t, 0, mat.Norm(g.w, 2), 1e-12)
	assert.InDelta(t, 0, g.t, 1e-12)
	// Without classes the loss is at least log(1) and positive.
	assert.Greater(t, h.loss(x, y, nil, nil), 0.0)
}

// --- 5. fitInfoNCE -------------------------------------------------------------

func TestLearnersInfoNCEImprovesOnRidgeStart(t *testing.T) {
	const n, d1, d2 = 700, 12, 10
	rng := testRNG(10)
	x := randRows(rng, n, d1, nil)
	a := randDense(rng, d1, d2, 1/math.Sqrt(d1))
	y := mapRows(rng, x, a, 1, randVec(rng, d2, 0.3), 0.5)
	all := Pairs{X: x, Y: y}
	p, test := all.subset(seq(0, 500)), all.subset(seq(500, n))
	o := Options{Seed: 3, Epochs: 60, Patience: 3, Batch: 64, LR: 1e-2}

	proj, err := Fit(context.Background(), InfoNCE, p, o)
	require.NoError(t, err)
	assert.Equal(t, InfoNCE, proj.Method)
	assert.True(t, proj.Normalize)

	// The start: ridge by K-fold on the same training split fitInfoNCE uses.
	od := o.withDefaults()
	tr, _ := p.split(0.15, od.Seed+1)
	start, err := fitRidgeCV(context.Background(), p.subset(tr), od)
	require.NoError(t, err)
	assert.Contains(t, proj.Params, "init=("+start.Params+")", "InfoNCE did not start from the ridge fit")

	epochs := int(paramFloat(t, proj.Params, "epochs"))
	best := int(paramFloat(t, proj.Params, "best"))
	assert.Less(t, epochs, o.Epochs, "no early stop: %s", proj.Params)
	assert.Equal(t, best+o.Patience, epochs, "stopped %d epochs after the best, want Patience", epochs-best)
	tau := paramFloat(t, proj.Params, "tau")
	assert.True(t, tau >= minTemp && tau <= maxTemp, "tau %g out of bounds", tau)

	sr := Evaluate(start, test, modality.Cosine)
	si := Evaluate(proj, test, modality.Cosine)
	t.Logf("held-out ridge start %v", sr)
	t.Logf("held-out infonce     %v", si)
	require.Less(t, sr.R1, 0.95, "the problem is too easy to show anything")
	assert.GreaterOrEqual(t, si.R1, sr.R1-0.01)
	assert.GreaterOrEqual(t, si.R10, sr.R10-0.01)
	// Here some epoch beats the start on the validation loss, and the
	// kept head is better on held-out pairs too.
	assert.Greater(t, best, 0, "no epoch beat the ridge start: %s", proj.Params)
	assert.Greater(t, si.R1, sr.R1+0.03)

	// Reproducible with the same seed.
	again, err := Fit(context.Background(), InfoNCE, p, o)
	require.NoError(t, err)
	assert.Equal(t, proj.Params, again.Params)
	assert.Equal(t, proj.W.RawMatrix().Data, again.W.RawMatrix().Data)

	// With a vanishing learning rate the head stays at its ridge start.
	o.LR = 1e-12
	still, err := Fit(context.Background(), InfoNCE, p, o)
	require.NoError(t, err)
	assert.Less(t, maxAbsDiff(t, still.W, start.W), 1e-9)
	assert.Less(t, maxAbsVec(still.Bias, start.Bias), 1e-9)
	assert.InDelta(t, InitialTemperature, paramFloat(t, still.Params, "tau"), 1e-3)
}

// Rank on hand-made rankings: 1-d gallery at 0..11, every query at 0, so
// gallery j is at rank j.
func TestLearnersRankHandmade(t *testing.T) {
	gallery := make([][]float32, 12)
	for j := range gallery {
		gallery[j] = []float32{float32(j)}
	}
	queries := [][]float32{{0}, {0}, {0}, {0}}
	own := []int{0, 3, 7, 11}
	s := Rank(nil, queries, gallery, func(q, g int) bool { return g == own[q] }, modality.L2)
	assert.InDelta(t, 0.25, s.R1, 1e-12)
	assert.InDelta(t, 0.5, s.R5, 1e-12)
	assert.InDelta(t, 0.75, s.R10, 1e-12)
	assert.InDelta(t, 0.075, s.P10, 1e-12)

	// By class (j % 3): query i's first relevant target is at rank i % 3,
	// and the top 10 (0..9) hold 4, 3, 3 of classes 0, 1, 2.
	p := Pairs{X: make([][]float32, 12), Y: gallery, Classes: make([]int, 12)}
	for i := range p.X {
		p.X[i] = []float32{0}
		p.Classes[i] = i % 3
	}
	s = Evaluate(nil, p, modality.L2)
	assert.InDelta(t, 4.0/12, s.R1, 1e-12)
	assert.InDelta(t, 1, s.R5, 1e-12)
	assert.InDelta(t, 1, s.R10, 1e-12)
	assert.InDelta(t, 1.0/3, s.P10, 1e-12)

	// A projection is applied first: x -> 11 - x reverses the ranking.
	rev := &Projection{W: mat.NewDense(1, 1, []float64{-1}), Bias: []float64{11}}
	s = Rank(rev, queries, gallery, func(q, g int) bool { return g == own[q] }, modality.L2)
	assert.InDelta(t, 0.25, s.R1, 1e-12) // own 11 is now first
	assert.InDelta(t, 0.5, s.R5, 1e-12)  // own 7 at rank 4
	assert.InDelta(t, 0.75, s.R10, 1e-12)
}

// --- 6. degenerate input -------------------------------------------------------

func TestLearnersDegenerateInput(t *testing.T) {
	const n, d = 40, 4
	good := func() Pairs {
		rng := testRNG(11)
		return Pairs{X: randRows(rng, n, d, nil), Y: randRows(rng, n, d+1, nil)}
	}
	cases := []struct {
		name   string
		mutate func(p *Pairs)
		want   error
		msg    string
	}{
		{"too few pairs", func(p *Pairs) { p.X, p.Y = p.X[:MinPairs-1], p.Y[:MinPairs-1] }, ErrTooFewPairs, "9 pairs"},
		{"no pairs", func(p *Pairs) { p.X, p.Y = nil, nil }, ErrTooFewPairs, "0 pairs"},
		{"len X != len Y", func(p *Pairs) { p.Y = p.Y[:n-1] }, ErrBadInput, "40 source vectors but 39 target"},
		{"groups length", func(p *Pairs) { p.Groups = make([]int, 3) }, ErrBadInput, "3 groups for 40 pairs"},
		{"classes length", func(p *Pairs) { p.Classes = make([]int, 5) }, ErrBadInput, "5 classes for 40 pairs"},
		{"ragged source", func(p *Pairs) { p.X[7] = p.X[7][:d-1] }, ErrBadInput, "source vector 7 has 3 values"},
		{"ragged target", func(p *Pairs) { p.Y[9] = append(p.Y[9], 1) }, ErrBadInput, "target vector 9 has 6 values"},
		{"empty vectors", func(p *Pairs) {
			for i := range p.X {
				p.X[i] = []float32{}
			}
		}, ErrBadInput, "empty"},
		{"NaN source", func(p *Pairs) { p.X[3][2] = float32(math.NaN()) }, ErrBadInput, "NaN"},
		{"NaN target", func(p *Pairs) { p.Y[30][0] = float32(math.NaN()) }, ErrBadInput, "NaN"},
		{"+Inf source", func(p *Pairs) { p.X[0][1] = float32(math.Inf(1)) }, ErrBadInput, "+Inf"},
		{"-Inf target", func(p *Pairs) { p.Y[39][4] = float32(math.Inf(-1)) }, ErrBadInput, "-Inf"},
		{"constant source", func(p *Pairs) {
			for i := range p.X {
				p.X[i] = []float32{1, 2, 3, 4}
			}
		}, ErrBadInput, "every source vector is the same"},
		{"constant target", func(p *Pairs) {
			for i := range p.Y {
				p.Y[i] = make([]float32, d+1)
			}
		}, ErrBadInput, "every target vector is the same"},
	}
	for _, m := range append(slices.Clone(Methods), Auto) {
		for _, tc := range cases {
			t.Run(string(m)+"/"+tc.name, func(t *testing.T) {
				p := good()
				tc.mutate(&p)
				proj, err := Fit(context.Background(), m, p, Options{Epochs: 2})
				require.Error(t, err)
				assert.Nil(t, proj)
				assert.ErrorIs(t, err, tc.want)
				other := ErrBadInput
				if tc.want == ErrBadInput {
					other = ErrTooFewPairs
				}
				assert.NotErrorIs(t, err, other)
				assert.Contains(t, err.Error(), tc.msg)
			})
		}
	}
	t.Run("unknown method", func(t *testing.T) {
		_, err := Fit(context.Background(), Method("foo"), good(), Options{})
		require.ErrorIs(t, err, ErrBadInput)
		assert.Contains(t, err.Error(), `"foo"`)
	})
	t.Run("Auto needs more pairs than MinPairs", func(t *testing.T) {
		p := good()
		p.X, p.Y = p.X[:15], p.Y[:15]
		_, err := Fit(context.Background(), Auto, p, Options{})
		require.ErrorIs(t, err, ErrTooFewPairs)
		assert.Contains(t, err.Error(), "need at least 20")
		// The single learners take 15.
		_, err = Fit(context.Background(), Procrustes, p, Options{})
		require.NoError(t, err)
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, m := range []Method{Ridge, InfoNCE, Auto} {
			_, err := Fit(ctx, m, good(), Options{Epochs: 2})
			assert.ErrorIs(t, err, context.Canceled, "%s", m)
		}
	})
}

// Ridge's K-fold deals whole groups into folds. With fewer groups than
// folds it uses one fold per group; with a single group there is nothing
// to hold out, and it fits with lambda 1.
func TestLearnersRidgeFewGroups(t *testing.T) {
	t.Run("one group", func(t *testing.T) {
		rng := testRNG(12)
		x := randRows(rng, 30, 4, nil)
		p := Pairs{X: x, Y: mapRows(rng, x, eye(4), 1, nil, 0.01), Groups: make([]int, 30)}
		var proj *Projection
		var err error
		require.NotPanics(t, func() { proj, err = Fit(context.Background(), Ridge, p, Options{}) })
		require.NoError(t, err)
		assert.Contains(t, proj.Params, "lambda=1 ")
	})
	t.Run("two groups", func(t *testing.T) {
		// Anisotropic sources, where a large penalty hurts a lot.
		const n, d = 60, 6
		rng := testRNG(12)
		x := randRows(rng, n, d, nil)
		for _, r := range x {
			for j := range r {
				r[j] *= float32(j*j*j + 1)
			}
		}
		y := mapRows(rng, x, randDense(rng, d, d, 1), 1, nil, 0.01)
		g := make([]int, n)
		for i := range g {
			g[i] = i % 2
		}
		p := Pairs{X: x, Y: y, Groups: g}
		o := Options{Lambdas: []float64{10, 1e-6}}
		// Two-fold CV by group, done by hand, prefers the small penalty.
		even, odd := p.subset(seqStep(0, n, 2)), p.subset(seqStep(1, n, 2))
		cv := func(lambda float64) float64 {
			var sum float64
			for _, f := range [][2]Pairs{{even, odd}, {odd, even}} {
				proj, err := fitRidge(f[0], lambda, false, modality.Cosine)
				require.NoError(t, err)
				sum += Evaluate(proj, f[1], modality.Cosine).R1
			}
			return sum
		}
		require.Greater(t, cv(1e-6), cv(10)+0.5)
		proj, err := Fit(context.Background(), Ridge, p, o)
		require.NoError(t, err)
		assert.Contains(t, proj.Params, "lambda=1e-06")
	})
}

func seqStep(a, b, step int) []int {
	var out []int
	for i := a; i < b; i += step {
		out = append(out, i)
	}
	return out
}

// --- 7. FitAuto ------------------------------------------------------------------

func TestLearnersFitAuto(t *testing.T) {
	const n, d = 200, 8
	o := Options{Seed: 1, Epochs: 10, Patience: 3, Batch: 64}
	checkReport := func(t *testing.T, rep *Report, methods []Method, baseline bool) map[Method]Score {
		t.Helper()
		require.NotNil(t, rep)
		assert.Equal(t, n, rep.Pairs)
		assert.Equal(t, n, rep.Gallery)
		assert.Equal(t, 5, rep.Folds)
		want := append([]Method(nil), methods...)
		if baseline {
			want = append(want, Baseline)
		}
		want = append(want, Pivot)
		require.Len(t, rep.Scores, len(want))
		by := map[Method]Score{}
		for i, s := range rep.Scores {
			assert.Equal(t, want[i], s.Method)
			assert.Empty(t, s.Err, "%s failed", s.Method)
			assert.Len(t, s.FoldMRR, 5)
			by[s.Method] = s
		}
		// The chance level of a 200-target gallery.
		assert.InDelta(t, 1.0/n, rep.Chance.R1, 1e-12)
		assert.InDelta(t, 10.0/n, rep.Chance.R10, 1e-12)
		str := rep.String()
		for _, m := range want {
			assert.Contains(t, str, string(m))
		}
		assert.Contains(t, str, "against all 200 targets")
		assert.Contains(t, str, "chance")
		if rep.Chosen != "" {
			// Chosen has the best MRR among the learners.
			c := by[rep.Chosen]
			for _, m := range methods {
				assert.GreaterOrEqual(t, c.MRR, by[m].MRR, "%s beats the chosen %s", m, rep.Chosen)
			}
			assert.Contains(t, str, "chose "+string(rep.Chosen))
		}
		return by
	}

	t.Run("identical spaces: no map beats searching directly", func(t *testing.T) {
		rng := testRNG(13)
		x := randRows(rng, n, d, nil)
		oo := o
		oo.Reference = Baseline
		proj, rep, err := FitAuto(context.Background(), Pairs{X: x, Y: x}, oo)
		require.ErrorIs(t, err, ErrNoGain)
		assert.Nil(t, proj)
		t.Log(rep)
		by := checkReport(t, rep, Methods, true)
		assert.Equal(t, 1.0, by[Baseline].R1)
		assert.Equal(t, "the source vectors as they are", by[Baseline].Params)
		assert.Empty(t, rep.Chosen)
		assert.Contains(t, rep.Why, "within the fold-to-fold spread")
		// Forced, the best learner is fitted anyway.
		oo.Force = true
		proj, rep, err = FitAuto(context.Background(), Pairs{X: x, Y: x}, oo)
		require.NoError(t, err)
		assert.Equal(t, rep.Chosen, proj.Method)
		assert.Contains(t, rep.Why, "forced")
	})
	t.Run("rotated spaces", func(t *testing.T) {
		rng := testRNG(14)
		x := randRows(rng, n, d, nil)
		y := mapRows(rng, x, randOrthogonal(rng, d), 1, nil, 0.05)
		proj, rep, err := FitAuto(context.Background(), Pairs{X: x, Y: y}, o)
		require.NoError(t, err)
		t.Log(rep)
		by := checkReport(t, rep, Methods, true)
		assert.Equal(t, rep.Chosen, proj.Method)
		assert.Less(t, by[Baseline].R10, 0.7)
		assert.Greater(t, by[rep.Chosen].R10, by[Baseline].R10+0.3)
		assert.Greater(t, by[rep.Chosen].MRR, by[Pivot].MRR)
		assert.GreaterOrEqual(t, by[rep.Chosen].R1, 0.95)
	})
	t.Run("chooses the best", func(t *testing.T) {
		// A skewed linear map and noise: the methods score differently.
		rng := testRNG(19)
		x := randRows(rng, n, d, nil)
		a := randDense(rng, d, d, 1)
		for j := range d {
			for i := range d {
				a.Set(i, j, a.At(i, j)*float64(j*j+1))
			}
		}
		y := mapRows(rng, x, a, 1, nil, 40)
		oo := o
		oo.Force = true
		_, rep, err := FitAuto(context.Background(), Pairs{X: x, Y: y}, oo, Procrustes, Ridge, CCA)
		require.NoError(t, err)
		t.Log(rep)
		mrr := map[float64]bool{}
		for _, s := range rep.Scores[:3] {
			mrr[s.MRR] = true
		}
		require.Greater(t, len(mrr), 1, "every method has the same MRR: the choice is not tested")
		checkReport(t, rep, []Method{Procrustes, Ridge, CCA}, true)
	})
	t.Run("unrelated pairs rank at chance: nothing is kept", func(t *testing.T) {
		rng := testRNG(23)
		p := Pairs{X: randRows(rng, n, d, nil), Y: randRows(rng, n, d, nil)}
		proj, rep, err := FitAuto(context.Background(), p, o, Ridge, CCA)
		require.ErrorIs(t, err, ErrNoGain)
		assert.Nil(t, proj)
		t.Log(rep)
		assert.Contains(t, rep.Why, "chance")
	})
	t.Run("only some methods, unequal dims", func(t *testing.T) {
		rng := testRNG(15)
		x := randRows(rng, n, d, nil)
		y := mapRows(rng, x, randDense(rng, d, d-2, 1), 1, nil, 0.05)
		proj, rep, err := FitAuto(context.Background(), Pairs{X: x, Y: y}, o, Ridge, CCA)
		require.NoError(t, err)
		checkReport(t, rep, []Method{Ridge, CCA}, false)
		assert.Contains(t, []Method{Ridge, CCA}, proj.Method)
	})
}

// --- 8. Projection.Float32 and ParseMethod -----------------------------------------

func TestLearnersFloat32RoundTrip(t *testing.T) {
	rng := testRNG(16)
	p := &Projection{W: randDense(rng, 3, 5, 1), Bias: randVec(rng, 3, 1)}
	p.W.Set(1, 2, 1e-30) // denormal-ish in float32
	w, b := p.Float32()
	require.Len(t, w, 3)
	require.Len(t, b, 3)
	for i := range 3 {
		require.Len(t, w[i], 5)
		for j := range 5 {
			assert.Equal(t, float32(p.W.At(i, j)), w[i][j], "W[%d][%d]", i, j)
			assert.InDelta(t, p.W.At(i, j), float64(w[i][j]), 1e-6*max(1, math.Abs(p.W.At(i, j))))
		}
		assert.Equal(t, float32(p.Bias[i]), b[i])
	}
	// A copy: changing it leaves the projection alone.
	w[0][0] = 42
	b[0] = 42
	assert.NotEqual(t, 42.0, p.W.At(0, 0))
	assert.NotEqual(t, 42.0, p.Bias[0])
	// The float32 weights project like the float64 ones.
	x := []float32{1, -2, 0.5, 3, -1}
	y := linear(p, x)
	for i := range 3 {
		s := b[i]
		if i == 0 {
			s = float32(p.Bias[0])
		}
		row := w[i]
		if i == 0 {
			row = []float32{float32(p.W.At(0, 0)), w[0][1], w[0][2], w[0][3], w[0][4]}
		}
		for j := range x {
			s += row[j] * x[j]
		}
		assert.InDelta(t, y[i], float64(s), 1e-5)
	}
}

func TestLearnersParseMethod(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Method
	}{
		{"", Auto}, {"auto", Auto}, {"ridge", Ridge}, {"procrustes", Procrustes}, {"cca", CCA}, {"infonce", InfoNCE},
	} {
		m, err := ParseMethod(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, m, tc.in)
	}
	for _, m := range Methods {
		got, err := ParseMethod(string(m))
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	for _, bad := range []string{"foo", "Ridge", " cca", "baseline"} {
		m, err := ParseMethod(bad)
		require.ErrorIs(t, err, ErrBadInput, bad)
		assert.Equal(t, Method(""), m)
		assert.Contains(t, err.Error(), strconv.Quote(bad))
	}
}

// --- 9. Pairs.split and folds ---------------------------------------------------

func TestLearnersSplitFoldsKeepGroups(t *testing.T) {
	rng := testRNG(17)
	const n = 103
	groups := make([]int, n)
	for i := range groups {
		groups[i] = rng.IntN(17) * 3 // 17 groups of uneven size, sparse ids
	}
	p := Pairs{X: make([][]float32, n), Y: make([][]float32, n), Groups: groups}
	ungrouped := Pairs{X: make([][]float32, n), Y: make([][]float32, n)}

	checkPartition := func(t *testing.T, parts [][]int, q Pairs) {
		t.Helper()
		seen := make([]int, n)
		owner := map[int]int{}
		for k, part := range parts {
			assert.True(t, slices.IsSorted(part), "part %d not sorted", k)
			for _, i := range part {
				seen[i]++
				g := i
				if q.Groups != nil {
					g = q.Groups[i]
				}
				if o, ok := owner[g]; ok {
					assert.Equal(t, o, k, "group %d on both part %d and %d", g, o, k)
				}
				owner[g] = k
			}
		}
		for i, c := range seen {
			assert.Equal(t, 1, c, "index %d appears %d times", i, c)
		}
	}
	for _, tc := range []struct {
		name string
		p    Pairs
	}{{"groups", p}, {"no groups", ungrouped}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []int{2, 3, 5, 7} {
				for seed := range uint64(4) {
					f := tc.p.folds(k, seed)
					require.Len(t, f, k)
					checkPartition(t, f, tc.p)
					for _, part := range f {
						assert.NotEmpty(t, part)
					}
				}
			}
			for _, frac := range []float64{0.1, 0.2, 0.5} {
				train, test := tc.p.split(frac, 1)
				checkPartition(t, [][]int{train, test}, tc.p)
				assert.NotEmpty(t, train)
				assert.NotEmpty(t, test)
			}
			// Deterministic by seed, and the seed matters.
			assert.Equal(t, tc.p.folds(5, 9), tc.p.folds(5, 9))
			assert.NotEqual(t, tc.p.folds(5, 9), tc.p.folds(5, 10))
		})
	}
	t.Run("held-out share", func(t *testing.T) {
		// Without groups the held-out part is a fold: n / round(1/frac).
		_, test := ungrouped.split(0.2, 3)
		assert.InDelta(t, n/5, len(test), 1)
		_, test = ungrouped.split(0.5, 3)
		assert.InDelta(t, n/2, len(test), 1)
		// With groups, the held-out share of groups is the one asked.
		_, test = p.split(0.2, 3)
		g := map[int]bool{}
		for _, i := range test {
			g[p.Groups[i]] = true
		}
		all := map[int]bool{}
		for _, x := range p.Groups {
			all[x] = true
		}
		assert.InDelta(t, float64(len(all))/5, float64(len(g)), 1)
	})
	t.Run("subset keeps labels", func(t *testing.T) {
		q := Pairs{X: [][]float32{{0}, {1}, {2}}, Y: [][]float32{{10}, {11}, {12}}, Groups: []int{5, 6, 7}, Classes: []int{1, 2, 3}}
		s := q.subset([]int{2, 0})
		assert.Equal(t, [][]float32{{2}, {0}}, s.X)
		assert.Equal(t, [][]float32{{12}, {10}}, s.Y)
		assert.Equal(t, []int{7, 5}, s.Groups)
		assert.Equal(t, []int{3, 1}, s.Classes)
		assert.Nil(t, ungrouped.subset([]int{1}).Groups)
	})
}
