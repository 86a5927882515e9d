package align

import (
	"context"
	"fmt"

	"github.com/mmdb-go/mmdb/modality"
	"gonum.org/v1/gonum/mat"
)

// ridgeStats are the sufficient statistics of a ridge fit: computed once
// per fold, then solved for every candidate lambda.
type ridgeStats struct {
	g      *mat.SymDense // X'X of the centred sources
	xy     *mat.Dense    // X'Y of the centred pairs
	mx, my []float64
	tr     float64 // trace of g
}

func newRidgeStats(p Pairs) *ridgeStats {
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	_, d1 := x.Dims()
	var g mat.SymDense
	g.SymOuterK(1, x.T())
	var tr float64
	for i := range d1 {
		tr += g.At(i, i)
	}
	var xy mat.Dense
	xy.Mul(x.T(), y)
	return &ridgeStats{g: &g, xy: &xy, mx: mx, my: my, tr: tr}
}

// fitRidge solves (X'X + lambda n s I) B = X'Y + lambda n s P on centred
// data, where s is the mean source variance (so lambda is scale-free:
// n s is the mean diagonal of X'X) and the
// prior P is zero, or the identity when identity is set (which needs equal
// dimensions): the solution then shrinks towards "use the source vector as
// it is" rather than towards nothing.
//
// With fewer pairs than source dimensions it solves the same system in
// its dual form, B = X'(XX' + reg I)^-1 (Y - XP) + P, an n x n system
// instead of a d1 x d1 one.
func fitRidge(p Pairs, lambda float64, identity bool, metric modality.Metric) (*Projection, error) {
	if len(p.X) < len(p.X[0]) {
		return fitRidgeDual(p, lambda, identity, metric)
	}
	return newRidgeStats(p).solve(lambda, identity, metric)
}

// fitRidgeDual is fitRidge through the n x n Gram matrix.
func fitRidgeDual(p Pairs, lambda float64, identity bool, metric modality.Metric) (*Projection, error) {
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	n, d1 := x.Dims()
	_, d2 := y.Dims()
	var k mat.SymDense
	k.SymOuterK(1, x)
	var tr float64
	for i := range n {
		tr += k.At(i, i)
	}
	reg := lambda * tr / float64(d1)
	if reg <= 0 {
		reg = 1e-9
	}
	for i := range n {
		k.SetSym(i, i, k.At(i, i)+reg)
	}
	rhs := y
	prior := "zero"
	if identity {
		if d1 != d2 {
			return nil, fmt.Errorf("%w: an identity prior needs equal dimensions, have %d and %d", ErrBadInput, d1, d2)
		}
		rhs = mat.NewDense(n, d2, nil)
		rhs.Sub(y, x)
		prior = "identity"
	}
	var ch mat.Cholesky
	if !ch.Factorize(&k) {
		return nil, fmt.Errorf("%w: the regularised Gram matrix is not positive definite", ErrBadInput)
	}
	var alpha, b mat.Dense
	if err := ch.SolveTo(&alpha, rhs); err != nil {
		return nil, fmt.Errorf("align: ridge: %w", err)
	}
	b.Mul(x.T(), &alpha)
	if identity {
		for i := range d1 {
			b.Set(i, i, b.At(i, i)+1)
		}
	}
	return affine(Ridge, fmt.Sprintf("lambda=%g prior=%s", lambda, prior), &b, mx, my, metric), nil
}

func (st *ridgeStats) solve(lambda float64, identity bool, metric modality.Metric) (*Projection, error) {
	d1, d2 := st.xy.Dims()
	reg := lambda * st.tr / float64(d1)
	if reg <= 0 {
		reg = 1e-9
	}
	g := mat.NewSymDense(d1, nil)
	g.CopySym(st.g)
	for i := range d1 {
		g.SetSym(i, i, g.At(i, i)+reg)
	}
	rhs := mat.DenseCopyOf(st.xy)
	prior := "zero"
	if identity {
		if d1 != d2 {
			return nil, fmt.Errorf("%w: an identity prior needs equal dimensions, have %d and %d", ErrBadInput, d1, d2)
		}
		for i := range d1 {
			rhs.Set(i, i, rhs.At(i, i)+reg)
		}
		prior = "identity"
	}
	var ch mat.Cholesky
	if !ch.Factorize(g) {
		return nil, fmt.Errorf("%w: the regularised Gram matrix is not positive definite", ErrBadInput)
	}
	var b mat.Dense
	if err := ch.SolveTo(&b, rhs); err != nil {
		return nil, fmt.Errorf("align: ridge: %w", err)
	}
	return affine(Ridge, fmt.Sprintf("lambda=%g prior=%s", lambda, prior), &b, st.mx, st.my, metric), nil
}

