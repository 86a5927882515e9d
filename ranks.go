package mmdb

import (
	"math"
	"slices"
)

// rankOf is the rank (1 is best) that probe i's exact search gives the
// target at row own of tvecs (the target vectors laid end to end, ids
// their items), ties counted against it: it orders targets as search and
// dehub do (by distance, or by score less the hubness penalty when the
// probe is corrected), counting the targets ahead instead of sorting.
// Evaluate ranks every target through it.
func (p *planned) rankOf(i int, tvecs []float32, ids []uint32, own int) int {
	key := p.rankKey(i, tvecs, ids)
	ownKey := key(own)
	rank := 1
	for j := range ids {
		if j != own && key(j) <= ownKey {
			rank++
		}
	}
	return rank
}

// rankOfAny is rankOf when several targets answer the query (relevant):
// the rank of the first relevant one (ties against it; notRanked when
// none is relevant) and, for k = 1..maxK, how many of the top k are
// relevant (ties in row order).
func (p *planned) rankOfAny(i int, tvecs []float32, ids []uint32, relevant func(j int) bool, maxK int) (int, []int) {
	key := p.rankKey(i, tvecs, ids)
	keys := make([]float64, len(ids))
	best := math.Inf(1)
	for j := range ids {
		keys[j] = key(j)
		if relevant(j) && keys[j] < best {
			best = keys[j]
		}
	}
	first := notRanked
	if !math.IsInf(best, 1) {
		first = 1
		for j, k := range keys {
			if !relevant(j) && k <= best {
				first++
			}
		}
	}
	top := make([]int, 0, maxK+1) // rows of the maxK smallest keys, in order
	for j, k := range keys {
		if len(top) == maxK && k >= keys[top[maxK-1]] {
			continue
		}
		at := len(top)
		for at > 0 && keys[top[at-1]] > k {
			at--
		}
		top = slices.Insert(top, at, j)
		if len(top) > maxK {
			top = top[:maxK]
		}
	}
	cum := make([]int, maxK)
	c := 0
	for r := range maxK {
		if r < len(top) && relevant(top[r]) {
			c++
		}
		cum[r] = c
	}
	return first, cum
}

// rankKey orders probe i's targets as the executor does: lower is better.
func (p *planned) rankKey(i int, tvecs []float32, ids []uint32) func(j int) float64 {
	pr, m, dim := p.probes[i], p.tm.Metric, p.tm.Dim
	return func(j int) float64 {
		d := m.Distance(pr.vec, tvecs[j*dim:(j+1)*dim])
		if !pr.dehubs() {
			return float64(d)
		}
		s, _ := m.Score(d)
		return float64(pr.calib.penalty(ids[j])) - float64(s)
	}
}
