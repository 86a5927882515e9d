//go:build unix

package hnsw

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/require"
)

// BenchmarkIntScoring compares, on one graph walking on codes, the
// integer kernels (a 16-bit query against the byte codes, exact int32
// sums) with the float kernels they replaced (the float32 query against
// codes widened to floats). Each iteration is a round: the held-out
// queries once each way, the order alternating between rounds, timed in
// process CPU seconds (at least 2,000 queries each way). It reports the median and range of the rounds'
// ratios (float time over integer time: above 1, the integers are
// faster) and each way's recall@10 against exact search. Run it on one
// core, so the collector's work is counted on the same one:
//
//	go test -run '^$' -bench 'IntScoring$' -benchtime 20x -cpu 1 ./hnsw
//
// BenchmarkIntScoringBuild does the same for one-thread builds.
func BenchmarkIntScoring(b *testing.B) {
	sets := withSIFT5k(b)
	c128 := clustered(40500, 128, 400, 43)
	sets = append(sets, benchSet{"clustered40k-128-cosine", modality.Cosine, c128[:40000], c128[40000:]})
	c512 := clustered(20500, 512, 200, 44)
	sets = append(sets, benchSet{"clustered20k-512-l2", modality.L2, c512[:20000], c512[20000:]})
	defer func() { intScoring = true }()
	for _, s := range sets {
		g := NewHNSW(len(s.base[0]), s.metric, Config{Seed: 1})
		ids := make([]uint32, len(s.base))
		for i := range ids {
			ids[i] = uint32(i)
		}
		require.NoError(b, AddParallel(context.Background(), g, ids, s.base, 0, nil))
		g.outgrown.Store(true) // walk on codes, as past cacheWalkBytes
		truth := exactIDs(s.metric, s.base, s.qs)
		for _, ef := range []int{16, 64} {
			b.Run(fmt.Sprintf("%s/ef=%d", s.name, ef), func(b *testing.B) {
				reps := max(1, 2000/len(s.qs)) // rounds long enough for the CPU clock
				var ratios []float64
				var hits [2]int
				round := 0
				for b.Loop() {
					var took [2]float64
					for i := range 2 {
						v := (i + round) % 2 // 0 integers, 1 floats
						intScoring = v == 0
						start := cpuNow()
						for range reps {
							for q, qv := range s.qs {
								for _, r := range g.Search(qv, 10, SearchOptions{Ef: ef}) {
									if slices.Contains(truth[q], r.ID) {
										hits[v]++
									}
								}
							}
						}
						took[v] = (cpuNow() - start).Seconds()
					}
					ratios = append(ratios, took[1]/took[0])
					round++
				}
				reportRatios(b, ratios)
				for v, name := range []string{"int", "float"} {
					b.ReportMetric(float64(hits[v])/float64(10*len(s.qs)*round*reps), name+"-recall")
				}
			})
		}
	}
}

// BenchmarkIntScoringBuild compares one-thread builds (Add, one vector at
// a time, walking on codes past the cache threshold) with the integer and
// the float kernels: each iteration builds the same set both ways, the
// order alternating, and the median and range of the rounds' CPU-time
// ratios (float over integer) are reported, with the recall@10 at ef 32
// of the graphs each kernel built.
//
//	go test -run '^$' -bench IntScoringBuild -benchtime 5x -cpu 1 ./hnsw
func BenchmarkIntScoringBuild(b *testing.B) {
	defer func() { intScoring = true }()
	for _, s := range []struct{ n, dim int }{{40000, 128}, {20000, 512}} {
		all := clustered(s.n+500, s.dim, s.n/100, 45)
		data, qs := all[:s.n], all[s.n:]
		truth := exactIDs(modality.L2, data, qs)
		b.Run(fmt.Sprintf("clustered%dk-%d-l2", s.n/1000, s.dim), func(b *testing.B) {
			var ratios []float64
			var hits [2]int
			round := 0
			for b.Loop() {
				var took [2]float64
				for i := range 2 {
					v := (i + round) % 2 // 0 integers, 1 floats
					intScoring = v == 0
					g := NewHNSW(s.dim, modality.L2, Config{Seed: 1})
					start := cpuNow()
					for j, x := range data {
						require.NoError(b, g.Add(uint32(j), x))
					}
					took[v] = (cpuNow() - start).Seconds()
					// The graph's quality, searched the same way (on the
					// integers) whichever kernel built it.
					intScoring = true
					for q, qv := range qs {
						for _, r := range g.Search(qv, 10, SearchOptions{Ef: 32}) {
							if slices.Contains(truth[q], r.ID) {
								hits[v]++
							}
						}
					}
				}
				ratios = append(ratios, took[1]/took[0])
				round++
			}
			reportRatios(b, ratios)
			for v, name := range []string{"int", "float"} {
				b.ReportMetric(float64(hits[v])/float64(10*len(qs)*round), name+"-built-recall")
			}
		})
	}
}

// reportRatios reports the median and range of the rounds' float/int
// time ratios.
func reportRatios(b *testing.B, ratios []float64) {
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "float/int")
	b.ReportMetric(ratios[0], "min")
	b.ReportMetric(ratios[len(ratios)-1], "max")
}
