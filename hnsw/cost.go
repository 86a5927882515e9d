package hnsw

import "math"

// ExactCost is the constant of the cost model that chooses between a
// filtered graph walk and an exact scan: the graph, walked with an
// allow-list keeping a share s of n vectors, visits about ef/s nodes, each
// with M neighbours to score, while the exact scan scores the allowed
// vectors once each. The two cost the same near
// allowed = sqrt(ExactCost * ef * n). Fitted at ef 64 on the bench's
// filtered sweeps (`go run ./cmd/mmdb-bench --data synth100k,sift5k
// --engines hnsw --ef 64 --filter-ef 32,64 --filters 1,5,10,20,50`), where
// the scan and the graph cost the same between 5% and 10% allowed of
// synth100k (C 8.8) and between 20% and 50% of sift5k (C 15): 12 puts the
// cutoff at 8.8% and 40%, on the right side of every measured share.
// (It was 100, from a scan that tested the allow-list in the bitmap for
// every slot and scored one row a call: at 10% of 100k that chose the
// scan, which was then 2x slower than the graph.)
const ExactCost = 12

// ExactCutoff is the number of allowed vectors, out of n, at or below
// which an exact scan costs less than a graph walk with beam ef.
func ExactCutoff(ef, n int) int {
	return int(math.Sqrt(float64(ExactCost) * float64(ef) * float64(n)))
}
