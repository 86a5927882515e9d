//go:build unix

package hnsw

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// BenchmarkMultiVector measures late interaction (MaxSim) through the
// index against the exact scan, on generated data: 10,000 items of 16
// vectors of 64-d (160,000 vectors), and 200 queries of 8 vectors. In
// "topics" each item's vectors are scattered widely around a topic of its
// own, the topics around 200 themes, and a query is drawn as an unseen
// item is; in "uniform" every vector is drawn alone, uniformly on the
// sphere, so no set stands out and MaxSim differences are noise: the hard
// case for finding candidates. Building takes about a minute a data set on
// two cores and is not timed:
//
//	go test -run '^$' -bench '^BenchmarkMultiVector$' -benchtime 5x ./hnsw
//
// One op is one round: the 200 queries by exact scan, then through the
// graph at each ef, one thread (GOMAXPROCS 1), each timed in the
// process's CPU time. It logs, per ef, recall@10 against the exact top 10
// and the median and range of the rounds' speed-ups (exact CPU time over
// graph CPU time), and reports those of ef 64.
func BenchmarkMultiVector(b *testing.B) {
	for _, kind := range []string{"topics", "uniform"} {
		b.Run(kind, func(b *testing.B) { benchMulti(b, kind) })
	}
}

func benchMulti(b *testing.B, kind string) {
	const dim, per, nq, k = 64, 16, 8, 10
	idx, queries := multiBenchSetup(kind, dim, per, nq)
	efs := []int{16, 32, 64, 128}
	exact := make([][]uint32, len(queries))
	for i, q := range queries {
		exact[i] = ids(idx.Search(q, k, SearchOptions{Exact: true}))
	}
	recall := make([]float64, len(efs))
	for j, ef := range efs {
		hit := 0
		for i, q := range queries {
			for _, id := range ids(idx.Search(q, k, SearchOptions{Ef: ef})) {
				if slices.Contains(exact[i], id) {
					hit++
				}
			}
		}
		recall[j] = float64(hit) / float64(k*len(queries))
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ratios := make([][]float64, len(efs))
	var scans []float64
	b.ResetTimer()
	for range b.N {
		start := cpuNow()
		for _, q := range queries {
			idx.Search(q, k, SearchOptions{Exact: true})
		}
		scan := cpuNow() - start
		for j, ef := range efs {
			start = cpuNow()
			for _, q := range queries {
				idx.Search(q, k, SearchOptions{Ef: ef})
			}
			ratios[j] = append(ratios[j], float64(scan)/float64(cpuNow()-start))
		}
		scans = append(scans, float64(scan)/float64(time.Millisecond)/float64(len(queries)))
	}
	b.StopTimer()
	slices.Sort(scans)
	b.Logf("exact scan: %.1f ms a query (median of %d rounds, CPU time)", scans[len(scans)/2], len(scans))
	for j, ef := range efs {
		r := slices.Clone(ratios[j])
		slices.Sort(r)
		b.Logf("ef %3d: recall@10 %.3f, speed-up over the exact scan %.2fx (range %.2f-%.2f, %d rounds)", ef, recall[j], r[len(r)/2], r[0], r[len(r)-1], len(r))
		if ef == 64 {
			b.ReportMetric(recall[j], "recall@10")
			b.ReportMetric(r[len(r)/2], "x-exact")
		}
	}
}

var (
	multiBenchMu  sync.Mutex
	multiBenchIdx = map[string]*Multi{}
	multiBenchQs  = map[string][][]float32{}
)

func multiBenchSetup(kind string, dim, per, nq int) (*Multi, [][]float32) {
	multiBenchMu.Lock()
	defer multiBenchMu.Unlock()
	if multiBenchIdx[kind] == nil {
		const items, themes, queries = 10_000, 200, 200
		r := rand.New(rand.NewPCG(17, 17))
		gauss := func(c []float32, s float64) []float32 {
			v := make([]float32, dim)
			for i := range v {
				v[i] = float32(r.NormFloat64() * s)
				if c != nil {
					v[i] += c[i]
				}
			}
			return v
		}
		theme := make([][]float32, themes)
		for i := range theme {
			theme[i] = gauss(nil, 1)
		}
		set := func(n int) []float32 {
			topic := gauss(theme[r.IntN(themes)], 0.5)
			if kind == "uniform" {
				topic = make([]float32, dim)
			}
			out := make([]float32, 0, n*dim)
			for range n {
				v := gauss(topic, 1.5)
				kernel.Normalize(v)
				out = append(out, v...)
			}
			return out
		}
		idx := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 1})
		ids := make([]uint32, items)
		vecs := make([][]float32, items)
		for i := range ids {
			ids[i], vecs[i] = uint32(i), set(per)
		}
		if err := AddParallel(context.Background(), idx, ids, vecs, 0, nil); err != nil {
			panic(err)
		}
		multiBenchIdx[kind] = idx
		for range queries {
			multiBenchQs[kind] = append(multiBenchQs[kind], set(nq))
		}
	}
	return multiBenchIdx[kind], multiBenchQs[kind]
}

// cpuNow is the CPU time this process has used, user plus system.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
