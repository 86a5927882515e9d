package align

import (
	"context"
	"fmt"
	"math"
)

// Fit learns a projection with one method. Auto is FitAuto without the
// report.
func Fit(ctx context.Context, m Method, p Pairs, o Options) (*Projection, error) {
	o = o.withDefaults()
	var (
		proj *Projection
		err  error
	)
	switch m {
	case Ridge:
		proj, err = fitRidgeCV(ctx, p, o)
	case Procrustes:
		proj, err = fitProcrustes(p, o)
	case CCA:
		proj, err = fitCCA(p, o)
	case InfoNCE:
		proj, err = fitInfoNCE(ctx, p, o)
	case Auto, "":
		proj, _, err = FitAuto(ctx, p, o)
	default:
		_, err = ParseMethod(string(m))
	}
	if err != nil {
		return nil, err
	}
	for _, v := range proj.W.RawMatrix().Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: %s produced non-finite weights", ErrBadInput, m)
		}
	}
	return proj, nil
}

// Report describes an Auto fit: what every method scored on the held-out
// pairs, and which was kept.
type Report struct {
	// Pairs is the number of pairs given; Train and Test how they were
	// split (by group).
	Pairs, Train, Test int
	// Scores has one entry per method, then the baseline when the
	// dimensions agree.
	Scores []Score
	// Chosen is the method kept (the best held-out R@10, then R@1), fitted
	// again on all the pairs.
	Chosen Method
	// Notes say what storing the map did besides, such as a calibration
	// it made stale and dropped.
	Notes []string `json:",omitempty" msgpack:",omitempty"`
}

// String formats the report as a small table.
func (r *Report) String() string {
	s := fmt.Sprintf("%d pairs (%d train, %d held out); chose %s\n", r.Pairs, r.Train, r.Test, r.Chosen)
	for _, sc := range r.Scores {
		s += "  " + sc.String() + "\n"
	}
	for _, n := range r.Notes {
		s += "note: " + n + "\n"
	}
	return s
}

// FitAuto fits each method (or only the ones listed) on a split of the
// pairs by group, scores each on the held-out part, keeps the best by
// R@10 (then R@1), and fits it again on all the pairs. The identity map is
// scored as the baseline when the dimensions agree: a learned map should
// beat it, and when it does not the spaces are already shared.
func FitAuto(ctx context.Context, p Pairs, o Options, only ...Method) (*Projection, *Report, error) {
	o = o.withDefaults()
	d1, d2, err := p.check(o.Folds * 4)
	if err != nil {
		return nil, nil, err
	}
	methods := only
	if len(methods) == 0 {
		methods = Methods
	}
	trainIdx, testIdx := p.split(o.HeldOut, o.Seed)
	train, test := p.subset(trainIdx), p.subset(testIdx)
	rep := &Report{Pairs: p.Len(), Train: len(trainIdx), Test: len(testIdx)}
	best := -1
	for _, m := range methods {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		proj, err := Fit(ctx, m, train, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			rep.Scores = append(rep.Scores, Score{Method: m, Err: err.Error()})
			continue
		}
		if o.Progress != nil {
			o.Progress(len(rep.Scores)+1, len(methods)+1)
		}
		s := Evaluate(proj, test, o.Metric)
		s.Method, s.Params = m, proj.Params
		rep.Scores = append(rep.Scores, s)
		if best < 0 || s.R10 > rep.Scores[best].R10 || (s.R10 == rep.Scores[best].R10 && s.R1 > rep.Scores[best].R1) {
			best = len(rep.Scores) - 1
		}
	}
	if d1 == d2 {
		s := Evaluate(nil, test, o.Metric)
		s.Method = "baseline"
		s.Params = "the source vectors as they are"
		rep.Scores = append(rep.Scores, s)
	}
	if best < 0 {
		return nil, rep, fmt.Errorf("%w: no method could be fitted: %s", ErrBadInput, rep.Scores[0].Err)
	}
	rep.Chosen = rep.Scores[best].Method
	proj, err := Fit(ctx, rep.Chosen, p, o)
	if err != nil {
		return nil, rep, err
	}
	if o.Progress != nil {
		o.Progress(len(methods)+1, len(methods)+1)
	}
	return proj, rep, nil
}
