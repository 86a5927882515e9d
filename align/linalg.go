package align

import (
	"fmt"
	"math"

	"github.com/viterin/vek/vek32"
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

// whitener returns K = L^-T for the Cholesky factor L of a symmetric
// positive definite s (s = L L'), so that K' s K = I. CCA's canonical
// directions do not depend on which whitening is used; the Cholesky one
// costs a fraction of s^(-1/2) by eigendecomposition.
func whitener(s *mat.SymDense) (*mat.Dense, error) {
	var ch mat.Cholesky
	if !ch.Factorize(s) {
		return nil, fmt.Errorf("%w: covariance is not positive definite", ErrBadInput)
	}
	var l, li mat.TriDense
	ch.LTo(&l)
	if err := li.InverseTri(&l); err != nil {
		return nil, fmt.Errorf("%w: covariance is singular: %v", ErrBadInput, err)
	}
	var k mat.Dense
	k.CloneFrom(li.T())
	return &k, nil
}

// pcaBasis returns the top r principal directions of the centred rows of
// m (d columns), as a d x r matrix. With fewer rows than columns it works
// on the n x n Gram matrix (dual PCA: v = m'u / sqrt(lambda)), which is
// much smaller, and returns only the directions with variance: fewer than
// r when the rows span fewer (repeated rows, say).
func pcaBasis(m *mat.Dense, r int) (*mat.Dense, error) {
	n, d := m.Dims()
	if d <= n { // the d x d covariance, its directions with variance
		g, _ := gram(m, 0)
		var e mat.EigenSym
		if !e.Factorize(g, true) {
			return nil, fmt.Errorf("%w: eigendecomposition did not converge", ErrBadInput)
		}
		var v mat.Dense
		e.VectorsTo(&v)
		vals := e.Values(nil)
		keep := 0
		for keep < min(r, d) && vals[d-1-keep] > 1e-12*max(vals[d-1], 0) {
			keep++
		}
		if keep == 0 {
			return nil, fmt.Errorf("%w: the vectors have no variance", ErrBadInput)
		}
		out := mat.NewDense(d, keep, nil)
		for k := range keep {
			for i := range d {
				out.Set(i, k, v.At(i, d-1-k)) // ascending order: take from the end
			}
		}
		return out, nil
	}
	var k mat.SymDense
	k.SymOuterK(1, m)
	var e mat.EigenSym
	if !e.Factorize(&k, true) {
		return nil, fmt.Errorf("%w: eigendecomposition did not converge", ErrBadInput)
	}
	var u mat.Dense
	e.VectorsTo(&u)
	vals := e.Values(nil)
	var top []int // columns of the r largest eigenvalues that carry variance
	for c := range min(r, n) {
		if vals[n-1-c] <= 1e-12*max(vals[n-1], 0) {
			break
		}
		top = append(top, n-1-c)
	}
	if len(top) == 0 {
		return nil, fmt.Errorf("%w: the vectors have no variance", ErrBadInput)
	}
	r = len(top)
	ur := mat.NewDense(n, r, nil)
	for c, col := range top {
		f := 1 / math.Sqrt(vals[col])
		for i := range n {
			ur.Set(i, c, u.At(i, col)*f)
		}
	}
	var v mat.Dense
	v.Mul(m.T(), ur)
	return &v, nil
}

// mul32Min is the product size (rows x inner x columns) from which mul
// computes in float32 with vek's SIMD kernel: 2x gonum's float64 on
// 512-d products here, conversion included (BenchmarkLinalg), and such
// products are what InfoNCE's epochs spend their time on. Smaller products, and thin ones (a side under 64), stay in float64,
// where converting would cost more than it saves (and where InfoNCE's
// gradient is checked against finite differences).
var mul32Min = 1 << 18

// mul sets dst = a b, in float32 for large products (see mul32Min).
// Operands are *mat.Dense or their transposes.
func mul(dst *mat.Dense, a, b mat.Matrix) {
	m, n := a.Dims()
	_, p := b.Dims()
	if m*n*p < mul32Min || min(m, n, p) < 64 { // each element reused < 64 times: converting costs too much
		dst.Mul(a, b)
		return
	}
	af, bf := rowMajor32(a), rowMajor32(b)
	out := vek32.MatMul(af, bf, n)
	if dst.IsEmpty() {
		dst.ReuseAs(m, p)
	} else if r, c := dst.Dims(); r != m || c != p {
		panic(fmt.Sprintf("align: mul into a %dx%d matrix of a %dx%d product", r, c, m, p))
	}
	raw := dst.RawMatrix()
	for i := range m {
		row := raw.Data[i*raw.Stride : i*raw.Stride+p]
		for j := range row {
			row[j] = float64(out[i*p+j])
		}
	}
}

// rowMajor32 copies a (a *mat.Dense or its transpose) into a dense
// row-major float32 slice.
func rowMajor32(a mat.Matrix) []float32 {
	r, c := a.Dims()
	out := make([]float32, r*c)
	switch t := a.(type) {
	case *mat.Dense:
		raw := t.RawMatrix()
		for i := range r {
			for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+c] {
				out[i*c+j] = float32(v)
			}
		}
	case mat.Transpose:
		raw := t.Matrix.(*mat.Dense).RawMatrix() // c x r underneath
		for j := range c {
			for i, v := range raw.Data[j*raw.Stride : j*raw.Stride+r] {
				out[i*c+j] = float32(v)
			}
		}
	default:
		for i := range r {
			for j := range c {
				out[i*c+j] = float32(a.At(i, j))
			}
		}
	}
	return out
}

