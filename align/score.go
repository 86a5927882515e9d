package align

import (
	"fmt"
	"math"
	"slices"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Score is how one map ranks queries against a gallery: each source
// vector, projected, ranks every gallery vector. In a Report the queries
// are every pair, each scored by a map fitted without its fold.
type Score struct {
	// Method is the learner, Baseline for the identity map (the source
	// vector used as it is, when the dimensions agree), or Pivot for
	// searching without a map (through the nearest pairs).
	Method Method `json:"method"`
	// Params are the settings the learner chose (on the last fold).
	Params string `json:"params"`
	// R1, R5, R10: the share of queries with a relevant target in the top
	// 1, 5, 10 (relevant: the pair's own target, or any of its class).
	R1  float64 `json:"r1"`
	R5  float64 `json:"r5"`
	R10 float64 `json:"r10"`
	// MRR is the mean reciprocal rank of the first relevant target.
	MRR float64 `json:"mrr"`
	// P10 is the mean share of relevant targets among the top 10.
	P10 float64 `json:"p10"`
	// FoldMRR is the MRR of each fold's queries (nil outside a Report).
	FoldMRR []float64 `json:"fold_mrr,omitempty"`
	// Err says why the method could not be fitted, if it could not.
	Err string `json:"err,omitempty"`
}

// Spread is the fold-to-fold standard deviation of MRR (0 without folds).
func (s Score) Spread() float64 { return stddev(s.FoldMRR) }

// String formats the score on one line.
func (s Score) String() string {
	if s.Err != "" {
		return fmt.Sprintf("%-10s failed: %s", s.Method, s.Err)
	}
	spread := ""
	if len(s.FoldMRR) > 1 {
		spread = fmt.Sprintf(" ±%.3f", s.Spread())
	}
	return fmt.Sprintf("%-10s R@1 %.3f  R@5 %.3f  R@10 %.3f  MRR %.3f%s  P@10 %.3f  %s", s.Method, s.R1, s.R5, s.R10, s.MRR, spread, s.P10, s.Params)
}

// Evaluate scores a projection on pairs under the target metric: every
// projected X ranks all of the pairs' Y. A nil projection scores the
// identity map.
func Evaluate(p *Projection, pairs Pairs, metric modality.Metric) Score {
	return Rank(p, pairs.X, pairs.Y, pairs.relevant(), metric)
}

// relevant says which of the pairs' targets answer which query: its own,
// or any of its class.
func (p Pairs) relevant() func(q, g int) bool {
	return func(q, g int) bool { return q == g || (p.Classes != nil && p.Classes[q] == p.Classes[g]) }
}

// Rank scores a projection on a retrieval task: each query, projected,
// ranks every gallery vector under metric, and relevant(q, g) says which
// gallery vectors are right answers for query q. A nil projection uses
// the queries as they are.
func Rank(p *Projection, queries, gallery [][]float32, relevant func(q, g int) bool, metric modality.Metric) Score {
	projected := queries
	if p != nil {
		projected = make([][]float32, len(queries))
		for i, x := range queries {
			projected[i] = p.Apply(x)
		}
	}
	var s Score
	ranks := newRanker(gallery, metric)
	for i, q := range projected {
		s.add(ranks.rank(q, func(g int) bool { return relevant(i, g) }))
	}
	s.mean(len(queries))
	return s
}

// ranked is where one query's relevant targets came: the rank of the
// first (1 is best; ties count against the query) and how many of the
// top 10 are relevant.
type ranked struct {
	first int
	top10 int
	depth int // min(10, gallery size)
}

// add counts one query's ranks into s's sums (see mean).
func (s *Score) add(r ranked) {
	if r.first <= 1 {
		s.R1++
	}
	if r.first <= 5 {
		s.R5++
	}
	if r.first <= 10 {
		s.R10++
	}
	if r.first > 0 {
		s.MRR += 1 / float64(r.first)
	}
	if r.depth > 0 {
		s.P10 += float64(r.top10) / float64(r.depth)
	}
}

// mean turns the sums of n queries into shares.
func (s *Score) mean(n int) {
	if n == 0 {
		return
	}
	q := float64(n)
	s.R1 /= q
	s.R5 /= q
	s.R10 /= q
	s.MRR /= q
	s.P10 /= q
}

// ranker ranks queries against a fixed gallery (unit vectors under
// Cosine).
type ranker struct {
	targets [][]float32
	metric  modality.Metric
	dist    []float32
}

func newRanker(gallery [][]float32, metric modality.Metric) *ranker {
	if metric == 0 {
		metric = modality.Cosine
	}
	targets := gallery
	if metric == modality.Cosine {
		targets = make([][]float32, len(gallery))
		for i, y := range gallery {
			targets[i] = unit(y)
		}
	}
	return &ranker{targets: targets, metric: metric, dist: make([]float32, len(gallery))}
}

// rank ranks the gallery for query q (normalised here under Cosine).
// The first relevant target's rank counts every irrelevant target at the
// same or a smaller distance ahead of it; the top 10 keep ties in gallery
// order. first is 0 when no target is relevant.
func (r *ranker) rank(q []float32, relevant func(g int) bool) ranked {
	if r.metric == modality.Cosine {
		q = unit(q)
	}
	best := float32(math.Inf(1))
	found := false
	for j, y := range r.targets {
		d := r.metric.Distance(q, y)
		r.dist[j] = d
		if relevant(j) && (!found || d < best) {
			best, found = d, true
		}
	}
	out := ranked{depth: min(10, len(r.targets))}
	if found {
		out.first = 1
	}
	var top []int
	for j, d := range r.dist {
		rel := relevant(j)
		if found && !rel && d <= best {
			out.first++
		}
		if len(top) == out.depth && d >= r.dist[top[len(top)-1]] {
			continue // ties keep the earlier target ahead
		}
		k := len(top)
		for k > 0 && r.dist[top[k-1]] > d {
			k--
		}
		top = slices.Insert(top, k, j)
		if len(top) > out.depth {
			top = top[:out.depth]
		}
	}
	for _, j := range top {
		if relevant(j) {
			out.top10++
		}
	}
	return out
}

// ChanceLevel is what a random ranking of a gallery scores, on queries
// with the given numbers of relevant targets.
type ChanceLevel struct {
	gallery int
	counts  map[int]int // relevant targets -> queries with that many
	n       int
	// MRR is the expected reciprocal rank of the first relevant target.
	MRR float64
	// P is the expected share of relevant targets in any top k (k <= the
	// gallery): the mean relevant share of the gallery.
	P float64
}

// Chance returns the chance level of a gallery of the given size for
// queries with relevant[q] relevant targets each.
func Chance(gallery int, relevant []int) ChanceLevel {
	c := ChanceLevel{gallery: gallery, counts: map[int]int{}, n: len(relevant)}
	for _, m := range relevant {
		c.counts[m]++
	}
	if c.n == 0 || gallery == 0 {
		return c
	}
	g := float64(gallery)
	for m, q := range c.counts {
		share := float64(q) / float64(c.n)
		c.P += share * float64(m) / g
		miss := 1.0 // P(no relevant target in the first r-1)
		for r := 1; r <= gallery && miss > 0 && m > 0; r++ {
			left := g - float64(r-1)
			c.MRR += share * miss * float64(m) / left / float64(r)
			miss *= (left - float64(m)) / left
		}
	}
	return c
}

// Recall is the expected share of queries with a relevant target in a
// random top k: 1 - C(G-m, k)/C(G, k), averaged over the queries.
func (c ChanceLevel) Recall(k int) float64 {
	var r float64
	g := float64(c.gallery)
	for m, q := range c.counts {
		if m == 0 {
			continue
		}
		miss := 1.0
		for j := range min(k, c.gallery) {
			miss *= max(0, g-float64(m)-float64(j)) / (g - float64(j))
		}
		r += (1 - miss) * float64(q) / float64(c.n)
	}
	return r
}

// chance is the chance level as a Score, for reports.
func chance(gallery int, relevantCounts []int) Score {
	c := Chance(gallery, relevantCounts)
	return Score{Method: "chance", R1: c.Recall(1), R5: c.Recall(5), R10: c.Recall(10), MRR: c.MRR, P10: c.P}
}

func unit(v []float32) []float32 {
	u := make([]float32, len(v))
	copy(u, v)
	kernel.Normalize(u)
	return u
}

func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return math.Sqrt(v / float64(len(xs)-1))
}

// PairedGain is the mean and the standard deviation over folds of the
// per-fold gain of a over b (equal lengths): a gain is beyond the
// fold-to-fold spread when mean > sd (about t > 2.2 at 5 folds).
func PairedGain(a, b []float64) (mean, sd float64) {
	d := make([]float64, len(a))
	for f := range d {
		d[f] = a[f] - b[f]
		mean += d[f] / float64(len(d))
	}
	return mean, stddev(d)
}
