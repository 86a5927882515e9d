package bench

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mmdb-go/mmdb/modality"
)

//go:embed peers/harness.cpp
var harnessSrc []byte

// Peers are the engines the side-by-side benchmark compares mmdb with.
var Peers = []string{"hnswlib", "faiss"}

// EnsurePeers checks for hnswlib's and FAISS's headers and a C++ compiler,
// and installs Debian's packages (libhnswlib-dev, libfaiss-dev, g++) when
// they are missing and this process may (root). log receives what it did.
func EnsurePeers(ctx context.Context, log io.Writer) error {
	missing := func() []string {
		var m []string
		for file, pkg := range map[string]string{"/usr/include/hnswlib/hnswlib.h": "libhnswlib-dev", "/usr/include/faiss/IndexHNSW.h": "libfaiss-dev"} {
			if _, err := os.Stat(file); err != nil {
				m = append(m, pkg)
			}
		}
		if _, err := exec.LookPath("g++"); err != nil {
			m = append(m, "g++")
		}
		sort.Strings(m)
		return m
	}
	m := missing()
	if len(m) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the peers need %s; install them with: sudo apt-get install %s", strings.Join(m, ", "), strings.Join(m, " "))
	}
	fmt.Fprintf(log, "installing %s with apt-get\n", strings.Join(m, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, m...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", args[0], err, out)
		}
	}
	if m = missing(); len(m) > 0 {
		return fmt.Errorf("still missing after apt-get: %s", strings.Join(m, ", "))
	}
	return nil
}

// hnswlibNode is the npm package whose sources carry hnswlib 0.8.0, the
// first hnswlib with a filter functor: Debian's libhnswlib-dev is 0.6.2,
// which cannot filter.
const hnswlibNode = "hnswlib-node@3.0.0"

// cacheDir is the benchmark's folder in the user cache directory.
func cacheDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "mmdb-bench")
}

// filterHeaders returns a folder holding hnswlib/hnswlib.h of hnswlib
// 0.8.0, taken from the hnswlib-node package on npm (cached), or "" when
// npm is not at hand (the harness then uses Debian's hnswlib, and
// hnswlib's filtered rows are missing).
func filterHeaders(ctx context.Context, log io.Writer) string {
	dir := filepath.Join(cacheDir(), "hnswlib-node-3.0.0")
	if _, err := os.Stat(filepath.Join(dir, "hnswlib", "hnswlib.h")); err == nil {
		return dir
	}
	if _, err := exec.LookPath("npm"); err != nil {
		fmt.Fprintf(log, "npm not found: hnswlib's filtered search is not measured (Debian's hnswlib 0.6.2 has no filter functor)\n")
		return ""
	}
	tmp, err := os.MkdirTemp("", "mmdb-hnswlib-")
	if err != nil {
		return ""
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", "--pack-destination", tmp, hnswlibNode)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(log, "npm pack %s: %v: %s; hnswlib's filtered search is not measured\n", hnswlibNode, err, out)
		return ""
	}
	if err := untarHeaders(filepath.Join(tmp, "hnswlib-node-3.0.0.tgz"), filepath.Join(dir, "hnswlib")); err != nil {
		fmt.Fprintf(log, "unpacking %s: %v; hnswlib's filtered search is not measured\n", hnswlibNode, err)
		return ""
	}
	return dir
}

// untarHeaders copies the package's src/hnswlib/*.h into dst.
func untarHeaders(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	found := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "package/src/hnswlib/")
		if name == h.Name || strings.Contains(name, "/") || !strings.HasSuffix(name, ".h") || h.Size > 1<<22 {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("no headers under package/src/hnswlib")
	}
	return nil
}

