package hnsw

import "math"

// ExactCost is the constant of the cost model that chooses between a
// filtered graph walk and an exact scan: the graph, walked with an
// allow-list keeping a share s of n vectors, visits about ef/s nodes, each
// with M neighbours to score, while the exact scan scores the allowed
// vectors once each. The two cost the same near
// allowed = sqrt(ExactCost * ef * n). Fitted to the ninth round's filtered
// sweeps on Zen 4 (BENCHMARKS.md, "The planner's cutoff"): the constant at
// which graph and scan took the same time was 10-22 on synth100k (100k x
// 128) and 6-20 on sift5k over ef 10-512 at 1%, 10% and 50% allowed,
// median about 16. It puts the crossover at 10k vectors for 100k at ef 64,
// 5k at ef 16.
//
// It is a speed model only: a walk whose filter keeps vectors away from
// the query can miss the closest of them, which the planner catches with
// WalkStats.Confident and answers by a scan. An index of at most
// SmallIndex * ef vectors is scanned whatever the filter (ExactCutoff).
const ExactCost = 16

// SmallIndex sets the size, SmallIndex * ef vectors, up to which
// ExactCutoff scans every search: 6,400 vectors at ef 64. A scan of them
// costs a few walks (at most about 60 µs at 128-d), is exact, and small
// sets are where filtered walks lost the most recall (0.50 on 5,000 x 96,
// BENCHMARKS.md's third round).
const SmallIndex = 100

// ExactCostSourced is ExactCost for a graph that reads its vectors back
// from a Config.Source that scans (the database's LowMemory mode): a scan
// then reads each vector through a cursor over the file. On sift5k (4,900
// x 128) an exact top 10 took 1.46 ms that way against 0.17 ms over
// vectors held in memory, 8.6x (BenchmarkLowMemory at ef 64, where the
// planner scanned: the root package), which this constant follows.
const ExactCostSourced = 2

// SmallIndexSourced is SmallIndex for a graph with a Config.Source.
const SmallIndexSourced = 12

// ExactCutoff is the number of allowed vectors, out of n, at or below
// which the planner scans exactly rather than walk the graph with beam
// ef: all n when n <= SmallIndex * ef, else where the scan costs less
// (ExactCost).
func ExactCutoff(ef, n int) int {
	return cutoff(ef, n, ExactCost, SmallIndex)
}

// ExactCutoffSourced is ExactCutoff for a graph with a Config.Source.
func ExactCutoffSourced(ef, n int) int {
	return cutoff(ef, n, ExactCostSourced, SmallIndexSourced)
}

func cutoff(ef, n int, cost, small float64) int {
	if float64(n) <= small*float64(ef) {
		return n
	}
	return int(math.Sqrt(cost * float64(ef) * float64(n)))
}
