package align

import (
	"math"
	"slices"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// PivotItems and PivotTemperature shape a soft pivot: a query is carried
// into the target space as the softmax-weighted mean of the target
// vectors of its PivotItems nearest pairs, the weights exp((s - s1) / T)
// of their similarities s to the query (s1 the nearest's). T = 0.02 on
// cosine similarity: a pair 0.02 less similar than the nearest counts
// e times less.
const (
	PivotItems       = 10
	PivotTemperature = 0.02
)

// PivotWeights turns the similarities of a query's nearest pairs (any
// order) into softmax weights at temperature temp, summing to 1. The
// nearest gets the most weight; a NaN similarity gets none.
func PivotWeights(sims []float64, temp float64) []float64 {
	w := make([]float64, len(sims))
	top := math.Inf(-1)
	for _, s := range sims {
		if s > top {
			top = s
		}
	}
	var sum float64
	for i, s := range sims {
		if math.IsNaN(s) {
			continue
		}
		w[i] = math.Exp((s - top) / temp)
		sum += w[i]
	}
	for i := range w {
		if sum > 0 {
			w[i] /= sum
		}
	}
	return w
}

// Similarity is what a soft pivot weighs a pair by, from the index
// distances of the pairs' sources to the query: cosine similarity under
// Cosine (pass cosine distances under Dot: see CosineDistance), and under
// L2 the negated distance relative to the nearest pair's (so that T means
// the same share of the distance).
func Similarity(m modality.Metric, dists []float32) []float64 {
	s := make([]float64, len(dists))
	nearest := math.Inf(1)
	for _, d := range dists {
		nearest = min(nearest, math.Sqrt(math.Max(float64(d), 0)))
	}
	for i, d := range dists {
		switch m {
		case modality.L2:
			e := math.Sqrt(math.Max(float64(d), 0))
			if nearest > 0 {
				s[i] = -e / nearest
			} else if e > 0 {
				s[i] = math.Inf(-1)
			}
		default:
			s[i] = 1 - float64(d) // cosine distance of unit vectors
		}
	}
	return s
}

// softPivot carries source vectors into the target space through pairs.
type softPivot struct {
	src    *ranker // the pairs' source vectors
	ys     [][]float32
	metric modality.Metric // the source's
}

func newSoftPivot(p Pairs, source modality.Metric) *softPivot {
	if source == 0 {
		source = modality.Cosine
	}
	return &softPivot{src: newRanker(p.X, source), ys: p.Y, metric: source}
}

// CosineDistance is 1 - cos(a, b), and 1 (cosine 0) when either vector is
// zero: how a soft pivot under Dot weighs the pairs it picked by dot
// product (dot products have no scale a temperature could apply to).
func CosineDistance(a, b []float32) float32 {
	na, nb := kernel.Norm(a), kernel.Norm(b)
	if na == 0 || nb == 0 {
		return 1
	}
	return 1 - kernel.DotProduct(a, b)/(na*nb)
}

// apply returns x carried into the target space.
func (sp *softPivot) apply(x []float32) []float32 {
	if len(sp.ys) == 0 {
		return nil // no pairs to pivot through (FitAuto never builds one so)
	}
	q := x
	if sp.metric == modality.Cosine {
		q = unit(x)
	}
	idx := make([]int, len(sp.src.targets))
	dists := make([]float32, len(idx))
	for j, t := range sp.src.targets {
		idx[j], dists[j] = j, sp.metric.Distance(q, t)
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case dists[a] < dists[b]:
			return -1
		case dists[a] > dists[b]:
			return 1
		}
		return 0
	})
	idx = idx[:min(PivotItems, len(idx))]
	near := make([]float32, len(idx))
	weigh := sp.metric
	for k, j := range idx {
		near[k] = dists[j]
		if sp.metric == modality.Dot {
			near[k], weigh = CosineDistance(x, sp.src.targets[j]), modality.Cosine
		}
	}
	w := PivotWeights(Similarity(weigh, near), PivotTemperature)
	out := make([]float32, len(sp.ys[0]))
	for k, j := range idx {
		for i, v := range sp.ys[j] {
			out[i] += float32(w[k]) * v
		}
	}
	return out
}
