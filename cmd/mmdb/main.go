// Command mmdb is the command line of the mmdb embedded vector database.
//
//	mmdb DB                           open the interactive shell on DB
//	mmdb shell DB                     the same
//	mmdb query DB STATEMENT           run one statement
//	mmdb import DB FILE...            JSONL, NPY (--modality) files
//	mmdb export DB OUT                JSONL or Parquet; --for lancedb|milvus: a folder those engines load
//	mmdb serve PATH                   HTTP server, Qdrant-compatible REST API
//	mmdb stats DB                     schema, counts, alignments
//	mmdb demo [--dir DIR]             build a small multimodal database and query it
//	mmdb snapshot DB OUT              consistent online copy
//	mmdb restore SNAPSHOT DB          restore from a snapshot
//	mmdb check DB                     verify; exit 1 on any problem
//	mmdb align DB FROM TO             learn and store a projection between spaces
//	mmdb eval DB PROBE TARGET         cross-modal recall, by the route searches take
//	mmdb version                      print the version
//
// Every command has --help with an example, and --json where it prints a
// result. Exit codes: 0 ok, 1 error, 2 usage.
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

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors in how the command was called (exit code 2).
var errUsage = errors.New("usage")

// errProblems marks a check that ran and found problems (exit code 1).
var errProblems = errors.New("check found problems")

// errReported marks a failure already shown to the user (exit code 1,
// nothing more printed): the shell prints each statement's error itself.
var errReported = errors.New("failed")

// newCmd makes a subcommand taking exactly nargs positional arguments
// (-1: any number, at least one).
// movedBenchCmd answers the old `mmdb bench` with where it went: the
// benchmarks link plotting and peers that the product binary leaves out.
func movedBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "bench",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("%w: the benchmarks are their own program now: go run ./cmd/mmdb-bench --help", errUsage)
		},
	}
}

func newCmd(use, short, long, example string, nargs int) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, Example: "  " + example}
	c.Args = func(_ *cobra.Command, args []string) error {
		switch {
		case nargs >= 0 && len(args) != nargs:
			return fmt.Errorf("%w: want %d arguments, got %d (see --help)", errUsage, nargs, len(args))
		case nargs < 0 && len(args) == 0:
			return fmt.Errorf("%w: want at least one argument (see --help)", errUsage)
		}
		return nil
	}
	return c
}

// mustExist refuses a database path that does not exist, for commands
// that should not create one by accident.
func mustExist(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: no such database ('mmdb shell %s' creates one): %w", path, path, err)
	}
	return nil
}

func jsonFlag(c *cobra.Command) *bool {
	return c.Flags().Bool("json", false, "print the result as JSON")
}

// lowMemoryFlag adds --low-memory (mmdb.Options.LowMemory) to c.
func lowMemoryFlag(c *cobra.Command) *bool {
	return c.Flags().Bool("low-memory", false, "keep vectors out of memory: graphs hold byte codes and read the vectors a search found back from the file (about 40% of the memory, slower searches)")
}

func report(w io.Writer, asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := io.WriteString(w, text)
	return err
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mmdb [DB]",
		Short: "mmdb: an embedded vector database for cross-modal search",
		Long: "mmdb stores items with an embedding per modality (text, image, audio, ...) in one file,\n" +
			"and answers cross-modal searches. 'mmdb DB' opens the shell on DB.",
		Example:       "  mmdb media.mmdb\n  mmdb query media.mmdb \"SEARCH image NEAR text OF 'dog-1' LIMIT 5\"\n  mmdb demo",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
			}
			return nil
		},
	}
	shell := shellCmd()
	root.Flags().AddFlagSet(shell.Flags())
	root.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			c.SetOut(c.ErrOrStderr())
			_ = c.Usage()
			return fmt.Errorf("%w: name a database to open the shell, or a command", errUsage)
		}
		// A mistyped command ("mmdb verison") must not create a database.
		if err := mustExist(args[0]); err != nil {
			return fmt.Errorf("%w (or %q is not a command; see --help)", err, args[0])
		}
		return shell.RunE(c, args)
	}
	root.AddCommand(shell, queryCmd(), importCmd(), exportCmd(), statsCmd(), demoCmd(),
		snapshotCmd(), restoreCmd(), checkCmd(), alignCmd(), evalCmd(), calibrateCmd(), defineCmd(), encodeCmd(), dropCmd(), versionCmd(), serveCmd(), movedBenchCmd())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

func versionCmd() *cobra.Command {
	c := newCmd("version", "print the version", "Prints the version of this mmdb build.", "mmdb version", 0)
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		return report(c.OutOrStdout(), *asJSON, map[string]string{"version": version}, "mmdb "+version+"\n")
	}
	return c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errProblems), errors.Is(err, errReported):
		return 1
	case errors.Is(err, errUsage), isCobraUsage(err):
		fmt.Fprintln(stderr, prefixed(err))
		return 2
	default:
		fmt.Fprintln(stderr, prefixed(err))
		return 1
	}
}

// isCobraUsage recognises the errors cobra makes itself for bad command
// lines.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument")
}

// prefixed names the program once, whether or not the error already does.
func prefixed(err error) string {
	msg := strings.TrimPrefix(err.Error(), "usage: ")
	if strings.HasPrefix(msg, "mmdb: ") {
		return msg
	}
	return "mmdb: " + msg
}
