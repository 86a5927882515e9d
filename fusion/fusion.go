// Package fusion merges ranked lists into one ranking: reciprocal rank
// fusion, a weighted sum of min-max normalised scores, and
// distribution-based score fusion.
package fusion

import (
	"fmt"
	"math"
	"sort"
)

// Ranked is one entry of a ranked list: an internal ID and a score,
// higher is better.
type Ranked struct {
	ID    uint32
	Score float64
}

// Method names a way to merge several probes' results.
type Method string

// The methods. Early is not a list fusion: the database searches once
// with the weighted sum of the probe vectors, and Fuse refuses it.
const (
	RRF      Method = "rrf"      // reciprocal rank fusion
	Weighted Method = "weighted" // weighted sum of min-max normalised scores
	DBSF     Method = "dbsf"     // distribution-based score fusion
	Early    Method = "early"    // weighted sum of probe vectors, one search
	// BestScore scores each candidate by its best positive and best
	// negative example (Qdrant's recommend best_score): one exact scan.
	BestScore Method = "best_score"
)

// RRFK is the k of reciprocal rank fusion: score = sum of w / (k + rank).
const RRFK = 60

// Fuse merges ranked lists (each best first) into one ranking, best first,
// by method (RRF, Weighted or DBSF; any other is an error, never a silent
// RRF). weights[i] scales list i (nil means 1 each). An item missing from
// a list gets nothing from it: absent, not last.
func Fuse(method Method, lists [][]Ranked, weights []float64) ([]Ranked, error) {
	switch method {
	case RRF, Weighted, DBSF:
	default:
		return nil, fmt.Errorf("fusion: %q cannot merge lists (want rrf, weighted or dbsf)", method)
	}
	w := func(i int) float64 {
		if weights == nil || i >= len(weights) {
			return 1
		}
		return weights[i]
	}
	acc := map[uint32]float64{}
	order := []uint32{}
	add := func(id uint32, s float64) {
		if _, ok := acc[id]; !ok {
			order = append(order, id)
		}
		acc[id] += s
	}
	for i, l := range lists {
		switch method {
		case Weighted:
			lo, hi := minMax(l)
			for _, r := range l {
				n := 1.0
				if hi > lo {
					n = (r.Score - lo) / (hi - lo)
				}
				add(r.ID, w(i)*n)
			}
		case DBSF:
			mu, sigma := meanStd(l)
			for _, r := range l {
				n := 0.5
				if sigma > 0 {
					n = (r.Score - (mu - 3*sigma)) / (6 * sigma)
				}
				add(r.ID, w(i)*n)
			}
		case RRF:
			for rank, r := range l {
				add(r.ID, w(i)/float64(RRFK+rank+1))
			}
		}
	}
	out := make([]Ranked, len(order))
	for i, id := range order {
		out[i] = Ranked{id, acc[id]}
	}
	// Stable: ties keep first-seen order, which is deterministic.
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out, nil
}

func minMax(l []Ranked) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range l {
		lo, hi = min(lo, r.Score), max(hi, r.Score)
	}
	return lo, hi
}

func meanStd(l []Ranked) (mu, sigma float64) {
	if len(l) == 0 {
		return 0, 0
	}
	for _, r := range l {
		mu += r.Score
	}
	mu /= float64(len(l))
	for _, r := range l {
		sigma += (r.Score - mu) * (r.Score - mu)
	}
	return mu, math.Sqrt(sigma / float64(len(l)))
}

// Valid reports whether m names a method, or is "" (the default, RRF).
func Valid(m Method) bool {
	switch m {
	case "", RRF, Weighted, DBSF, Early, BestScore:
		return true
	}
	return false
}
