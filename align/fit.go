package align

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
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
	if err := checkFinite(proj); err != nil {
		return nil, err
	}
	return proj, nil
}

// checkFinite refuses a projection with a NaN or infinite weight.
func checkFinite(proj *Projection) error {
	for _, v := range proj.W.RawMatrix().Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s produced non-finite weights", ErrBadInput, proj.Method)
		}
	}
	return nil
}

// Baseline and Pivot name the two ways to search without a map, scored
// beside the learners: the source vectors used as they are (when the
// dimensions agree), and the soft pivot through the nearest pairs.
const (
	Baseline Method = "baseline"
	Pivot    Method = "pivot"
)

// ErrNoGain: no learner beat searching without a map (Options.Reference)
// by more than the fold-to-fold spread, or every learner ranked at chance
// level. FitAuto returns it with its Report and no projection unless
// Options.Force is set.
var ErrNoGain = errors.New("align: no method beats searching without a map")

// Report describes an Auto fit: what every method scored out of fold,
// beside the ways to search without a map and the chance level, and which
// was kept.
type Report struct {
	// Pairs is the number of pairs given, Folds the number of folds they
	// were cross-fitted in (by group): each pair is scored once, by a map
	// fitted on the other folds.
	Pairs int `json:"pairs"`
	Folds int `json:"folds"`
	// Gallery is the number of targets each query ranked against: every
	// pair's target.
	Gallery int `json:"gallery"`
	// ByClass is set when the pairs had classes: a target of the query's
	// class counted as a hit.
	ByClass bool `json:"by_class,omitempty"`
	// Chance is what a random ranking of the gallery scores.
	Chance Score `json:"chance"`
	// Scores has one entry per method, then the baseline (when the
	// dimensions agree), then the pivot.
	Scores []Score `json:"scores"`
	// Reference is what searches do without a map (Options.Reference);
	// a method is kept only when it beats it.
	Reference Method `json:"reference"`
	// Chosen is the method kept (the best MRR, if it beats the reference
	// by more than the fold-to-fold spread of the gain), fitted again on
	// all the pairs; "" when none was kept.
	Chosen Method `json:"chosen"`
	// Why says why Chosen was kept, or why nothing was.
	Why string `json:"why"`
	// Notes say what storing the map did besides, such as a calibration
	// it made stale and dropped.
	Notes []string `json:"notes,omitempty"`
}

// String formats the report as a small table.
func (r *Report) String() string {
	s := fmt.Sprintf("%d pairs, %d-fold cross-fitted: each pair scored by a map that never saw it, against all %d targets\n", r.Pairs, r.Folds, r.Gallery)
	if r.ByClass {
		s = strings.Replace(s, "targets\n", "targets (a hit: a target of the pair's class)\n", 1)
	}
	for _, sc := range r.Scores {
		s += "  " + sc.String() + "\n"
	}
	s += "  " + r.Chance.String() + "\n"
	if r.Chosen != "" {
		s += fmt.Sprintf("chose %s: %s\n", r.Chosen, r.Why)
	} else {
		s += "no map kept: " + r.Why + "\n"
	}
	for _, n := range r.Notes {
		s += "note: " + n + "\n"
	}
	return s
}

// FitAuto fits each method (or only the ones listed) in K folds by group:
// every pair is scored by a map fitted on the other folds, against every
// pair's target. Beside them it scores the ways to search without a map
// (the identity when the dimensions agree, and the soft pivot) and the
// chance level. It keeps the method with the best MRR when that beats
// Options.Reference by more than the fold-to-fold spread of the gain, and
// fits it again on all the pairs. Otherwise it returns the report with
// ErrNoGain and no projection, unless Options.Force is set.
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
	if g := p.groups(); g < 2 {
		return nil, nil, fmt.Errorf("%w: the pairs form %d group; cross-fitting needs at least 2", ErrTooFewPairs, g)
	}
	folds := p.folds(min(o.Folds, p.groups()), o.Seed)
	rep := &Report{Pairs: p.Len(), Folds: len(folds), Gallery: p.Len(), ByClass: p.Classes != nil, Reference: o.Reference, Chance: chance(p.Len(), p.relevantCounts())}
	if rep.Reference == Baseline && d1 != d2 {
		return nil, nil, fmt.Errorf("%w: the baseline (the source vectors as they are) needs equal dimensions, have %d and %d", ErrBadInput, d1, d2)
	}
	cands := slices.Clone(methods)
	if d1 == d2 {
		cands = append(cands, Baseline)
	}
	cands = append(cands, Pivot)
	rk := newRanker(p.Y, o.Metric)
	hints := make([]*ridgeChoice, len(folds)) // ridge's choice per fold, for InfoNCE's start
	for i, m := range cands {
		s, err := crossFit(ctx, m, p, folds, rk, o, hints)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			s = Score{Method: m, Err: err.Error()}
		}
		rep.Scores = append(rep.Scores, s)
		if o.Progress != nil {
			o.Progress(i+1, len(cands)+1)
		}
	}
	best, err := rep.decide(o.Force)
	if best == "" {
		return nil, rep, err
	}
	proj, err := Fit(ctx, best, p, o)
	if err != nil {
		return nil, rep, err
	}
	if o.Progress != nil {
		o.Progress(len(cands)+1, len(cands)+1)
	}
	return proj, rep, nil
}

