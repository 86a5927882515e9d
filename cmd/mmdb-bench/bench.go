package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb/internal/bench"
	"github.com/spf13/cobra"
)

// benchCmd is the whole command line: the benchmark and its flags.
func benchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "mmdb-bench",
		Short: "measure recall, speed, build rate and memory of mmdb's index engines",
		Long: "Measures the index engines on real SIFT descriptors and synthetic sets (see BENCHMARKS.md);\n" +
			"with --peers, mmdb, hnswlib and FAISS side by side as q/s ratios at equal recall.",
		Example:       "  mmdb-bench --data tiny --ef 32\n  mmdb-bench --peers --data sift5k --plot .",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: no arguments expected, got %q (the benchmark takes flags only; see --help)", errUsage, args[0])
			}
			return nil
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	c.CompletionOptions.DisableDefaultCmd = true
	fs := c.Flags()
	data := fs.String("data", "sift5k,synth100k,synth50k,clip50k", "datasets: sift5k (real SIFT, from --shared), synth100k (100k x 128, 1,000 clusters), synth50k (50k x 512, 500 clusters), clip50k (50k x 512 cosine drawn around the COCO image and caption embeddings of CLIP, with 500 held-out queries drawn alike, from --shared), clip50k-text (the 500 image embeddings and 49,500 drawn around them, queried with the 500 real captions: text to image, across the modality gap; not in the default list), synth1m (1M x 128, 10,000 clusters: minutes a build), or tiny (1k x 32)")
	engines := fs.String("engines", "hnsw,coder,flat", "engines to measure: hnsw, hnsw-f32 (hnsw walking on float32 vectors), coder, flat; with --peers, hnsw (the default there) and hnsw-f32, each compared with the peers")
	efs := fs.String("ef", denseEfs, "search beam widths (a dense grid from 10, so recall targets are interpolated, not read off the first point)")
	threads := fs.String("threads", "1,"+strconv.Itoa(runtime.NumCPU()), "build thread counts")
	shared := fs.String("shared", "../shared/data", "the shared data folder")
	m := fs.Int("m", 16, "HNSW links per node")
	efc := fs.Int("efc", 200, "HNSW efConstruction")
	quiet := fs.BoolP("quiet", "q", false, "no progress lines on stderr")
	peers := fs.Bool("peers", false, "compare with hnswlib and FAISS (installed with apt-get when missing), alternating runs")
	with := fs.String("with", strings.Join(bench.Peers, ","), "with --peers: the peers to run (FAISS builds take most of a full run)")
	reps := fs.Int("reps", 3, "with --peers: paired rounds (every engine once a round, alternating); ratios are per round, with their median and range")
	plotDir := fs.String("plot", "", "with --peers: write a recall-vs-queries/s PNG per dataset into this directory")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	filterEfs := fs.String("filter-ef", "10,16,24,32,48,64,96,128,192,256,384,512", "search beam widths of the filtered sweeps")
	filters := fs.String("filters", "1,10,50", "filtered sweeps: the percentages of vectors an allow-list keeps (every 100/p-th ID), against exact filtered search; \"\" for none")
	c.RunE = func(c *cobra.Command, _ []string) error {
		return runBench(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), benchFlags{*data, *engines, *efs, *threads, *shared, *m, *efc, *quiet, *peers, *reps, *plotDir, *asJSON, *with, *filters, *filterEfs, fs.Changed("engines")})
	}
	return c
}

// denseEfs is the default ef sweep.
const denseEfs = "10,12,14,16,20,24,28,32,40,48,56,64,80,96,128,160,192,256,320,384,512"

// output is what --json prints.
type output struct {
	Machine bench.Machine `json:"machine"`
	// Rounds is the number of paired rounds (with --peers).
	Rounds int `json:"rounds,omitempty"`
	// Peers says which build of each peer ran.
	Peers       map[string]string  `json:"peers,omitempty"`
	Ratios      []bench.Ratio      `json:"ratios,omitempty"`
	BuildRatios []bench.BuildRatio `json:"build_ratios,omitempty"`
	// Rows and Builds are the medians over the rounds.
	Rows   []bench.Row   `json:"rows"`
	Builds []bench.Build `json:"builds"`
}

type benchFlags struct {
	data, engines, efs, threads, shared string
	m, efc                              int
	quiet, peers                        bool
	reps                                int
	plotDir                             string
	json                                bool
	with                                string
	filters, filterEfs                  string
	enginesSet                          bool // --engines was given
}

