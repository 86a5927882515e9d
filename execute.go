package mmdb

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Search runs q and returns up to K hits, best first.
//
// Each probe reaches the target by a route: aligned when an Alignment
// from the probe's modality to the target is stored (the probe is
// projected into the target's space); direct when the probe's modality
// shares the target's Space, dimension and metric; otherwise pivot: the
// probe is carried into the target's space as the softmax-weighted mean of
// the target vectors of its nearest items that carry both modalities. With no route, Search fails with ErrNoRoute naming what is
// missing. A filter becomes a bitmap first; small candidate sets are
// scanned exactly, large ones searched in the graph with the bitmap as an
// allow-list. Several probes are fused (Query.Fuse). Explain shows the
// plan.
func (db *DB) Search(ctx context.Context, q Query) ([]Hit, error) {
	if needsEncoding(q.Probes) {
		ctx = withEncodeCache(ctx)
	}
	if len(q.Targets) > 0 {
		return db.searchTargets(ctx, q)
	}
	p, err := db.plan(ctx, q, false)
	if err != nil {
		return nil, fmt.Errorf("mmdb: search: %w", err)
	}
	hits, err := db.execute(ctx, p, nil)
	if err == nil {
		err = db.stillEncoded(p)
	}
	if err != nil {
		return nil, fmt.Errorf("mmdb: search: %w", err)
	}
	return hits, nil
}

// searchTargets ranks items by several target modalities: one search per
// target, fused by RRF over item IDs.
func (db *DB) searchTargets(ctx context.Context, q Query) ([]Hit, error) {
	if _, err := validateQuery(ctx, q); err != nil {
		return nil, fmt.Errorf("mmdb: search: %w", err)
	}
	if q.MinScore != nil || q.MaxDistance != nil {
		return nil, fmt.Errorf("mmdb: search: %w: SCORE and DISTANCE bound similarities, and a search over several targets ranks by a fused score that is none", ErrInvalidQuery)
	}
	if q.GroupBy != "" {
		return nil, fmt.Errorf("mmdb: search: %w: GROUP BY over several targets: each target's list would be grouped apart, and their fusion could hold more than PER hits of a value", ErrInvalidQuery)
	}
	if !q.KeepProbeItems { // a probe item in any target's modality would find itself
		for _, pr := range q.Probes {
			if pr.ItemID != "" && slices.Contains(q.Targets, pr.Modality) {
				q.Exclude = append(slices.Clip(q.Exclude), pr.ItemID)
			}
		}
	}
	if q.Offset > 0 {
		return nil, fmt.Errorf("mmdb: search: %w: OFFSET into a search over several targets: its RRF-fused ranking depends on each list's depth, so pages would repeat or miss items; ask for more hits (LIMIT)", ErrInvalidQuery)
	}
	k := q.K
	if k <= 0 {
		k = DefaultK
	}
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
	return fuseHits(lists, k), nil
}

