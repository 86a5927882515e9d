package bench

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
)

// ScanEngine names the rows of an exact scan of the allowed vectors
// through mmdb's default index: the strategy the planner takes for small
// candidate sets. ScanEngineOf names those of each of MMDBEngines.
const ScanEngine = "hnsw-scan"

// ScanEngineOf names the rows of the exact scan through the index of
// engine, one of MMDBEngines: ScanEngine for the default, "hnsw-f32-scan"
// for Float32Walk.
func ScanEngineOf(engine string) string {
	if engine == "hnsw" {
		return ScanEngine
	}
	return engine + "-scan"
}

// BitmapEngine names the rows of mmdb's graph walk given the allowed IDs
// as a roaring bitmap, as the database's filters give them; the "hnsw"
// rows, compared with hnswlib, are given a filter function, as hnswlib's
// functor is (the same test: the ID is a multiple of the step). The scan
// rows take the bitmap: they walk the allowed IDs, which a function cannot
// list.
const BitmapEngine = "hnsw-bitmap"

// Allow returns the allow-list of a filter step: the IDs below n that are
// multiples of step.
func Allow(n, step int) *roaring.Bitmap {
	allow := roaring.New()
	for i := 0; i < n; i += step {
		allow.Add(uint32(i))
	}
	return allow
}

// FilterTruth fills d.Filtered with the exact top k among the allowed
// vectors of each step that it lacks.
func FilterTruth(d *Dataset, k int, steps []int) {
	if d.Filtered == nil {
		d.Filtered = map[int][][]int32{}
	}
	few := *d
	few.Queries = d.Queries[:min(len(d.Queries), FilterQueries)]
	for _, s := range steps {
		if d.Filtered[s] == nil {
			d.Filtered[s] = exactTruthAllowed(few, k, Allow(len(d.Base), s))
		}
	}
}

// filtered sweeps one engine among the vectors allowed by step.
func filtered(idx hnsw.Index, d Dataset, cfg Config, eng string, efs []int, step int) ([]Row, error) {
	FilterTruth(&d, cfg.K, []int{step})
	allow, truth, share := Allow(len(d.Base), step), d.Filtered[step], 1/float64(step)
	queries := d.Queries[:len(truth)]
	if len(cfg.FilterEfs) > 0 && eng != "flat" {
		efs = cfg.FilterEfs
	}
	fn := func(id uint32) bool { return id%uint32(step) == 0 }
	var rows []Row
	sweep := func(eng string, opts hnsw.SearchOptions) {
		for _, ef := range efs {
			r := Row{Dataset: d.Name, Engine: eng, Ef: ef, Allowed: share}
			r.Recall, r.QPS, r.WallQPS = measure(idx, queries, truth, cfg.K, ef, opts)
			cfg.logf("%s: %s ef=%d allow %.0f%% recall@%d %.3f, %.0f q/CPU-s", d.Name, eng, ef, 100*share, cfg.K, r.Recall, r.QPS)
			rows = append(rows, r)
		}
	}
	sweep(eng, hnsw.SearchOptions{Filter: fn})
	if eng == "hnsw" {
		sweep(BitmapEngine, hnsw.SearchOptions{Allow: allow})
	}
	if slices.Contains(MMDBEngines, eng) {
		// Each graph's own scan: mmdb's figure at a recall is the faster
		// of its walk and its scan, both through the same index.
		r := Row{Dataset: d.Name, Engine: ScanEngineOf(eng), Allowed: share}
		r.Recall, r.QPS, r.WallQPS = measure(idx, queries, truth, cfg.K, 0, hnsw.SearchOptions{Allow: allow})
		cfg.logf("%s: %s allow %.0f%% recall@%d %.3f, %.0f q/CPU-s", d.Name, r.Engine, 100*share, cfg.K, r.Recall, r.QPS)
		rows = append(rows, r)
	}
	return rows, nil
}

// exactTruthAllowed is the exact top k of each query among the allowed
// vectors.
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
