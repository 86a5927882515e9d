package mmdb

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mmdb-go/mmdb/align"
)

// EvalOptions tune Evaluate.
type EvalOptions struct {
	// Ks are the cut-offs for Recall; nil means 1, 5 and 10.
	Ks []int
	// MaxQueries caps the number of query items, picked evenly spaced in
	// insertion order; zero means DefaultEvalQueries. Each query is ranked
	// against every target vector, so cost is MaxQueries x targets.
	MaxQueries int
	// NoCorrections ignores a stored Calibration. By default, when one
	// exists for the pair, the report gives the corrected figures and
	// Before the uncorrected ones, both over the items outside its bank.
	NoCorrections bool
	// Label names an attribute whose value is each item's class: a target
	// of the query's class counts as a hit (items paired by class, not
	// one to one), and the report adds the precision by label. Query items
	// without it are an error.
	Label string
	// InSample ranks every item through a stored map learned by Align,
	// the items it was fitted on included: training figures, flagged in
	// the report. By default those items are held out (see Evaluate).
	InSample bool
}

// DefaultEvalQueries is the default cap on Evaluate's query items.
const DefaultEvalQueries = 1000

// EvalReport is the outcome of Evaluate.
type EvalReport struct {
	// Probe and Target are the modalities evaluated.
	Probe  string `json:"probe"`
	Target string `json:"target"`
	// N is the number of query items.
	N int `json:"n"`
	// Targets is the number of target vectors each query was ranked against.
	Targets int `json:"targets"`
	// Recall[k] is the share of queries whose own target ranked in the top k.
	Recall map[int]float64 `json:"recall"`
	// MRR is the mean reciprocal rank of each query's own target.
	MRR float64 `json:"mrr"`
	// MedianRank is the median rank (1 is best) of each query's own target.
	// A pivot probe whose neighbours all lost their target vectors
	// meanwhile ranks nothing; when that is more than half the queries, the
	// median is Targets+1 (a rank past every target) and MedianBeyond is
	// set: the median is not a rank any target had.
	MedianRank float64 `json:"median_rank"`
	// MedianBeyond: see MedianRank.
	MedianBeyond bool `json:"median_beyond,omitempty"`
	// Route is how probes reached the target: "direct", "aligned" or
	// "pivot"; every route ranks every target vector exactly.
	Route Route `json:"route"`
	// Corrections names the query-time corrections applied (see
	// Calibrate), and Before holds the figures without them, on the same
	// queries and targets; both empty when none are stored.
	Corrections string      `json:"corrections"`
	Before      *EvalReport `json:"before,omitempty"`
	// HeldOut says how the queries were kept apart from what the route
	// learned from ("" on the direct route, which learned nothing).
	HeldOut string `json:"held_out,omitempty"`
	// InSample is set when some queries were items the map was fitted on
	// (EvalOptions.InSample, or a map given to SetAlignment, whose
	// training items are unknown): the figures may be training figures.
	InSample bool `json:"in_sample,omitempty"`
	// Label is EvalOptions.Label: with it, Recall and MRR count the first
	// target of the query's label, and Precision[k] is the mean share of
	// the top k (of all targets, when there are fewer) that have it.
	Label     string          `json:"label,omitempty"`
	Precision map[int]float64 `json:"precision,omitempty"`
	// ChanceRecall and ChanceMRR are what a random ranking of the same
	// targets scores.
	ChanceRecall map[int]float64 `json:"chance_recall"`
	ChanceMRR    float64         `json:"chance_mrr"`
}

