package mmdb

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
)

// BenchmarkFilteredPlanner: the planner's own choice on BenchmarkFiltered's
// 100k x 128 set, at ef 16 and 64, with filters that ignore where vectors
// lie (sel) and filters that keep whole clusters (cl: the query's own
// cluster is allowed in about the filter's share of queries, and
// otherwise the closest allowed vectors lie in other clusters). Besides
// the time, it reports the share of searches the planner walked the graph
// for, the shares of those walks done again as exact scans (Plan.Rescans)
// and as wider walks (Plan.Rewalks), the planner's recall@10 against the
// exact scan, and the first walk's alone (what the planner answered
// before it checked walks). Builds for about a
// minute first:
//
//	GOMAXPROCS=1 go test -run '^$' -bench FilteredPlanner -benchtime 1000x -timeout 30m .
func BenchmarkFilteredPlanner(b *testing.B) {
	db, qs, _ := filteredSet(b)
	db.opts.ExactCutoff = 0
	for _, filter := range []string{"", "sel < 100", "sel < 500", "cl < 100", "cl < 500"} {
		for _, ef := range []int{16, 64} {
			b.Run(fmt.Sprintf("filter=%q/ef=%d", filter, ef), func(b *testing.B) {
				q := func(i int) Query {
					return Query{Target: "v", K: 10, Ef: ef, NoAttrs: true, Filter: parseOrNil(filter), Probes: []Probe{{Modality: "v", Vector: qs[i%len(qs)]}}}
				}
				i := 0
				start := processCPU()
				for b.Loop() {
					if _, err := db.Search(ctx, q(i)); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(i), "cpu-µs/query")
				var walked, rescans, rewalks int
				var recall, walkRecall float64
				for i := range qs {
					plan, _, err := db.ExplainAnalyze(ctx, q(i))
					if err != nil {
						b.Fatal(err)
					}
					recall += plan.Recall
					if plan.Strategy != StrategyHNSW {
						continue
					}
					walked++
					rescans += plan.Rescans
					rewalks += plan.Rewalks
					p, err := db.plan(ctx, q(i), false)
					if err != nil {
						b.Fatal(err)
					}
					want := p.tidx.Search(qs[i], 10, hnsw.SearchOptions{Exact: true, Allow: p.allow})
					got := p.tidx.Search(qs[i], 10, hnsw.SearchOptions{Ef: p.plan.Ef, Allow: p.allow})
					for _, w := range want {
						for _, g := range got {
							if g.ID == w.ID {
								walkRecall += 0.1
								break
							}
						}
					}
				}
				b.ReportMetric(recall/float64(len(qs)), "recall@10")
				b.ReportMetric(float64(walked)/float64(len(qs)), "walked")
				if walked > 0 {
					b.ReportMetric(float64(rescans)/float64(walked), "rescanned")
					b.ReportMetric(float64(rewalks)/float64(walked), "walked-again")
					b.ReportMetric(walkRecall/float64(walked), "walk-recall@10")
				}
			})
		}
	}
}

