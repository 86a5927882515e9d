package mmdb

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/query"
)

// planned is a plan plus what executing it needs.
type planned struct {
	plan *Plan
	// explain builds the plan's prose (Why, Source, Statement): EXPLAIN
	// reads it, a search does not pay for it.
	explain bool
	tm      Modality
	tidx    hnsw.Index
	allow   *roaring.Bitmap // nil: no filter
	probes  []plannedProbe
	// exactAll makes every search of the plan exact, pivots included: the
	// reference run of ExplainAnalyze.
	exactAll  bool
	noAttrs   bool // hits without attributes
	exhausted bool // a grouped search's list ended or crossed a bound: deeper finds nothing more
	negatives bool // some probes have negative weights: early fusion by average vector
	// minScore and maxDistance bound the hits (nil: no bound).
	minScore, maxDistance *float32
	// groupBy, if set, keeps at most groupSize hits per value of that
	// attribute.
	groupBy   string
	groupSize int
	// The plan and, for a single probe, its probe slices live here: one
	// allocation for a search's plan, not five.
	planBuf   Plan
	probeBuf  [1]ProbePlan
	pprobeBuf [1]plannedProbe
}

// detach returns a copy of the plan for the caller to keep: p.plan lives
// inside p, and handing it out would keep the probes' vectors and the
// allow-list alive with it.
func (p *planned) detach() *Plan {
	out := *p.plan
	out.Probes = slices.Clone(p.plan.Probes)
	return &out
}

type plannedProbe struct {
	vec    []float32
	pidx   hnsw.Index // the probe modality's index, for pivots
	pm     Modality
	ext    string          // the probe's own item, if given by ID
	shared *roaring.Bitmap // pivot: items that carry both modalities
	calib  *Calibration    // query-time corrections, if any
	align  *Alignment      // the map that projected it (aligned route)
}

// exactCutoff is the candidate count at or below which the planner scans
// idx exactly: Options.ExactCutoff when set, else the cost model's
// crossover (hnsw.ExactCutoff; ExactCutoffSourced for a graph that reads
// its vectors back from the file), counted in vectors for an index of sets
// (setCutoff).
func (db *DB) exactCutoff(ef, n int, idx hnsw.Index) int {
	if db.opts.ExactCutoff > 0 {
		return db.opts.ExactCutoff
	}
	if _, ok := idx.(*hnsw.Multi); ok { // sets: see setCutoff
		return setCutoff(ef, n, max(1, meanSet(idx)))
	}
	if g, ok := idx.(*hnsw.HNSW); ok && g.Config().Source != nil {
		return hnsw.ExactCutoffSourced(ef, n)
	}
	return hnsw.ExactCutoff(ef, n)
}

// plan validates q, evaluates its filter and picks routes and strategy.
func (db *DB) plan(ctx context.Context, q Query, explain bool) (*planned, error) {
	k, err := validateQuery(ctx, q)
	if err != nil {
		return nil, err
	}
	vecs := make([][]float32, len(q.Probes))
	encs := make([]encoded, len(q.Probes))
	for i, pr := range q.Probes {
		if vecs[i], encs[i], err = db.probeVector(ctx, pr); err != nil {
			return nil, err
		}
	}
	p, candidates, universe, err := db.planProbes(q, k, vecs, explain)
	if err != nil {
		return nil, err
	}
	if explain {
		p.plan.Statement = statement(q, k)
	}
	for i, e := range encs {
		p.plan.Probes[i].Encoder, p.plan.Probes[i].EncodeTook, p.plan.Probes[i].spec = e.how, e.took, e.spec
	}
	p.plan.FilterMatches = p.plan.Candidates
	if q.Filter != nil {
		bm, err := db.evalFilter(q.Filter, universe)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		bm.And(candidates)
		p.allow = bm
		p.plan.Filter = q.Filter.String()
		p.plan.FilterMatches = int(bm.GetCardinality())
	}
	excl, err := db.excluded(q)
	if err != nil {
		return nil, err
	}
	if excl != nil && !excl.IsEmpty() {
		if p.allow == nil {
			p.allow = db.items.With(db.st.Load().byName[q.Target])
		}
		before := p.allow.GetCardinality()
		p.allow.AndNot(excl)
		p.plan.Excluded = int(before - p.allow.GetCardinality())
		p.plan.FilterMatches = int(p.allow.GetCardinality())
	}
	p.plan.Offset = q.Offset
	if err := planFusion(p, q); err != nil {
		return nil, err
	}
	if err := planBounds(p, q); err != nil {
		return nil, err
	}
	if err := planOffset(p); err != nil {
		return nil, err
	}
	if err := db.planGroups(p, q); err != nil {
		return nil, err
	}
	db.planStrategy(p, q)
	return p, nil
}

