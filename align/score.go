package align

import (
	"fmt"
	"slices"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Score is how one map ranks held-out pairs: each held-out source vector,
// projected, ranks every held-out target vector.
type Score struct {
	// Method is the learner, or "baseline" for the identity map (the
	// source vector used as it is, when the dimensions agree).
	Method Method
	// Params are the settings the learner chose.
	Params string
	// R1, R5, R10: the share of queries with a relevant target in the top
	// 1, 5, 10 (relevant: the pair's own target, or any of its class).
	R1, R5, R10 float64
	// P10 is the mean share of relevant targets among the top 10.
	P10 float64
	// Err says why the method could not be fitted, if it could not.
	Err string `msgpack:",omitempty" json:",omitempty"`
}

// String formats the score on one line.
func (s Score) String() string {
	if s.Err != "" {
		return fmt.Sprintf("%-10s failed: %s", s.Method, s.Err)
	}
	return fmt.Sprintf("%-10s R@1 %.3f  R@5 %.3f  R@10 %.3f  P@10 %.3f  %s", s.Method, s.R1, s.R5, s.R10, s.P10, s.Params)
}

// Evaluate scores a projection on pairs under the target metric: every
// projected X ranks all of the pairs' Y. A nil projection scores the
// identity map.
func Evaluate(p *Projection, pairs Pairs, metric modality.Metric) Score {
	return Rank(p, pairs.X, pairs.Y, func(q, t int) bool {
		return q == t || (pairs.Classes != nil && pairs.Classes[q] == pairs.Classes[t])
	}, metric)
}

// Rank scores a projection on a retrieval task: each query, projected,
// ranks every gallery vector under metric, and relevant(q, g) says which
// gallery vectors are right answers for query q. A nil projection uses
// the queries as they are.
func Rank(p *Projection, queries, gallery [][]float32, relevant func(q, g int) bool, metric modality.Metric) Score {
	if metric == 0 {
		metric = modality.Cosine
	}
	n := len(gallery)
	targets := gallery
	if metric == modality.Cosine {
		targets = make([][]float32, n)
		for i, y := range gallery {
			targets[i] = unit(y)
		}
	}
	var s Score
	const depth = 10
	top := make([]int, 0, depth+1) // the best depth so far, best first
	dist := make([]float32, n)
	for i, x := range queries {
		q := x
		if p != nil {
			q = p.Apply(x)
		}
		if metric == modality.Cosine {
			q = unit(q)
		}
		top = top[:0]
		for j, y := range targets {
			d := metric.Distance(q, y)
			dist[j] = d
			if len(top) == depth && d >= dist[top[depth-1]] {
				continue // ties keep the earlier target ahead
			}
			k := len(top)
			for k > 0 && dist[top[k-1]] > d {
				k--
			}
			top = slices.Insert(top, k, j)
			if len(top) > depth {
				top = top[:depth]
			}
		}
		first := n
		hits := 0
		for r, j := range top {
			if relevant(i, j) {
				if first == n {
					first = r
				}
				hits++
			}
		}
		if first < 1 {
			s.R1++
		}
		if first < 5 {
			s.R5++
		}
		if first < 10 {
			s.R10++
		}
		s.P10 += float64(hits) / float64(min(depth, n))
	}
	q := float64(len(queries))
	s.R1 /= q
	s.R5 /= q
	s.R10 /= q
	s.P10 /= q
	return s
}

func unit(v []float32) []float32 {
	u := make([]float32, len(v))
	copy(u, v)
	kernel.Normalize(u)
	return u
}
