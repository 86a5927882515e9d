package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/bench/coder"
)

// Config selects what Run measures.
type Config struct {
	Engines []string // "hnsw", "hnsw-f32" (Float32Walk), "coder" (the coder/hnsw baseline), "flat"
	Efs     []int    // beam widths to sweep
	Threads []int    // build thread counts
	M       int      // links per node (default 16)
	EfC     int      // efConstruction (default 200)
	K       int      // recall@K (default 10)
	// Progress, if non-nil, receives a line per step (to stderr).
	Progress io.Writer
	// NoFilter skips the allow-list row (it needs its own exact ground
	// truth, which repeated peer runs need not pay for again).
	NoFilter bool
}

// Row is one engine at one ef on one dataset.
type Row struct {
	Dataset, Engine string
	Ef              int
	// Allowed is the share of items an allow-list kept (1 = no filter).
	Allowed float64
	Recall  float64
	QPS     float64
}

// Build is one engine's build on one dataset.
type Build struct {
	Dataset, Engine string
	Threads         int
	InsertsPerSec   float64
	BytesPerVector  float64 // heap growth per vector (NaN when not measured)
	SavedPerVector  float64 // serialised index bytes per vector
	SaveSec         float64
	LoadSec         float64
}

// Report holds everything Run measured.
type Report struct {
	Rows   []Row
	Builds []Build
}

func newIndex(engine string, d Dataset, cfg Config) (hnsw.Index, error) {
	dim := len(d.Base[0])
	hc := hnsw.Config{M: cfg.M, EfConstruction: cfg.EfC, Seed: 1}
	switch engine {
	case "hnsw":
		return hnsw.NewHNSW(dim, d.Metric, hc), nil
	case "hnsw-f32":
		hc.Float32Walk = true
		return hnsw.NewHNSW(dim, d.Metric, hc), nil
	case "coder":
		return coder.New(dim, d.Metric, hc), nil
	case "flat":
		return hnsw.NewFlat(dim, d.Metric), nil
	}
	return nil, fmt.Errorf("unknown engine %q (want hnsw, hnsw-f32, coder or flat)", engine)
}

