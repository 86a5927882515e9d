package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [-data sift5k,synth100k,synth50k] [-engines hnsw,coder,flat] [-ef 16,32,...] [-threads 1,2]", stderr)
	data := fs.String("data", "sift5k,synth100k,synth50k", "datasets: sift5k (real SIFT, from -shared), synth100k (100k x 128, 1,000 clusters), synth50k (50k x 512, 500 clusters), or tiny (1k x 32)")
	engines := fs.String("engines", "hnsw,coder,flat", "engines to measure")
	efs := fs.String("ef", "16,32,64,128,256", "search beam widths")
	threads := fs.String("threads", "1,"+strconv.Itoa(runtime.NumCPU()), "build thread counts")
	shared := fs.String("shared", "../shared/data", "the shared data folder")
	m := fs.Int("m", 16, "HNSW links per node")
	efc := fs.Int("efc", 200, "HNSW efConstruction")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	efList, err := ints(*efs)
	if err != nil {
		return err
	}
	thList, err := ints(*threads)
	if err != nil {
		return err
	}
	cfg := bench.Config{Engines: strings.Split(*engines, ","), Efs: efList, Threads: thList, M: *m, EfC: *efc}
	if !*quiet {
		cfg.Progress = stderr
	}
	var total bench.Report
	for _, name := range strings.Split(*data, ",") {
		var d bench.Dataset
		switch name {
		case "sift5k":
			if d, err = bench.SIFT5k(*shared + "/sift5k"); err != nil {
				return fmt.Errorf("sift5k needs the shared data folder (-shared): %w", err)
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
		rep, err := bench.Run(ctx, d, cfg)
		if err != nil {
			return err
		}
		total.Rows = append(total.Rows, rep.Rows...)
		total.Builds = append(total.Builds, rep.Builds...)
	}
	fmt.Fprint(stdout, total.Markdown())
	return nil
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
