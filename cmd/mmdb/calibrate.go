package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/spf13/cobra"
)

func calibrateCmd() *cobra.Command {
	c := newCmd("calibrate DB PROBE TARGET", "measure query-time corrections for PROBE -> TARGET and keep the best",
		"Fits query-time corrections for searches from PROBE to TARGET on a bank of PROBE items\n"+
			"(half of them by default) and measures each on the items outside the bank, beside no\n"+
			"correction: mean centring (--centre), the hubness correction (--alpha) and the inverted\n"+
			"softmax, QB-Norm (--beta), or with --auto all of them at a few strengths, each with and\n"+
			"without centring. The best is stored, and searches apply it, only when its gain beats the\n"+
			"fold-to-fold spread; otherwise nothing is stored and the command fails saying why, after\n"+
			"printing what it measured. --force stores it anyway; --remove removes the stored ones.",
		"mmdb calibrate --auto media.mmdb text image", 3)
	var o mmdb.CalibrateOptions
	c.Flags().BoolVar(&o.Auto, "auto", false, "try centring, the hubness correction and the inverted softmax, with and without centring, and keep the best")
	c.Flags().BoolVar(&o.Centre, "centre", false, "subtract the bank's mean probe vector from every query")
	c.Flags().Float64Var(&o.Alpha, "alpha", 0, "the hubness correction's strength (0.5-0.75 is typical)")
	c.Flags().Float64Var(&o.Beta, "beta", 0, "the inverted softmax's inverse temperature (10-50 is typical)")
	c.Flags().IntVar(&o.K, "k", 0, "bank neighbours per target (default 10)")
	c.Flags().IntVar(&o.Bank, "bank", 0, "probe vectors in the bank (default half the probe items, at most 10,000)")
	c.Flags().BoolVar(&o.StoreAny, "force", false, "store the corrections even when they measure no better than none")
	remove := c.Flags().Bool("remove", false, "remove the stored corrections")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		asked := o.Auto || o.Centre || o.Alpha != 0 || o.Beta != 0
		if asked == *remove {
			return fmt.Errorf("%w: say what to measure (--auto, --centre, --alpha or --beta) or --remove", errUsage)
		}
		if err := mustExist(args[0]); err != nil {
			return err
		}
		db, err := mmdb.Open(args[0], &mmdb.Options{Progress: progressFunc(c.ErrOrStderr())})
		if err != nil {
			return err
		}
		defer db.Close()
		if *remove {
			_, err := db.Calibrate(c.Context(), args[1], args[2], nil)
			return err
		}
		cal, err := db.Calibrate(c.Context(), args[1], args[2], &o)
		if cal != nil && (err == nil || errors.Is(err, mmdb.ErrNoGain)) {
			if rerr := report(c.OutOrStdout(), *asJSON, cal, calibrationText(args[1], args[2], cal)); rerr != nil {
				return rerr
			}
		}
		return err
	}
	return c
}

// calibrationText is what Calibrate measured, a line a candidate, then
// what it kept and why.
func calibrationText(probe, target string, c *mmdb.Calibration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -> %s, measured on the items outside a %d-vector bank:\n", probe, target, c.BankSize())
	width := 0
	for _, m := range c.Measured {
		width = max(width, len(m.Corrections))
	}
	for _, m := range c.Measured {
		fmt.Fprintf(&b, "  %-*s  R@1 %.3f  R@10 %.3f  MRR %.3f\n", width, m.Corrections, m.R1, m.R10, m.MRR)
	}
	b.WriteString(c.Why + "\n")
	return b.String()
}