func (c *Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Run measures every engine of cfg on d.
func Run(ctx context.Context, d Dataset, cfg Config) (Report, error) {
	if cfg.K == 0 {
		cfg.K = 10
	}
	if len(cfg.Threads) == 0 {
		cfg.Threads = []int{1}
	}
	truth := d.Truth
	if truth == nil {
		cfg.logf("%s: exact ground truth for %d queries", d.Name, len(d.Queries))
		truth = ExactTruth(d, cfg.K)
	}
	ids := make([]uint32, len(d.Base))
	for i := range ids {
		ids[i] = uint32(i)
	}
	var rep Report
	var filteredTruth [][]int32
	for _, eng := range cfg.Engines {
		var idx hnsw.Index
		for _, th := range cfg.Threads {
			if eng == "coder" && th > 1 {
				continue // coder/hnsw is not safe for concurrent inserts
			}
			before := heapInUse()
			i, err := newIndex(eng, d, cfg)
			if err != nil {
				return rep, err
			}
			cfg.logf("%s: building %s with %d thread(s)", d.Name, eng, th)
			start := time.Now()
			if err := hnsw.AddParallel(ctx, i, ids, d.Base, th, nil); err != nil {
				return rep, err
			}
			el := time.Since(start).Seconds()
			b := Build{Dataset: d.Name, Engine: eng, Threads: th, InsertsPerSec: float64(len(ids)) / el}
			b.BytesPerVector = float64(heapInUse()-min(before, heapInUse())) / float64(len(ids))
			var buf bytes.Buffer
			start = time.Now()
			if err := i.Save(&buf); err != nil {
				return rep, err
			}
			b.SaveSec = time.Since(start).Seconds()
			b.SavedPerVector = float64(buf.Len()) / float64(len(ids))
			fresh, _ := newIndex(eng, d, cfg)
			start = time.Now()
			// A Buffer, as the database loads a checkpoint.
			if err := fresh.Load(bytes.NewBuffer(buf.Bytes())); err != nil {
				return rep, fmt.Errorf("%s load: %w", eng, err)
			}
			b.LoadSec = time.Since(start).Seconds()
			rep.Builds = append(rep.Builds, b)
			idx = i
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
		efs := cfg.Efs
		if eng == "flat" {
			efs = []int{0}
		}
		for _, ef := range efs {
			r := Row{Dataset: d.Name, Engine: eng, Ef: ef, Allowed: 1}
			r.Recall, r.QPS = measure(idx, d.Queries, truth, cfg.K, ef, nil)
			cfg.logf("%s: %s ef=%d recall@%d %.3f, %.0f q/s", d.Name, eng, ef, cfg.K, r.Recall, r.QPS)
			rep.Rows = append(rep.Rows, r)
		}
		if cfg.NoFilter {
			continue
		}
		// An allow-list keeping every tenth item, against exact filtered
		// search, at the smallest ef of the sweep.
		allow := roaring.New()
		for i := 0; i < len(d.Base); i += 10 {
			allow.Add(uint32(i))
		}
		if filteredTruth == nil {
			filteredTruth = exactTruthAllowed(d, cfg.K, allow)
		}
		r := Row{Dataset: d.Name, Engine: eng, Ef: efs[0], Allowed: 0.1}
		r.Recall, r.QPS = measure(idx, d.Queries, filteredTruth, cfg.K, efs[0], allow)
		cfg.logf("%s: %s ef=%d allow 10%% recall@%d %.3f, %.0f q/s", d.Name, eng, efs[0], cfg.K, r.Recall, r.QPS)
		rep.Rows = append(rep.Rows, r)
	}
	return rep, nil
}

func exactTruthAllowed(d Dataset, k int, allow *roaring.Bitmap) [][]int32 {
	flat := hnsw.NewFlat(len(d.Base[0]), d.Metric)
	for i, v := range d.Base {
		flat.Add(uint32(i), v)
	}
	out := make([][]int32, len(d.Queries))
	for i, q := range d.Queries {
		for _, r := range flat.Search(q, k, hnsw.SearchOptions{Allow: allow}) {
			out[i] = append(out[i], int32(r.ID))
		}
	}
	return out
}

// ExactTruth returns the exact k nearest base rows of every query.
func ExactTruth(d Dataset, k int) [][]int32 {
	flat := hnsw.NewFlat(len(d.Base[0]), d.Metric)
	for i, v := range d.Base {
		flat.Add(uint32(i), v)
	}
	out := make([][]int32, len(d.Queries))
	for i, q := range d.Queries {
		for _, r := range flat.Search(q, k, hnsw.SearchOptions{}) {
			out[i] = append(out[i], int32(r.ID))
		}
	}
	return out
}

// measure runs every query once on one goroutine for speed (repeating
// short sets until 0.5 s have passed), and computes recall@k.
func measure(idx hnsw.Index, qs [][]float32, truth [][]int32, k, ef int, allow *roaring.Bitmap) (recall, qps float64) {
	opts := hnsw.SearchOptions{Ef: ef, Exact: ef == 0, Allow: allow}
	hit := 0
	for i, q := range qs {
		got := idx.Search(q, k, opts)
		want := truth[i][:min(k, len(truth[i]))]
		for _, g := range got {
			if slices.Contains(want, int32(g.ID)) {
				hit++
			}
		}
	}
	recall = float64(hit) / float64(len(qs)*k)
	n := 0
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond || n < len(qs) {
		idx.Search(qs[n%len(qs)], k, opts)
		n++
	}
	return recall, float64(n) / time.Since(start).Seconds()
}

// Markdown renders the report as two tables.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| dataset | engine | ef | allowed | recall@10 | queries/s (1 thread) |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Rows {
		ef := fmt.Sprint(x.Ef)
		if x.Engine == "flat" {
			ef = "exact"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f%% | %.3f | %.0f |\n", x.Dataset, x.Engine, ef, 100*x.Allowed, x.Recall, x.QPS)
	}
	b.WriteString("\n| dataset | engine | build threads | inserts/s | heap bytes/vector | saved bytes/vector | save s | load s |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Builds {
		heap := "-"
		if !math.IsNaN(x.BytesPerVector) {
			heap = fmt.Sprintf("%.0f", x.BytesPerVector)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %s | %.0f | %.3f | %.3f |\n", x.Dataset, x.Engine, x.Threads, x.InsertsPerSec, heap, x.SavedPerVector, x.SaveSec, x.LoadSec)
	}
	return b.String()
}
