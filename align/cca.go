package align

import (
	"fmt"

	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// fitCCA runs regularised canonical correlation analysis: whiten each
// side (by its covariance plus CCAReg times its mean variance: see
// whitener), take the SVD of the whitened cross-covariance, and keep the top
// Components pairs of directions (A for the source, B for the target),
// each weighted by its canonical correlation rho.
//
// A database searches the target space, not the canonical one, so the
// map goes back into it: the best linear prediction of y from the
// weighted canonical variates of x, y = my + Cyy B diag(rho) A' (x - mx).
// That is a reduced-rank regression: only the directions the two spaces
// share survive.
//
// With fewer pairs than dimensions, a side is fitted in the coordinates
// of its pairs' span (rowBasis) and the map carried back. That is the
// same map, not an approximation: the cross-covariance lies in the spans,
// so the whitening acts on nothing outside them (the regulariser keeps
// the full dimension's mean variance).
func fitCCA(p Pairs, o Options) (*Projection, error) {
	d1, d2, err := p.check(2)
	if err != nil {
		return nil, err
	}
	x, y := dense(p.X), dense(p.Y)
	qx, qy := rowBasis(x), rowBasis(y)
	x, y = inBasis(x, qx), inBasis(y, qy)
	_, rx := x.Dims()
	_, ry := y.Dims()
	mx, my := centre(x), centre(y)
	r := o.Components
	if r <= 0 {
		r = 16
	}
	r = min(r, d1, d2)
	// gram scales the regulariser by the mean variance over the columns
	// it sees: rx of d1 carry all the variance.
	cxx, _ := gram(x, o.CCAReg*float64(rx)/float64(d1))
	cyy, _ := gram(y, o.CCAReg*float64(ry)/float64(d2))
	kx, err := whitener(cxx)
	if err != nil {
		return nil, err
	}
	ky, err := whitener(cyy)
	if err != nil {
		return nil, err
	}
	u, v, sv, err := whitenedSVD(x, y, kx, ky)
	if err != nil {
		return nil, err
	}
	r = min(r, len(sv))
	rho := sv[:r]
	var a, bc mat.Dense
	a.Mul(kx, u.Slice(0, rx, 0, r))
	bc.Mul(ky, v.Slice(0, ry, 0, r))
	for k, c := range rho { // weight by the canonical correlations
		for i := range rx {
			a.Set(i, k, a.At(i, k)*c)
		}
	}
	// Row vectors: y = x A diag(rho) B' Cyy, with the unregularised Cyy.
	raw, _ := gram(y, 0)
	var ab, b mat.Dense
	ab.Mul(&a, bc.T())
	b.Mul(&ab, raw)
	return affine(CCA, fmt.Sprintf("components=%d reg=%g rho1=%.3f", r, o.CCAReg, rho[0]), lift(qx, &b, qy), liftVec(qx, mx), liftVec(qy, my), o.Metric), nil
}

// whitenedSVD returns the SVD of the whitened cross-covariance
// M = Kx' X'Y Ky / n of centred x and y (U, V as columns, singular values
// descending). fitCCA has at least as many pairs as columns on each side
// (it works in the pairs' span), so M is at most n x n.
//
// Only CCA's top components are kept, but a truncated SVD by subspace
// iteration does not pay: on the random-encoder coco pairs the canonical
// correlations are too even for it to converge in 100 rounds.
func whitenedSVD(x, y, kx, ky *mat.Dense) (u, v *mat.Dense, sv []float64, err error) {
	n, _ := x.Dims()
	var cxy, t, m mat.Dense
	cxy.Mul(x.T(), y)
	cxy.Scale(1/float64(n), &cxy)
	t.Mul(kx.T(), &cxy)
	m.Mul(&t, ky)
	var svd mat.SVD
	if !svd.Factorize(&m, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("%w: SVD did not converge", ErrBadInput)
	}
	u, v = new(mat.Dense), new(mat.Dense)
	svd.UTo(u)
	svd.VTo(v)
	return u, v, svd.Values(nil), nil
}

// productSVD returns the thin SVD of a b' for a (d1 x n) and b (d2 x n)
// with n below both dimensions: from their QR factors, a b' = Qa (Ra Rb')
// Qb', so only the n x n middle is decomposed. U and V have n columns.
func productSVD(a, b *mat.Dense) (u, v *mat.Dense, sv []float64) {
	qma, ra := thinQR(a)
	qmb, rb := thinQR(b)
	_, n := a.Dims()
	var small mat.Dense
	small.Mul(ra, rb.T())
	var svd mat.SVD
	if !svd.Factorize(&small, mat.SVDThin) {
		// An n x n SVD of finite numbers converges; keep the zero map.
		d1, _ := a.Dims()
		d2, _ := b.Dims()
		return mat.NewDense(d1, n, nil), mat.NewDense(d2, n, nil), make([]float64, n)
	}
	var us, vs mat.Dense
	svd.UTo(&us)
	svd.VTo(&vs)
	u, v = new(mat.Dense), new(mat.Dense)
	u.Mul(qma, &us)
	v.Mul(qmb, &vs)
	return u, v, svd.Values(nil)
}

// thinQR returns the thin QR factors of a (m x n, m >= n): Q with n
// orthonormal columns and the n x n upper triangular R. LAPACK's
// reflectors directly, without the m x m Q and the condition estimate
// mat.QR computes.
func thinQR(a *mat.Dense) (q, r *mat.Dense) {
	_, n := a.Dims()
	f := mat.DenseCopyOf(a)
	raw := f.RawMatrix()
	tau := make([]float64, n)
	work := []float64{0}
	lapack64.Geqrf(raw, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Geqrf(raw, tau, work, len(work))
	r = mat.NewDense(n, n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			r.Set(i, j, f.At(i, j))
		}
	}
	work = []float64{0}
	lapack64.Orgqr(raw, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Orgqr(raw, tau, work, len(work))
	return f, r
}