// BenchmarkRecheckCost measures what walkChecked's choice between a scan
// and a wider walk weighs, on BenchmarkFiltered's set, one thread: for
// each filter and ef, the candidates of the first walk and of one
// rewalkWidth times as wide, and the CPU time of each and of the exact
// scan, per query (5 runs of each of 200 queries). rescanPerCandidate is
// the wider walk's time per first candidate over the scan's per allowed
// vector:
//
//	GOMAXPROCS=1 go test -run '^$' -bench RecheckCost -benchtime 1x -timeout 30m .
func BenchmarkRecheckCost(b *testing.B) {
	db, qs, _ := filteredSet(b)
	for _, filter := range []string{"sel < 100", "cl < 20", "cl < 100", "cl < 500"} {
		for _, ef := range []int{16, 64} {
			b.Run(fmt.Sprintf("filter=%q/ef=%d", filter, ef), func(b *testing.B) {
				for b.Loop() {
					var cands, wideCands, walk, wide, scan float64
					var allowed int
					for _, v := range qs {
						p, err := db.plan(ctx, Query{Target: "v", K: 10, Ef: ef, NoAttrs: true, Filter: parseOrNil(filter), Probes: []Probe{{Modality: "v", Vector: v}}}, false)
						if err != nil {
							b.Fatal(err)
						}
						allowed = p.plan.FilterMatches
						timed := func(opts hnsw.SearchOptions) float64 {
							start := processCPU()
							for range 5 {
								p.tidx.Search(v, 10, opts)
							}
							return (processCPU() - start).Seconds() / 5
						}
						var ws, ws8 hnsw.WalkStats
						walk += timed(hnsw.SearchOptions{Ef: ef, Allow: p.allow, Walk: &ws})
						wide += timed(hnsw.SearchOptions{Ef: rewalkWidth * ef, Allow: p.allow, Walk: &ws8})
						scan += timed(hnsw.SearchOptions{Exact: true, Allow: p.allow})
						cands += float64(ws.Candidates)
						wideCands += float64(ws8.Candidates)
					}
					n := float64(len(qs))
					b.ReportMetric(cands/n, "candidates")
					b.ReportMetric(wideCands/n, "wide-candidates")
					b.ReportMetric(1e6*walk/n, "walk-µs")
					b.ReportMetric(1e6*wide/n, "wide-µs")
					b.ReportMetric(1e6*scan/n, "scan-µs")
					b.ReportMetric((wide/cands)/(scan/n/float64(allowed)), "scanned-per-candidate")
				}
			})
		}
	}
}

// BenchmarkCutoffFit fits hnsw.ExactCost at the database's level, on
// BenchmarkFiltered's set, one thread: for filters that ignore where
// vectors lie, keeping 5% to 50%, at ef 16 and 64, the CPU time of a
// search by each strategy (forced through Options.ExactCutoff, in 3
// rounds of 400 queries, alternating which goes first), and the constant
// C at which sqrt(C * ef * n) would put the crossover here, taking the
// scan's cost as linear in the allowed count and the walk's as inverse:
// allowed^2 / (ef * n) * walk / scan.
//
//	GOMAXPROCS=1 go test -run '^$' -bench CutoffFit -benchtime 1x -timeout 30m .
func BenchmarkCutoffFit(b *testing.B) {
	db, qs, _ := filteredSet(b)
	defer func() { db.opts.ExactCutoff = 0 }()
	for _, keep := range []int{50, 100, 200, 300, 500} { // per mille
		for _, ef := range []int{16, 64} {
			b.Run(fmt.Sprintf("keep=%.0f%%/ef=%d", float64(keep)/10, ef), func(b *testing.B) {
				for b.Loop() {
					queries := make([]Query, 400)
					for i := range queries {
						queries[i] = Query{Target: "v", K: 10, Ef: ef, NoAttrs: true, Filter: parseOrNil(fmt.Sprintf("sel < %d", keep)), Probes: []Probe{{Modality: "v", Vector: qs[i%len(qs)]}}}
					}
					cpu := strategyCPU(b, db, filteredN, queries)
					allowed := float64(keep) * filteredN / 1000
					b.ReportMetric(1e6*cpu[0], "scan-µs")
					b.ReportMetric(1e6*cpu[1], "walk-µs")
					b.ReportMetric(allowed*allowed/(float64(ef)*filteredN)*cpu[1]/cpu[0], "C")
				}
			})
		}
	}
}

