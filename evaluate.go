package mmdb

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
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
}

// DefaultEvalQueries is the default cap on Evaluate's query items.
const DefaultEvalQueries = 1000

// EvalReport is the outcome of Evaluate.
type EvalReport struct {
	// Probe and Target are the modalities evaluated.
	Probe, Target string
	// N is the number of query items.
	N int
	// Targets is the number of target vectors each query was ranked against.
	Targets int
	// Recall[k] is the share of queries whose own target ranked in the top k.
	Recall map[int]float64
	// MRR is the mean reciprocal rank of each query's own target.
	MRR float64
	// MedianRank is the median rank (1 is best) of each query's own target.
	// When more than half of a pivot evaluation's targets were not returned
	// at all, it is Targets+1 (a rank past every target) and MedianBeyond
	// is set: the median is not a rank any target had.
	MedianRank float64
	// MedianBeyond: see MedianRank.
	MedianBeyond bool `json:",omitempty"`
	// Route is how probes reached the target: "direct" and "aligned" rank
	// every target vector exactly; "pivot" ranks through the pivot route,
	// as deep as its search goes.
	Route Route
	// Corrections names the query-time corrections applied (see
	// Calibrate), and Before holds the figures without them, on the same
	// queries and targets; both empty when none are stored.
	Corrections string
	Before      *EvalReport `json:",omitempty"`
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
	if r.MedianBeyond {
		s += fmt.Sprintf(" MRR %.3f median rank beyond the %d targets (most were never returned)", r.MRR, r.Targets)
	} else {
		s += fmt.Sprintf(" MRR %.3f median rank %g", r.MRR, r.MedianRank)
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
// MaxQueries); its probe vector ranks all target vectors exactly (after
// projection, on the aligned route), and the rank of the item's own target
// vector is recorded. Between spaces with no alignment, the pivot route is
// evaluated through Search, with each query's own item barred from the
// items it pivots through. Ties count against the
// query: a target scoring exactly as well as the right one ranks ahead of
// it. This is how to check an encoder pair, or the database itself.
func (db *DB) Evaluate(ctx context.Context, probe, target string, opts *EvalOptions) (EvalReport, error) {
	if opts == nil {
		opts = &EvalOptions{}
	}
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
	set, err := in.gather(maxQ)
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	var ranks []int
	if in.route == RoutePivot {
		ranks, err = db.pivotRanks(ctx, probe, target, set.qvecs, set.qids, slices.Max(ks))
	} else {
		ranks, err = rankAll(ctx, in.metric(), set.qvecs, set.own, set.tvecs, in.tidx.Dim(), nil)
	}
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	rep := summarise(probe, target, ranks, set.ntargs, ks)
	rep.Route = in.route
	if in.calib == nil {
		return rep, nil
	}
	after, err := in.corrected(ctx, set, ks)
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	after.Before = &rep
	return after, nil
}

// evalInput is what Evaluate reads under the database's lock: the route,
// the indexes, the calibration and the live items.
type evalInput struct {
	probe, target string
	tm            Modality
	pidx, tidx    hnsw.Index
	route         Route
	align         *Alignment
	calib         *Calibration // nil: none, or not applied
	live          []uint32
}

func (in *evalInput) metric() modality.Metric { return in.tidx.Metric() }

// evalInputs resolves the route and copies the live item IDs; the vectors
// are copied later (the indexes are safe for concurrent use).
func (db *DB) evalInputs(probe, target string, noCorrections bool) (*evalInput, error) {
	pr, err := db.pair(probe, target)
	if err != nil {
		return nil, err
	}
	s, pm, tm := pr.s, pr.pm, pr.tm
	in := &evalInput{probe: probe, target: target, tm: tm, pidx: pr.pidx, tidx: pr.tidx}
	in.route, in.align, _ = s.route(pm, tm)
	if c := s.calibs[[2]string{pm.Name, tm.Name}]; c != nil && in.route != RoutePivot && !noCorrections {
		in.calib = c
	}
	in.live = db.items.liveIDs()
	return in, nil
}

// evalSet is Evaluate's queries and targets: target vectors laid end to
// end (with each one's hubness penalty), and per query its vector, item
// and the row of its own target.
type evalSet struct {
	tvecs   []float32
	offsets []float32
	qvecs   [][]float32
	qids    []uint32
	own     []int
	ntargs  int
}

// gather copies the vectors: every live item with a target vector is a
// target (bank items excepted: their probe vectors judged the hubness),
// and those with a probe vector too are queries, at most maxQ of them,
// evenly spaced.
func (in *evalInput) gather(maxQ int) (*evalSet, error) {
	s := &evalSet{}
	for _, id := range in.live {
		if in.calib != nil && in.calib.bank.Contains(id) {
			continue // its probe vector is in the bank: not a fair test
		}
		tv, ok := in.tidx.Vector(id)
		if !ok {
			continue
		}
		if in.route != RoutePivot {
			s.tvecs = append(s.tvecs, tv...)
			if in.calib != nil {
				s.offsets = append(s.offsets, in.calib.penalty(id))
			}
		}
		if pv, ok := in.pidx.Vector(id); ok {
			var err error
			if pv, err = in.align.carry(in.tm, pv); err != nil {
				return nil, fmt.Errorf("projecting item %d: %w", id, err)
			}
			s.qvecs = append(s.qvecs, pv)
			s.qids = append(s.qids, id)
			s.own = append(s.own, s.ntargs)
		}
		s.ntargs++
	}
	if len(s.qvecs) == 0 {
		return nil, fmt.Errorf("%w: no item carries both %s and %s", ErrInvalidQuery, in.probe, in.target)
	}
	if len(s.qvecs) > maxQ { // evenly spaced sample, deterministic
		sq, so, si := make([][]float32, maxQ), make([]int, maxQ), make([]uint32, maxQ)
		for i := range maxQ {
			j := i * len(s.qvecs) / maxQ
			sq[i], so[i], si[i] = s.qvecs[j], s.own[j], s.qids[j]
		}
		s.qvecs, s.own, s.qids = sq, so, si
	}
	return s, nil
}

// corrected ranks the same queries and targets again with the stored
// corrections: centred queries, targets' scores less their penalties.
func (in *evalInput) corrected(ctx context.Context, s *evalSet, ks []int) (EvalReport, error) {
	cq := s.qvecs
	if in.calib.Centre != nil {
		cq = make([][]float32, len(s.qvecs))
		for i, q := range s.qvecs {
			var err error
			if cq[i], err = in.calib.centre(in.tm, q); err != nil {
				return EvalReport{}, fmt.Errorf("centring query %d: %w", s.qids[i], err)
			}
		}
	}
	var off []float32
	if in.calib.Alpha > 0 {
		off = s.offsets
	}
	ranks, err := rankAll(ctx, in.metric(), cq, s.own, s.tvecs, in.tidx.Dim(), off)
	if err != nil {
		return EvalReport{}, err
	}
	after := summarise(in.probe, in.target, ranks, s.ntargs, ks)
	after.Route, after.Corrections = in.route, in.calib.describe()
	return after, nil
}

// notRanked is the rank of a query's own target that a pivot search did
// not return at all.
const notRanked = math.MaxInt32

// pivotRanks ranks each query's own target through the pivot route, with
// the query's own item taken out of the items it may pivot through
// (otherwise its own target vector would answer it). Ranks past the
// search depth are notRanked: they count as misses for every R@K and add
// nothing to MRR.
func (db *DB) pivotRanks(ctx context.Context, probe, target string, qvecs [][]float32, qids []uint32, maxK int) ([]int, error) {
	ranks := make([]int, len(qvecs))
	for i, qv := range qvecs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := db.plan(ctx, Query{Target: target, K: maxK, Probes: []Probe{{Modality: probe, Vector: qv}}})
		if err != nil {
			return nil, err
		}
		p.probes[0].shared.Remove(qids[i])
		if p.probes[0].shared.IsEmpty() {
			return nil, fmt.Errorf("%w: only one item carries both %s and %s; a pivot needs others", ErrInvalidQuery, probe, target)
		}
		p.plan.K = p.plan.Depth // rank as deep as the search goes
		hits, err := db.execute(ctx, p, nil)
		if err != nil {
			return nil, err
		}
		ext := db.items.name(qids[i])
		ranks[i] = notRanked
		for r, h := range hits {
			if h.ID == ext {
				ranks[i] = r + 1
				break
			}
		}
	}
	return ranks, nil
}

// rankAll returns, for each query, the 1-based rank of its own target
// among all targets, ties counted against it. Queries are split across the
// CPUs.
//
// offsets, if not nil, are added to each target's distance (the hubness
// correction).
func rankAll(ctx context.Context, metric modality.Metric, qs [][]float32, own []int, tvecs []float32, dim int, offsets []float32) ([]int, error) {
	ranks := make([]int, len(qs))
	n := len(tvecs) / dim
	workers := min(runtime.GOMAXPROCS(0), len(qs))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(qs); i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				q := qs[i]
				// With offsets, rank as Search's hubness correction does:
				// by the reported distance (Euclidean, not squared, under
				// L2) plus the penalty.
				dist := func(j int) float32 {
					d := metric.Distance(q, tvecs[j*dim:(j+1)*dim])
					if offsets == nil {
						return d
					}
					_, reported := metric.Score(d)
					return reported + offsets[j]
				}
				ownDist := dist(own[i])
				rank := 1
				for j := range n {
					if j != own[i] && dist(j) <= ownDist {
						rank++
					}
				}
				ranks[i] = rank
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ranks, nil
}

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
