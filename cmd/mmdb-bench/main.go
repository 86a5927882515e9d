// Command mmdb-bench measures mmdb's index engines: recall, queries/s,
// build rate, memory, save and load, on real SIFT descriptors and
// synthetic sets, against an exact scan and against coder/hnsw; with
// --peers, side by side with hnswlib and FAISS (a C++ harness compiled
// against Debian's packages, installed with apt-get when run as root).
// See BENCHMARKS.md.
//
//	go run ./cmd/mmdb-bench                                  the engine sweep
//	go run ./cmd/mmdb-bench --data tiny --ef 32              a quick run
//	go run ./cmd/mmdb-bench --peers --data sift5k --plot .   mmdb, hnswlib, FAISS
//
// It is a separate program from mmdb, so the database's command line does
// not link the benchmark's baseline, its plotting or its peer harness.
// Exit codes: 0 ok, 1 error, 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// errUsage marks errors in how the command was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := benchCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, prefixed(err))
		return 2
	default:
		fmt.Fprintln(stderr, prefixed(err))
		return 1
	}
}

// prefixed names the program once.
func prefixed(err error) string {
	return "mmdb-bench: " + strings.TrimPrefix(err.Error(), "usage: ")
}

// report writes v as indented JSON.
func report(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
