package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/align"
	"github.com/spf13/cobra"
)

func alignCmd() *cobra.Command {
	c := newCmd("align DB FROM TO", "learn a projection between two modalities' spaces",
		"Learns a projection from modality FROM to modality TO from the items that carry both and\n"+
			"prints what each method scored, cross-fitted in 5 folds (each item ranked by a map that\n"+
			"never saw it, against every item's TO vector), beside searching without a map (the pivot,\n"+
			"and the vectors as they are when the dimensions agree) and the chance level. The best\n"+
			"method by MRR is stored (searches from FROM to TO then use it) only when it beats searching\n"+
			"without a map by more than the fold-to-fold spread; otherwise nothing is stored and the\n"+
			"command fails saying why. Modalities that share a space are refused (searches compare\n"+
			"them directly) unless --force, which also stores a map that does not beat the route it\n"+
			"replaces. Storing a map drops a calibration made for FROM -> TO; the report says so.",
		"mmdb align --method cca media.mmdb image audio", 3)
	method := c.Flags().String("method", "auto", "learner: auto, ridge, procrustes, cca or infonce (auto tries each and keeps the best cross-fitted MRR)")
	force := c.Flags().Bool("force", false, "store a map even where searching without one does as well: between modalities of one space (it then replaces the direct route), or when no method beats the pivot")
	label := c.Flags().String("label", "", "an attribute holding each item's class, for items paired by class (a spoken and a written digit): a target of the query's class counts as a hit")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		return runAlign(c.Context(), args, c.OutOrStdout(), c.ErrOrStderr(), &mmdb.AlignOptions{Method: align.Method(*method), Force: *force, StoreAny: *force, Label: *label}, *asJSON)
	}
	return c
}

func runAlign(ctx context.Context, args []string, stdout, stderr io.Writer, o *mmdb.AlignOptions, asJSON bool) error {
	m, err := align.ParseMethod(string(o.Method))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o.Method = m
	if err := mustExist(args[0]); err != nil {
		return err
	}
	db, err := mmdb.Open(args[0], &mmdb.Options{Progress: progressFunc(stderr)})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := db.Align(ctx, args[1], args[2], o)
	if errors.Is(err, mmdb.ErrNoGain) && rep != nil {
		// What each method scored is why nothing was stored: show it.
		if rerr := report(stdout, asJSON, rep, fmt.Sprintf("%s -> %s: %s", args[1], args[2], rep)); rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return err
	}
	return report(stdout, asJSON, rep, fmt.Sprintf("%s -> %s: %s", args[1], args[2], rep))
}

func evalCmd() *cobra.Command {
	c := newCmd("eval DB PROBE TARGET", "measure cross-modal recall of a database",
		"Measures how well each item's PROBE vector finds its own TARGET vector: R@1/5/10, MRR,\n"+
			"median rank, beside the chance level, by the route a search would take, with and without\n"+
			"stored corrections. The figures are held out: items a stored map was fitted on are left\n"+
			"out of the queries (when all were, the map is refitted in 5 folds and each item ranked\n"+
			"through the fold's map that never saw it); --in-sample gives training figures, flagged.",
		"mmdb eval media.mmdb text image", 3)
	maxQ := c.Flags().Int("max", mmdb.DefaultEvalQueries, "at most this many query items")
	raw := c.Flags().Bool("raw", false, "ignore stored query-time corrections")
	label := c.Flags().String("label", "", "an attribute holding each item's class: a target of the query's class counts as a hit, and precision@K by it is reported")
	inSample := c.Flags().Bool("in-sample", false, "also query with the items the map was fitted on (training figures, flagged)")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		rep, err := db.Evaluate(c.Context(), args[1], args[2], &mmdb.EvalOptions{MaxQueries: *maxQ, NoCorrections: *raw, Label: *label, InSample: *inSample})
		if err != nil {
			return err
		}
		return report(c.OutOrStdout(), *asJSON, rep, rep.String()+"\n")
	}
	return c
}
