package align

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// gram returns m'm / n + reg * (mean variance) * I, and the mean variance.
func gram(m *mat.Dense, rel float64) (*mat.SymDense, float64) {
	n, d := m.Dims()
	var g mat.SymDense
	g.SymOuterK(1/float64(n), m.T())
	var tr float64
	for i := range d {
		tr += g.At(i, i)
	}
	tr /= float64(d)
	for i := range d {
		g.SetSym(i, i, g.At(i, i)+rel*tr)
	}
	return &g, tr
}

// topEigen returns the eigenvectors of s with the r largest eigenvalues,
// as columns, largest first.
func topEigen(s *mat.SymDense, r int) (*mat.Dense, error) {
	var e mat.EigenSym
	if !e.Factorize(s, true) {
		return nil, fmt.Errorf("%w: eigendecomposition did not converge", ErrBadInput)
	}
	var v mat.Dense
	e.VectorsTo(&v)
	d, _ := v.Dims()
	out := mat.NewDense(d, r, nil)
	for k := range r {
		for i := range d {
			out.Set(i, k, v.At(i, d-1-k)) // ascending order: take from the end
		}
	}
	return out, nil
}

// invSqrt returns s^(-1/2) for a symmetric positive definite s.
func invSqrt(s *mat.SymDense) (*mat.Dense, error) {
	var e mat.EigenSym
	if !e.Factorize(s, true) {
		return nil, fmt.Errorf("%w: eigendecomposition did not converge", ErrBadInput)
	}
	var v mat.Dense
	e.VectorsTo(&v)
	vals := e.Values(nil)
	d := len(vals)
	scaled := mat.NewDense(d, d, nil)
	for j, l := range vals {
		if l <= 0 {
			return nil, fmt.Errorf("%w: covariance is not positive definite", ErrBadInput)
		}
		f := 1 / math.Sqrt(l)
		for i := range d {
			scaled.Set(i, j, v.At(i, j)*f)
		}
	}
	var out mat.Dense
	out.Mul(scaled, v.T())
	return &out, nil
}