// rowBasis returns an orthonormal basis (d x n) of the span of m's n rows
// when there are fewer rows than columns, and nil otherwise. Learners
// whose answer lies in the span of the pairs fit in those n coordinates
// and carry the map back (lift): with 49 pairs of 768-d vectors that is a
// 49 x 49 problem in place of a 768 x 768 one.
func rowBasis(m *mat.Dense) *mat.Dense {
	n, d := m.Dims()
	if n >= d {
		return nil
	}
	q, _ := thinQR(mat.DenseCopyOf(m.T()))
	return q
}

// inBasis returns the coordinates m q of m's rows in the orthonormal
// basis q (the columns of q), or m itself when q is nil.
func inBasis(m, q *mat.Dense) *mat.Dense {
	if q == nil {
		return m
	}
	var out mat.Dense
	out.Mul(m, q)
	return &out
}

// lift returns a m b', a matrix of coefficients in two bases carried back
// into the full spaces; a nil basis is the identity.
func lift(a, m, b *mat.Dense) *mat.Dense {
	out := m
	if a != nil {
		out = new(mat.Dense)
		out.Mul(a, m)
	}
	if b != nil {
		var t mat.Dense
		t.Mul(out, b.T())
		out = &t
	}
	return out
}

// liftVec returns q v, or v when q is nil.
func liftVec(q *mat.Dense, v []float64) []float64 {
	if q == nil {
		return v
	}
	var out mat.VecDense
	out.MulVec(q, mat.NewVecDense(len(v), v))
	return out.RawVector().Data
}

// restrict returns a' m b, the coefficients of m in two bases; a nil
// basis is the identity.
func restrict(a, m, b *mat.Dense) *mat.Dense {
	out := m
	if a != nil {
		out = new(mat.Dense)
		out.Mul(a.T(), m)
	}
	if b != nil {
		var t mat.Dense
		t.Mul(out, b)
		out = &t
	}
	return out
}

// restrictVec returns q' v, or v when q is nil.
func restrictVec(q *mat.Dense, v []float64) []float64 {
	if q == nil {
		return v
	}
	var out mat.VecDense
	out.MulVec(q.T(), mat.NewVecDense(len(v), v))
	return out.RawVector().Data
}