// String formats the report on one line.
func (r EvalReport) String() string {
	ks := make([]int, 0, len(r.Recall))
	for k := range r.Recall {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	s := fmt.Sprintf("%s->%s over %d queries x %d targets:", r.Probe, r.Target, r.N, r.Targets)
	if r.Route != "" && r.Route != RouteDirect {
		s = fmt.Sprintf("%s->%s (%s route) over %d queries x %d targets:", r.Probe, r.Target, r.Route, r.N, r.Targets)
	}
	for _, k := range ks {
		s += fmt.Sprintf(" R@%d %.3f", k, r.Recall[k])
	}
	if r.Label != "" {
		s = strings.Replace(s, ":", fmt.Sprintf(", a hit being a target of the query's %s:", r.Label), 1)
		for _, k := range ks {
			s += fmt.Sprintf(" P@%d %.3f", k, r.Precision[k])
		}
	}
	if r.MedianBeyond {
		s += fmt.Sprintf(" MRR %.3f median rank beyond the %d targets (most were never returned)", r.MRR, r.Targets)
	} else {
		s += fmt.Sprintf(" MRR %.3f median rank %g", r.MRR, r.MedianRank)
	}
	if len(ks) > 0 {
		k := ks[len(ks)-1]
		s += fmt.Sprintf(" (chance: R@%d %.3f, MRR %.3f)", k, r.ChanceRecall[k], r.ChanceMRR)
	}
	switch {
	case r.InSample:
		s += " [IN SAMPLE: the queries include (or may include) items the map was fitted on]"
	case r.HeldOut != "":
		s += " [held out: " + r.HeldOut + "]"
	}
	if r.Before != nil {
		s += fmt.Sprintf(" [%s; before:", r.Corrections)
		for _, k := range ks {
			s += fmt.Sprintf(" R@%d %.3f", k, r.Before.Recall[k])
		}
		s += fmt.Sprintf(" MRR %.3f]", r.Before.MRR)
	}
	return s
}

// Evaluate measures how well probe vectors find their own item's target
// vector. Every item that carries both modalities is a query (up to
// MaxQueries). Each is planned as Search plans a probe given by vector
// (the same route, projection and corrections) and ranks every target
// vector exactly as Search's exact scan orders them; the rank of the
// item's own target vector is recorded. Ties count against the query: a
// target scoring exactly as well as the right one ranks ahead of it.
//
// The figures are held out from what the route learned. On the aligned
// route, the items Align fitted the map on are left out of the queries
// (they stay among the targets); when every query item was fitted on, the
// map's method is refitted in 5 folds of them and each query is ranked
// through the map fitted without its fold. A map given to SetAlignment
// says nothing of its training items: the report is flagged InSample, as
// it is with EvalOptions.InSample. On the pivot route each query's own
// item is barred from the items it pivots through. This is how to check
// an encoder pair, or the database itself.
func (db *DB) Evaluate(ctx context.Context, probe, target string, opts *EvalOptions) (_ EvalReport, err error) {
	defer db.readBackCheck(db.readBack.Load(), &err)
	if opts == nil {
		opts = &EvalOptions{}
	}
	ctx, done := db.measuring(ctx)
	defer done()
	ks := opts.Ks
	if ks == nil {
		ks = []int{1, 5, 10}
	}
	for _, k := range ks {
		if k <= 0 {
			return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w: cut-off %d", ErrInvalidQuery, k)
		}
	}
	maxQ := opts.MaxQueries
	if maxQ <= 0 {
		maxQ = DefaultEvalQueries
	}
	in, err := db.evalInputs(probe, target, opts.NoCorrections)
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	set, err := in.gather()
	if err == nil && opts.Label != "" {
		err = db.labelSet(set, opts.Label)
	}
	if err == nil {
		err = db.holdOut(ctx, in, set, opts.InSample)
	}
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	set.sample(maxQ)
	ranks, tops, err := db.exactRanks(ctx, in, set, nil, slices.Max(ks))
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", db.closedErr(err))
	}
	rep := set.report(in, ranks, tops, ks)
	if in.calib == nil {
		return rep, nil
	}
	if ranks, tops, err = db.exactRanks(ctx, in, set, in.calib, slices.Max(ks)); err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	after := set.report(in, ranks, tops, ks)
	after.Corrections = in.calib.describe()
	after.Before = &rep
	return after, nil
}

// report summarises the ranks of set's queries, and with labels the
// precision in each query's top k (tops).
func (set *evalSet) report(in *evalInput, ranks []int, tops [][]int, ks []int) EvalReport {
	r := summarise(in.probe, in.target, ranks, len(set.tids), ks)
	r.Route, r.HeldOut, r.InSample, r.Label = in.route, set.heldOut, set.inSample, set.label
	r.ChanceRecall = map[int]float64{}
	if tops != nil {
		r.Precision = map[int]float64{}
		for _, k := range ks {
			for _, top := range tops {
				r.Precision[k] += float64(top[k-1]) / float64(min(k, len(set.tids))) / float64(len(tops))
			}
		}
	}
	chance := align.Chance(len(set.tids), set.relevantCounts())
	for _, k := range ks {
		r.ChanceRecall[k] = chance.Recall(k)
	}
	r.ChanceMRR = chance.MRR
	return r
}

