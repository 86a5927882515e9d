package mmdb

import (
	"cmp"
	"context"

	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
)

// exactCost is the constant of the planner's cost model: the graph, walked
// with an allow-list keeping a share s of n vectors, visits about ef/s
// nodes, each with M neighbours to score, while the exact scan scores the
// allowed vectors once each. The two cost the same near
// allowed = sqrt(exactCost * ef * n). On 100k x 128 at ef 64 the crossover
// measured between 10% and 50% allowed (BenchmarkFiltered: exact 0.96 ms
// vs graph 1.83 ms at 10%; 2.14 ms vs 0.93 ms at 50%), which this constant
// puts at 25k.
const exactCost = 100

// Routes from a probe's modality to the target's.
const (
	RouteDirect = "direct" // same space: search the target's index with the probe
	RoutePivot  = "pivot"  // through items that carry both modalities
)

// pivotItems is how many of the probe modality's nearest items a pivot
// route goes through.
const pivotItems = 10

// Plan is how a query will run (Explain) or ran (ExplainAnalyze).
type Plan struct {
	// Target is the modality ranked.
	Target string
	// K is the number of hits asked for.
	K int
	// Filter is the filter as parsed ("" for none), FilterMatches the
	// number of target vectors it keeps, out of Candidates.
	Filter        string
	FilterMatches int
	Candidates    int
	// Strategy is "exact" (a scan of the candidates) or "hnsw" (the graph,
	// with the filter as an allow-list), with Ef for the graph and Why.
	Strategy string
	Ef       int
	Why      string
	// Probes has one entry per probe: its route and why.
	Probes []ProbePlan
	// Fusion is how several probes' lists are merged ("" for one probe),
	// and Depth how many hits each list contributes.
	Fusion string
	Depth  int
	// Steps are the timed steps of ExplainAnalyze (empty for Explain).
	Steps []Step
	// Recall is ExplainAnalyze's recall@K of this very query against the
	// same query run with exact scans (1 when it ran exactly); 0 for
	// Explain.
	Recall float64
}

// ProbePlan is the route of one probe.
type ProbePlan struct {
	Modality string
	Source   string // "vector" or the item ID it came from
	Route    string // RouteDirect or RoutePivot
	Weight   float32
	Why      string
}

// Step is one timed part of an executed plan.
type Step struct {
	Name string
	Took time.Duration
	Rows int
}

// String renders the plan as an indented tree, the form EXPLAIN prints.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Strategy == "postings" { // COUNT
		fmt.Fprintf(&b, "COUNT\n  filter: %s -> %d of %d items\n  strategy: postings (%s)\n", p.Filter, p.FilterMatches, p.Candidates, p.Why)
		return b.String()
	}
	fmt.Fprintf(&b, "SEARCH %s LIMIT %d\n", p.Target, p.K)
	if p.Filter != "" {
		fmt.Fprintf(&b, "  filter: %s -> %d of %d %s vectors\n", p.Filter, p.FilterMatches, p.Candidates, p.Target)
	}
	fmt.Fprintf(&b, "  strategy: %s", p.Strategy)
	if p.Strategy == "hnsw" {
		fmt.Fprintf(&b, " ef=%d", p.Ef)
	}
	fmt.Fprintf(&b, " (%s)\n", p.Why)
	if p.Fusion != "" {
		fmt.Fprintf(&b, "  fusion: %s over %d lists of up to %d\n", p.Fusion, len(p.Probes), p.Depth)
	}
	for _, pr := range p.Probes {
		fmt.Fprintf(&b, "  probe %s (%s, weight %g): %s route, %s\n", pr.Modality, pr.Source, pr.Weight, pr.Route, pr.Why)
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  step %-28s %10s  %d rows\n", s.Name, s.Took.Round(time.Microsecond), s.Rows)
	}
	if len(p.Steps) > 0 {
		fmt.Fprintf(&b, "  recall@%d against exact: %.3f\n", p.K, p.Recall)
	}
	return b.String()
}

// planned is a plan plus what executing it needs.
type planned struct {
	plan   *Plan
	tm     Modality
	tidx   hnsw.Index
	allow  *roaring.Bitmap // nil: no filter
	probes []plannedProbe
	// exactAll makes every search of the plan exact, pivots included: the
	// reference run of ExplainAnalyze.
	exactAll bool
}

