package mmdb

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/bench"
	"github.com/mmdb-go/mmdb/internal/storage"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkLowMemory compares Options.LowMemory with the default, both
// opened from one file: on synth100k (the side-by-side harness's 100k x
// 128 clustered cosine set and its 1,000 held-out queries), on
// clip50k-text (50k x 512 CLIP-like image vectors queried with the 500
// real captions, across the modality gap) and on sift5k (both from
// ../shared/data; skipped when absent). It reports the heap a vector
// holds (the graph alone, loaded from the checkpoint as Open loads it, and
// the whole database after Open); the heap's peak and the bytes allocated
// during Open, from the checkpoint and rebuilding the graph when the
// checkpoint is damaged; and at each ef the recall@10 of each mode against
// exact search and the low-memory mode's queries per CPU second over the
// default's: the median and range over 7 rounds in which the two
// alternate, each mode running lowMemoryQueries queries a round (the
// set's queries as many times as it takes: one pass of synth100k's 1,000
// at ef 16 is 20-40 ms of CPU, too short a round for this machine's
// noise). It builds its file first (about a minute a set):
//
//	go test -run '^$' -bench LowMemory -benchtime 1x -cpu 1 -timeout 30m .
func BenchmarkLowMemory(b *testing.B) {
	b.Run("synth100k", func(b *testing.B) {
		lowMemory(b, bench.Synthetic("synth100k", 100_000, 1000, 128, 1000, 1))
	})
	b.Run("clip50k-text", func(b *testing.B) {
		d, err := bench.CLIPLike(filepath.Join("..", "shared", "data", "coco500-clip"), 50_000, true, 5)
		if err != nil {
			b.Skipf("coco500-clip not found (%v): it is in ../shared/data", err)
		}
		lowMemory(b, d)
	})
	b.Run("sift5k", func(b *testing.B) {
		d, err := bench.SIFT5k(filepath.Join("..", "shared", "data", "sift5k"))
		if err != nil {
			b.Skipf("sift5k not found (%v): it is in ../shared/data", err)
		}
		lowMemory(b, d)
	})
}

// lowMemoryRounds and lowMemoryQueries shape BenchmarkLowMemory's paired
// rounds: how many, and at least how many queries each mode runs in one.
const (
	lowMemoryRounds  = 7
	lowMemoryQueries = 5000
)

func lowMemory(b *testing.B, d bench.Dataset) {
	path := filepath.Join(b.TempDir(), "low.mmdb")
	m := Modality{Name: "v", Dim: len(d.Base[0]), Metric: d.Metric}
	lowMemoryFile(b, path, m, d.Base)
	truth := lowMemoryTruth(m, d)
	n := float64(len(d.Base))

	type mode struct {
		name         string
		opts         Options
		db           *DB
		graph, whole float64 // heap bytes a vector
	}
	modes := []*mode{{name: "default", opts: Options{ReadOnly: true}}, {name: "low", opts: Options{ReadOnly: true, LowMemory: true}}}
	for _, md := range modes {
		before := bench.HeapAlloc()
		db, err := Open(path, &md.opts)
		if err != nil {
			b.Fatal(err)
		}
		md.db, md.whole = db, float64(bench.HeapAlloc()-before)/n
		defer db.Close()
		var idx hnsw.Index
		before = bench.HeapAlloc()
		if err := db.store.View(func(tx *storage.Tx) (err error) {
			idx, _, _, _, err = tx.LoadIndex(m, db.indexConfig(m))
			return err
		}); err != nil || idx == nil {
			b.Fatal("loading the graph", err)
		}
		md.graph = float64(bench.HeapAlloc()-before) / n
		runtime.KeepAlive(idx)
	}
	peaks := openPeaks(b, path, len(d.Base))
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(modes[0].graph, "graph-B/vector-default")
			b.ReportMetric(modes[1].graph, "graph-B/vector-low")
			b.ReportMetric(modes[0].whole, "db-B/vector-default")
			b.ReportMetric(modes[1].whole, "db-B/vector-low")
			for name, p := range peaks {
				b.ReportMetric(p, name)
			}
		}
	})

	search := func(db *DB, ef int) (recall float64) {
		hit := 0
		for i, q := range d.Queries {
			hits, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, K: 10, Ef: ef, Probes: []Probe{{Modality: "v", Vector: q}}})
			if err != nil {
				b.Fatal(err)
			}
			for _, h := range hits {
				if truth[i][h.ID] {
					hit++
				}
			}
		}
		return float64(hit) / float64(10*len(d.Queries))
	}
	for _, ef := range []int{16, 24, 32, 48, 64} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			for b.Loop() {
				var ratios []float64
				var recall [2]float64
				for r := range lowMemoryRounds {
					var cpu [2]float64
					for j := range 2 {
						k := (j + r) % 2 // alternate which mode goes first
						start := processCPU()
						for range (lowMemoryQueries + len(d.Queries) - 1) / len(d.Queries) {
							recall[k] = search(modes[k].db, ef)
						}
						cpu[k] = (processCPU() - start).Seconds()
					}
					ratios = append(ratios, cpu[0]/cpu[1])
				}
				slices.Sort(ratios)
				b.ReportMetric(recall[0], "recall-default")
				b.ReportMetric(recall[1], "recall-low")
				b.ReportMetric(ratios[len(ratios)/2], "qps-ratio")
				b.ReportMetric(ratios[0], "qps-ratio-min")
				b.ReportMetric(ratios[len(ratios)-1], "qps-ratio-max")
			}
		})
	}
}

