package hnsw

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/require"
)

// BenchmarkWalk compares, on one graph of 100k x 128 (1,000 clusters,
// larger than the CPU's last-level cache as float32), variants of the
// search walk (walkVariants). The variants take turns in blocks of 100
// queries, so a noisy neighbour slows them alike, and the result is each
// variant's mean time per query and its ratio to the first; recall@10
// against brute force is reported beside. Building the graph takes about
// half a minute:
//
//	go test -run '^$' -bench '^BenchmarkWalk$' -benchtime 40x ./hnsw
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
		walkTruth = exactIDs(modality.Cosine, data[:n], walkQs)
	})
}

// exactIDs returns, per query, the IDs (row numbers of base) of its exact
// top 10.
func exactIDs(m modality.Metric, base, qs [][]float32) [][]uint32 {
	flat := NewFlat(len(base[0]), m)
	for i, v := range base {
		flat.Add(uint32(i), v)
	}
	out := make([][]uint32, len(qs))
	for i, q := range qs {
		for _, r := range flat.Search(q, 10, SearchOptions{}) {
			out[i] = append(out[i], r.ID)
		}
	}
	return out
}

// walkVariant is one way of walking a graph: g is the graph itself or a
// copy of it.
type walkVariant struct {
	name string
	g    *HNSW
}

// walkVariants: the walk on byte codes (g itself, or a copy of it made to
// walk on codes if its vectors are small enough to walk on float32), and
// the float32 walk on the same links, vectors and entry point: g saved and
// loaded into a Float32Walk graph, which drops the codes. Both prefetch
// when the vectors outgrow the cache. (The walk without prefetching, the
// third column of BENCHMARKS.md's table, was measured with a switch since
// removed from the engine.)
func walkVariants(b *testing.B, g *HNSW) []walkVariant {
	codes := g
	if !g.walksOnCodes() {
		codes = reload(b, g, Config{})
		codes.outgrown.Store(true)
	}
	return []walkVariant{{"u8", codes}, {"f32", reload(b, g, Config{Float32Walk: true})}}
}

// reload returns g saved and loaded into a fresh graph of config cfg: the
// same nodes and links, with byte codes (recomputed if g had none) unless
// cfg sets Float32Walk.
func reload(b *testing.B, g *HNSW, cfg Config) *HNSW {
	var buf bytes.Buffer
	require.NoError(b, g.Save(&buf))
	c := NewHNSW(g.Dim(), g.Metric(), cfg)
	require.NoError(b, c.Load(&buf))
	return c
}