// exactRanks plans each query as Search plans a probe given by vector
// (with or without the stored corrections) and ranks its own target among
// all the targets as the executor's exact scan would (planned.rankOf).
// With labels (set.qlab), the rank is that of the first target with the
// query's label, and tops[q][k-1] counts those in the top k. Queries are
// split across the CPUs.
//
// corr is the calibration to rank with: nil for none, in.calib for the
// stored one (as Search applies it), or a candidate Calibrate measures
// before storing it.
func (db *DB) exactRanks(ctx context.Context, in *evalInput, set *evalSet, corr *Calibration, maxK int) (ranks []int, tops [][]int, err error) {
	ranks = make([]int, len(set.qvecs))
	if set.qlab != nil {
		tops = make([][]int, len(set.qvecs))
	}
	err = parallel(ctx, len(set.qvecs), func(i int) error {
		stored := corr != nil && corr == in.calib
		p, err := db.plan(ctx, Query{Target: in.target, K: 1, NoCorrections: !stored,
			Probes: []Probe{{Modality: in.probe, Vector: set.qvecs[i]}}}, false)
		if err != nil {
			return fmt.Errorf("query item %q: %w", db.items.Name(set.qids[i]), err)
		}
		want := corr
		if !stored {
			want = nil
		}
		if p.plan.Probes[0].Route != in.route || p.probes[0].calib != want || p.probes[0].align != in.align {
			return fmt.Errorf("%w: the %s->%s alignment or calibration changed during the evaluation; run it again", ErrChanged, in.probe, in.target)
		}
		if corr != nil && !stored { // a candidate: applied as the planner applies a stored one
			pr := &p.probes[0]
			if pr.vec, err = corr.centre(in.tm, pr.vec); err != nil {
				return fmt.Errorf("query item %q: %w", db.items.Name(set.qids[i]), err)
			}
			pr.calib = corr
		}
		ok, err := db.evalProbe(p, in, set, i, corr)
		if err != nil {
			return fmt.Errorf("query item %q: %w", db.items.Name(set.qids[i]), err)
		}
		switch {
		case !ok:
			ranks[i] = notRanked
			if tops != nil {
				tops[i] = make([]int, maxK)
			}
		case set.qlab != nil:
			lab := set.qlab[i]
			ranks[i], tops[i] = p.rankOfAny(0, set.tvecs, set.tids, func(j int) bool { return set.tlab[j] == lab }, maxK)
		default:
			ranks[i] = p.rankOf(0, set.tvecs, set.tids, set.own[i])
		}
		return nil
	})
	return ranks, tops, err
}

// evalProbe sets query i's probe vector where Evaluate departs from the
// plan: through the pivot with the query's own item barred from the items
// it pivots through (otherwise its own target vector would answer it),
// or through the map cross-fitted without it. ok is false when the pivot
// found no neighbour with a target vector.
func (db *DB) evalProbe(p *planned, in *evalInput, set *evalSet, i int, calib *Calibration) (ok bool, err error) {
	pr := &p.probes[0]
	switch {
	case in.route == RoutePivot:
		pr.shared.Remove(set.qids[i])
		if pr.shared.IsEmpty() {
			return false, fmt.Errorf("%w: only one item carries both %s and %s; a pivot needs others", ErrInvalidQuery, in.probe, in.target)
		}
		v, err := db.pivotVector(p, *pr)
		if err != nil || v == nil {
			return false, err
		}
		pr.vec = v
	case set.qmaps != nil && set.qmaps[i] != nil: // cross-fitted
		v, err := set.qmaps[i].carry(in.tm, set.qvecs[i])
		if err == nil {
			v, err = calib.centre(in.tm, v)
		}
		if err != nil {
			return false, err
		}
		pr.vec = v
	}
	return true, nil
}

// parallel calls f(0..n-1) on every CPU and returns the first worker's
// error, or ctx's once it is done.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first: a cancelled context fails every worker alike
		}
	}
	return nil
}

// notRanked is the rank of a query's own target when its probe could not
// be carried into the target's space at all (a pivot whose neighbours all
// lost their target vectors meanwhile): a miss for every R@K, nothing to
// MRR, and past every target for the median.
const notRanked = math.MaxInt32

func summarise(probe, target string, ranks []int, targets int, ks []int) EvalReport {
	r := EvalReport{Probe: probe, Target: target, N: len(ranks), Targets: targets, Recall: map[int]float64{}}
	for _, k := range ks {
		hit := 0
		for _, rk := range ranks {
			if rk <= k {
				hit++
			}
		}
		r.Recall[k] = float64(hit) / float64(len(ranks))
	}
	var mrr float64
	for _, rk := range ranks {
		if rk != notRanked {
			mrr += 1 / float64(rk)
		}
	}
	r.MRR = mrr / float64(len(ranks))
	s := slices.Clone(ranks)
	slices.Sort(s)
	// A target never returned ranks past every target.
	med := func(x int) float64 {
		if x == notRanked {
			r.MedianBeyond = true
			return float64(targets + 1)
		}
		return float64(x)
	}
	if m := len(s); m%2 == 1 {
		r.MedianRank = med(s[m/2])
	} else {
		r.MedianRank = (med(s[m/2-1]) + med(s[m/2])) / 2
	}
	return r
}