// openPeaks opens the file at path (n vectors) read-only by default and
// with LowMemory, from its checkpoint and from a copy whose checkpoint is
// damaged (so Open rebuilds the graph from the stored vectors), and
// returns the heap's peak rise during each Open, and the bytes it
// allocated (garbage included: the peak depends on when the collector
// ran, the allocations do not), in bytes a vector.
func openPeaks(b *testing.B, path string, n int) map[string]float64 {
	rebuilt := filepath.Join(b.TempDir(), "rebuilt.mmdb")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(rebuilt, data, 0o600); err != nil {
		b.Fatal(err)
	}
	st, err := storage.Open(rebuilt, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(func(tx *storage.Tx) error { return tx.PutCheckpoint("v", tx.Seq(), []byte("damaged")) }); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	peaks := map[string]float64{}
	for _, f := range []struct{ name, path string }{{"open", path}, {"rebuild", rebuilt}} {
		for _, low := range []bool{false, true} {
			var db *DB
			var before, after runtime.MemStats
			peak := heapPeak(func() {
				runtime.ReadMemStats(&before)
				var err error
				if db, err = Open(f.path, &Options{ReadOnly: true, LowMemory: low}); err != nil {
					b.Fatal(err)
				}
				runtime.ReadMemStats(&after)
			})
			if want := map[string]string{"open": "loaded", "rebuild": "rebuilt"}[f.name]; db.OpenReport()[0].Action != want {
				b.Fatalf("%s: the index was %s", f.name, db.OpenReport()[0].Action)
			}
			_ = db.Close()
			mode := map[bool]string{false: "default", true: "low"}[low]
			peaks[f.name+"-peak-B/vector-"+mode] = float64(peak) / float64(n)
			peaks[f.name+"-alloc-B/vector-"+mode] = float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
		}
	}
	return peaks
}

// heapPeak runs fn while sampling the bytes of heap objects (live, or dead
// and not yet swept) every 100 µs, and returns their highest rise over the
// live heap before fn.
func heapPeak(fn func()) uint64 {
	base := bench.HeapAlloc()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak - min(peak, base)
}

// lowMemoryFile writes base into a new database at path, checkpointed on
// Close; item IDs are the rows' numbers.
func lowMemoryFile(b *testing.B, path string, m Modality, base [][]float32) {
	db, err := Open(path, &Options{NoSync: true, CheckpointEvery: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.DefineModality(m); err != nil {
		b.Fatal(err)
	}
	for start := 0; start < len(base); start += 10_000 {
		items := make([]Item, 0, 10_000)
		for i := start; i < min(start+10_000, len(base)); i++ {
			items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": base[i]}})
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
}

// logVectorTree logs the page size and bbolt's statistics of the bucket
// holding modality mod's vectors in the file at path.
func logVectorTree(b *testing.B, path, mod string) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte("vec/" + mod))
		if bk == nil {
			return fmt.Errorf("no bucket vec/%s", mod)
		}
		s := bk.Stats()
		b.Logf("vectors of %s: %d-byte pages, depth %d, %d branch pages, %d leaf pages, %.1f keys a leaf", mod, db.Info().PageSize, s.Depth, s.BranchPageN, s.LeafPageN, float64(s.KeyN)/float64(max(1, s.LeafPageN)))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// lowMemoryTruth is each query's exact top 10, as item IDs.
func lowMemoryTruth(m Modality, d bench.Dataset) []map[string]bool {
	truth := make([]map[string]bool, len(d.Queries))
	flat := hnsw.NewFlat(m.Dim, m.Metric)
	if d.Truth == nil {
		for i, v := range d.Base {
			_ = flat.Add(uint32(i), v)
		}
	}
	for i, q := range d.Queries {
		truth[i] = map[string]bool{}
		if d.Truth != nil {
			for _, row := range d.Truth[i][:10] {
				truth[i][fmt.Sprint(row)] = true
			}
			continue
		}
		for _, r := range flat.Search(q, 10, hnsw.SearchOptions{}) {
			truth[i][fmt.Sprint(r.ID)] = true
		}
	}
	return truth
}

// BenchmarkLowMemorySearch times, on synth100k (built once into a
// temporary file, about a minute), an Open of the file read-only and a
// search at ef 16 (k 10, no attributes), by default and with LowMemory,
// for profiles of the two modes (where a low-memory search spends its
// extra time) and for Open's speed. It logs the shape of the B+tree a
// vector read back searches (bbolt's statistics of the vectors' bucket):
//
//	go test -run '^$' -bench LowMemorySearch -benchtime 20000x -cpu 1 -cpuprofile cpu.out -v .
func BenchmarkLowMemorySearch(b *testing.B) {
	d := bench.Synthetic("synth100k", 100_000, 1000, 128, 1000, 1)
	path := filepath.Join(b.TempDir(), "low.mmdb")
	m := Modality{Name: "v", Dim: 128, Metric: d.Metric}
	lowMemoryFile(b, path, m, d.Base)
	logVectorTree(b, path, m.Name)
	for _, low := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "low"}[low]
		b.Run("open/"+name, func(b *testing.B) {
			for b.Loop() {
				db, err := Open(path, &Options{ReadOnly: true, LowMemory: low})
				if err != nil {
					b.Fatal(err)
				}
				_ = db.Close()
			}
		})
		b.Run("search/"+name, func(b *testing.B) {
			db, err := Open(path, &Options{ReadOnly: true, LowMemory: low})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			i := 0
			for b.Loop() {
				q := d.Queries[i%len(d.Queries)]
				i++
				if _, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, K: 10, Ef: 16, Probes: []Probe{{Modality: "v", Vector: q}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
