package mmdb

import (
	"fmt"
	"math"
	"slices"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
)

// Multi-vector modalities (Modality.Multi) hold a set of vectors an item,
// scored by late interaction in their index (hnsw.Multi). What works with
// them, and what refuses with ErrInvalidQuery or ErrNoRoute, is decided
// here, in one place.

// Multi says whether a modality holds one vector an item or a set, and how
// a set is scored: see modality.Multi.
type Multi = modality.Multi

// The values of Modality.Multi.
const (
	Single  = modality.Single  // one vector an item (the default)
	MaxSim  = modality.MaxSim  // a set, scored by each probe vector's best match, averaged
	MaxPair = modality.MaxPair // a set, scored by its best pair with the probe
)

// MaxSet is the most vectors an item holds for a multi-vector modality,
// and MaxSetValues the most values (vectors times dimension).
const (
	MaxSet       = modality.MaxSet
	MaxSetValues = modality.MaxSetValues
)

// multiRoute refuses what a route cannot do with sets: a set probe needs a
// multi-vector target (its vectors are matched one by one with the
// target's), and alignments and pivots carry one vector an item.
func multiRoute(route Route, pm, tm Modality) error {
	switch {
	case !pm.IsMulti() && !tm.IsMulti():
		return nil
	case pm.IsMulti() && !tm.IsMulti():
		return fmt.Errorf("%w: %s holds sets of vectors and %s one vector an item: a set probe is scored by late interaction against a multi-vector target only", ErrInvalidQuery, pm.Name, tm.Name)
	case route != RouteDirect:
		return fmt.Errorf("%w: %s -> %s would take the %s route, and alignments and pivots carry one vector an item; multi-vector modalities are searched directly, from a modality of their own space", ErrNoRoute, pm.Name, tm.Name, route)
	}
	return nil
}

// multiFusion refuses the fusions that combine probe vectors or score
// them one by one against a target's single vectors (early and
// best_score), and negative examples, which need one of those (early is
// their default). The planner asks before it plans fusion, so the error a
// user gets names what sets cannot do.
func multiFusion(p *planned, q Query) error {
	if !p.tm.IsMulti() {
		return nil
	}
	switch {
	case slices.ContainsFunc(p.plan.Probes, func(pp ProbePlan) bool { return pp.Weight < 0 }):
		return fmt.Errorf("%w: negative weights (examples to move away from) need early or best_score fusion, which combine single vectors, and %s holds sets: late interaction has no set to subtract", ErrInvalidQuery, p.tm.Name)
	case q.Fuse == fusion.BestScore, q.Fuse == fusion.Early && len(q.Probes) > 1: // (early of one probe is that probe)
		return fmt.Errorf("%w: %s fusion combines single vectors, and %s holds sets: fuse by rrf, weighted or dbsf (each probe searched by late interaction)", ErrInvalidQuery, q.Fuse, p.tm.Name)
	}
	return nil
}

// meanSet is the mean number of vectors a set of idx holds, 0 for an
// index of single vectors.
func meanSet(idx hnsw.Index) float64 {
	mi, ok := idx.(*hnsw.Multi)
	if !ok {
		return 0
	}
	if n := mi.Len(); n > 0 {
		return float64(mi.Vectors()) / float64(n)
	}
	return 0
}

// setCutoff is the exact cutoff, in sets, for n sets of s vectors on
// average: the cost model's crossover counted in vectors (a set costs s
// vectors to scan, and the graph the walk searches holds s times as many
// nodes), divided back into sets. Counted in sets, 5,000 sets of 100
// token vectors were scanned: 500,000 distances a probe vector.
//
// Sets keep a constant of their own: BenchmarkSetCutoffFit (25,000 sets
// of 4, one query vector or four, ef 16 and 64) put C at the crossover
// at 73-117 at ef 16 and 17-36 at ef 64 (a walk that names fewer than k
// sets is widened, so ef 16 costs about what 64 does). 50 puts the cutoff
// at 8.9% of such an index at ef 16 and 17.9% at 64 (the default): where
// it errs, a scan at 20% allowed and ef 64 would have cost 2.3x the walk
// with 100, and a walk at 10% and ef 16 costs up to 1.8x the scan with
// 50.
func setCutoff(ef, n int, s float64) int {
	nv := float64(n) * s
	if nv <= hnsw.SmallIndex*float64(ef) {
		return n
	}
	return int(math.Sqrt(setExactCost*float64(ef)*nv) / s)
}

// setExactCost is the cost model's constant for set indexes.
const setExactCost = 50

// lateSteps records the two stages of a set search, for ANALYZE.
func lateSteps(steps *[]Step, mi *hnsw.Multi, st hnsw.MultiStats, kept int, exact bool) {
	first := fmt.Sprintf("late interaction 1/2: %d probe vector(s) walk the graph of %d vectors, candidates", st.QueryVectors, mi.Vectors())
	if exact {
		first = "late interaction 1/2: every set is a candidate (exact scan)"
	}
	*steps = append(*steps,
		Step{Name: first, Took: st.Walk, Rows: st.Candidates},
		Step{Name: fmt.Sprintf("late interaction 2/2: %v of each candidate's whole set, kept", mi.Aggregation()), Took: st.Rescore, Rows: kept})
}

// lateWhy says how a set target is scored, for EXPLAIN.
func lateWhy(tm Modality, probeVectors int) string {
	return fmt.Sprintf("; %s holds sets, scored by %v late interaction of the probe's %d vector(s) with each item's whole set (through the graph: each probe vector's neighbours are the candidates)", tm.Name, tm.Multi, probeVectors)
}

// checkSetDim refuses a statement's set of vectors ([[...], [...]]) whose
// vectors are not of the probe modality's dimension: laid end to end they
// could otherwise pass as vectors of another length.
func (db *DB) checkSetDim(p query.StmtProbe) error {
	if p.SetDim == 0 {
		return nil
	}
	s, err := db.state()
	if err != nil {
		return err
	}
	m, _, err := s.modality(p.Modality)
	if err != nil {
		return fmt.Errorf("mmdb: probe: %w", err)
	}
	if p.SetDim != m.Dim {
		return fmt.Errorf("mmdb: probe of modality %q: %w: a set of %d-d vectors, the modality's are %d-d", p.Modality, ErrDimension, p.SetDim, m.Dim)
	}
	if !m.IsMulti() && len(p.Vector) != m.Dim {
		return fmt.Errorf("mmdb: probe of modality %q: %w: a set of %d vectors, and %s holds one vector an item (probe a multi-vector modality of its space with a set)", p.Modality, ErrInvalidQuery, len(p.Vector)/p.SetDim, m.Name)
	}
	return nil
}

// refuseMulti is the error of an operation that works on one vector an
// item (alignment, calibration, evaluation) given a multi-vector modality,
// or nil.
func refuseMulti(op string, ms ...Modality) error {
	for _, m := range ms {
		if m.IsMulti() {
			return fmt.Errorf("%w: %s works on one vector an item, and %s holds sets of vectors (%v)", ErrInvalidQuery, op, m.Name, m.Multi)
		}
	}
	return nil
}
