package mmdb

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/query"
	bolt "go.etcd.io/bbolt"
)

// Benchmarks for the foundation. Run:
//
//	go test -run '^$' -bench . -benchtime 2s .
//
// Results and the commands that produced them are in BENCHMARKS.md.

func benchDB(b *testing.B, n, dim int) (*DB, [][]float32) {
	b.Helper()
	db, _ := openTest(b, Modality{Name: "v", Dim: dim, Metric: Cosine})
	r := rand.New(rand.NewPCG(9, 9))
	const batch = 10000
	for start := 0; start < n; start += batch {
		items := make([]Item, 0, batch)
		for i := start; i < min(n, start+batch); i++ {
			items = append(items, Item{ID: fmt.Sprintf("i%d", i), Vectors: map[string][]float32{"v": randVec(r, dim)}})
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	qs := make([][]float32, 64)
	for i := range qs {
		qs[i] = randVec(r, dim)
	}
	return db, qs
}

// BenchmarkSearchExact: one exact top-10 query over n vectors (ns/op is
// per query).
func BenchmarkSearchExact(b *testing.B) {
	for _, c := range []struct{ n, dim int }{{500, 512}, {100_000, 128}} {
		b.Run(fmt.Sprintf("%dx%d", c.n, c.dim), func(b *testing.B) {
			db, qs := benchDB(b, c.n, c.dim)
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: qs[i%len(qs)]}}, K: 10, Exact: true}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPut: items/s for batches of 1, 100 and 10,000 items of 512-d
// vectors, with the default fsync on every commit and with NoSync; also
// the file's bytes per item.
func BenchmarkPut(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, batch := range []int{1, 100, 10_000} {
			name := fmt.Sprintf("sync/batch=%d", batch)
			if noSync {
				name = fmt.Sprintf("nosync/batch=%d", batch)
			}
			b.Run(name, func(b *testing.B) {
				path := b.TempDir() + "/put.mmdb"
				db, err := Open(path, &Options{NoSync: noSync})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				if err := db.DefineModality(Modality{Name: "v", Dim: 512, Metric: Cosine}); err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(5, 5))
				pool := make([][]float32, 256)
				for i := range pool {
					pool[i] = randVec(r, 512)
				}
				next := 0
				items := make([]Item, batch)
				b.ResetTimer()
				for b.Loop() {
					for j := range items {
						items[j] = Item{ID: fmt.Sprintf("item-%09d", next), Attrs: map[string]any{"n": next},
							Vectors: map[string][]float32{"v": pool[next%len(pool)]}}
						next++
					}
					if err := db.Put(ctx, items...); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "items/s")
				db.Close()
				if fi, err := os.Stat(path); err == nil && next >= 1000 {
					b.ReportMetric(float64(fi.Size())/float64(next), "file-bytes/item")
				}
			})
		}
	}
}

// BenchmarkCheckpointPause measures the pause a Put pays when it crosses
// Options.CheckpointEvery: 100,000 x 128 vectors in batches of 1,000 with
// the default CheckpointEvery (50,000), each Put timed. It reports the
// median Put, the slowest, how many Puts took over 5x the median, the
// checkpoints themselves (their longest, as the database logs it: the
// graphs saved and the log trimmed, in one transaction) and the slowest
// Put that checkpointed:
//
//	go test -run '^$' -bench CheckpointPause -benchtime 1x -timeout 30m .
func BenchmarkCheckpointPause(b *testing.B) {
	const n, dim, batch = 100_000, 128, 1000
	for b.Loop() {
		ck := &checkpointTimes{}
		db, err := Open(filepath.Join(b.TempDir(), "ck.mmdb"), &Options{NoSync: true, Logger: slog.New(ck)})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.DefineModality(Modality{Name: "v", Dim: dim, Metric: Cosine}); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(11, 11))
		var took, ckPut []time.Duration // every Put; those that checkpointed
		for start := 0; start < n; start += batch {
			items := make([]Item, batch)
			for j := range items {
				items[j] = Item{ID: fmt.Sprintf("i%d", start+j), Vectors: map[string][]float32{"v": randVec(r, dim)}}
			}
			t0 := time.Now()
			if err := db.Put(ctx, items...); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
			ck.mu.Lock()
			if len(ck.took) > len(ckPut) {
				ckPut = append(ckPut, time.Since(t0))
			}
			ck.mu.Unlock()
		}
		sorted := slices.Clone(took)
		slices.Sort(sorted)
		med := sorted[len(sorted)/2]
		slow := 0
		for _, d := range took {
			if d > 5*med {
				slow++
			}
		}
		b.ReportMetric(med.Seconds(), "median-put-s")
		b.ReportMetric(sorted[len(sorted)-1].Seconds(), "max-put-s")
		b.ReportMetric(float64(slow), "puts-over-5x-median")
		ck.mu.Lock()
		b.ReportMetric(float64(len(ck.took)), "checkpoints")
		b.ReportMetric(slices.Max(append(ck.took, 0)), "max-checkpoint-s")
		b.ReportMetric(slices.Max(append(ckPut, 0)).Seconds(), "max-checkpointing-put-s")
		ck.mu.Unlock()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// checkpointTimes is a slog.Handler that keeps the duration of each
// checkpoint the database logs ("took", in seconds).
type checkpointTimes struct {
	mu   sync.Mutex
	took []float64
}

func (c *checkpointTimes) Enabled(context.Context, slog.Level) bool { return true }
func (c *checkpointTimes) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *checkpointTimes) WithGroup(string) slog.Handler            { return c }
func (c *checkpointTimes) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "mmdb: checkpoint" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "took" {
			c.mu.Lock()
			c.took = append(c.took, a.Value.Duration().Seconds())
			c.mu.Unlock()
		}
		return true
	})
	return nil
}

