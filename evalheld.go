package mmdb

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/mmdb-go/mmdb/align"
)

// evalFolds is the number of folds Evaluate cross-fits a map in when
// every query item was fitted on.
const evalFolds = 5

// holdOut keeps Evaluate's queries apart from what the route learned (see
// Evaluate) and records how in set.
func (db *DB) holdOut(ctx context.Context, in *evalInput, set *evalSet, inSample bool) error {
	switch {
	case in.route == RoutePivot:
		set.heldOut = "each query's own item is barred from the items it pivots through"
		return nil
	case in.route != RouteAligned:
		return nil // the direct route learned nothing
	case inSample || in.align.fitted == nil:
		set.inSample = true
		return nil
	}
	fitted := in.align.fitted
	all, outside := len(set.qids), 0
	for _, id := range set.qids {
		if !fitted.Contains(id) {
			outside++
		}
	}
	if outside == 0 { // every query item was fitted on: cross-fit them
		var classes []int
		if in.align.Label != "" { // refit as Align fitted: by its label
			var err error
			if classes, err = db.labels(in.align.Label, set.qids, true); err != nil {
				return err
			}
			for _, c := range classes {
				if c == gone {
					return fmt.Errorf("%w: a query item left during the evaluation", ErrChanged)
				}
			}
		}
		return in.crossFit(ctx, set, classes)
	}
	set.keep(func(i int) bool { return !fitted.Contains(set.qids[i]) })
	set.heldOut = fmt.Sprintf("%d of %d query items were never fitted on; the %d the map was fitted on are left out of the queries and kept among the targets", outside, all, all-outside)
	return nil
}

// crossFit refits the stored map's method in evalFolds folds of the query
// items (by the classes of the label Align fitted by, when it had one) and
// gives each query the map fitted without its fold. The calibration, if
// any, is the stored one (measured through the stored map).
func (in *evalInput) crossFit(ctx context.Context, set *evalSet, classes []int) error {
	method, err := align.ParseMethod(in.align.Method)
	if err != nil || method == align.Auto {
		return fmt.Errorf("%w: every query item was fitted on, and the map's method %q cannot be refitted to hold them out (EvalOptions.InSample gives the training figures)", ErrInvalidQuery, in.align.Method)
	}
	n, dim := len(set.qids), in.tm.Dim
	fold := rand.New(rand.NewPCG(1, 0x65766c)).Perm(n)
	set.qmaps = make([]*Alignment, n)
	for f := range evalFolds {
		var train align.Pairs
		for i := range n {
			if fold[i]%evalFolds != f {
				train.X = append(train.X, set.qvecs[i])
				train.Y = append(train.Y, set.tvecs[set.own[i]*dim:(set.own[i]+1)*dim])
				if classes != nil {
					train.Classes = append(train.Classes, classes[i])
				}
			}
		}
		proj, err := align.Fit(ctx, method, train, align.Options{Metric: in.tm.Metric, SourceMetric: in.pm.Metric, Seed: 1})
		if err != nil {
			return fmt.Errorf("every query item was fitted on; cross-fitting %s in %d folds of %d items to hold them out: %w", method, evalFolds, n, err)
		}
		w, bias := proj.Float32()
		m := &Alignment{From: in.probe, To: in.target, W: w, Bias: bias, Method: string(method)}
		for i := range n {
			if fold[i]%evalFolds == f {
				set.qmaps[i] = m
			}
		}
	}
	set.heldOut = fmt.Sprintf("every query item was fitted on, so %s was refitted in %d folds and each query ranked through the map fitted without it", method, evalFolds)
	return nil
}