type plannedProbe struct {
	vec    []float32
	pidx   hnsw.Index // the probe modality's index, for pivots
	pm     Modality
	ext    string          // the probe's own item, if given by ID
	shared *roaring.Bitmap // pivot: items that carry both modalities
	calib  *Calibration    // query-time corrections, if any
}

// Search runs q and returns up to K hits, best first.
//
// Each probe reaches the target by a route: direct when the probe's
// modality shares the target's Space, dimension and metric; otherwise
// pivot, through the probe modality's nearest items that also carry the
// target modality. With no route, Search fails with ErrNoRoute naming what
// is missing. A filter becomes a bitmap first; small candidate sets are
// scanned exactly, large ones searched in the graph with the bitmap as an
// allow-list. Several probes are fused (Query.Fuse). Explain shows the
// plan.
func (db *DB) Search(ctx context.Context, q Query) ([]Hit, error) {
	if len(q.Targets) > 0 {
		return db.searchTargets(ctx, q)
	}
	p, err := db.plan(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("mmdb: search: %w", err)
	}
	hits, err := db.execute(ctx, p, nil)
	if err != nil {
		return nil, fmt.Errorf("mmdb: search: %w", err)
	}
	return hits, nil
}

// searchTargets ranks items by several target modalities: one search per
// target, fused by RRF over item IDs.
func (db *DB) searchTargets(ctx context.Context, q Query) ([]Hit, error) {
	var lists [][]Hit
	for _, t := range q.Targets {
		one := q
		one.Target, one.Targets = t, nil
		hits, err := db.Search(ctx, one)
		if err != nil {
			return nil, err
		}
		lists = append(lists, hits)
	}
	k := q.K
	if k <= 0 {
		k = DefaultK
	}
	return fuseHits(lists, k), nil
}

