package align

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// fitProcrustes finds the rotation and scale that best carry the centred
// source vectors onto the centred target vectors. When the dimensions
// differ (or Options.Components asks for fewer), each side is first
// reduced by PCA to the common dimension, and the result is carried back
// into the target space. With fewer pairs than dimensions the rotation is
// underdetermined outside the pairs' span (any completion fits them
// equally well), so both sides are reduced to the span: at most n-1
// components, and the map sends what lies outside it to zero.
func fitProcrustes(p Pairs, o Options) (*Projection, error) {
	d1, d2, err := p.check(2)
	if err != nil {
		return nil, err
	}
	n := p.Len()
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	r := min(d1, d2, n-1)
	if o.Components > 0 {
		r = min(r, o.Components)
	}
	pca := r != d1 || r != d2
	reduce := func(m *mat.Dense, d int) (*mat.Dense, *mat.Dense, error) {
		if !pca {
			return m, nil, nil
		}
		v, err := pcaBasis(m, r)
		if err != nil {
			return nil, nil, err
		}
		var red mat.Dense
		red.Mul(m, v)
		return &red, v, nil
	}
	xr, vx, err := reduce(x, d1)
	if err != nil {
		return nil, err
	}
	yr, vy, err := reduce(y, d2)
	if err != nil {
		return nil, err
	}
	var m mat.Dense
	m.Mul(xr.T(), yr)
	var svd mat.SVD
	if !svd.Factorize(&m, mat.SVDThin) {
		return nil, fmt.Errorf("%w: SVD did not converge", ErrBadInput)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	var rot mat.Dense
	rot.Mul(&u, v.T())
	var sum float64
	for _, s := range svd.Values(nil) {
		sum += s
	}
	norm := mat.Norm(xr, 2)
	if norm == 0 {
		return nil, fmt.Errorf("%w: the source vectors have no variance", ErrBadInput)
	}
	scale := sum / (norm * norm)
	// Row vectors: y = scale * x vx rot vy'.
	b := &rot
	if pca {
		var t1, t2 mat.Dense
		t1.Mul(vx, &rot)
		t2.Mul(&t1, vy.T())
		b = &t2
	}
	b.Scale(scale, b)
	params := fmt.Sprintf("scale=%.3g", scale)
	switch {
	case pca && r == n-1:
		params = fmt.Sprintf("pca=%d (the span of %d pairs) %s", r, n, params)
	case pca:
		params = fmt.Sprintf("pca=%d %s", r, params)
	}
	return affine(Procrustes, params, b, mx, my, o.Metric), nil
}