// fitRidgeCV picks lambda (and, at equal dimensions, the prior) by K-fold
// by group on held-out MRR, then fits on all pairs. Each fold's products
// are formed once and each candidate solved from them (foldRidge).
func fitRidgeCV(ctx context.Context, p Pairs, o Options) (*Projection, error) {
	ch, err := chooseRidge(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return fitRidge(p, ch.lambda, ch.identity, o.Metric)
}

// ridgeChoice is the penalty and prior ridge chose.
type ridgeChoice struct {
	lambda   float64
	identity bool
}

// chooseRidge is fitRidgeCV's choice of lambda and prior.
func chooseRidge(ctx context.Context, p Pairs, o Options) (ridgeChoice, error) {
	d1, d2, err := p.check(o.Folds)
	if err != nil {
		return ridgeChoice{}, err
	}
	priors := []bool{false}
	if d1 == d2 {
		priors = append(priors, true)
	}
	// Folds deal whole groups: with fewer groups than folds some would be
	// empty, so use as many folds as there are groups, and with a single
	// group there is nothing held out to choose by.
	k := min(o.Folds, p.groups())
	if k < 2 {
		return ridgeChoice{lambda: 1}, nil
	}
	folds := p.folds(k, o.Seed)
	sums := make([]float64, len(priors)*len(o.Lambdas))
	for f, test := range folds {
		if err := ctx.Err(); err != nil {
			return ridgeChoice{}, err
		}
		fr, err := newFoldRidge(p.subset(others(folds, f)), p.subset(test))
		if err != nil {
			return ridgeChoice{}, err
		}
		rk := newRanker(fr.test.Y, o.Metric)
		rel := fr.test.relevant()
		for li, lambda := range o.Lambdas {
			byPrior, err := fr.predictAll(lambda, priors, o.Metric)
			if err != nil {
				return ridgeChoice{}, err
			}
			for pi, preds := range byPrior {
				var s Score
				for q, y := range preds {
					s.add(rk.rank(y, func(g int) bool { return rel(q, g) }))
				}
				s.mean(fr.test.Len())
				sums[pi*len(o.Lambdas)+li] += s.MRR
			}
		}
	}
	best := 0
	for i, v := range sums {
		if v > sums[best] {
			best = i
		}
	}
	return ridgeChoice{lambda: o.Lambdas[best%len(o.Lambdas)], identity: priors[best/len(o.Lambdas)]}, nil
}

// foldRidge holds what one fold's ridge needs for every lambda, so that
// each costs one small Cholesky solve. With centred training sources X
// (n x d1) and targets Y, test sources Xt centred by the training mean,
// and P the prior (zero, or the identity):
//
//	primal (d1 <= n): Xt B = Xt (X'X + reg I)^-1 (X'Y + reg P)
//	dual (n < d1):    Xt B = Xt P + (Xt X')(XX' + reg I)^-1 (Y - XP)
//
// (the two agree by (X'X + reg I)^-1 X' = X'(XX' + reg I)^-1).
type foldRidge struct {
	test  Pairs
	xt    *mat.Dense    // centred test sources
	g     *mat.SymDense // X'X (primal) or XX' (dual)
	xy    *mat.Dense    // X'Y (primal) or Y (dual)
	resid *mat.Dense    // X'(Y - X) (primal) or Y - X (dual); nil unless d1 = d2
	kt    *mat.Dense    // dual: Xt X'
	tr    float64       // trace of X'X
	d1    int
	my    []float64 // the training target mean
}

func newFoldRidge(train, test Pairs) (*foldRidge, error) {
	x, y := dense(train.X), dense(train.Y)
	mx, my := centre(x), centre(y)
	n, d1 := x.Dims()
	_, d2 := y.Dims()
	xt := dense(test.X)
	for i := range test.Len() {
		row := xt.RawRowView(i)
		for j := range row {
			row[j] -= mx[j]
		}
	}
	fr := &foldRidge{test: test, xt: xt, g: new(mat.SymDense), d1: d1, my: my}
	var r *mat.Dense
	if d1 == d2 {
		r = mat.NewDense(n, d2, nil)
		r.Sub(y, x)
	}
	if d1 <= n {
		fr.g.SymOuterK(1, x.T())
		fr.xy = new(mat.Dense)
		fr.xy.Mul(x.T(), y)
		if r != nil {
			fr.resid = new(mat.Dense)
			fr.resid.Mul(x.T(), r)
		}
	} else {
		fr.g.SymOuterK(1, x)
		fr.xy, fr.resid = y, r
		fr.kt = new(mat.Dense)
		fr.kt.Mul(xt, x.T())
	}
	for i := range fr.g.SymmetricDim() {
		fr.tr += fr.g.At(i, i)
	}
	return fr, nil
}

// predict returns the test predictions for one lambda and prior, as the
// Projection fitRidge would make them (the target mean left out except
// under L2: see affine).
func (fr *foldRidge) predict(lambda float64, identity bool, metric modality.Metric) ([][]float32, error) {
	out, err := fr.predictAll(lambda, []bool{identity}, metric)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// predictAll is predict for each prior (false: zero, true: identity),
// sharing the factorisation and, in the dual form, the solve: only the
// right-hand side the solution multiplies differs between priors.
func (fr *foldRidge) predictAll(lambda float64, priors []bool, metric modality.Metric) ([][][]float32, error) {
	reg := lambda * fr.tr / float64(fr.d1)
	if reg <= 0 {
		reg = 1e-9
	}
	m := fr.g.SymmetricDim()
	g := mat.NewSymDense(m, nil)
	g.CopySym(fr.g)
	for i := range m {
		g.SetSym(i, i, g.At(i, i)+reg)
	}
	var ch mat.Cholesky
	if !ch.Factorize(g) {
		return nil, fmt.Errorf("%w: the regularised Gram matrix is not positive definite", ErrBadInput)
	}
	var a mat.Dense // dual: (XX' + reg I)^-1 X Xt'
	if fr.kt != nil {
		if err := ch.SolveTo(&a, fr.kt.T()); err != nil {
			return nil, fmt.Errorf("align: ridge: %w", err)
		}
	}
	out := make([][][]float32, len(priors))
	for pi, identity := range priors {
		rhs := fr.xy
		if identity { // primal: X'Y + reg I = X'(Y - X) + (X'X + reg I); dual: Y - X
			rhs = fr.resid
		}
		var pred mat.Dense
		if fr.kt == nil { // primal: B = (X'X + reg I)^-1 rhs
			var b mat.Dense
			if err := ch.SolveTo(&b, rhs); err != nil {
				return nil, fmt.Errorf("align: ridge: %w", err)
			}
			pred.Mul(fr.xt, &b)
		} else {
			pred.Mul(a.T(), rhs)
		}
		if identity {
			pred.Add(&pred, fr.xt)
		}
		out[pi] = fr.rows(&pred, metric)
	}
	return out, nil
}

// rows copies predictions into float32 rows, adding the training target
// mean under L2.
func (fr *foldRidge) rows(pred *mat.Dense, metric modality.Metric) [][]float32 {
	n, d2 := pred.Dims()
	out := make([][]float32, n)
	for i := range n {
		row := pred.RawRowView(i)
		out[i] = make([]float32, d2)
		for j, v := range row {
			if metric == modality.L2 {
				v += fr.my[j]
			}
			out[i][j] = float32(v)
		}
	}
	return out
}
