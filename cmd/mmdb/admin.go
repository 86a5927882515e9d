package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mmdb-go/mmdb"
)

// errProblems marks a check that ran and found problems (exit code 1).
var errProblems = errors.New("check found problems")

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("snapshot", "snapshot [-json] DB OUT\n\nWrites a consistent copy of DB to OUT while it stays usable; OUT opens without rebuilding indexes.\nExample: mmdb snapshot media.mmdb backup/media-2026-11-28.mmdb", stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseArgs(fs, args, 2); err != nil {
		return err
	}
	db, err := mmdb.Open(fs.Arg(0), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Snapshot(ctx, fs.Arg(1)); err != nil {
		return err
	}
	return report(stdout, *asJSON, map[string]any{"snapshot": fs.Arg(1), "items": db.Count()},
		fmt.Sprintf("snapshot of %s (%d items) written to %s\n", fs.Arg(0), db.Count(), fs.Arg(1)))
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", "restore [-force] [-json] SNAPSHOT DB\n\nCopies SNAPSHOT to DB after checking it is a readable mmdb database.\nExample: mmdb restore backup/media-2026-11-28.mmdb media.mmdb", stderr)
	force := fs.Bool("force", false, "replace DB if it exists (it must not be open)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseArgs(fs, args, 2); err != nil {
		return err
	}
	if err := mmdb.Restore(fs.Arg(0), fs.Arg(1), &mmdb.RestoreOptions{Overwrite: *force}); err != nil {
		return err
	}
	return report(stdout, *asJSON, map[string]any{"restored": fs.Arg(1), "from": fs.Arg(0)},
		fmt.Sprintf("restored %s from %s\n", fs.Arg(1), fs.Arg(0)))
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [-json] DB\n\nVerifies the file, the ID maps, the vectors and the indexes; exits 1 on any problem.\nExample: mmdb check media.mmdb", stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseArgs(fs, args, 1); err != nil {
		return err
	}
	db, err := mmdb.Open(fs.Arg(0), &mmdb.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := db.Check(ctx)
	if err != nil {
		return err
	}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	text := fmt.Sprintf("%d items, vectors %v: ", rep.Items, rep.Vectors)
	if rep.OK() {
		text += "ok\n"
	} else {
		text += fmt.Sprintf("%d problems\n", len(rep.Problems))
		for _, p := range rep.Problems {
			text += "  " + p + "\n"
		}
	}
	if err := report(stdout, *asJSON, rep, text); err != nil {
		return err
	}
	if !rep.OK() {
		return errProblems
	}
	return nil
}

// parseArgs parses flags and requires exactly n positional arguments.
func parseArgs(fs interface {
	Parse([]string) error
	NArg() int
}, args []string, n int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != n {
		return fmt.Errorf("%w: want %d arguments, got %d (see -h)", errUsage, n, fs.NArg())
	}
	return nil
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
