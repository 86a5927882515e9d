package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/spf13/cobra"
)

func snapshotCmd() *cobra.Command {
	c := newCmd("snapshot DB OUT", "write a consistent copy of a database while it stays usable",
		"Writes a consistent copy of DB to OUT while it stays usable; OUT opens without rebuilding indexes.",
		"mmdb snapshot media.mmdb backup/media-2026-11-28.mmdb", 2)
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		return runSnapshot(c.Context(), args, c.OutOrStdout(), c.ErrOrStderr(), *asJSON)
	}
	return c
}

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer, asJSON bool) error {
	if err := mustExist(args[0]); err != nil {
		return err
	}
	// Read-only: a snapshot only reads, and shares the file with other
	// readers.
	db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: true, Progress: progressFunc(stderr)})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Snapshot(ctx, args[1]); err != nil {
		return err
	}
	return report(stdout, asJSON, map[string]any{"snapshot": args[1], "items": db.Count()},
		fmt.Sprintf("snapshot of %s (%d items) written to %s\n", args[0], db.Count(), args[1]))
}

func restoreCmd() *cobra.Command {
	c := newCmd("restore SNAPSHOT DB", "restore a database from a snapshot",
		"Copies SNAPSHOT to DB after checking it is a readable mmdb database.",
		"mmdb restore backup/media-2026-11-28.mmdb media.mmdb", 2)
	force := c.Flags().Bool("force", false, "replace DB if it exists (it must not be open)")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := mmdb.Restore(args[0], args[1], &mmdb.RestoreOptions{Overwrite: *force}); err != nil {
			return err
		}
		return report(c.OutOrStdout(), *asJSON, map[string]any{"restored": args[1], "from": args[0]},
			fmt.Sprintf("restored %s from %s\n", args[1], args[0]))
	}
	return c
}

func checkCmd() *cobra.Command {
	c := newCmd("check DB", "verify a database; exit 1 on any problem",
		"Verifies the file, the ID maps, the vectors and the indexes; exits 1 on any problem.",
		"mmdb check media.mmdb", 1)
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		return runCheck(c.Context(), args[0], c.OutOrStdout(), *asJSON)
	}
	return c
}

func runCheck(ctx context.Context, path string, stdout io.Writer, asJSON bool) error {
	db, err := mmdb.Open(path, &mmdb.Options{ReadOnly: true})
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
	mods := make([]string, 0, len(rep.Vectors))
	for m, n := range rep.Vectors {
		mods = append(mods, fmt.Sprintf("%s %d", m, n))
	}
	slices.Sort(mods)
	text := fmt.Sprintf("%d items, vectors: %s: ", rep.Items, strings.Join(mods, ", "))
	if rep.OK() {
		text += "ok\n"
	} else {
		text += fmt.Sprintf("%d problems\n", len(rep.Problems))
		for _, p := range rep.Problems {
			text += "  " + p + "\n"
		}
	}
	if err := report(stdout, asJSON, rep, text); err != nil {
		return err
	}
	if !rep.OK() {
		return errProblems
	}
	return nil
}
