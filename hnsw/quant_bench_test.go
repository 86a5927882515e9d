package hnsw

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/modality"
)

// BenchmarkWalk compares, on one graph of 100k x 128 (1,000 clusters,
// larger than the CPU's last-level cache as float32), variants of the
// search walk. The variants take turns in blocks of 100 queries, so a noisy
// neighbour slows both alike, and the result is each variant's mean time
// per query and its ratio to the first; recall@10 against brute force is
// reported beside. Building the graph takes about half a minute:
//
//	go test -run '^$' -bench Walk -benchtime 20x ./hnsw
//
// One op is one round of 100 queries per variant.
var (
	walkOnce  sync.Once
	walkGraph *HNSW
	walkQs    [][]float32
	walkTruth [][]uint32
)

func walkSetup() {
	walkOnce.Do(func() {
		const n, nq = 100_000, 500
		data := clustered(n+nq, 128, 1000, 31)
		walkGraph = NewHNSW(128, modality.Cosine, Config{Seed: 1})
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i)
		}
		if err := AddParallel(context.Background(), walkGraph, ids, data[:n], 0, nil); err != nil {
			panic(err)
		}
		walkQs = data[n:]
		flat := NewFlat(128, modality.Cosine)
		for i, v := range data[:n] {
			flat.Add(uint32(i), v)
		}
		for _, q := range walkQs {
			var ids []uint32
			for _, r := range flat.Search(q, 10, SearchOptions{}) {
				ids = append(ids, r.ID)
			}
			walkTruth = append(walkTruth, ids)
		}
	})
}

type walkVariant struct {
	name string
	run  func(q []float32, ef int) []Result
}

func benchWalk(b *testing.B, variants []walkVariant) {
	walkSetup()
	for _, ef := range []int{16, 32, 64} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			took := make([]time.Duration, len(variants))
			hits := make([]int, len(variants))
			n, next := 0, 0
			for b.Loop() {
				for v, vr := range variants {
					start := time.Now()
					for i := range 100 {
						q := (next + i) % len(walkQs)
						for _, r := range vr.run(walkQs[q], ef) {
							for _, t := range walkTruth[q] {
								if r.ID == t {
									hits[v]++
								}
							}
						}
					}
					took[v] += time.Since(start)
				}
				next += 100
				n += 100
			}
			for v, vr := range variants {
				us := float64(took[v].Microseconds()) / float64(n)
				b.ReportMetric(us, vr.name+"-µs/q")
				b.ReportMetric(float64(hits[v])/float64(10*n), vr.name+"-recall")
				if v > 0 {
					b.ReportMetric(float64(took[v])/float64(took[0]), vr.name+"/"+variants[0].name)
				}
			}
		})
	}
}

func BenchmarkWalk(b *testing.B) {
	v := func(quant, pf bool) func(q []float32, ef int) []Result {
		return func(q []float32, ef int) []Result {
			prefetchOn = pf
			return walkGraph.search(q, 10, SearchOptions{Ef: ef}, quant)
		}
	}
	benchWalk(b, []walkVariant{{"u8", v(true, true)}, {"u8nopf", v(true, false)}, {"f32", v(false, true)}, {"f32nopf", v(false, false)}})
	prefetchOn = true
}

// BenchmarkBuildWalk builds the same 100k x 128 set twice, in turns of
// 10,000 inserts on every core: once walking on codes while inserting
// (the default), once on float32 vectors. It reports each build's time
// (ratio to the first) and its recall@10 at ef 16 and 32.
//
//	go test -run '^$' -bench BuildWalk -benchtime 1x ./hnsw
func BenchmarkBuildWalk(b *testing.B) {
	const n, nq, turn = 100_000, 500, 10_000
	data := clustered(n+nq, 128, 1000, 37)
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	flat := NewFlat(128, modality.Cosine)
	for i, v := range data[:n] {
		flat.Add(uint32(i), v)
	}
	truth := make([][]Result, nq)
	for i, q := range data[n:] {
		truth[i] = flat.Search(q, 10, SearchOptions{})
	}
	for b.Loop() {
		gs := []*HNSW{NewHNSW(128, modality.Cosine, Config{Seed: 1}), NewHNSW(128, modality.Cosine, Config{Seed: 1})}
		gs[1].f32Build = true
		names := []string{"u8", "f32"}
		took := make([]time.Duration, 2)
		for s := 0; s < n; s += turn {
			for g := range gs {
				start := time.Now()
				if err := AddParallel(context.Background(), gs[g], ids[s:s+turn], data[s:s+turn], 0, nil); err != nil {
					b.Fatal(err)
				}
				took[g] += time.Since(start)
			}
		}
		for g, name := range names {
			b.ReportMetric(took[g].Seconds(), name+"-build-s")
			if g > 0 {
				b.ReportMetric(float64(took[g])/float64(took[0]), name+"/"+names[0])
			}
			for _, ef := range []int{16, 32} {
				hit := 0
				for i, q := range data[n:] {
					for _, r := range gs[g].Search(q, 10, SearchOptions{Ef: ef}) {
						for _, t := range truth[i] {
							if r.ID == t.ID {
								hit++
							}
						}
					}
				}
				b.ReportMetric(float64(hit)/float64(10*nq), fmt.Sprintf("%s-recall-ef%d", name, ef))
			}
		}
	}
}