// Explain returns the plan Search would run for q, without running it.
func (db *DB) Explain(ctx context.Context, q Query) (*Plan, error) {
	p, err := db.plan(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	return p.plan, nil
}

// ExplainAnalyze runs q and returns its plan with the time of each step,
// and the hits.
func (db *DB) ExplainAnalyze(ctx context.Context, q Query) (*Plan, []Hit, error) {
	start := time.Now()
	p, err := db.plan(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	p.plan.Steps = append(p.plan.Steps, Step{Name: "plan (filter, routes)", Took: time.Since(start), Rows: p.plan.FilterMatches})
	hits, err := db.execute(ctx, p, &p.plan.Steps)
	if err != nil {
		return nil, nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	p.plan.Recall = 1
	if p.plan.Strategy != "exact" || anyPivot(p.plan.Probes) {
		// Run the same plan with exact scans everywhere and compare.
		exact := *p
		ep := *p.plan
		ep.Strategy, ep.Steps = "exact", nil
		exact.plan, exact.exactAll = &ep, true
		want, err := db.execute(ctx, &exact, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("mmdb: explain: exact rerun: %w", err)
		}
		p.plan.Recall = overlap(hits, want)
	}
	return p.plan, hits, nil
}

// overlap is the share of want's IDs that got holds.
func overlap(got, want []Hit) float64 {
	if len(want) == 0 {
		return 1
	}
	in := make(map[string]bool, len(got))
	for _, h := range got {
		in[h.ID] = true
	}
	n := 0
	for _, h := range want {
		if in[h.ID] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// exactCutoff is the candidate count at or below which the planner scans
// exactly: Options.ExactCutoff when set, else the cost model's crossover.
func (db *DB) exactCutoff(ef, n int) int {
	if db.opts.ExactCutoff > 0 {
		return db.opts.ExactCutoff
	}
	return int(math.Sqrt(float64(exactCost) * float64(ef) * float64(n)))
}

// plan validates q, evaluates its filter and picks routes and strategy.
func (db *DB) plan(ctx context.Context, q Query) (*planned, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := q.K
	if k == 0 {
		k = DefaultK
	}
	if k < 0 || k > MaxK {
		return nil, fmt.Errorf("%w: K = %d is outside 1..%d (MaxK); to read every item, iterate with Items", ErrInvalidQuery, q.K, MaxK)
	}
	if len(q.Probes) == 0 {
		return nil, fmt.Errorf("%w: 0 probes; give at least one", ErrInvalidQuery)
	}
	if !query.ValidFusion(q.Fuse) {
		return nil, fmt.Errorf("%w: unknown fusion %q (want rrf, weighted, dbsf or early)", ErrInvalidQuery, q.Fuse)
	}
	filter, err := query.ToFilter(q.Filter)
	if err != nil {
		return nil, fmt.Errorf("%w: filter: %w", ErrInvalidQuery, err)
	}
	vecs := make([][]float32, len(q.Probes))
	for i, pr := range q.Probes {
		if vecs[i], err = db.probeVector(pr); err != nil {
			return nil, err
		}
	}

	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, ErrClosed
	}
	tm, tidx, err := db.modalityLocked(q.Target)
	if err != nil {
		db.mu.RUnlock()
		return nil, fmt.Errorf("target: %w", err)
	}
	ti := db.byName[q.Target]
	// The bitmaps are copied only when a filter needs them: an unfiltered
	// search should not pay two 100k-item copies.
	var candidates, universe *roaring.Bitmap
	if filter != nil {
		candidates, universe = db.has[ti].Clone(), db.live.Clone()
	}
	p := &planned{tm: tm, tidx: tidx, exactAll: q.Exact, plan: &Plan{Target: q.Target, K: k, Candidates: int(db.has[ti].GetCardinality())}}
	for i, pr := range q.Probes {
		pm, pidx, err := db.modalityLocked(pr.Modality)
		if err != nil {
			db.mu.RUnlock()
			return nil, fmt.Errorf("probe: %w", err)
		}
		w := pr.Weight
		if w == 0 {
			w = 1
		}
		if !(w > 0 && w <= MaxProbeWeight) { // also false for NaN
			db.mu.RUnlock()
			return nil, fmt.Errorf("%w: probe %d (%s) weight %v must be a positive number up to %g", ErrInvalidQuery, i, pr.Modality, pr.Weight, float32(MaxProbeWeight))
		}
		pp := ProbePlan{Modality: pm.Name, Source: "vector", Weight: w}
		if pr.ItemID != "" {
			pp.Source = "item " + pr.ItemID
		}
		var shared *roaring.Bitmap
		vec := vecs[i]
		route, a, err := db.routeLocked(pm, tm)
		if route == RouteDirect {
			pp.Route, pp.Why = RouteDirect, fmt.Sprintf("%s and %s share space %q", pm.Name, tm.Name, tm.SpaceName())
		} else if route == RouteAligned {
			pv, perr := tm.Prepare(a.project(vec))
			if perr != nil {
				db.mu.RUnlock()
				return nil, fmt.Errorf("probe projected by the %s->%s alignment: %w", pm.Name, tm.Name, perr)
			}
			vec = pv
			pp.Route = RouteAligned
			pp.Why = fmt.Sprintf("spaces differ (%q, %q); projected by the stored %s->%s alignment", pm.SpaceName(), tm.SpaceName(), pm.Name, tm.Name)
			if pm.SpaceName() == tm.SpaceName() {
				pp.Why = fmt.Sprintf("projected by the %s->%s alignment stored with force, although both are in space %q", pm.Name, tm.Name, tm.SpaceName())
			}
			if a.Method != "" {
				pp.Why += " (" + a.Method + ")"
			}
		} else {
			shared = roaring.And(db.has[db.byName[pm.Name]], db.has[ti])
			both := shared.GetCardinality()
			if both == 0 {
				db.mu.RUnlock()
				return nil, fmt.Errorf("%w; no %s->%s alignment is stored, and no item carries both to pivot through", err, pm.Name, tm.Name)
			}
			pp.Route = RoutePivot
			pp.Why = fmt.Sprintf("spaces differ (%q, %q); through the %d nearest %s items, %d items carry both", pm.SpaceName(), tm.SpaceName(), pivotItems, pm.Name, both)
		}
		var calib *Calibration
		if c := db.calibs[[2]string{pm.Name, tm.Name}]; c != nil && !q.NoCorrections && pp.Route != RoutePivot {
			calib = c
			if c.Centre != nil {
				pv, perr := tm.Prepare(centred(vec, c.Centre))
				if perr != nil {
					db.mu.RUnlock()
					return nil, fmt.Errorf("probe centred by the %s->%s calibration: %w", pm.Name, tm.Name, perr)
				}
				vec = pv
			}
			pp.Why += "; corrected: " + c.describe()
		}
		p.plan.Probes = append(p.plan.Probes, pp)
		p.probes = append(p.probes, plannedProbe{vec: vec, pidx: pidx, pm: pm, ext: pr.ItemID, shared: shared, calib: calib})
	}
	db.mu.RUnlock()

	if filter != nil {
		bm, err := db.evalFilter(filter, universe)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		bm.And(candidates)
		p.allow = bm
		p.plan.Filter = filter.String()
		p.plan.FilterMatches = int(bm.GetCardinality())
	} else {
		p.plan.FilterMatches = p.plan.Candidates
	}

	if len(q.Probes) > 1 {
		p.plan.Fusion = q.Fuse
		if p.plan.Fusion == "" {
			p.plan.Fusion = query.FuseRRF
		}
		if p.plan.Fusion == query.FuseEarly {
			for _, pp := range p.plan.Probes {
				if pp.Route == RoutePivot {
					return nil, fmt.Errorf("%w: early fusion needs every probe in the target's space (directly or aligned); %s is not", ErrInvalidQuery, pp.Modality)
				}
			}
		}
	}
	p.plan.Depth = k
	if p.plan.Fusion != "" && p.plan.Fusion != query.FuseEarly || anyPivot(p.plan.Probes) {
		p.plan.Depth = max(4*k, 40) // deep enough for fusion to matter
	}

	ef := q.Ef
	if ef <= 0 {
		ef = hnswEf(tidx)
	}
	ef = max(ef, p.plan.Depth)
	cutoff := db.exactCutoff(ef, p.plan.Candidates)
	switch {
	case q.Exact:
		p.plan.Strategy, p.plan.Why = "exact", "Query.Exact"
	case p.plan.FilterMatches <= cutoff:
		p.plan.Strategy = "exact"
		p.plan.Why = fmt.Sprintf("%d candidates <= exact cutoff %d: a scan of them costs less than the graph", p.plan.FilterMatches, cutoff)
	default:
		p.plan.Strategy = "hnsw"
		p.plan.Ef = ef
		p.plan.Why = fmt.Sprintf("%d candidates > exact cutoff %d", p.plan.FilterMatches, cutoff)
		if p.allow != nil {
			p.plan.Why += "; the filter is an allow-list inside the walk"
		}
	}
	return p, nil
}

func anyPivot(ps []ProbePlan) bool {
	for _, p := range ps {
		if p.Route == RoutePivot {
			return true
		}
	}
	return false
}

func hnswEf(idx hnsw.Index) int {
	if h, ok := idx.(*hnsw.HNSW); ok {
		return h.Config().EfSearch
	}
	return hnsw.DefaultEfSearch
}

// execute runs a plan. steps, if non-nil, receives timings.
func (db *DB) execute(ctx context.Context, p *planned, steps *[]Step) ([]Hit, error) {
	plan := p.plan
	timed := func(name string, start time.Time, rows int) {
		if steps != nil {
			*steps = append(*steps, Step{Name: name, Took: time.Since(start), Rows: rows})
		}
	}
	if p.allow != nil && p.allow.IsEmpty() {
		return []Hit{}, nil
	}
	opts := hnsw.SearchOptions{Ef: plan.Ef, Allow: p.allow, Exact: plan.Strategy == "exact"}
	search := func(vec []float32, depth int) []query.Ranked {
		res := p.tidx.Search(vec, depth, opts)
		out := make([]query.Ranked, len(res))
		for i, r := range res {
			s, _ := p.tm.Metric.Score(r.Dist)
			out[i] = query.Ranked{ID: r.ID, Score: float64(s)}
		}
		return out
	}

	// Early fusion: one search with the weighted sum of the probe vectors.
	if plan.Fusion == query.FuseEarly {
		start := time.Now()
		sum := make([]float32, p.tm.Dim)
		var total float32
		for i, pr := range p.probes {
			w := plan.Probes[i].Weight
			total += w
			for j, x := range pr.vec {
				sum[j] += w * x
			}
		}
		if p.tm.Metric == modality.Cosine {
			if !modality.Normalize(sum) {
				return nil, fmt.Errorf("%w: the weighted probe vectors sum to zero", ErrInvalidQuery)
			}
		} else {
			// L2 and dot need the weighted mean, not the sum: a probe given
			// twice must search from where it is, not twice as far out.
			for j := range sum {
				sum[j] /= total
			}
		}
		if err := modality.CheckQuery(sum); err != nil {
			return nil, fmt.Errorf("%w: the weighted sum of the probe vectors: %w", ErrInvalidQuery, err)
		}
		list := search(sum, plan.K)
		timed("early fusion search", start, len(list))
		return db.hits(p, list, plan.K, false), nil
	}

	lists := make([][]query.Ranked, 0, len(p.probes))
	weights := make([]float64, 0, len(p.probes))
	for i, pr := range p.probes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		var list []query.Ranked
		if plan.Probes[i].Route != RoutePivot && pr.calib != nil && pr.calib.Alpha > 0 {
			list = dehub(search(pr.vec, 3*plan.Depth+20), pr.calib, plan.Depth)
			timed("search "+pr.pm.Name+" -> "+plan.Target+" (hubness-corrected)", start, len(list))
		} else if plan.Probes[i].Route != RoutePivot {
			list = search(pr.vec, plan.Depth)
			timed("search "+pr.pm.Name+" -> "+plan.Target, start, len(list))
		} else {
			list = db.pivot(p, pr, search)
			timed("pivot "+pr.pm.Name+" -> "+plan.Target, start, len(list))
		}
		lists = append(lists, list)
		weights = append(weights, float64(plan.Probes[i].Weight))
	}
	if len(lists) == 1 {
		return db.hits(p, lists[0], plan.K, plan.Probes[0].Route == RoutePivot), nil
	}
	start := time.Now()
	fused := query.Fuse(plan.Fusion, lists, weights)
	timed("fuse ("+plan.Fusion+")", start, len(fused))
	return db.hits(p, fused, plan.K, true), nil
}

// pivot searches the probe's own modality among the items that also carry
// the target modality, takes the nearest ones' target vectors, searches
// the target with each, and fuses the lists by RRF, weighted by how close
// each pivot item is to the probe (pivotWeight).
func (db *DB) pivot(p *planned, pr plannedProbe, search func([]float32, int) []query.Ranked) []query.Ranked {
	opts := hnsw.SearchOptions{Ef: hnsw.DefaultEfSearch, Allow: pr.shared}
	if n := int(pr.shared.GetCardinality()); p.exactAll || n <= db.exactCutoff(hnsw.DefaultEfSearch, pr.pidx.Len()) {
		opts.Exact = true
	}
	near := pr.pidx.Search(pr.vec, pivotItems, opts)
	var lists [][]query.Ranked
	var weights []float64
	for _, n := range near {
		tv, ok := p.tidx.Vector(n.ID)
		if !ok {
			continue // this neighbour has no vector of the target modality
		}
		lists = append(lists, search(tv, p.plan.Depth))
		weights = append(weights, pivotWeight(pr.pm.Metric, n.Dist, len(lists)))
		if len(lists) == pivotItems {
			break
		}
	}
	if len(lists) == 0 {
		return nil
	}
	// RRF with k = 60 rewards agreement between pivots over the rank within
	// one pivot's list. On a neighbourhood-preserving pair of spaces
	// (TestEvaluateAlignedAndPivot) it gave R@10 0.893, against 0.807 for
	// a weighted sum of min-max scores and 0.643 for RRF with k = 1; the
	// price is that many far pivots can outvote one that sits on the probe.
	return query.Fuse(query.FuseRRF, lists, weights)
}

// pivotWeight is how much a pivot item's list counts: its cosine
// similarity (floored at 0.001) under Cosine, 1/(1+distance) under L2, and
// 1/rank under Dot, whose scores have no fixed scale or sign.
func pivotWeight(m modality.Metric, dist float32, rank int) float64 {
	switch m {
	case modality.L2:
		return 1 / (1 + math.Sqrt(math.Max(float64(dist), 0)))
	case modality.Dot:
		return 1 / float64(rank)
	}
	return math.Max(1-float64(dist), 1e-3)
}

// hits maps internal IDs to external ones and scores to Hits. For fused
// lists the score is the fusion score and Distance its negation (Fused
// says so): no metric distance describes a fused rank.
func (db *DB) hits(p *planned, list []query.Ranked, k int, fused bool) []Hit {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]Hit, 0, min(k, len(list)))
	for _, r := range list {
		if int(r.ID) >= len(db.extIDs) || db.extIDs[r.ID] == "" {
			continue // mid-write: the item's vectors are leaving the index
		}
		h := Hit{ID: db.extIDs[r.ID], Score: float32(r.Score), Fused: fused}
		if fused {
			h.Distance = 0 - h.Score
		} else {
			h.Distance = distanceOf(p.tm.Metric, h.Score)
		}
		out = append(out, h)
		if len(out) == k {
			break
		}
	}
	return out
}

// distanceOf inverts Metric.Score.
func distanceOf(m modality.Metric, score float32) float32 {
	switch m {
	case modality.L2, modality.Dot:
		return 0 - score // not -score: an exact match is 0, not -0
	}
	return 1 - score
}

// evalFilter evaluates a filter over the attribute postings. A filter that
// compares an attribute no item has ever had fails with
// ErrUnknownAttribute (as sqlite's "no such column"): it is almost always
// a typo, and would silently match nothing.
func (db *DB) evalFilter(e query.Expr, universe *roaring.Bitmap) (*roaring.Bitmap, error) {
	var out *roaring.Bitmap
	err := db.store.View(func(tx *storage.Tx) error {
		if err := checkComparisons(tx, query.Compared(e)); err != nil {
			return err
		}
		var err error
		out, err = query.Eval(e, postingSource{tx, universe})
		return err
	})
	return out, err
}

// checkComparisons refuses a filter that compares an attribute no item has
// (ErrUnknownAttribute, listing the known ones): it would silently match
// nothing. (A value of another kind than the attribute holds, a string
// against numbers, matches nothing too, as in sqlite, and is not refused.)
func checkComparisons(tx *storage.Tx, attrs []string) error {
	if len(attrs) == 0 {
		return nil
	}
	known := tx.Attributes()
	for _, a := range attrs {
		if !slices.Contains(known, a) {
			list := "none"
			if len(known) > 0 {
				slices.Sort(known)
				list = strings.Join(known, ", ")
			}
			return fmt.Errorf("%w: %q (known attributes: %s)", ErrUnknownAttribute, a, list)
		}
	}
	return nil
}

// postingSource answers filter lookups from a read transaction.
type postingSource struct {
	tx       *storage.Tx
	universe *roaring.Bitmap
}

func (s postingSource) Universe() *roaring.Bitmap { return s.universe.Clone() }
func (s postingSource) Equal(attr string, v any) (*roaring.Bitmap, error) {
	return s.tx.PostingEqual(attr, v)
}
func (s postingSource) Range(attr string, lo, hi any, loInc, hiInc bool) (*roaring.Bitmap, error) {
	return s.tx.PostingRange(attr, lo, hi, loInc, hiInc)
}
func (s postingSource) Exists(attr string) (*roaring.Bitmap, error) {
	return s.tx.PostingExists(attr)
}

// dehub applies the hubness correction to a list fetched three times as
// deep as needed (so that targets the correction lifts are in it): each
// score loses Alpha times the target's hubness, and the best depth are
// kept.
func dehub(list []query.Ranked, c *Calibration, depth int) []query.Ranked {
	for i := range list {
		list[i].Score -= float64(c.penalty(list[i].ID))
	}
	slices.SortStableFunc(list, func(a, b query.Ranked) int { return cmp.Compare(b.Score, a.Score) })
	return list[:min(depth, len(list))]
}
