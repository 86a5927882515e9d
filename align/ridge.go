package align

import (
	"context"
	"fmt"

	"github.com/mmdb-go/mmdb/modality"
	"gonum.org/v1/gonum/mat"
)

// fitRidge solves (X'X + lambda s I) B = X'Y + lambda s P on centred data,
// where s is the mean source variance (so lambda is scale-free) and the
// prior P is zero, or the identity when identity is set (which needs equal
// dimensions): the solution then shrinks towards "use the source vector as
// it is" rather than towards nothing.
func fitRidge(p Pairs, lambda float64, identity bool, metric modality.Metric) (*Projection, error) {
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	_, d1 := x.Dims()
	_, d2 := y.Dims()
	var g mat.SymDense
	g.SymOuterK(1, x.T())
	var tr float64
	for i := range d1 {
		tr += g.At(i, i)
	}
	reg := lambda * tr / float64(d1)
	if reg <= 0 {
		reg = 1e-9
	}
	for i := range d1 {
		g.SetSym(i, i, g.At(i, i)+reg)
	}
	var rhs mat.Dense
	rhs.Mul(x.T(), y)
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
	if !ch.Factorize(&g) {
		return nil, fmt.Errorf("%w: the regularised Gram matrix is not positive definite", ErrBadInput)
	}
	var b mat.Dense
	if err := ch.SolveTo(&b, &rhs); err != nil {
		return nil, fmt.Errorf("align: ridge: %w", err)
	}
	return affine(Ridge, fmt.Sprintf("lambda=%g prior=%s", lambda, prior), &b, mx, my, metric), nil
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
	folds := p.folds(o.Folds, o.Seed)
	bestR, bestL, bestP := -1.0, o.Lambdas[0], false
	for _, prior := range priors {
		for _, lambda := range o.Lambdas {
			var sum float64
			for k, test := range folds {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				var train []int
				for j, f := range folds {
					if j != k {
						train = append(train, f...)
					}
				}
				proj, err := fitRidge(p.subset(train), lambda, prior, o.Metric)
				if err != nil {
					return nil, err
				}
				s := Evaluate(proj, p.subset(test), o.Metric)
				sum += s.R1 + s.R10/1000 // R@10 breaks ties
			}
			if sum > bestR {
				bestR, bestL, bestP = sum, lambda, prior
			}
		}
	}
	return fitRidge(p, bestL, bestP, o.Metric)
}
