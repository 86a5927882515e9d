package hnsw

import "math"

// ExactCost is the constant of the cost model that chooses between a
// filtered graph walk and an exact scan: the graph, walked with an
// allow-list keeping a share s of n vectors, visits about ef/s nodes, each
// with M neighbours to score, while the exact scan scores the allowed
// vectors once each. The two cost the same near
// allowed = sqrt(ExactCost * ef * n). On 100k x 128 at ef 64 the crossover
// measured between 10% and 50% allowed (the root package's
// BenchmarkFiltered: exact 0.96 ms vs graph 1.83 ms at 10%; 2.14 ms vs
// 0.93 ms at 50%), which this constant puts at 25k.
const ExactCost = 100

// ExactCostSourced is ExactCost for a graph that reads its vectors back
// from a Config.Source that scans (the database's LowMemory mode): a scan
// then reads each vector through a cursor over the file. On sift5k (4,900
// x 128) an exact top 10 took 1.46 ms that way against 0.17 ms over
// vectors held in memory, 8.6x (BenchmarkLowMemory at ef 64, where the
// planner scanned: the root package), which this constant follows.
const ExactCostSourced = 12

// ExactCutoff is the number of allowed vectors, out of n, at or below
// which an exact scan costs less than a graph walk with beam ef.
func ExactCutoff(ef, n int) int {
	return int(math.Sqrt(float64(ExactCost) * float64(ef) * float64(n)))
}

// ExactCutoffSourced is ExactCutoff for a graph with a Config.Source.
func ExactCutoffSourced(ef, n int) int {
	return int(math.Sqrt(float64(ExactCostSourced) * float64(ef) * float64(n)))
}
