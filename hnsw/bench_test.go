package hnsw

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Micro-benchmarks of the engine on a 20k x 128 clustered set. The full
// sweep (100k x 128, 50k x 512, sift5k, with recall) is
// `go run ./cmd/mmdb-bench`.
//
//	go test -run '^$' -bench . ./hnsw

var (
	benchOnce  sync.Once
	benchGraph *HNSW
	benchData  [][]float32
)

func benchSetup(b *testing.B) (*HNSW, [][]float32) {
	benchOnce.Do(func() {
		benchData = clustered(21000, 128, 200, 21)
		benchGraph = NewHNSW(128, modality.Cosine, Config{Seed: 1})
		ids := make([]uint32, 20000)
		for i := range ids {
			ids[i] = uint32(i)
		}
		if err := AddParallel(context.Background(), benchGraph, ids, benchData[:20000], 0, nil); err != nil {
			panic(err)
		}
	})
	return benchGraph, benchData[20000:]
}

func BenchmarkSearch(b *testing.B) {
	g, qs := benchSetup(b)
	for _, ef := range []int{16, 64} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			i := 0
			for b.Loop() {
				g.Search(qs[i%len(qs)], 10, SearchOptions{Ef: ef})
				i++
			}
		})
	}
}

func BenchmarkInsert(b *testing.B) {
	data := clustered(5000, 128, 50, 23)
	g := NewHNSW(128, modality.Cosine, Config{Seed: 1})
	i := 0
	for b.Loop() {
		g.Add(uint32(i), data[i%len(data)])
		i++
	}
}

// BenchmarkAllowList: allow-lists keeping 1%, 10% and 50% of the items,
// with recall@10 against exact filtered search reported beside the time,
// and the exact filtered scan for comparison.
func BenchmarkAllowList(b *testing.B) {
	g, qs := benchSetup(b)
	flat := NewFlat(128, modality.Cosine)
	fill(b, flat, benchData[:20000])
	for _, share := range []int{1, 10, 50} {
		allow := roaring.New()
		for i := range 20000 {
			if i%100 < share {
				allow.Add(uint32(i))
			}
		}
		for _, ef := range []int{16, 64} {
			b.Run(fmt.Sprintf("allowed=%d%%/hnsw/ef=%d", share, ef), func(b *testing.B) {
				opts := SearchOptions{Ef: ef, Allow: allow}
				i := 0
				for b.Loop() {
					g.Search(qs[i%len(qs)], 10, opts)
					i++
				}
				b.ReportMetric(recallAt(g, flat, qs[:200], 10, opts), "recall@10")
			})
		}
		b.Run(fmt.Sprintf("allowed=%d%%/exact", share), func(b *testing.B) {
			i := 0
			for b.Loop() {
				flat.Search(qs[i%len(qs)], 10, SearchOptions{Allow: allow})
				i++
			}
		})
	}
}

// TestInsertMakesNoGarbage: once a graph has room for its nodes (Reserve,
// as bulk loads do) and its searchers and check arrays have grown, an
// insert allocates nothing, so a build's heap is its graph and no more
// (BENCHMARKS.md, fifth round: the build's resident peak).
func TestInsertMakesNoGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	data := clustered(6000, 32, 20, 71)
	g := NewHNSW(32, modality.L2, Config{Seed: 1, EfConstruction: 64})
	require.NoError(t, g.Add(0, data[0]))
	require.True(t, g.Reserve(len(data)))
	for i := 1; i < 3000; i++ {
		require.NoError(t, g.Add(uint32(i), data[i]))
	}
	next := 3000
	allocs := testing.AllocsPerRun(2000, func() {
		if err := g.Add(uint32(next), data[next]); err != nil {
			t.Fatal(err)
		}
		next++
	})
	// The ID map grows a few times over the run: under one allocation an
	// insert on average.
	assert.Less(t, allocs, 1.0)
}