// Explain returns the plan Search would run for q, without running it.
func (db *DB) Explain(ctx context.Context, q Query) (*Plan, error) {
	p, err := db.plan(withEncodeCache(ctx), q, true)
	if err != nil {
		return nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	return p.detach(), nil
}

// ExplainAnalyze runs q and returns its plan with the time of each step,
// and the hits.
func (db *DB) ExplainAnalyze(ctx context.Context, q Query) (*Plan, []Hit, error) {
	ctx = withEncodeCache(ctx)
	start := time.Now()
	p, err := db.plan(ctx, q, true)
	if err != nil {
		return nil, nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	planTook := time.Since(start)
	for i, pr := range p.plan.Probes {
		if pr.Encoder != "" {
			name := "encode " + pr.Modality
			if len(p.plan.Probes) > 1 {
				name += fmt.Sprintf(" (probe %d)", i+1)
			}
			p.plan.Steps = append(p.plan.Steps, Step{Name: name, Took: pr.EncodeTook, Rows: 1})
			planTook -= pr.EncodeTook
		}
	}
	p.plan.Steps = append(p.plan.Steps, Step{Name: "plan (filter, routes)", Took: planTook, Rows: p.plan.FilterMatches})
	hits, err := db.execute(ctx, p, &p.plan.Steps)
	if err == nil {
		err = db.stillEncoded(p)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mmdb: explain: %w", err)
	}
	p.plan.Recall = 1
	if p.plan.Strategy != StrategyExact || anyPivot(p.plan.Probes) {
		// Run the same plan with exact scans everywhere and compare.
		exact := *p
		ep := *p.plan
		ep.Strategy, ep.Steps = StrategyExact, nil
		exact.plan, exact.exactAll, exact.noAttrs = &ep, true, true
		want, err := db.execute(ctx, &exact, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("mmdb: explain: exact rerun: %w", err)
		}
		p.plan.Recall = overlap(hits, want)
	}
	return p.detach(), hits, nil
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

// execute runs a plan. steps, if non-nil, receives timings.
func (db *DB) execute(ctx context.Context, p *planned, steps *[]Step) ([]Hit, error) {
	since := db.readBack.Load()
	hits, err := db.executeDeeper(ctx, p, steps)
	if err == nil {
		if db.readBackCheck(since, &err); err != nil {
			hits = nil
		}
	}
	return hits, err
}

// executeDeeper runs the plan, deeper while GROUP BY's groups fill up.
func (db *DB) executeDeeper(ctx context.Context, p *planned, steps *[]Step) ([]Hit, error) {
	for {
		p.exhausted = false
		hits, err := db.executeOnce(ctx, p, steps)
		if err != nil || p.groupBy == "" || len(hits) >= p.plan.K || p.exhausted || p.plan.Depth >= p.plan.FilterMatches {
			return hits, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Full groups took the list: search deeper, down to every
		// candidate (scanned once the depth nears their number).
		p.plan.Depth = min(4*p.plan.Depth, p.plan.FilterMatches)
		if 4*p.plan.Depth >= p.plan.FilterMatches || p.plan.Rescans > 0 {
			// Deep enough to reach most candidates, or a walk was
			// already found misled by the filter: scan.
			p.plan.Strategy = StrategyExact
		}
	}
}

// executeOnce runs the plan at its depth.
func (db *DB) executeOnce(ctx context.Context, p *planned, steps *[]Step) ([]Hit, error) {
	plan := p.plan
	if p.allow != nil && p.allow.IsEmpty() {
		return []Hit{}, nil
	}
	opts := hnsw.SearchOptions{Ef: plan.Ef, Allow: p.allow, Exact: plan.Strategy == StrategyExact}
	if plan.Fusion == fusion.BestScore {
		start := time.Now()
		list, err := db.bestScore(ctx, p)
		if err != nil {
			return nil, err
		}
		addStep(steps, "best_score scan", start, len(list))
		return db.hits(p, list, plan.K, true)
	}
	if plan.Fusion == fusion.Early {
		start := time.Now()
		sum, err := p.earlyVector()
		if err != nil {
			return nil, err
		}
		list := p.ranked(sum, plan.Depth, opts, steps)
		addStep(steps, "early fusion search", start, len(list))
		return db.hits(p, list, plan.K, false)
	}

	var lists [][]fusion.Ranked
	var weights []float64
	if len(p.probes) > 1 {
		lists = make([][]fusion.Ranked, 0, len(p.probes))
		weights = make([]float64, 0, len(p.probes))
	}
	for i := range p.probes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		list, err := db.probeList(p, i, opts, steps)
		if err != nil {
			return nil, err
		}
		if len(p.probes) == 1 {
			return db.hits(p, list, plan.K, false)
		}
		lists = append(lists, list)
		weights = append(weights, float64(plan.Probes[i].Weight))
	}
	start := time.Now()
	fused, err := fusion.Fuse(plan.Fusion, lists, weights)
	if err != nil {
		return nil, err
	}
	if steps != nil {
		addStep(steps, "fuse ("+string(plan.Fusion)+")", start, len(fused))
	}
	return db.hits(p, fused, plan.K, true)
}

// probeList searches for probe i of p by its route: directly or aligned
// (re-ranked by hubness when its calibration says so), or through the
// pivot.
func (db *DB) probeList(p *planned, i int, opts hnsw.SearchOptions, steps *[]Step) ([]fusion.Ranked, error) {
	plan, pr := p.plan, p.probes[i]
	start := time.Now()
	var list []fusion.Ranked
	switch {
	case pr.dehubs():
		list = dehub(p.ranked(pr.vec, 3*plan.Depth+20, opts, steps), pr.calib, plan.Depth)
		if steps != nil {
			addStep(steps, "search "+pr.pm.Name+" -> "+plan.Target+" (hubness-corrected)", start, len(list))
		}
	case plan.Probes[i].Route != RoutePivot:
		list = p.ranked(pr.vec, plan.Depth, opts, steps)
		if steps != nil {
			addStep(steps, "search "+pr.pm.Name+" -> "+plan.Target, start, len(list))
		}
	default:
		vec, err := db.pivotVector(p, pr)
		if err != nil {
			return nil, err
		}
		if vec != nil {
			list = p.ranked(vec, plan.Depth, opts, steps)
		}
		if steps != nil {
			addStep(steps, "pivot "+pr.pm.Name+" -> "+plan.Target+" (soft pivot, one search)", start, len(list))
		}
	}
	return list, nil
}

// ranked runs p's search for vec (walkChecked) and scores its results.
func (p *planned) ranked(vec []float32, depth int, opts hnsw.SearchOptions, steps *[]Step) []fusion.Ranked {
	res := p.walkChecked(vec, depth, opts, steps)
	out := make([]fusion.Ranked, len(res))
	for i, r := range res {
		s, _ := p.tm.Metric.Score(r.Dist)
		out[i] = fusion.Ranked{ID: r.ID, Score: float64(s)}
	}
	return out
}

// addStep appends a step of EXPLAIN ANALYZE to steps, if non-nil.
func addStep(steps *[]Step, name string, start time.Time, rows int) {
	if steps != nil {
		*steps = append(*steps, Step{Name: name, Took: time.Since(start), Rows: rows})
	}
}

// earlyVector is early fusion's one query: the probes' weighted sum,
// normalised under Cosine; under L2 and Dot their weighted mean (a probe
// given twice must search from where it is, not twice as far out).
func (p *planned) earlyVector() ([]float32, error) {
	sum := make([]float32, p.tm.Dim)
	var total float32
	if p.negatives {
		// Qdrant's average vector: mean(pos) + (mean(pos) - mean(neg)).
		pos, neg := make([]float64, p.tm.Dim), make([]float64, p.tm.Dim)
		var wp, wn float64
		for i, pr := range p.probes {
			w := float64(p.plan.Probes[i].Weight)
			acc := pos
			if w < 0 {
				acc, w = neg, -w
				wn += w
			} else {
				wp += w
			}
			for j, x := range pr.vec {
				acc[j] += w * float64(x)
			}
		}
		for j := range sum {
			sum[j] = float32(2*pos[j]/wp - neg[j]/wn)
		}
		total = 1
	} else {
		for i, pr := range p.probes {
			w := p.plan.Probes[i].Weight
			total += w
			for j, x := range pr.vec {
				sum[j] += w * x
			}
		}
	}
	if p.tm.Metric == modality.Cosine {
		if !kernel.Normalize(sum) {
			return nil, fmt.Errorf("%w: the weighted probe vectors sum to zero", ErrInvalidQuery)
		}
	} else {
		for j := range sum {
			sum[j] /= total
		}
	}
	if err := modality.CheckQuery(sum); err != nil {
		return nil, fmt.Errorf("%w: the weighted sum of the probe vectors: %w", ErrInvalidQuery, err)
	}
	return sum, nil
}
