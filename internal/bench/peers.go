package bench

import (
	"bufio"
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
	"strconv"
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

// BuildHarness compiles the C++ peer harness (cached by the hash of its
// source in the user cache directory) and returns the binary's path.
func BuildHarness(ctx context.Context) (string, error) {
	sum := sha256.Sum256(harnessSrc)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mmdb-bench")
	bin := filepath.Join(dir, "harness-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := bin + ".cpp"
	if err := os.WriteFile(src, harnessSrc, 0o644); err != nil {
		return "", err
	}
	// The same flags the published hnswlib figures use.
	cmd := exec.CommandContext(ctx, "g++", "-O3", "-march=native", "-fopenmp", "-o", bin+".tmp", src, "-lfaiss", "-lblas", "-llapack")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling the peer harness: %v\n%s", err, out)
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// WriteDataset writes d into dir as base.fvecs, query.fvecs and gt.ivecs
// (the exact top k of each query) for the harness.
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
	cmd := exec.CommandContext(ctx, harness, engine, dir, metric, fmt.Sprint(m), fmt.Sprint(efc), join(cfg.Threads), join(cfg.Efs), fmt.Sprint(cfg.K))
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
			Kind, Engine string
			Threads, Ef  int
			Inserts      float64 `json:"inserts_per_s"`
			Bytes        float64 `json:"bytes_per_vector"`
			Save         float64 `json:"save_s"`
			Load         float64 `json:"load_s"`
			Recall, QPS  float64
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return Report{}, fmt.Errorf("%s harness printed %q: %v", engine, line, err)
		}
		if v.Kind == "build" {
			rep.Builds = append(rep.Builds, Build{Dataset: d.Name, Engine: engine, Threads: v.Threads, InsertsPerSec: v.Inserts, BytesPerVector: math.NaN(), SavedPerVector: v.Bytes, SaveSec: v.Save, LoadSec: v.Load})
		} else {
			rep.Rows = append(rep.Rows, Row{Dataset: d.Name, Engine: engine, Ef: v.Ef, Allowed: 1, Recall: v.Recall, QPS: v.QPS})
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
	}
	rec, qps := map[key][]float64{}, map[key][]float64{}
	var rowOrder []key
	ins, bpv, sv, ld, spv := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	var buildOrder []key
	for _, r := range runs {
		for _, x := range r.Rows {
			if x.Allowed != 1 {
				continue
			}
			k := key{x.Dataset, x.Engine, x.Ef}
			if _, ok := rec[k]; !ok {
				rowOrder = append(rowOrder, k)
			}
			rec[k], qps[k] = append(rec[k], x.Recall), append(qps[k], x.QPS)
		}
		for _, b := range r.Builds {
			k := key{b.Dataset, b.Engine, b.Threads}
			if _, ok := ins[k]; !ok {
				buildOrder = append(buildOrder, k)
			}
			ins[k], bpv[k] = append(ins[k], b.InsertsPerSec), append(bpv[k], b.BytesPerVector)
			spv[k] = append(spv[k], b.SavedPerVector)
			sv[k], ld[k] = append(sv[k], b.SaveSec), append(ld[k], b.LoadSec)
		}
	}
	var out Report
	for _, k := range rowOrder {
		out.Rows = append(out.Rows, Row{Dataset: k.ds, Engine: k.eng, Ef: k.n, Allowed: 1, Recall: median(rec[k]), QPS: median(qps[k])})
	}
	for _, k := range buildOrder {
		out.Builds = append(out.Builds, Build{Dataset: k.ds, Engine: k.eng, Threads: k.n, InsertsPerSec: median(ins[k]), BytesPerVector: median(bpv[k]), SavedPerVector: median(spv[k]), SaveSec: median(sv[k]), LoadSec: median(ld[k])})
	}
	return out
}

// QPSAtRecall interpolates an engine's q/s at a recall target along its ef
// curve (rows of one dataset and engine, in ef order): linear between the
// two points around the target; the first point's q/s when even the
// smallest ef reaches it; NaN when no ef does.
func QPSAtRecall(rows []Row, target float64) float64 {
	for i, r := range rows {
		if r.Recall >= target {
			if i == 0 {
				return r.QPS
			}
			p := rows[i-1]
			t := (target - p.Recall) / (r.Recall - p.Recall)
			return p.QPS + t*(r.QPS-p.QPS)
		}
	}
	return math.NaN()
}

// Ratios renders, per dataset, mmdb's q/s at recall 0.95 and 0.99 over
// each peer's, as a Markdown table.
func Ratios(rep Report) string {
	curves := map[string]map[string][]Row{}
	var datasets []string
	for _, r := range rep.Rows {
		if curves[r.Dataset] == nil {
			curves[r.Dataset] = map[string][]Row{}
			datasets = append(datasets, r.Dataset)
		}
		curves[r.Dataset][r.Engine] = append(curves[r.Dataset][r.Engine], r)
	}
	var b strings.Builder
	b.WriteString("| dataset | recall@10 | mmdb q/s | hnswlib q/s | faiss q/s | mmdb/hnswlib | mmdb/faiss |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, ds := range datasets {
		for _, target := range []float64{0.95, 0.99} {
			m := QPSAtRecall(curves[ds]["hnsw"], target)
			h := QPSAtRecall(curves[ds]["hnswlib"], target)
			f := QPSAtRecall(curves[ds]["faiss"], target)
			fmt.Fprintf(&b, "| %s | %.2f | %s | %s | %s | %s | %s |\n", ds, target, num(m, 0), num(h, 0), num(f, 0), num(m/h, 2), num(m/f, 2))
		}
	}
	return b.String()
}

// num prints x with prec decimals, or "-" when it is not a number (a peer
// not run, or a recall no ef reached).
func num(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}
