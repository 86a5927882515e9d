package main

import (
	"context"
	"fmt"
	"io"
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
	data := fs.String("data", "sift5k,synth100k,synth50k", "datasets: sift5k (real SIFT, from --shared), synth100k (100k x 128, 1,000 clusters), synth50k (50k x 512, 500 clusters), or tiny (1k x 32)")
	engines := fs.String("engines", "hnsw,coder,flat", "engines to measure: hnsw, hnsw-f32 (hnsw walking on float32 vectors), coder, flat")
	efs := fs.String("ef", "16,32,64,128,256", "search beam widths")
	threads := fs.String("threads", "1,"+strconv.Itoa(runtime.NumCPU()), "build thread counts")
	shared := fs.String("shared", "../shared/data", "the shared data folder")
	m := fs.Int("m", 16, "HNSW links per node")
	efc := fs.Int("efc", 200, "HNSW efConstruction")
	quiet := fs.BoolP("quiet", "q", false, "no progress lines on stderr")
	peers := fs.Bool("peers", false, "compare with hnswlib and FAISS (installed with apt-get when missing), alternating runs")
	with := fs.String("with", strings.Join(bench.Peers, ","), "with --peers: the peers to run (FAISS builds take most of a full run)")
	reps := fs.Int("reps", 3, "with --peers: alternating repetitions; medians are reported")
	plotDir := fs.String("plot", "", "with --peers: write a recall-vs-queries/s PNG per dataset into this directory")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	c.RunE = func(c *cobra.Command, _ []string) error {
		return runBench(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), benchFlags{*data, *engines, *efs, *threads, *shared, *m, *efc, *quiet, *peers, *reps, *plotDir, *asJSON, *with})
	}
	return c
}

type benchFlags struct {
	data, engines, efs, threads, shared string
	m, efc                              int
	quiet, peers                        bool
	reps                                int
	plotDir                             string
	json                                bool
	with                                string
}

func runBench(ctx context.Context, stdout, stderr io.Writer, f benchFlags) error {
	data, engines, efs, threads, shared, m, efc, quiet, peers, reps, plotDir := &f.data, &f.engines, &f.efs, &f.threads, &f.shared, &f.m, &f.efc, &f.quiet, &f.peers, &f.reps, &f.plotDir
	efList, err := ints(*efs)
	if err != nil {
		return err
	}
	thList, err := ints(*threads)
	if err != nil {
		return err
	}
	cfg := bench.Config{Engines: strings.Split(*engines, ","), Efs: efList, Threads: thList, M: *m, EfC: *efc, K: 10}
	if !*quiet {
		cfg.Progress = stderr
	}
	var total bench.Report
	var harness string
	var peerList []string
	for _, p := range strings.Split(f.with, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(bench.Peers, p) {
			return fmt.Errorf("%w: unknown peer %q (want %s)", errUsage, p, strings.Join(bench.Peers, ", "))
		}
		peerList = append(peerList, p)
	}
	if *peers {
		cfg.Engines, cfg.NoFilter = []string{"hnsw"}, true
		if err := bench.EnsurePeers(ctx, stderr); err != nil {
			return err
		}
		if harness, err = bench.BuildHarness(ctx); err != nil {
			return err
		}
	}
	for _, name := range strings.Split(*data, ",") {
		var d bench.Dataset
		switch name {
		case "sift5k":
			if d, err = bench.SIFT5k(*shared + "/sift5k"); err != nil {
				return fmt.Errorf("sift5k needs the shared data folder (--shared): %w", err)
			}
		case "synth100k":
			d = bench.Synthetic(name, 100_000, 1000, 128, 1000, 1)
		case "synth50k":
			d = bench.Synthetic(name, 50_000, 1000, 512, 500, 2)
		case "tiny":
			d = bench.Synthetic(name, 1000, 50, 32, 10, 3)
		default:
			return fmt.Errorf("%w: unknown dataset %q", errUsage, name)
		}
		if *peers {
			rep, err := comparePeers(ctx, harness, d, cfg, peerList, *reps, stderr)
			if err != nil {
				return err
			}
			total.Rows = append(total.Rows, rep.Rows...)
			total.Builds = append(total.Builds, rep.Builds...)
			if *plotDir != "" {
				if err := os.MkdirAll(*plotDir, 0o755); err != nil {
					return err
				}
				path := filepath.Join(*plotDir, "recall-qps-"+d.Name+".png")
				if err := bench.Plot(rep, d.Name, path); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "plot written to %s\n", path)
			}
			continue
		}
		rep, err := bench.Run(ctx, d, cfg)
		if err != nil {
			return err
		}
		total.Rows = append(total.Rows, rep.Rows...)
		total.Builds = append(total.Builds, rep.Builds...)
	}
	if f.json {
		return report(stdout, total)
	}
	fmt.Fprint(stdout, total.Markdown())
	if *peers {
		fmt.Fprintf(stdout, "\nq/s at equal recall@10 (medians of %d alternating runs; interpolated along the ef curve):\n\n", *reps)
		fmt.Fprint(stdout, bench.Ratios(total))
	}
	return nil
}

// comparePeers measures mmdb, hnswlib and FAISS on d in alternation, reps
// times, and returns the medians.
func comparePeers(ctx context.Context, harness string, d bench.Dataset, cfg bench.Config, peers []string, reps int, log io.Writer) (bench.Report, error) {
	if d.Truth == nil {
		fmt.Fprintf(log, "%s: exact ground truth for %d queries\n", d.Name, len(d.Queries))
		d.Truth = bench.ExactTruth(d, cfg.K)
	}
	dir, err := os.MkdirTemp("", "mmdb-peers-")
	if err != nil {
		return bench.Report{}, err
	}
	defer os.RemoveAll(dir)
	if err := bench.WriteDataset(d, d.Truth, dir); err != nil {
		return bench.Report{}, err
	}
	var runs []bench.Report
	for r := range reps {
		rep, err := bench.Run(ctx, d, cfg)
		if err != nil {
			return bench.Report{}, err
		}
		runs = append(runs, rep)
		for _, peer := range peers {
			fmt.Fprintf(log, "%s: run %d/%d: %s\n", d.Name, r+1, reps, peer)
			rep, err := bench.RunPeer(ctx, harness, peer, dir, d, cfg)
			if err != nil {
				return bench.Report{}, err
			}
			runs = append(runs, rep)
		}
	}
	return bench.Medians(runs), nil
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