// BenchmarkSetCutoffFit is BenchmarkCutoffFit for a set (multi-vector)
// index, whose filtered walks are checked since the eleventh round: 25,000
// sets of 4 vectors (64-d, cosine, MaxSim, around 500 centres), filters
// that ignore where vectors lie (5% to 50% of the sets), queried by one
// vector and by sets of 4, at ef 16 and 64. It reports each strategy's
// CPU time a search (3 rounds of 200 queries, alternating) and the
// constant C of setCutoff, in vectors: allowed vectors^2 / (ef * vectors)
// * walk / scan.
//
//	GOMAXPROCS=1 go test -run '^$' -bench SetCutoffFit -benchtime 1x -timeout 30m .
func BenchmarkSetCutoffFit(b *testing.B) {
	const sets, size, dim = 25_000, 4, 64
	db, _ := openTest(b, Modality{Name: "v", Dim: dim, Metric: Cosine, Multi: MaxSim})
	r := rand.New(rand.NewPCG(12, 12))
	centres := make([][]float32, 500)
	for i := range centres {
		centres[i] = randVec(r, dim)
	}
	around := func(c int) []float32 {
		v := randVec(r, dim)
		for j := range v {
			v[j] = centres[c][j] + 0.6*v[j]
		}
		return v
	}
	draw := func(n int) []float32 {
		c := r.IntN(len(centres))
		var out []float32
		for range n {
			out = append(out, around(c)...)
		}
		return out
	}
	for start := 0; start < sets; start += 5_000 {
		items := make([]Item, 5_000)
		for i := range items {
			id := start + i
			items[i] = Item{ID: fmt.Sprint(id), Attrs: map[string]any{"sel": id % 1000}, Vectors: map[string][]float32{"v": draw(size)}}
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	defer func() { db.opts.ExactCutoff = 0 }()
	for _, nq := range []int{1, 4} {
		qs := make([][]float32, 200)
		for i := range qs {
			qs[i] = draw(nq)
		}
		for _, keep := range []int{50, 100, 200, 500} { // per mille
			for _, ef := range []int{16, 64} {
				b.Run(fmt.Sprintf("query=%d/keep=%.0f%%/ef=%d", nq, float64(keep)/10, ef), func(b *testing.B) {
					for b.Loop() {
						queries := make([]Query, len(qs))
						for i, q := range qs {
							queries[i] = Query{Target: "v", K: 10, Ef: ef, NoAttrs: true, Filter: parseOrNil(fmt.Sprintf("sel < %d", keep)), Probes: []Probe{{Modality: "v", Vector: q}}}
						}
						cpu := strategyCPU(b, db, sets, queries)
						// How often the forced walk was done again (not timed).
						db.opts.ExactCutoff = 1
						var again [2]int
						for _, sq := range queries {
							plan, _, err := db.ExplainAnalyze(ctx, sq)
							if err != nil {
								b.Fatal(err)
							}
							again[0] += plan.Rescans
							again[1] += plan.Rewalks
						}
						b.ReportMetric(float64(again[0])/float64(len(qs)), "rescanned")
						b.ReportMetric(float64(again[1])/float64(len(qs)), "rewalked")
						allowed := float64(keep) * sets * size / 1000 // vectors
						b.ReportMetric(1e6*cpu[0], "scan-µs")
						b.ReportMetric(1e6*cpu[1], "walk-µs")
						b.ReportMetric(allowed*allowed/(float64(ef)*sets*size)*cpu[1]/cpu[0], "C")
					}
				})
			}
		}
	}
}

// strategyCPU runs queries on db by each strategy, forced through
// Options.ExactCutoff (n is the index's size in items), in 3 rounds that
// alternate which goes first, and returns the CPU seconds a query of the
// scan and of the walk.
func strategyCPU(b *testing.B, db *DB, n int, queries []Query) (cpu [2]float64) {
	for round := range 3 {
		for j := range 2 {
			k := (j + round) % 2 // 0 the scan, 1 the walk
			db.opts.ExactCutoff = map[int]int{0: n + 1, 1: 1}[k]
			start := processCPU()
			for _, q := range queries {
				if _, err := db.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			cpu[k] += (processCPU() - start).Seconds() / float64(3*len(queries))
		}
	}
	return cpu
}