// validateQuery checks what q says on its own, and returns its K.
func validateQuery(ctx context.Context, q Query) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	k := q.K
	if k == 0 {
		k = DefaultK
	}
	if k < 0 || k > MaxK {
		return 0, fmt.Errorf("%w: K = %d is outside 1..%d (MaxK); to read every item, iterate with Items", ErrInvalidQuery, q.K, MaxK)
	}
	if len(q.Probes) == 0 {
		return 0, fmt.Errorf("%w: 0 probes; give at least one", ErrInvalidQuery)
	}
	if !fusion.Valid(q.Fuse) {
		return 0, fmt.Errorf("%w: unknown fusion %q (want rrf, weighted, dbsf, early or best_score)", ErrInvalidQuery, q.Fuse)
	}
	if q.Filter != nil {
		if err := query.Validate(q.Filter); err != nil {
			return 0, fmt.Errorf("%w: filter: %w", ErrInvalidQuery, err)
		}
	}
	if q.Offset < 0 || q.Offset > MaxOffset {
		return 0, fmt.Errorf("%w: OFFSET %d is outside 0..%d (MaxOffset); to read every item, use Scroll", ErrInvalidQuery, q.Offset, MaxOffset)
	}
	for _, b := range []*float32{q.MinScore, q.MaxDistance} {
		if b != nil && (math.IsNaN(float64(*b)) || math.IsInf(float64(*b), 0)) {
			return 0, fmt.Errorf("%w: a score or distance bound of %v", ErrInvalidQuery, *b)
		}
	}
	if len(q.Exclude) > MaxK {
		return 0, fmt.Errorf("%w: %d excluded IDs, at most %d (MaxK); use a filter", ErrInvalidQuery, len(q.Exclude), MaxK)
	}
	return k, nil
}

// planStrategy chooses between an exact scan and the graph.
func (db *DB) planStrategy(p *planned, q Query) {
	ef := q.Ef
	if ef <= 0 {
		ef = hnswEf(p.tidx)
	}
	ef = max(ef, p.plan.Depth)
	if p.plan.Offset > 0 {
		ef = max(ef, 2*p.plan.Depth) // a deep page: the beam wider than the page's end
	}
	cutoff := db.exactCutoff(ef, p.plan.Candidates, p.tidx)
	var why func() string
	switch {
	case p.plan.Offset > 0 && 4*p.plan.Depth >= p.plan.FilterMatches:
		p.plan.Strategy, p.plan.Why = StrategyExact, "a page this deep reaches most of the candidates: a scan"
	case p.plan.Fusion == fusion.BestScore:
		p.plan.Strategy, p.plan.Why = StrategyExact, "best_score compares every candidate with every example"
	case q.Exact:
		p.plan.Strategy, p.plan.Why = StrategyExact, "Query.Exact"
	case p.plan.FilterMatches <= cutoff:
		p.plan.Strategy = StrategyExact
		why = func() string {
			if db.opts.ExactCutoff == 0 && cutoff >= p.plan.Candidates {
				return fmt.Sprintf("%d candidates <= exact cutoff %d: an index of %d vectors is scanned whatever the filter", p.plan.FilterMatches, cutoff, p.plan.Candidates)
			}
			return fmt.Sprintf("%d candidates <= exact cutoff %d: a scan of them costs less than the graph", p.plan.FilterMatches, cutoff)
		}
	default:
		p.plan.Strategy = StrategyHNSW
		p.plan.Ef = ef
		why = func() string {
			w := fmt.Sprintf("%d candidates > exact cutoff %d", p.plan.FilterMatches, cutoff)
			if p.allow != nil {
				w += "; the filter is an allow-list inside the walk, done again as a scan if the walk finds the allowed vectors away from the query"
			}
			return w
		}
	}
	if why != nil && p.explain {
		p.plan.Why = why()
	}
}

func hnswEf(idx hnsw.Index) int {
	if h, ok := idx.(interface{ Config() hnsw.Config }); ok {
		return h.Config().EfSearch
	}
	return hnsw.DefaultEfSearch
}