func runBench(ctx context.Context, stdout, stderr io.Writer, f benchFlags) error {
	cfg, peerList, err := f.config(stderr)
	if err != nil {
		return err
	}
	machine := bench.DescribeMachine()
	var total bench.Report
	var rounds []bench.Report
	var harness, hnswlibVersion string
	if f.peers {
		if !f.enginesSet {
			cfg.Engines = []string{"hnsw"}
		}
		if err := bench.EnsurePeers(ctx, stderr); err != nil {
			return err
		}
		if harness, hnswlibVersion, err = bench.BuildHarness(ctx, stderr); err != nil {
			return err
		}
		rounds = make([]bench.Report, f.reps)
	}
	sizes := map[string]int{}
	for _, name := range strings.Split(f.data, ",") {
		d, err := dataset(name, f.shared)
		if err != nil {
			return err
		}
		sizes[d.Name] = len(d.Base)
		var rep bench.Report
		if f.peers {
			runs, err := comparePeers(ctx, harness, d, cfg, peerList, f.reps, stderr)
			if err != nil {
				return err
			}
			for r, run := range runs {
				rounds[r].Rows = append(rounds[r].Rows, run.Rows...)
				rounds[r].Builds = append(rounds[r].Builds, run.Builds...)
			}
			rep = bench.Medians(runs)
			if err := plot(f.plotDir, rep, d.Name, stderr); err != nil {
				return err
			}
		} else if rep, err = bench.Run(ctx, d, cfg); err != nil {
			return err
		}
		total.Rows = append(total.Rows, rep.Rows...)
		total.Builds = append(total.Builds, rep.Builds...)
	}
	machine.Finish()
	out := output{Machine: machine, Rows: total.Rows, Builds: total.Builds}
	if f.peers {
		out.Rounds = f.reps
		out.Ratios, out.BuildRatios = bench.PairedRatios(rounds, peerList, sizes)
		out.Peers = map[string]string{}
		for _, p := range peerList {
			out.Peers[p] = peerBuilds[p]
			if p == "hnswlib" {
				out.Peers[p] = "hnswlib " + hnswlibVersion
			}
		}
	}
	if f.json {
		return report(stdout, out)
	}
	printReport(stdout, out, total, peerList)
	return nil
}

// config turns the flags into the benchmark's configuration and the list
// of peers.
func (f benchFlags) config(stderr io.Writer) (bench.Config, []string, error) {
	efList, err := ints(f.efs)
	if err != nil {
		return bench.Config{}, nil, err
	}
	thList, err := ints(f.threads)
	if err != nil {
		return bench.Config{}, nil, err
	}
	steps, err := filterSteps(f.filters)
	if err != nil {
		return bench.Config{}, nil, err
	}
	filterEfList, err := ints(f.filterEfs)
	if err != nil {
		return bench.Config{}, nil, err
	}
	cfg := bench.Config{Engines: strings.Split(f.engines, ","), Efs: efList, Threads: thList, M: f.m, EfC: f.efc, K: 10, Filters: steps, FilterEfs: filterEfList}
	if !f.quiet {
		cfg.Progress = stderr
	}
	if f.peers && f.enginesSet {
		for i, e := range cfg.Engines {
			if !slices.Contains(bench.MMDBEngines, e) {
				return bench.Config{}, nil, fmt.Errorf("%w: with --peers, --engines takes %s, not %q", errUsage, strings.Join(bench.MMDBEngines, " and "), e)
			}
			if slices.Contains(cfg.Engines[:i], e) {
				return bench.Config{}, nil, fmt.Errorf("%w: --engines names %s twice", errUsage, e)
			}
		}
	}
	var peerList []string
	for _, p := range strings.Split(f.with, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(bench.Peers, p) {
			return bench.Config{}, nil, fmt.Errorf("%w: unknown peer %q (want %s)", errUsage, p, strings.Join(bench.Peers, ", "))
		}
		peerList = append(peerList, p)
	}
	return cfg, peerList, nil
}

// plot writes a dataset's recall-vs-q/s plot into dir, when dir is set.
func plot(dir string, rep bench.Report, dataset string, stderr io.Writer) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "recall-qps-"+dataset+".png")
	if err := bench.Plot(rep, dataset, path); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "plot written to %s\n", path)
	return nil
}