// crossFit scores method m out of fold: for each fold, fitted on the
// others, each of the fold's pairs ranks all targets.
//
// hints carries ridge's choice of lambda in each fold, recorded when m is
// Ridge and used as InfoNCE's start when m is InfoNCE.
func crossFit(ctx context.Context, m Method, p Pairs, folds [][]int, rk *ranker, o Options, hints []*ridgeChoice) (Score, error) {
	s := Score{Method: m}
	rel := p.relevant()
	for f, test := range folds {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		train := p.subset(others(folds, f))
		var carry func([]float32) []float32
		switch m {
		case Baseline:
			carry = func(x []float32) []float32 { return x }
			s.Params = "the source vectors as they are"
		case Pivot:
			carry = newSoftPivot(train, o.SourceMetric).apply
			s.Params = fmt.Sprintf("softmax over the %d nearest pairs, T=%g", PivotItems, PivotTemperature)
		case Ridge:
			ch, err := chooseRidge(ctx, train, o)
			if err != nil {
				return s, err
			}
			proj, err := fitRidge(train, ch.lambda, ch.identity, o.Metric)
			if err == nil {
				err = checkFinite(proj)
			}
			if err != nil {
				return s, err
			}
			hints[f] = &ch
			carry, s.Params = proj.Apply, proj.Params
		default:
			of := o
			if m == InfoNCE {
				of.ridgeHint = hints[f]
			}
			proj, err := Fit(ctx, m, train, of)
			if err != nil {
				return s, err
			}
			carry, s.Params = proj.Apply, proj.Params
		}
		var fold Score
		for _, q := range test {
			r := rk.rank(carry(p.X[q]), func(g int) bool { return rel(q, g) })
			s.add(r)
			fold.add(r)
		}
		fold.mean(len(test))
		s.FoldMRR = append(s.FoldMRR, fold.MRR)
	}
	s.mean(p.Len())
	return s, nil
}

// others lists the pairs of every fold but f.
func others(folds [][]int, f int) []int {
	var out []int
	for j, part := range folds {
		if j != f {
			out = append(out, part...)
		}
	}
	slices.Sort(out)
	return out
}

// beatenByBaseline says whether the baseline was scored and best does not
// beat it beyond the fold-to-fold spread.
func (r *Report) beatenByBaseline(best *Score) bool {
	for _, s := range r.Scores {
		if s.Method == Baseline && s.Err == "" {
			mean, sd := PairedGain(best.FoldMRR, s.FoldMRR)
			return mean <= sd
		}
	}
	return false
}

// decide picks the method to keep and says why: the best MRR among the
// learners, kept when it is above chance and above the reference by more
// than the fold-to-fold spread of the difference (a paired test over the
// folds: mean gain > its standard deviation, about t > 2.2 at 5 folds).
// Otherwise it returns "" and ErrNoGain, or with force the best anyway.
func (r *Report) decide(force bool) (Method, error) {
	var best, ref *Score
	for i := range r.Scores {
		s := &r.Scores[i]
		switch {
		case s.Err != "":
		case s.Method == r.Reference:
			ref = s
		case s.Method == Baseline || s.Method == Pivot:
		case best == nil || s.MRR > best.MRR:
			best = s
		}
	}
	if best == nil {
		r.Why = "no method could be fitted"
		var errs []string
		for _, s := range r.Scores {
			if s.Err != "" {
				errs = append(errs, string(s.Method)+": "+strings.TrimPrefix(s.Err, ErrBadInput.Error()+": "))
			}
		}
		return "", fmt.Errorf("%w: no method could be fitted (%s)", ErrBadInput, strings.Join(errs, "; "))
	}
	chance := make([]float64, len(best.FoldMRR))
	for f := range chance {
		chance[f] = r.Chance.MRR
	}
	overChance, sdChance := PairedGain(best.FoldMRR, chance)
	var why string
	switch {
	case overChance <= sdChance:
		why = fmt.Sprintf("every method ranks at chance level: the best, %s, has MRR %.3f against %.3f for a random ranking of %d targets (%+.3f ±%.3f over %d folds)", best.Method, best.MRR, r.Chance.MRR, r.Gallery, overChance, sdChance, r.Folds)
	case ref != nil:
		m, sd := PairedGain(best.FoldMRR, ref.FoldMRR)
		if m > 0 && m > sd {
			r.Why = fmt.Sprintf("MRR %.3f against %.3f searching without a map (%s): %+.3f ±%.3f over %d folds", best.MRR, ref.MRR, ref.Method, m, sd, r.Folds)
			r.Chosen = best.Method
			return best.Method, nil
		}
		why = fmt.Sprintf("the best method, %s, has MRR %.3f against %.3f searching without a map (%s): a gain of %+.3f ±%.3f over %d folds is within the fold-to-fold spread", best.Method, best.MRR, ref.MRR, ref.Method, m, sd, r.Folds)
		if m < 0 && -m > sd {
			why = fmt.Sprintf("searching without a map (%s) does better than the best method, %s: MRR %.3f against %.3f (%+.3f ±%.3f over %d folds)", ref.Method, best.Method, ref.MRR, best.MRR, -m, sd, r.Folds)
		}
		if ref.Method != Baseline && r.beatenByBaseline(best) {
			why += "; the source vectors as they are score as well: if the two share an embedding space, declare it and search directly"
		}
	default:
		r.Why = fmt.Sprintf("the best MRR, %.3f (%s could not be scored)", best.MRR, r.Reference)
		r.Chosen = best.Method
		return best.Method, nil
	}
	if force {
		r.Why = why + "; kept because forced"
		r.Chosen = best.Method
		return best.Method, nil
	}
	r.Why = why
	return "", fmt.Errorf("%w: %s", ErrNoGain, why)
}
