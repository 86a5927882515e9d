package mmdb

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"

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
	MedianRank float64
}

// String formats the report on one line.
func (r EvalReport) String() string {
	ks := make([]int, 0, len(r.Recall))
	for k := range r.Recall {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	s := fmt.Sprintf("%s->%s over %d queries x %d targets:", r.Probe, r.Target, r.N, r.Targets)
	for _, k := range ks {
		s += fmt.Sprintf(" R@%d %.3f", k, r.Recall[k])
	}
	return s + fmt.Sprintf(" MRR %.3f median rank %g", r.MRR, r.MedianRank)
}

// Evaluate measures how well probe vectors find their own item's target
// vector. Every item that carries both modalities is a query (up to
// MaxQueries); its probe vector ranks all target vectors exactly, and the
// rank of the item's own target vector is recorded. Ties count against the
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

	// Copy what is needed under the lock, then rank without it.
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return EvalReport{}, ErrClosed
	}
	pm, pidx, err := db.modalityLocked(probe)
	if err == nil {
		var tm Modality
		tm, _, err = db.modalityLocked(target)
		if err == nil {
			err = directRoute(pm, tm)
		}
	}
	if err != nil {
		db.mu.RUnlock()
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	_, tidx, _ := db.modalityLocked(target)
	live := make([]uint32, 0, db.count)
	for id, ext := range db.extIDs {
		if ext != "" {
			live = append(live, uint32(id))
		}
	}
	db.mu.RUnlock()
	// The indexes are safe for concurrent use: copy the vectors without
	// holding the lock, so writers (and the readers queued behind them)
	// are not held up for the whole copy.
	var (
		tvecs  []float32
		tdim   = tidx.Dim()
		own    []int // for each pair, the row of its target in tvecs
		qvecs  [][]float32
		ntargs int
	)
	for _, id := range live {
		tv, ok := tidx.Vector(id)
		if !ok {
			continue
		}
		tvecs = append(tvecs, tv...)
		if pv, ok := pidx.Vector(id); ok {
			qvecs = append(qvecs, pv)
			own = append(own, ntargs)
		}
		ntargs++
	}
	metric := tidx.Metric()

	if len(qvecs) == 0 {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w: no item carries both %s and %s", ErrInvalidQuery, probe, target)
	}
	if len(qvecs) > maxQ { // evenly spaced sample, deterministic
		sq, so := make([][]float32, maxQ), make([]int, maxQ)
		for i := range maxQ {
			j := i * len(qvecs) / maxQ
			sq[i], so[i] = qvecs[j], own[j]
		}
		qvecs, own = sq, so
	}
	ranks, err := rankAll(ctx, metric, qvecs, own, tvecs, tdim)
	if err != nil {
		return EvalReport{}, fmt.Errorf("mmdb: evaluate: %w", err)
	}
	return summarise(probe, target, ranks, ntargs, ks), nil
}

// rankAll returns, for each query, the 1-based rank of its own target
// among all targets, ties counted against it. Queries are split across the
// CPUs.
func rankAll(ctx context.Context, metric modality.Metric, qs [][]float32, own []int, tvecs []float32, dim int) ([]int, error) {
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
				ownDist := metric.Distance(q, tvecs[own[i]*dim:(own[i]+1)*dim])
				rank := 1
				for j := range n {
					if j != own[i] && metric.Distance(q, tvecs[j*dim:(j+1)*dim]) <= ownDist {
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
		mrr += 1 / float64(rk)
	}
	r.MRR = mrr / float64(len(ranks))
	s := slices.Clone(ranks)
	slices.Sort(s)
	if m := len(s); m%2 == 1 {
		r.MedianRank = float64(s[m/2])
	} else {
		r.MedianRank = float64(s[m/2-1]+s[m/2]) / 2
	}
	return r
}