// printReport writes the machine line, the peers' builds, the tables and,
// with peers, the paired ratios.
func printReport(stdout io.Writer, out output, total bench.Report, peerList []string) {
	fmt.Fprintf(stdout, "%s\n", out.Machine)
	for _, p := range peerList {
		if v, ok := out.Peers[p]; ok {
			fmt.Fprintf(stdout, "%s: %s\n", p, v)
		}
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, total.Markdown())
	if out.Rounds > 0 {
		fmt.Fprintf(stdout, "\nmmdb over each peer, per paired round (%d rounds; q/s interpolated at each recall along the ef sweep):\n\n", out.Rounds)
		fmt.Fprint(stdout, bench.RatiosMarkdown(out.Ratios, out.BuildRatios))
	}
}

// dataset makes or loads a named dataset.
func dataset(name, shared string) (bench.Dataset, error) {
	switch name {
	case "sift5k":
		d, err := bench.SIFT5k(shared + "/sift5k")
		if err != nil {
			return d, fmt.Errorf("sift5k needs the shared data folder (--shared): %w", err)
		}
		return d, nil
	case "synth100k":
		return bench.Synthetic(name, 100_000, 1000, 128, 1000, 1), nil
	case "synth50k":
		return bench.Synthetic(name, 50_000, 1000, 512, 500, 2), nil
	case "clip50k", "clip50k-text":
		d, err := bench.CLIPLike(shared+"/coco500-clip", 50_000, name == "clip50k-text", 5)
		if err != nil {
			return d, fmt.Errorf("%s needs the shared data folder (--shared): %w", name, err)
		}
		return d, nil
	case "synth1m": // not in the default list: its builds take minutes each
		return bench.Synthetic(name, 1_000_000, 1000, 128, 10_000, 4), nil
	case "tiny":
		return bench.Synthetic(name, 1000, 50, 32, 10, 3), nil
	}
	return bench.Dataset{}, fmt.Errorf("%w: unknown dataset %q", errUsage, name)
}

// comparePeers measures mmdb and the peers on d in paired rounds: each
// round runs every engine once, one after the other, and yields one
// report, so ratios can be taken within a round.
func comparePeers(ctx context.Context, harness string, d bench.Dataset, cfg bench.Config, peers []string, reps int, log io.Writer) ([]bench.Report, error) {
	if d.Truth == nil {
		fmt.Fprintf(log, "%s: exact ground truth for %d queries\n", d.Name, len(d.Queries))
		d.Truth = bench.ExactTruth(d, cfg.K)
	}
	bench.FilterTruth(&d, cfg.K, cfg.Filters)
	dir, err := os.MkdirTemp("", "mmdb-peers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := bench.WriteDataset(d, d.Truth, dir); err != nil {
		return nil, err
	}
	runs := make([]bench.Report, reps)
	for r := range reps {
		// Alternate who goes first, so none always runs on a warmer (or
		// more throttled) machine: each of mmdb's engines is one entry.
		order := append(slices.Clone(cfg.Engines), peers...)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, engine := range order {
			fmt.Fprintf(log, "%s: round %d/%d: %s\n", d.Name, r+1, reps, engine)
			var rep bench.Report
			if slices.Contains(bench.MMDBEngines, engine) {
				one := cfg
				one.Engines = []string{engine}
				rep, err = bench.Run(ctx, d, one)
			} else {
				rep, err = bench.RunPeer(ctx, harness, engine, dir, d, cfg)
			}
			if err != nil {
				return nil, err
			}
			runs[r].Rows = append(runs[r].Rows, rep.Rows...)
			runs[r].Builds = append(runs[r].Builds, rep.Builds...)
		}
	}
	return runs, nil
}

// peerBuilds says how each peer was built, for the report.
var peerBuilds = map[string]string{
	"faiss": "FAISS 1.7.3, Debian's prebuilt libfaiss-dev (not built with -march=native), IndexHNSWFlat searched through its batch API one query at a time",
}

// filterSteps turns percentages of allowed vectors into allow-list steps
// (every step-th ID).
func filterSteps(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		// 100% would be the unfiltered sweep again; above 50% the step
		// rounds to 1 or 2 (every ID, every other one).
		if err != nil || !(p > 0 && p <= 50) {
			return nil, fmt.Errorf("%w: filter %q is not a percentage in (0, 50] (the unfiltered sweep is always run)", errUsage, f)
		}
		step := int(math.Round(100 / p))
		if slices.Contains(out, step) {
			return nil, fmt.Errorf("%w: filters %s give the same allow-list twice (every %d-th ID)", errUsage, s, step)
		}
		out = append(out, step)
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: %q is not a positive integer", errUsage, f)
		}
		out = append(out, n)
	}
	return out, nil
}
