package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

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
	// Filters are allow-list steps: for step s, a sweep among the vectors
	// whose ID is a multiple of s (1/s of them), against exact filtered
	// search, for each engine, and for hnsw an exact scan of the allowed
	// vectors too (the planner's other strategy); over FilterEfs (Efs when
	// empty), with the first FilterQueries queries.
	Filters   []int
	FilterEfs []int
}

// FilterQueries is how many queries the filtered sweeps ask (the first
// ones): a walk that must pass 99 of 100 nodes is slow, and recall over
// 200 queries is already within about 0.01.
const FilterQueries = 200

// Row is one engine at one ef on one dataset.
type Row struct {
	Dataset string `json:"dataset"`
	Engine  string `json:"engine"`
	Ef      int    `json:"ef"`
	// Allowed is the share of items an allow-list kept (1 = no filter).
	Allowed float64 `json:"allowed"`
	Recall  float64 `json:"recall"`
	// QPS is queries per CPU second of the process, on one thread
	// (GOMAXPROCS 1 for mmdb): load from other processes cancels out.
	QPS float64 `json:"qps"`
	// WallQPS is queries per second of wall-clock time, beside it.
	WallQPS float64 `json:"wall_qps"`
}

// Build is one engine's build on one dataset.
type Build struct {
	Dataset string `json:"dataset"`
	Engine  string `json:"engine"`
	Threads int    `json:"threads"`
	// InsertsPerSec is per wall-clock second (what more threads buy);
	// InsertsPerCPUSec per CPU second of the process (what an insert
	// costs).
	InsertsPerSec    float64 `json:"inserts_per_s"`
	InsertsPerCPUSec float64 `json:"inserts_per_cpu_s"`
	// HeapPerVector is the Go heap's growth per vector over the build
	// (mmdb only); LoadedHeapPerVector the heap a loaded copy of the
	// index holds per vector, with no growth slack (mmdb only).
	HeapPerVector       *float64 `json:"heap_bytes_per_vector,omitempty"`
	LoadedHeapPerVector *float64 `json:"loaded_heap_bytes_per_vector,omitempty"`
	// RSSPerVector is the resident set's growth per vector over the
	// build, every engine alike; measured on each engine's first build of
	// a run, after the Go side has returned freed memory to the system
	// (debug.FreeOSMemory), as each peer starts in a fresh process.
	RSSPerVector *float64 `json:"rss_bytes_per_vector,omitempty"`
	// PeakPerVector is the peak resident set's rise over the build, per
	// vector (measured with RSSPerVector): what a build needs at its
	// highest, growth copies and collector headroom included.
	PeakPerVector  *float64 `json:"peak_rss_bytes_per_vector,omitempty"`
	SavedPerVector float64  `json:"saved_bytes_per_vector"`
	// SaveSec and LoadSec are wall-clock seconds to write the index to a
	// file and read it back (the loaded copy's destruction untimed).
	SaveSec float64 `json:"save_s"`
	LoadSec float64 `json:"load_s"`
}

// Report holds everything Run measured.
type Report struct {
	Rows   []Row   `json:"rows"`
	Builds []Build `json:"builds"`
}

// perVector returns bytes/n as a pointer, nil when nothing was measured.
func perVector(bytes uint64, n int) *float64 {
	if bytes == 0 || n == 0 {
		return nil
	}
	v := float64(bytes) / float64(n)
	return &v
}

