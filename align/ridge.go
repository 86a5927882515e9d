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
func fitRidge(p Pairs, lambda float64, identity bool, metric modality.Metric) (*Projection, error) {
	return newRidgeStats(p).solve(lambda, identity, metric)
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
// on held-out R@1, then fits on all pairs.
func fitRidgeCV(ctx context.Context, p Pairs, o Options) (*Projection, error) {
	d1, d2, err := p.check(o.Folds)
	if err != nil {
		return nil, err
	}
	priors := []bool{false}
	if d1 == d2 {
		priors = append(priors, true)
	}
	// Folds deal whole groups: with fewer groups than folds some would be
	// empty, so use as many folds as there are groups, and with a single
	// group there is nothing held out to choose by.
	groups := map[int]bool{}
	for i := range p.X {
		if p.Groups == nil {
			groups[i] = true
		} else {
			groups[p.Groups[i]] = true
		}
	}
	k := min(o.Folds, len(groups))
	if k < 2 {
		return fitRidge(p, 1, false, o.Metric)
	}
	folds := p.folds(k, o.Seed)
	type fold struct {
		st   *ridgeStats
		test Pairs
	}
	fs := make([]fold, len(folds))
	for f, test := range folds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var train []int
		for j, part := range folds {
			if j != f {
				train = append(train, part...)
			}
		}
		fs[f] = fold{newRidgeStats(p.subset(train)), p.subset(test)}
	}
	bestR, bestL, bestP := -1.0, o.Lambdas[0], false
	for _, prior := range priors {
		for _, lambda := range o.Lambdas {
			var sum float64
			for _, f := range fs {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				proj, err := f.st.solve(lambda, prior, o.Metric)
				if err != nil {
					return nil, err
				}
				s := Evaluate(proj, f.test, o.Metric)
				sum += s.R1 + s.R10/1000 // R@10 breaks ties
			}
			if sum > bestR {
				bestR, bestL, bestP = sum, lambda, prior
			}
		}
	}
	return fitRidge(p, bestL, bestP, o.Metric)
}