// BenchmarkSearchThroughput measures concurrent searchers: 20,000 x 128,
// top-10, searches per wall-clock second with one goroutine and with
// GOMAXPROCS of them (2 here), in 5 paired rounds that alternate which
// goes first; it reports the median and range of the per-round ratio:
//
//	go test -run '^$' -bench SearchThroughput -benchtime 1x .
func BenchmarkSearchThroughput(b *testing.B) {
	db, qs := benchDB(b, 20_000, 128)
	workers := runtime.GOMAXPROCS(0)
	const per = 4000 // searches per round and setting
	rate := func(g int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for w := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < per; i += g {
					if _, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, Probes: []Probe{{Modality: "v", Vector: qs[i%len(qs)]}}, K: 10}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return per / time.Since(start).Seconds()
	}
	for b.Loop() {
		var ratios []float64
		for r := range 5 {
			var one, many float64
			if r%2 == 0 {
				one, many = rate(1), rate(workers)
			} else {
				many, one = rate(workers), rate(1)
			}
			ratios = append(ratios, many/one)
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
		b.ReportMetric(ratios[0], "min-ratio")
		b.ReportMetric(ratios[len(ratios)-1], "max-ratio")
		b.ReportMetric(float64(workers), "goroutines")
	}
}

// BenchmarkDurability measures, on 100k x 128: Open with valid checkpoints
// against Open that must rebuild the graph (checkpoint removed), a
// checkpoint of the whole graph, and a snapshot (time and size). It builds
// its database first (about a minute), so run it alone:
//
//	go test -run '^$' -bench Durability -benchtime 1x -timeout 30m .
func BenchmarkDurability(b *testing.B) {
	dir := b.TempDir()
	path := dir + "/open.mmdb"
	db, err := Open(path, &Options{NoSync: true, CheckpointEvery: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.DefineModality(Modality{Name: "v", Dim: 128, Metric: Cosine}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	const n = 100_000
	for start := 0; start < n; start += 10_000 {
		items := make([]Item, 10_000)
		for i := range items {
			items[i] = Item{ID: fmt.Sprintf("i%d", start+i), Vectors: map[string][]float32{"v": randVec(r, 128)}}
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("checkpoint", func(b *testing.B) {
		for b.Loop() {
			db.ckptSeq[0] = 0 // force a full save each time
			if err := db.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			if err := db.Snapshot(ctx, dir+"/snap.mmdb"); err != nil {
				b.Fatal(err)
			}
		}
		fi, _ := os.Stat(dir + "/snap.mmdb")
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		// Raw: the float32 vectors and the IDs (there are no attributes).
		raw := n * 128 * 4
		for i := range n {
			raw += len(fmt.Sprintf("i%d", i))
		}
		b.ReportMetric(float64(fi.Size())/float64(raw), "file/raw")
	})
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("open/checkpointed", func(b *testing.B) {
		for b.Loop() {
			db, err := Open(path, &Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			if a := db.OpenReport()[0].Action; a != "loaded" {
				b.Fatalf("index %s", a)
			}
			db.Close()
		}
	})
	// Drop the checkpoint in a copy: Open must rebuild from the vectors.
	rb := dir + "/rebuild.mmdb"
	src, _ := Open(path, nil)
	src.store.Bolt().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("index/v")) })
	src.store.Bolt().View(func(tx *bolt.Tx) error { return tx.CopyFile(rb, 0o600) })
	src.Close()
	b.Run("open/rebuild", func(b *testing.B) {
		for b.Loop() {
			db, err := Open(rb, &Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			if a := db.OpenReport()[0].Action; a != "rebuilt" {
				b.Fatalf("index %s", a)
			}
			db.Close()
		}
	})
}

// BenchmarkFiltered: 100k x 128 items with an attribute that lets filters
// keep 0.1%, 1%, 10%, 50% and 100% of them, searched by each strategy
// (exact scan of the candidates, or the graph with the filter as an
// allow-list); recall@10 of the graph is against the exact scan. It also
// times a fused two-probe query against a single probe. Builds for about a
// minute first:
//
//	go test -run '^$' -bench Filtered -benchtime 2000x -timeout 30m .
func BenchmarkFiltered(b *testing.B) {
	db, qs, _ := filteredSet(b)
	const n = filteredN
	run := func(b *testing.B, filter string, cutoff int, probes func(i int) []Probe, fuse string) {
		db.opts.ExactCutoff = cutoff
		i := 0
		for b.Loop() {
			if _, err := db.Search(ctx, Query{Target: "v", K: 10, Filter: parseOrNil(filter), Probes: probes(i), Fuse: fusion.Method(fuse)}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	one := func(i int) []Probe { return []Probe{{Modality: "v", Vector: qs[i%len(qs)]}} }
	for _, keep := range []int{1, 10, 100, 500, 1000} { // per mille
		filter := fmt.Sprintf("sel < %d", keep)
		if keep == 1000 {
			filter = ""
		}
		b.Run(fmt.Sprintf("keep=%.1f%%/exact", float64(keep)/10), func(b *testing.B) { run(b, filter, n+1, one, "") })
		b.Run(fmt.Sprintf("keep=%.1f%%/hnsw", float64(keep)/10), func(b *testing.B) {
			run(b, filter, 1, one, "")
			// recall against the exact scan, same filter
			hit := 0
			for _, q := range qs {
				db.opts.ExactCutoff = n + 1
				want, _ := db.Search(ctx, Query{Target: "v", K: 10, Filter: parseOrNil(filter), Probes: []Probe{{Modality: "v", Vector: q}}})
				db.opts.ExactCutoff = 1
				got, _ := db.Search(ctx, Query{Target: "v", K: 10, Filter: parseOrNil(filter), Probes: []Probe{{Modality: "v", Vector: q}}})
				in := map[string]bool{}
				for _, g := range got {
					in[g.ID] = true
				}
				for _, w := range want {
					if in[w.ID] {
						hit++
					}
				}
			}
			b.ReportMetric(float64(hit)/float64(10*len(qs)), "recall@10")
		})
	}
	two := func(i int) []Probe {
		return []Probe{{Modality: "v", Vector: qs[i%len(qs)]}, {Modality: "v", Vector: qs[(i+1)%len(qs)]}}
	}
	b.Run("fused-rrf-2-probes", func(b *testing.B) { run(b, "", 1, two, "rrf") })
	b.Run("fused-early-2-probes", func(b *testing.B) { run(b, "", 1, two, "early") })
}

// filteredN is the size of filteredSet.
const filteredN = 100_000

// filteredSet is BenchmarkFiltered's database: filteredN x 128 vectors
// around 1,000 centres, with attributes sel (the ID modulo 1,000: filters
// on it ignore where vectors lie) and cl (the vector's centre: filters on
// it keep whole clusters); and 200 queries drawn the same way, with their
// centres.
func filteredSet(b *testing.B) (*DB, [][]float32, []int) {
	db, _ := openTest(b, Modality{Name: "v", Dim: 128, Metric: Cosine})
	r := rand.New(rand.NewPCG(11, 11))
	centres := make([][]float32, 1000)
	for i := range centres {
		centres[i] = randVec(r, 128)
	}
	draw := func() ([]float32, int) {
		cl := r.IntN(len(centres))
		v := randVec(r, 128)
		for j := range v {
			v[j] = centres[cl][j] + 0.6*v[j]
		}
		return v, cl
	}
	for start := 0; start < filteredN; start += 10_000 {
		items := make([]Item, 10_000)
		for i := range items {
			id := start + i
			v, cl := draw()
			items[i] = Item{ID: fmt.Sprint(id), Attrs: map[string]any{"sel": id % 1000, "cl": cl}, Vectors: map[string][]float32{"v": v}}
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	qs, qcl := make([][]float32, 200), make([]int, 200)
	for i := range qs {
		qs[i], qcl[i] = draw()
	}
	return db, qs, qcl
}

// BenchmarkSearchOverhead: a top-10 search through DB.Search (planning,
// probe validation, ID mapping, the hits' attributes; and without them,
// NoAttrs) against the same HNSW index searched directly, on 20k x 128,
// in one run:
//
//	go test -run '^$' -bench SearchOverhead .
func BenchmarkSearchOverhead(b *testing.B) {
	// 20,000 x 128 searches the graph; 2,000 x 32 is scanned exactly and
	// takes a few microseconds, so what the database adds shows there.
	for _, c := range []struct{ n, dim int }{{20_000, 128}, {2_000, 32}} {
		b.Run(fmt.Sprintf("%dx%d", c.n, c.dim), func(b *testing.B) { searchOverhead(b, c.n, c.dim) })
	}
}

// searchOverhead measures one search through the database, with and
// without the hits' attributes, and the same search on the index alone
// (the strategy and ef the planner chose). Each case reports cpu-ns/op,
// CPU time of the process per search on one thread (GOMAXPROCS 1, so the
// collector's work is counted and does not run beside on the other core),
// beside ns/op.
func searchOverhead(b *testing.B, n, dim int) {
	db, qs := benchDB(b, n, dim)
	idx := db.st.Load().indexes[0]
	p, err := db.Explain(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: qs[0]}}, K: 10})
	if err != nil {
		b.Fatal(err)
	}
	opts := hnsw.SearchOptions{Exact: p.Strategy == StrategyExact, Ef: p.Ef}
	loop := func(b *testing.B, search func(q []float32)) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		runtime.GC()
		i := 0
		cpu0 := processCPU()
		for b.Loop() {
			search(qs[i%len(qs)])
			i++
		}
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
	b.Run("db", func(b *testing.B) {
		loop(b, func(q []float32) {
			if _, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 10}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("db-noattrs", func(b *testing.B) { // hits without their attributes: no record reads
		loop(b, func(q []float32) {
			if _, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, Probes: []Probe{{Modality: "v", Vector: q}}, K: 10}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("index", func(b *testing.B) {
		loop(b, func(q []float32) {
			q = append([]float32(nil), q...)
			kernel.Normalize(q)
			idx.Search(q, 10, opts)
		})
	})
}

// parseOrNil parses a filter written in a benchmark; "" is no filter.
func parseOrNil(s string) query.Expr {
	if s == "" {
		return nil
	}
	return query.MustParse(s)
}
