package hnsw

import "math"

// ExactCost is the constant of the cost model that chooses between a
// filtered graph walk and an exact scan: the graph, walked with an
// allow-list keeping a share s of n vectors, visits about ef/s nodes, each
// with M neighbours to score, while the exact scan scores the allowed
// vectors once each. The two cost the same near
// allowed = sqrt(ExactCost * ef * n). Fitted where the planner uses it,
// through the database (the root package's BenchmarkCutoffFit: filter,
// plan and search, one thread, on 100k x 128): the constant at the
// crossover was 34-47 at ef 16 (between 5% and 10% allowed) and 30-32 at
// ef 64 (between 10% and 20%). It puts the crossover at 14k vectors for
// 100k at ef 64, 7k at ef 16. (The index alone, without the filter's
// evaluation and the plan, crossed over at 10-22, the ninth round's
// sweeps.)
//
// It is a speed model only: a walk whose filter keeps vectors away from
// the query can miss the closest of them, which the planner catches with
// WalkStats.Confident and answers by a scan. An index of at most
// SmallIndex * ef vectors is scanned whatever the filter (ExactCutoff).
const ExactCost = 32

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
// planner scanned: the root package), which this constant follows
// (32 / 8.6).
const ExactCostSourced = 4

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
