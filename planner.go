package mmdb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
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
	if _, ok := idx.(*hnsw.Multi); ok { // sets, whose walks are not checked
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

// planNegatives checks the probes of negative weight, examples to move
// away from (Qdrant's recommend, average-vector strategy): they need a
// positive probe beside them and one search with 2 x mean(positive) -
// mean(negative) (early fusion, the default when there are negatives).
func planNegatives(p *planned, q Query) error {
	pos := 0
	for _, pp := range p.plan.Probes {
		if pp.Weight < 0 {
			p.negatives = true
		} else {
			pos++
		}
	}
	switch {
	case !p.negatives:
		return nil
	case pos == 0:
		return fmt.Errorf("%w: every probe has a negative weight: give at least one example to move towards", ErrInvalidQuery)
	case q.Fuse != "" && q.Fuse != fusion.Early && q.Fuse != fusion.BestScore:
		return fmt.Errorf("%w: negative weights (examples to move away from) need FUSE early (one search with 2 x mean(positive) - mean(negative)) or FUSE best_score (each candidate by its best positive and negative example); %s fusion ranks lists, and a negative list has no rank to subtract", ErrInvalidQuery, q.Fuse)
	}
	return nil
}

// planBounds checks that the query's score bounds apply to what the plan
// ranks by, and records them.
func planBounds(p *planned, q Query) error {
	if q.MinScore == nil && q.MaxDistance == nil {
		return nil
	}
	if p.plan.Fusion != "" && p.plan.Fusion != fusion.Early {
		return fmt.Errorf("%w: SCORE and DISTANCE bound similarities, and %s fusion ranks by a fused score that is none: use one probe or FUSE early", ErrInvalidQuery, p.plan.Fusion)
	}
	for _, pr := range p.probes {
		if pr.dehubs() {
			return fmt.Errorf("%w: SCORE and DISTANCE bound similarities, and the hubness correction stored for %s -> %s changes the scores: set NoCorrections to bound raw similarities", ErrInvalidQuery, pr.pm.Name, p.tm.Name)
		}
	}
	p.minScore, p.maxDistance = q.MinScore, q.MaxDistance
	return nil
}

// planGroups records Query.GroupBy, refusing an attribute no item has (it
// would silently return nothing), and starts the search deep enough to
// fill a few groups.
func (db *DB) planGroups(p *planned, q Query) error {
	if q.GroupBy == "" {
		if q.GroupSize != 0 {
			return fmt.Errorf("%w: GroupSize without GroupBy", ErrInvalidQuery)
		}
		return nil
	}
	if q.GroupSize < 0 || q.GroupSize > MaxK {
		return fmt.Errorf("%w: group size %d outside 1..%d", ErrInvalidQuery, q.GroupSize, MaxK)
	}
	// Items without the attribute are in no group: leave them out of the
	// search itself, so deepening never wades through them.
	has, err := db.evalFilter(query.Exists{Attr: q.GroupBy}, db.items.LiveClone())
	if err != nil {
		return fmt.Errorf("GROUP BY: %w", err)
	}
	if has.IsEmpty() {
		return fmt.Errorf("GROUP BY: %w: no item has %q", ErrUnknownAttribute, q.GroupBy)
	}
	if p.allow == nil {
		p.allow = db.items.With(db.st.Load().byName[p.tm.Name])
	}
	p.allow.And(has)
	p.plan.FilterMatches = int(p.allow.GetCardinality())
	p.groupBy, p.groupSize = q.GroupBy, max(q.GroupSize, 1)
	p.plan.GroupBy, p.plan.GroupSize = p.groupBy, p.groupSize
	p.plan.Depth = max(p.plan.Depth, 4*(p.plan.K+p.plan.Offset))
	return nil
}

// planOffset refuses an offset into a fused ranking: how deep each list
// goes depends on the page, so pages of one fused ranking would repeat or
// miss items.
func planOffset(p *planned) error {
	if p.plan.Offset > 0 && p.plan.Fusion != "" && p.plan.Fusion != fusion.Early && p.plan.Fusion != fusion.BestScore {
		return fmt.Errorf("%w: OFFSET into a %s-fused ranking: each page would fuse lists of another depth, and pages would repeat or miss items; ask for more hits (LIMIT), or page a single probe or FUSE early", ErrInvalidQuery, p.plan.Fusion)
	}
	return nil
}

// excluded is the set of internal IDs q leaves out: Exclude, and the
// items of probes given by ItemID in the target's modality unless
// KeepProbeItems; nil when there are none.
func (db *DB) excluded(q Query) (*roaring.Bitmap, error) {
	ids := slices.Clone(q.Exclude)
	if !q.KeepProbeItems {
		for _, pr := range q.Probes {
			if pr.ItemID != "" && pr.Modality == q.Target {
				ids = append(ids, pr.ItemID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := roaring.New()
	err := db.store.View(func(tx *storage.Tx) error {
		for _, id := range ids {
			if iid, ok := tx.LookupID(id); ok {
				out.Add(iid)
			}
		}
		return nil
	})
	return out, err
}

// planProbes resolves the target and each probe's route on one state,
// and returns, when q has a filter, copies of the target's candidates and
// of the live items for it (an unfiltered search does not pay two
// copies).
func (db *DB) planProbes(q Query, k int, vecs [][]float32, explain bool) (p *planned, candidates, universe *roaring.Bitmap, err error) {
	s, err := db.state()
	if err != nil {
		return nil, nil, nil, err
	}
	tm, tidx, err := s.modality(q.Target)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("target: %w", err)
	}
	ti := s.byName[q.Target]
	n := 0
	if q.Filter != nil {
		candidates, universe = db.items.WithAndLive(ti)
		n = int(candidates.GetCardinality())
	} else {
		n = db.items.WithCount(ti)
	}
	p = &planned{tm: tm, tidx: tidx, exactAll: q.Exact, noAttrs: q.NoAttrs, explain: explain}
	p.planBuf = Plan{Target: q.Target, K: k, Candidates: n}
	p.plan = &p.planBuf
	if len(q.Probes) == 1 {
		p.plan.Probes, p.probes = p.probeBuf[:0], p.pprobeBuf[:0]
	}
	for i, pr := range q.Probes {
		pp, planned, err := db.planProbe(s, i, pr, vecs[i], tm, q.NoCorrections, explain)
		if err != nil {
			return nil, nil, nil, err
		}
		p.plan.Probes = append(p.plan.Probes, pp)
		p.probes = append(p.probes, planned)
	}
	return p, candidates, universe, nil
}

// planProbe routes probe i (vector vec) to target tm on state s:
// projected through an alignment, centred by a calibration, or set up to
// pivot. The prose (Source, Why) is written only when explaining.
func (db *DB) planProbe(s *state, i int, pr Probe, vec []float32, tm Modality, noCorrections, explain bool) (ProbePlan, plannedProbe, error) {
	pm, pidx, err := s.modality(pr.Modality)
	if err != nil {
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe: %w", err)
	}
	w := pr.Weight
	if w == 0 {
		w = 1
	}
	if !(math.Abs(float64(w)) <= MaxProbeWeight) { // also false for NaN
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("%w: probe %d (%s) weight %v must be a number of size up to %g (negative for an example to move away from)", ErrInvalidQuery, i, pr.Modality, pr.Weight, float32(MaxProbeWeight))
	}
	pp := ProbePlan{Modality: pm.Name, Weight: w}
	if explain {
		pp.Source = probeSource(pr)
	}
	var shared *roaring.Bitmap
	route, a, direct := s.route(pm, tm)
	pp.Route = route
	if err := multiRoute(route, pm, tm); err != nil {
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe %d: %w", i, err)
	}
	switch route {
	case RouteAligned:
		pv, err := a.carry(tm, vec)
		if err != nil {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe projected by the %s->%s alignment: %w", pm.Name, tm.Name, err)
		}
		vec = pv
	case RoutePivot:
		shared = db.items.WithBoth(s.byName[pm.Name], s.byName[tm.Name])
		if shared.IsEmpty() {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("%w; no %s->%s alignment is stored, and no item carries both to pivot through", direct, pm.Name, tm.Name)
		}
	}
	if explain {
		pp.Why = routeWhy(route, pm, tm, a, shared)
		if tm.IsMulti() {
			pp.Why += lateWhy(tm, len(vec)/tm.Dim)
		}
	}
	var calib *Calibration
	if c := s.calibs[[2]string{pm.Name, tm.Name}]; c != nil && !noCorrections && route != RoutePivot && !pm.IsMulti() && !tm.IsMulti() {
		calib = c
		pv, err := c.centre(tm, vec)
		if err != nil {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe centred by the %s->%s calibration: %w", pm.Name, tm.Name, err)
		}
		vec = pv
		if explain {
			pp.Why += "; corrected: " + c.describe()
		}
	}
	return pp, plannedProbe{vec: vec, pidx: pidx, pm: pm, ext: pr.ItemID, shared: shared, calib: calib, align: a}, nil
}

// probeSource says what a probe was given as, for EXPLAIN.
func probeSource(pr Probe) string {
	switch {
	case pr.ItemID != "":
		return "item " + pr.ItemID
	case pr.File != "":
		return "file " + strconv.Quote(pr.File)
	case pr.Data != nil:
		return fmt.Sprintf("%d bytes", len(pr.Data))
	case pr.Text != "":
		return "text " + quoteShort(pr.Text)
	}
	return "vector"
}

// routeWhy says why a probe of pm takes its route to tm, for EXPLAIN.
func routeWhy(route Route, pm, tm Modality, a *Alignment, shared *roaring.Bitmap) string {
	switch route {
	case RouteDirect:
		return fmt.Sprintf("%s and %s share space %q", pm.Name, tm.Name, tm.SpaceName())
	case RouteAligned:
		why := fmt.Sprintf("spaces differ (%q, %q); projected by the stored %s->%s alignment", pm.SpaceName(), tm.SpaceName(), pm.Name, tm.Name)
		if pm.SpaceName() == tm.SpaceName() {
			why = fmt.Sprintf("projected by the %s->%s alignment stored with force, although both are in space %q", pm.Name, tm.Name, tm.SpaceName())
		}
		if a.Method != "" {
			why += " (" + a.Method + ")"
		}
		return why
	case RoutePivot:
		both := shared.GetCardinality()
		why := fmt.Sprintf("spaces differ (%q, %q); carried as the softmax-weighted mean of the %s vectors of its %d nearest %s items (T %g), of the %d that carry both", pm.SpaceName(), tm.SpaceName(), tm.Name, align.PivotItems, pm.Name, align.PivotTemperature, both)
		if both >= align.MinPairs*4 {
			why += fmt.Sprintf("; ALIGN %s TO %s can learn a map from them, and its report says whether it beats this pivot", pm.Name, tm.Name)
		}
		return why
	}
	return ""
}

// planFusion sets how several probes' lists merge, and how deep each is.
func planFusion(p *planned, q Query) error {
	if err := multiFusion(p, q); err != nil {
		return err
	}
	if err := planNegatives(p, q); err != nil {
		return err
	}
	if len(q.Probes) > 1 {
		p.plan.Fusion = q.Fuse
		if p.plan.Fusion == "" {
			p.plan.Fusion = fusion.RRF
			if p.negatives {
				p.plan.Fusion = fusion.Early
			}
		}
		if p.plan.Fusion == fusion.Early || p.plan.Fusion == fusion.BestScore {
			for _, pp := range p.plan.Probes {
				if pp.Route == RoutePivot {
					return fmt.Errorf("%w: %s fusion needs every probe in the target's space (directly or aligned); %s is not", ErrInvalidQuery, p.plan.Fusion, pp.Modality)
				}
			}
		}
	}
	if q.Fuse == fusion.BestScore && len(q.Probes) == 1 {
		p.plan.Fusion = fusion.BestScore // one example: its similarity, by a scan
	}
	if p.plan.Fusion == fusion.BestScore {
		for i, pp := range p.plan.Probes {
			switch {
			case pp.Route == RoutePivot:
				return fmt.Errorf("%w: best_score fusion needs every probe in the target's space (directly or aligned); %s is not", ErrInvalidQuery, pp.Modality)
			case p.probes[i].dehubs():
				return fmt.Errorf("%w: best_score compares raw similarities, and the hubness correction stored for %s -> %s would not apply: set NoCorrections, or use another fusion", ErrInvalidQuery, pp.Modality, p.tm.Name)
			case len(p.probes[i].vec) != p.tm.Dim:
				return fmt.Errorf("%w: best_score: probe %s has %d values, target %s %d", ErrInvalidQuery, pp.Modality, len(p.probes[i].vec), p.tm.Name, p.tm.Dim)
			}
		}
	}
	p.plan.Depth = p.plan.K + p.plan.Offset
	if p.plan.Fusion != "" && p.plan.Fusion != fusion.Early || anyPivot(p.plan.Probes) {
		p.plan.Depth = max(4*p.plan.Depth, 40) // deep enough for fusion to matter
	}
	return nil
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

func anyPivot(ps []ProbePlan) bool {
	for _, p := range ps {
		if p.Route == RoutePivot {
			return true
		}
	}
	return false
}

func hnswEf(idx hnsw.Index) int {
	if h, ok := idx.(interface{ Config() hnsw.Config }); ok {
		return h.Config().EfSearch
	}
	return hnsw.DefaultEfSearch
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
	for _, a := range attrs {
		if !tx.HasAttribute(a) {
			// Listing the known ones walks every bucket: only on the error.
			list := "none"
			if known := tx.Attributes(); len(known) > 0 {
				list = strings.Join(known, ", ")
			}
			hint := ""
			if strings.EqualFold(a, "score") || strings.EqualFold(a, "distance") {
				hint = "; to bound the hits' score or distance, use SCORE >= x or DISTANCE <= x (Query.MinScore, MaxDistance), not WHERE"
			}
			return fmt.Errorf("%w: %q (known attributes: %s)%s", ErrUnknownAttribute, a, list, hint)
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