// BuildHarness compiles the C++ peer harness (cached by the hash of its
// source and of the hnswlib it uses, in the user cache directory) and
// returns the binary's path and which hnswlib it has: 0.8.0 from npm when
// it can (see filterHeaders), else Debian's 0.6.2.
func BuildHarness(ctx context.Context, log io.Writer) (bin, hnswlib string, err error) {
	inc := filterHeaders(ctx, log)
	h := sha256.New()
	h.Write(harnessSrc)
	h.Write([]byte(inc))
	sum := h.Sum(nil)
	dir := cacheDir()
	bin = filepath.Join(dir, "harness-"+hex.EncodeToString(sum[:8]))
	args := []string{"-O3", "-march=native", "-fopenmp"} // the flags of hnswlib's published figures
	hnswlib = "0.6.2 (Debian's libhnswlib-dev, which has no filter functor)"
	if inc != "" {
		args = append(args, "-I", inc, "-DMMDB_HNSWLIB_FILTER")
		hnswlib = "0.8.0 (the sources in the npm package " + hnswlibNode + ")"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, hnswlib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	src := bin + ".cpp"
	if err := os.WriteFile(src, harnessSrc, 0o644); err != nil {
		return "", "", err
	}
	args = append(args, "-o", bin+".tmp", src, "-lfaiss", "-lblas", "-llapack")
	cmd := exec.CommandContext(ctx, "g++", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("compiling the peer harness: %v\n%s", err, out)
	}
	return bin, hnswlib, os.Rename(bin+".tmp", bin)
}

// WriteDataset writes d into dir as base.fvecs, query.fvecs and gt.ivecs
// (the exact top k of each query), and gt_allow<step>.ivecs for each of
// d's filtered truths, for the harness.
func WriteDataset(d Dataset, truth [][]int32, dir string) error {
	write := func(name string, rows [][]float32, ints [][]int32) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		for i := range max(len(rows), len(ints)) {
			if rows != nil {
				binary.Write(w, binary.LittleEndian, int32(len(rows[i])))
				binary.Write(w, binary.LittleEndian, rows[i])
			} else {
				binary.Write(w, binary.LittleEndian, int32(len(ints[i])))
				binary.Write(w, binary.LittleEndian, ints[i])
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write("base.fvecs", d.Base, nil); err != nil {
		return err
	}
	if err := write("query.fvecs", d.Queries, nil); err != nil {
		return err
	}
	for step, t := range d.Filtered {
		if err := write(fmt.Sprintf("gt_allow%d.ivecs", step), nil, t); err != nil {
			return err
		}
	}
	return write("gt.ivecs", nil, truth)
}

// RunPeer runs one peer engine through the harness on a dataset written by
// WriteDataset.
func RunPeer(ctx context.Context, harness, engine, dir string, d Dataset, cfg Config) (Report, error) {
	metric := "ip" // cosine data is unit length: inner product ranks the same
	if d.Metric == modality.L2 {
		metric = "l2"
	}
	join := func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ",")
	}
	m, efc := cfg.M, cfg.EfC
	if m == 0 {
		m = 16
	}
	if efc == 0 {
		efc = 200
	}
	steps := join(cfg.Filters)
	if steps == "" {
		steps = "-"
	}
	filterEfs := cfg.FilterEfs
	if len(filterEfs) == 0 {
		filterEfs = cfg.Efs
	}
	cmd := exec.CommandContext(ctx, harness, engine, dir, metric, fmt.Sprint(m), fmt.Sprint(efc), join(cfg.Threads), join(cfg.Efs), fmt.Sprint(cfg.K), steps, join(filterEfs))
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return Report{}, fmt.Errorf("%s harness: %v\n%s", engine, err, ee.Stderr)
		}
		return Report{}, err
	}
	var rep Report
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v struct {
			Kind    string  `json:"kind"`
			Threads int     `json:"threads"`
			Ef      int     `json:"ef"`
			Step    int     `json:"step"` // 0: unfiltered
			Inserts float64 `json:"inserts_per_s"`
			CPUIns  float64 `json:"inserts_per_cpu_s"`
			RSS     float64 `json:"rss_bytes_per_vector"`      // -1: not measured
			Peak    float64 `json:"peak_rss_bytes_per_vector"` // -1: not measured
			Saved   float64 `json:"saved_bytes_per_vector"`
			Save    float64 `json:"save_s"`
			Load    float64 `json:"load_s"`
			Recall  float64 `json:"recall"`
			QPS     float64 `json:"qps"`
			WallQPS float64 `json:"wall_qps"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return Report{}, fmt.Errorf("%s harness printed %q: %v", engine, line, err)
		}
		if v.Kind == "build" {
			b := Build{Dataset: d.Name, Engine: engine, Threads: v.Threads, InsertsPerSec: v.Inserts, InsertsPerCPUSec: v.CPUIns, SavedPerVector: v.Saved, SaveSec: v.Save, LoadSec: v.Load}
			if v.RSS >= 0 {
				b.RSSPerVector = &v.RSS
			}
			if v.Peak >= 0 {
				b.PeakPerVector = &v.Peak
			}
			rep.Builds = append(rep.Builds, b)
		} else {
			allowed := 1.0
			if v.Step > 0 {
				allowed = 1 / float64(v.Step)
			}
			rep.Rows = append(rep.Rows, Row{Dataset: d.Name, Engine: engine, Ef: v.Ef, Allowed: allowed, Recall: v.Recall, QPS: v.QPS, WallQPS: v.WallQPS})
		}
	}
	return rep, nil
}

// median of xs (xs is reordered).
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// Medians folds repeated runs into one report: per (dataset, engine, ef)
// the median recall and q/s, per build the median figures.
func Medians(runs []Report) Report {
	type key struct {
		ds, eng string
		n       int
		allowed float64
	}
	rows, builds := map[key][]Row{}, map[key][]Build{}
	var rowOrder, buildOrder []key
	for _, r := range runs {
		for _, x := range r.Rows {
			k := key{x.Dataset, x.Engine, x.Ef, x.Allowed}
			if _, ok := rows[k]; !ok {
				rowOrder = append(rowOrder, k)
			}
			rows[k] = append(rows[k], x)
		}
		for _, b := range r.Builds {
			k := key{b.Dataset, b.Engine, b.Threads, 1}
			if _, ok := builds[k]; !ok {
				buildOrder = append(buildOrder, k)
			}
			builds[k] = append(builds[k], b)
		}
	}
	var out Report
	for _, k := range rowOrder {
		rs := rows[k]
		out.Rows = append(out.Rows, Row{Dataset: k.ds, Engine: k.eng, Ef: k.n, Allowed: k.allowed,
			Recall:  medianOf(rs, func(r Row) float64 { return r.Recall }),
			QPS:     medianOf(rs, func(r Row) float64 { return r.QPS }),
			WallQPS: medianOf(rs, func(r Row) float64 { return r.WallQPS })})
	}
	for _, k := range buildOrder {
		bs := builds[k]
		out.Builds = append(out.Builds, Build{Dataset: k.ds, Engine: k.eng, Threads: k.n,
			InsertsPerSec:       medianOf(bs, func(b Build) float64 { return b.InsertsPerSec }),
			InsertsPerCPUSec:    medianOf(bs, func(b Build) float64 { return b.InsertsPerCPUSec }),
			HeapPerVector:       medianOfMeasured(bs, func(b Build) *float64 { return b.HeapPerVector }),
			LoadedHeapPerVector: medianOfMeasured(bs, func(b Build) *float64 { return b.LoadedHeapPerVector }),
			RSSPerVector:        medianOfMeasured(bs, func(b Build) *float64 { return b.RSSPerVector }),
			PeakPerVector:       medianOfMeasured(bs, func(b Build) *float64 { return b.PeakPerVector }),
			SavedPerVector:      medianOf(bs, func(b Build) float64 { return b.SavedPerVector }),
			SaveSec:             medianOf(bs, func(b Build) float64 { return b.SaveSec }),
			LoadSec:             medianOf(bs, func(b Build) float64 { return b.LoadSec })})
	}
	return out
}

// medianOf is the median of f over xs.
func medianOf[T any](xs []T, f func(T) float64) float64 {
	vals := make([]float64, len(xs))
	for i, x := range xs {
		vals[i] = f(x)
	}
	return median(vals)
}

// medianOfMeasured is the median of f over the xs where it was measured
// (not nil), nil when it never was.
func medianOfMeasured[T any](xs []T, f func(T) *float64) *float64 {
	vals := make([]*float64, len(xs))
	for i, x := range xs {
		vals[i] = f(x)
	}
	m, _, _ := spread(vals)
	return m
}
