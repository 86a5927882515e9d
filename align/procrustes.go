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
// equally well), so the map is restricted to it: at equal dimensions the
// rotation keeps only the cross-covariance's singular directions with
// weight (at most n-1 of them), else both sides are reduced by PCA to at
// most n-1 components; either way what lies outside the span goes to
// zero.
func fitProcrustes(p Pairs, o Options) (*Projection, error) {
	d1, d2, err := p.check(2)
	if err != nil {
		return nil, err
	}
	n := p.Len()
	x, y := dense(p.X), dense(p.Y)
	mx, my := centre(x), centre(y)
	r := min(d1, d2)
	if o.Components > 0 {
		r = min(r, o.Components)
	}
	// With far fewer pairs than dimensions, PCA to the span (by the small
	// n x n Gram matrix) is cheapest; with nearly as many, the full SVD
	// truncated to the span.
	pca := r != d1 || r != d2 || 2*(n-1) < r
	if pca {
		r = min(r, n-1)
	}
	span := 0 // the singular directions kept at equal dimensions; 0: all
	if !pca && n-1 < r {
		span = n - 1
	}
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
	if pca { // a side spanning fewer dimensions sets the common one
		_, cx := xr.Dims()
		_, cy := yr.Dims()
		if c := min(cx, cy); c < r {
			r = c
			xr, vx = xr.Slice(0, n, 0, r).(*mat.Dense), vx.Slice(0, d1, 0, r).(*mat.Dense)
			yr, vy = yr.Slice(0, n, 0, r).(*mat.Dense), vy.Slice(0, d2, 0, r).(*mat.Dense)
		}
	}
	var u, v *mat.Dense
	var vals []float64
	if span > 0 { // X'Y has rank below n: decompose it through the n x n middle
		u, v, vals = productSVD(mat.DenseCopyOf(xr.T()), mat.DenseCopyOf(yr.T()))
	} else {
		var m mat.Dense
		m.Mul(xr.T(), yr)
		var svd mat.SVD
		if !svd.Factorize(&m, mat.SVDThin) {
			return nil, fmt.Errorf("%w: SVD did not converge", ErrBadInput)
		}
		u, v = new(mat.Dense), new(mat.Dense)
		svd.UTo(u)
		svd.VTo(v)
		vals = svd.Values(nil)
	}
	keep := len(vals)
	if span > 0 {
		keep = 0
		for keep < span && vals[keep] > 1e-10*vals[0] {
			keep++
		}
	}
	var rot mat.Dense
	rot.Mul(u.Slice(0, r, 0, keep), v.Slice(0, r, 0, keep).T())
	var sum float64
	for _, s := range vals[:keep] {
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
	case span > 0:
		params = fmt.Sprintf("rank=%d (the span of %d pairs) %s", keep, n, params)
	case pca && r == n-1:
		params = fmt.Sprintf("pca=%d (the span of %d pairs) %s", r, n, params)
	case pca:
		params = fmt.Sprintf("pca=%d %s", r, params)
	}
	return affine(Procrustes, params, b, mx, my, o.Metric), nil
}