// grew is after - before, or 0 when it shrank.
func grew(before, after uint64) uint64 {
	if after < before {
		return 0
	}
	return after - before
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

// HeapAlloc is the live heap after two collections, in bytes.
func HeapAlloc() uint64 {
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
	FilterTruth(&d, cfg.K, cfg.Filters)
	var rep Report
	for _, eng := range cfg.Engines {
		var idx hnsw.Index
		for ti, th := range cfg.Threads {
			if eng == "coder" && th > 1 {
				continue // coder/hnsw is not safe for concurrent inserts
			}
			i, b, err := build(ctx, eng, d, cfg, th, ti == 0)
			if err != nil {
				return rep, err
			}
			rep.Builds = append(rep.Builds, b)
			idx = i
		}
		efs := cfg.Efs
		if eng == "flat" {
			efs = []int{0}
		}
		for _, ef := range efs {
			r := Row{Dataset: d.Name, Engine: eng, Ef: ef, Allowed: 1}
			r.Recall, r.QPS, r.WallQPS = measure(idx, d.Queries, truth, cfg.K, ef, hnsw.SearchOptions{})
			cfg.logf("%s: %s ef=%d recall@%d %.3f, %.0f q/CPU-s", d.Name, eng, ef, cfg.K, r.Recall, r.QPS)
			rep.Rows = append(rep.Rows, r)
		}
		for _, step := range cfg.Filters {
			rows, err := filtered(idx, d, cfg, eng, efs, step)
			if err != nil {
				return rep, err
			}
			rep.Rows = append(rep.Rows, rows...)
		}
	}
	return rep, nil
}

// build builds one engine's index with th threads (GOMAXPROCS th for the
// build, so a one-thread build's garbage collector does not borrow
// another core) and measures it: inserts per wall and per CPU second,
// memory (heap and resident growth; the resident one only when memory is
// set, on an engine's first build of a run), and saving to and loading
// from a file.
func build(ctx context.Context, eng string, d Dataset, cfg Config, th int, memory bool) (hnsw.Index, Build, error) {
	b := Build{Dataset: d.Name, Engine: eng, Threads: th}
	ids := make([]uint32, len(d.Base))
	for i := range ids {
		ids[i] = uint32(i)
	}
	heap0 := HeapAlloc()
	debug.FreeOSMemory() // what earlier rounds freed must not be counted as reused
	rss0 := residentBytes()
	peakReset := resetPeak()
	i, err := newIndex(eng, d, cfg)
	if err != nil {
		return nil, b, err
	}
	cfg.logf("%s: building %s with %d thread(s)", d.Name, eng, th)
	prev := runtime.GOMAXPROCS(th)
	cpu0, start := processCPU(), time.Now()
	err = hnsw.AddParallel(ctx, i, ids, d.Base, th, nil)
	cpu, wall := processCPU()-cpu0, time.Since(start)
	runtime.GOMAXPROCS(prev)
	if cpu0 == 0 { // no CPU clock here
		cpu = wall
	}
	if err != nil {
		return nil, b, err
	}
	b.InsertsPerSec = float64(len(ids)) / wall.Seconds()
	b.InsertsPerCPUSec = float64(len(ids)) / max(cpu.Seconds(), 1e-9)
	b.HeapPerVector = perVector(grew(heap0, HeapAlloc()), len(ids))
	if memory {
		b.RSSPerVector = perVector(grew(rss0, residentBytes()), len(ids))
		if peakReset {
			b.PeakPerVector = perVector(grew(rss0, peakBytes()), len(ids))
		}
	}
	dir, err := os.MkdirTemp("", "mmdb-bench-")
	if err != nil {
		return nil, b, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, eng+".idx")
	start = time.Now()
	if err := saveFile(i, path); err != nil {
		return nil, b, fmt.Errorf("%s save: %w", eng, err)
	}
	b.SaveSec = time.Since(start).Seconds()
	if st, err := os.Stat(path); err == nil {
		b.SavedPerVector = float64(st.Size()) / float64(len(ids))
	}
	heap1 := HeapAlloc()
	fresh, _ := newIndex(eng, d, cfg)
	start = time.Now()
	if err := loadFile(fresh, path); err != nil {
		return nil, b, fmt.Errorf("%s load: %w", eng, err)
	}
	b.LoadSec = time.Since(start).Seconds()
	b.LoadedHeapPerVector = perVector(grew(heap1, HeapAlloc()), len(ids))
	runtime.KeepAlive(fresh)
	return i, b, ctx.Err()
}

// saveFile writes the index to a file, through a buffered writer, and
// syncs it.
func saveFile(i hnsw.Index, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := i.Save(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadFile reads an index from a file: the whole file into memory, then
// parsed in place, as the database parses a checkpoint from bbolt's
// memory-mapped file (a bytes.Buffer is Load's fast path).
func loadFile(i hnsw.Index, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return i.Load(bytes.NewBuffer(b))
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

// measure computes recall@k over every query, then times searches on one
// thread (GOMAXPROCS 1, after a collection) until they have used 0.3 s of
// CPU and covered every query once: queries per CPU second of the
// process, and per wall-clock second.
func measure(idx hnsw.Index, qs [][]float32, truth [][]int32, k, ef int, opts hnsw.SearchOptions) (recall, qps, wallQPS float64) {
	opts.Ef, opts.Exact = ef, ef == 0
	hit, total := 0, 0
	for i, q := range qs {
		got := idx.Search(q, k, opts)
		want := truth[i][:min(k, len(truth[i]))] // fewer when a filter allows fewer than k
		total += len(want)
		for _, g := range got {
			if slices.Contains(want, int32(g.ID)) {
				hit++
			}
		}
	}
	recall = 1
	if total > 0 {
		recall = float64(hit) / float64(total)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.GC()
	n := 0
	cpu0, start := processCPU(), time.Now()
	spent := func() time.Duration { return processCPU() - cpu0 }
	if cpu0 == 0 { // no CPU clock here: time by the wall clock
		spent = func() time.Duration { return time.Since(start) }
	}
	for spent() < 300*time.Millisecond || n < len(qs) {
		for range 16 { // read the clock every 16 searches, not every one
			idx.Search(qs[n%len(qs)], k, opts)
			n++
		}
	}
	cpu, wall := spent(), time.Since(start)
	return recall, float64(n) / cpu.Seconds(), float64(n) / wall.Seconds()
}

// Markdown renders the report as two tables.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| dataset | engine | ef | allowed | recall@10 | queries/CPU-s (1 thread) | queries/s wall |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Rows {
		ef := fmt.Sprint(x.Ef)
		if x.Ef == 0 {
			ef = "exact"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f%% | %.3f | %.0f | %.0f |\n", x.Dataset, x.Engine, ef, 100*x.Allowed, x.Recall, x.QPS, x.WallQPS)
	}
	b.WriteString("\n| dataset | engine | build threads | inserts/s wall | inserts/CPU-s | heap bytes/vector | loaded heap bytes/vector | resident bytes/vector | peak resident bytes/vector | saved bytes/vector | save s | load s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Builds {
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %s | %s | %s | %s | %.0f | %.3f | %.3f |\n", x.Dataset, x.Engine, x.Threads, x.InsertsPerSec, x.InsertsPerCPUSec,
			optional(x.HeapPerVector), optional(x.LoadedHeapPerVector), optional(x.RSSPerVector), optional(x.PeakPerVector), x.SavedPerVector, x.SaveSec, x.LoadSec)
	}
	return b.String()
}

// optional prints a measured figure, or "-" when it was not measured.
func optional(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *x)
}
