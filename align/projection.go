package align

import (
	"fmt"
	"math"

	"github.com/mmdb-go/mmdb/modality"

	"gonum.org/v1/gonum/mat"
)

// Method names a learner.
type Method string

// The learners, and Auto, which tries each and keeps the best.
const (
	Auto       Method = "auto"
	Ridge      Method = "ridge"
	Procrustes Method = "procrustes"
	CCA        Method = "cca"
	InfoNCE    Method = "infonce"
)

// Methods lists the learners Auto tries, in the order it reports them.
var Methods = []Method{Ridge, Procrustes, CCA, InfoNCE}

// ParseMethod accepts a method name; "" means Auto.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case "":
		return Auto, nil
	case Auto, Ridge, Procrustes, CCA, InfoNCE:
		return m, nil
	}
	return "", fmt.Errorf("%w: unknown method %q (want auto, ridge, procrustes, cca or infonce)", ErrBadInput, s)
}

// Projection is a learned map y = W x + Bias from the source space to the
// target space, normalised to unit length afterwards when Normalize is
// set.
type Projection struct {
	// Method is the learner that made it.
	Method Method
	// Params records the settings chosen (lambda, components, ...).
	Params string
	// W has one row per target dimension and one column per source
	// dimension.
	W *mat.Dense
	// Bias has the target's dimension.
	Bias []float64
	// Normalize scales each output to unit length.
	Normalize bool
}

// Dims returns the source and target dimensions.
func (p *Projection) Dims() (in, out int) {
	out, in = p.W.Dims()
	return in, out
}

// Apply projects one source vector into the target space.
func (p *Projection) Apply(x []float32) []float32 {
	out, in := p.W.Dims()
	if len(x) != in {
		panic(fmt.Sprintf("align: projecting a %d-d vector with a %d-d map", len(x), in))
	}
	y := make([]float32, out)
	var norm float64
	for i := range out {
		s := p.Bias[i]
		for j, w := range p.W.RawRowView(i) {
			s += w * float64(x[j])
		}
		y[i] = float32(s)
		norm += s * s
	}
	if p.Normalize && norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range y {
			y[i] *= inv
		}
	}
	return y
}

// Float32 returns W's rows and the bias in single precision, the form a
// database stores.
func (p *Projection) Float32() (w [][]float32, bias []float32) {
	out, in := p.W.Dims()
	w = make([][]float32, out)
	for i := range out {
		w[i] = make([]float32, in)
		for j, v := range p.W.RawRowView(i) {
			w[i][j] = float32(v)
		}
	}
	bias = make([]float32, out)
	for i, v := range p.Bias {
		bias[i] = float32(v)
	}
	return w, bias
}

// affine builds a Projection from a d1 x d2 coefficient matrix B (row
// vectors: y = x B) and the means: W = B', Bias = my - B' mx.
//
// Under Cosine and Dot the target mean is left out of the bias: the map
// lands in the centred target space. Adding my to every query would add
// my·y to every target's score, a prior that favours the targets nearest
// the mean (the hubs). On coco500 (CLIP text -> image, 100 held-out
// items) leaving it out lifts ridge from R@1 0.50 to 0.76
// (TestCentredOutputBeatsMeanKept). Under L2 the mean is kept: distances
// need the real position.
func affine(m Method, params string, b *mat.Dense, mx, my []float64, metric modality.Metric) *Projection {
	if metric != modality.L2 {
		my = make([]float64, len(my))
	}
	var w mat.Dense
	w.CloneFrom(b.T())
	bias := make([]float64, len(my))
	for i := range bias {
		s := my[i]
		for j, v := range w.RawRowView(i) {
			s -= v * mx[j]
		}
		bias[i] = s
	}
	return &Projection{Method: m, Params: params, W: &w, Bias: bias, Normalize: metric == modality.Cosine}
}