func benchWalk(b *testing.B, g *HNSW, qs [][]float32, truth [][]uint32, efs []int) {
	vs := walkVariants(b, g)
	for _, ef := range efs {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			took := make([]time.Duration, len(vs))
			hits := make([]int, len(vs))
			n, next := 0, 0
			for b.Loop() {
				for v, vr := range vs {
					start := time.Now()
					for i := range 100 {
						q := (next + i) % len(qs)
						for _, r := range vr.g.Search(qs[q], 10, SearchOptions{Ef: ef}) {
							for _, t := range truth[q] {
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
			for v, vr := range vs {
				us := float64(took[v].Microseconds()) / float64(n)
				b.ReportMetric(us, vr.name+"-µs/q")
				b.ReportMetric(float64(hits[v])/float64(10*n), vr.name+"-recall")
				if v > 0 {
					b.ReportMetric(float64(took[v])/float64(took[0]), vr.name+"/"+vs[0].name)
				}
			}
		})
	}
}

func BenchmarkWalk(b *testing.B) {
	walkSetup()
	benchWalk(b, walkGraph, walkQs, walkTruth, []int{16, 32, 64})
}

// BenchmarkWalkSIFT is BenchmarkWalk on sift5k (L2; 4,900 x 128, which
// fits in cache): what the codes cost where memory is not the bottleneck.
//
//	go test -run '^$' -bench '^BenchmarkWalkSIFT$' -benchtime 40x ./hnsw
func BenchmarkWalkSIFT(b *testing.B) {
	dir := "../../shared/data/sift5k"
	base, err := dataset.ReadVecs(dir + "/sift5k_base4900.fvecs")
	if err != nil {
		b.Skipf("sift5k not found (%v): it is in ../shared/data beside the repository", err)
	}
	qs, err := dataset.ReadVecs(dir + "/sift5k_query100.fvecs")
	if err != nil {
		b.Fatal(err)
	}
	g := NewHNSW(128, modality.L2, Config{Seed: 1})
	for i, v := range base {
		require.NoError(b, g.Add(uint32(i), v))
	}
	benchWalk(b, g, qs, exactIDs(modality.L2, base, qs), []int{16, 64})
}

// BenchmarkBuildWalk builds the same 100k x 128 set twice, in turns of
// 10,000 inserts on every core: once walking on codes while inserting
// (the default), once on float32 vectors (Float32Walk). It reports each
// build's time (ratio to the first) and its recall@10 at ef 16 and 32,
// both searched on codes: the float32 build is saved and loaded into a
// default graph first, which quantizes its vectors, so the recall compares
// the links the two builds chose and not the walks.
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
	for b.Loop() {
		gs := []*HNSW{NewHNSW(128, modality.Cosine, Config{Seed: 1}), NewHNSW(128, modality.Cosine, Config{Seed: 1, Float32Walk: true})}
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
		gs[1] = reload(b, gs[1], Config{})
		for g, name := range names {
			b.ReportMetric(took[g].Seconds(), name+"-build-s")
			if g > 0 {
				b.ReportMetric(float64(took[g])/float64(took[0]), name+"/"+names[0])
			}
			for _, ef := range []int{16, 32} {
				rc := recallAt(gs[g], flat, data[n:], 10, SearchOptions{Ef: ef})
				b.ReportMetric(rc, fmt.Sprintf("%s-recall-ef%d", name, ef))
			}
		}
	}
}

// BenchmarkWalkSize measures where walking on float32 vectors stops paying
// (cacheWalkBytes): clustered 128-d sets of 4 to 32 MiB of float32, each
// graph searched in turns on byte codes with prefetching (as beyond the
// threshold) and on float32 vectors without (as below it), with recall@10
// against brute force beside.
//
//	go test -run '^$' -bench '^BenchmarkWalkSize$' -benchtime 20x ./hnsw
func BenchmarkWalkSize(b *testing.B) {
	for _, n := range []int{8192, 16384, 32768, 65536} {
		const nq = 500
		data := clustered(n+nq, 128, n/100, 41)
		g := NewHNSW(128, modality.Cosine, Config{Seed: 1})
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i)
		}
		require.NoError(b, AddParallel(context.Background(), g, ids, data[:n], 0, nil))
		qs := data[n:]
		truth := exactIDs(modality.Cosine, data[:n], qs)
		b.Run(fmt.Sprintf("MiB=%d", n*128*4>>20), func(b *testing.B) {
			var took [2]time.Duration
			var hits [2]int
			next, count := 0, 0
			for b.Loop() {
				for v, codes := range []bool{true, false} {
					g.outgrown.Store(codes)
					start := time.Now()
					for i := range 100 {
						q := (next + i) % len(qs)
						for _, r := range g.Search(qs[q], 10, SearchOptions{Ef: 32}) {
							for _, t := range truth[q] {
								if r.ID == t {
									hits[v]++
								}
							}
						}
					}
					took[v] += time.Since(start)
				}
				next += 100
				count += 100
			}
			for v, name := range []string{"codes", "f32"} {
				b.ReportMetric(float64(took[v].Microseconds())/float64(count), name+"-µs/q")
				b.ReportMetric(float64(hits[v])/float64(10*count), name+"-recall")
			}
			b.ReportMetric(float64(took[1])/float64(took[0]), "f32/codes")
		})
	}
}

// BenchmarkEncode times quantizing one vector into its row (encode: every
// insert, and every node when a graph is loaded from a file without
// codes or re-centred):
//
//	go test -run '^$' -bench Encode ./hnsw
func BenchmarkEncode(b *testing.B) {
	for _, dim := range []int{128, 512} {
		g := NewHNSW(dim, modality.L2, Config{})
		g.centre = make([]float32, dim)
		v := clustered(1, dim, 1, 1)[0]
		tmp, codes := make([]float32, dim), make([]uint8, dim)
		b.Run(fmt.Sprint(dim), func(b *testing.B) {
			for b.Loop() {
				g.encode(v, tmp, codes)
			}
		})
	}
}
