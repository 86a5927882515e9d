package align

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// fitCCA runs regularised canonical correlation analysis: whiten each
// side (its covariance plus CCAReg times its mean variance, to the power
// -1/2), take the SVD of the whitened cross-covariance, and keep the top
// Components pairs of directions (A for the source, B for the target),
// each weighted by its canonical correlation rho.
//
// A database searches the target space, not the canonical one, so the
// map goes back into it: the best linear prediction of y from the
// weighted canonical variates of x, y = my + Cyy B diag(rho) A' (x - mx).
// That is a reduced-rank regression: only the directions the two spaces
// share survive.
func fitCCA(p Pairs, o Options) (*Projection, error) {
	d1, d2, err := p.check(2)
	if err != nil {
		return nil, err
	}
	n := p.Len()
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	r := o.Components
	if r <= 0 {
		r = 16
	}
	r = min(r, d1, d2)
	cxx, _ := gram(x, o.CCAReg)
	cyy, _ := gram(y, o.CCAReg)
	kx, err := invSqrt(cxx)
	if err != nil {
		return nil, err
	}
	ky, err := invSqrt(cyy)
	if err != nil {
		return nil, err
	}
	var cxy mat.Dense
	cxy.Mul(x.T(), y)
	cxy.Scale(1/float64(n), &cxy)
	var m, t mat.Dense
	t.Mul(kx, &cxy)
	m.Mul(&t, ky)
	var svd mat.SVD
	if !svd.Factorize(&m, mat.SVDThin) {
		return nil, fmt.Errorf("%w: SVD did not converge", ErrBadInput)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	rho := svd.Values(nil)[:r]
	var a, bc mat.Dense
	a.Mul(kx, u.Slice(0, d1, 0, r))
	bc.Mul(ky, v.Slice(0, d2, 0, r))
	for k, c := range rho { // weight by the canonical correlations
		for i := range d1 {
			a.Set(i, k, a.At(i, k)*c)
		}
	}
	// Row vectors: y = x A diag(rho) B' Cyy, with the unregularised Cyy.
	raw, _ := gram(y, 0)
	var ab, b mat.Dense
	ab.Mul(&a, bc.T())
	b.Mul(&ab, raw)
	return affine(CCA, fmt.Sprintf("components=%d reg=%g rho1=%.3f", r, o.CCAReg, rho[0]), &b, mx, my, o.Metric), nil
}
