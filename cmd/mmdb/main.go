// Command mmdb is the command line of the mmdb embedded vector database.
//
//	mmdb demo [-dir DIR] [-items N]   build a small multimodal database and query it
//	mmdb bench [-data ...]            measure the index engines (see BENCHMARKS.md)
//	mmdb snapshot DB OUT              consistent online copy
//	mmdb restore SNAPSHOT DB          restore from a snapshot
//	mmdb check DB                     verify; exit 1 on any problem
//	mmdb version                      print the version
//
// Exit codes: 0 ok, 1 error, 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "build a synthetic multimodal database and run cross-modal searches", runDemo},
	{"bench", "measure recall, speed, build rate and memory of the index engines", runBench},
	{"snapshot", "write a consistent copy of a database while it stays usable", runSnapshot},
	{"restore", "restore a database from a snapshot", runRestore},
	{"check", "verify a database; exit 1 on any problem", runCheck},
	{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		fmt.Fprintln(stdout, "mmdb", version)
		return nil
	}},
}

// errUsage marks errors in how the command was called (exit code 2).
var errUsage = errors.New("usage")

var errHelp = flag.ErrHelp

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mmdb COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'mmdb COMMAND -h' for a command's flags.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errProblems):
				return 1
			case errors.Is(err, errUsage):
				fmt.Fprintln(stderr, prefixed(err))
				return 2
			default:
				fmt.Fprintln(stderr, prefixed(err))
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "mmdb: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// prefixed names the program once, whether or not the error already does.
func prefixed(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "mmdb: ") {
		return msg
	}
	return "mmdb: " + msg
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mmdb %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
