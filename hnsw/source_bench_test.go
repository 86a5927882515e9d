package hnsw

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/require"
)

// BenchmarkRescoreReads counts the vectors a search of a graph without
// them (Config.Source) reads back to re-score, per query, and reports
// recall@10 against exact search: sift5k (when ../shared/data has it) and
// 20,000 clustered 128-d vectors under L2 and cosine, at ef 16 to 64. The
// counts and recalls are deterministic; the time a read costs is in
// BenchmarkLowMemory (root package).
//
//	go test -run '^$' -bench RescoreReads -benchtime 1x ./hnsw
func BenchmarkRescoreReads(b *testing.B) {
	sets := withSIFT5k(b)
	c := clustered(20500, 128, 200, 3)
	sets = append(sets, benchSet{"clustered20k-l2", modality.L2, c[:20000], c[20000:]},
		benchSet{"clustered20k-cosine", modality.Cosine, c[:20000], c[20000:]})
	for _, s := range sets {
		g := newSourced(len(s.base[0]), s.metric, Config{Seed: 3})
		fill(b, g, s.base)
		truth := exactIDs(s.metric, s.base, s.qs)
		for _, ef := range []int{16, 24, 32, 64} {
			b.Run(fmt.Sprintf("%s/ef=%d", s.name, ef), func(b *testing.B) {
				for b.Loop() {
					g.src.reads = 0
					hits := 0
					for i, q := range s.qs {
						for _, r := range g.Search(q, 10, SearchOptions{Ef: ef}) {
							if slices.Contains(truth[i], r.ID) {
								hits++
							}
						}
					}
					b.ReportMetric(float64(g.src.reads)/float64(len(s.qs)), "reads/query")
					b.ReportMetric(float64(hits)/float64(10*len(s.qs)), "recall")
				}
			})
		}
	}
}

// benchSet is a base and its held-out queries under a metric.
type benchSet struct {
	name     string
	metric   modality.Metric
	base, qs [][]float32
}

// withSIFT5k returns sift5k from ../shared/data as the first set, or no
// set (and a note in the log) when it is absent.
func withSIFT5k(b *testing.B) []benchSet {
	base, err := dataset.ReadVecs("../../shared/data/sift5k/sift5k_base4900.fvecs")
	if err != nil {
		b.Logf("sift5k not found (%v): it is in ../shared/data beside the repository; running the synthetic sets only", err)
		return nil
	}
	qs, err := dataset.ReadVecs("../../shared/data/sift5k/sift5k_query100.fvecs")
	require.NoError(b, err)
	return []benchSet{{"sift5k", modality.L2, base, qs}}
}
