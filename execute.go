package mmdb

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
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
	timed := func(name string, start time.Time, rows int) {
		if steps != nil {
			*steps = append(*steps, Step{Name: name, Took: time.Since(start), Rows: rows})
		}
	}
	if p.allow != nil && p.allow.IsEmpty() {
		return []Hit{}, nil
	}
	opts := hnsw.SearchOptions{Ef: plan.Ef, Allow: p.allow, Exact: plan.Strategy == StrategyExact}
	search := func(vec []float32, depth int) []fusion.Ranked {
		res := p.walkChecked(vec, depth, opts, steps)
		out := make([]fusion.Ranked, len(res))
		for i, r := range res {
			s, _ := p.tm.Metric.Score(r.Dist)
			out[i] = fusion.Ranked{ID: r.ID, Score: float64(s)}
		}
		return out
	}

	if plan.Fusion == fusion.BestScore {
		start := time.Now()
		list, err := db.bestScore(ctx, p)
		if err != nil {
			return nil, err
		}
		timed("best_score scan", start, len(list))
		return db.hits(p, list, plan.K, true)
	}
	if plan.Fusion == fusion.Early {
		start := time.Now()
		sum, err := p.earlyVector()
		if err != nil {
			return nil, err
		}
		list := search(sum, plan.Depth)
		timed("early fusion search", start, len(list))
		return db.hits(p, list, plan.K, false)
	}

	var lists [][]fusion.Ranked
	var weights []float64
	if len(p.probes) > 1 {
		lists = make([][]fusion.Ranked, 0, len(p.probes))
		weights = make([]float64, 0, len(p.probes))
	}
	for i, pr := range p.probes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		var list []fusion.Ranked
		if pr.dehubs() {
			list = dehub(search(pr.vec, 3*plan.Depth+20), pr.calib, plan.Depth)
			if steps != nil {
				timed("search "+pr.pm.Name+" -> "+plan.Target+" (hubness-corrected)", start, len(list))
			}
		} else if plan.Probes[i].Route != RoutePivot {
			list = search(pr.vec, plan.Depth)
			if steps != nil {
				timed("search "+pr.pm.Name+" -> "+plan.Target, start, len(list))
			}
		} else {
			vec, err := db.pivotVector(p, pr)
			if err != nil {
				return nil, err
			}
			if vec != nil {
				list = search(vec, plan.Depth)
			}
			if steps != nil {
				timed("pivot "+pr.pm.Name+" -> "+plan.Target+" (soft pivot, one search)", start, len(list))
			}
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
		timed("fuse ("+string(plan.Fusion)+")", start, len(fused))
	}
	return db.hits(p, fused, plan.K, true)
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

// pivotVector carries a pivot probe into the target's space: the
// softmax-weighted mean (align.PivotWeights, temperature
// align.PivotTemperature) of the target vectors of its align.PivotItems
// nearest items among those that carry both modalities, prepared as a
// target query (normalised under Cosine). Align scores the same soft
// pivot beside its learners. Its hits then carry real similarities in the
// target's space, as on every other route. nil when no neighbour has a
// target vector.
func (db *DB) pivotVector(p *planned, pr plannedProbe) ([]float32, error) {
	opts := hnsw.SearchOptions{Ef: hnsw.DefaultEfSearch, Allow: pr.shared}
	if n := int(pr.shared.GetCardinality()); p.exactAll || n <= db.exactCutoff(hnsw.DefaultEfSearch, pr.pidx.Len(), pr.pidx) {
		opts.Exact = true
	}
	near := pr.pidx.Search(pr.vec, align.PivotItems, opts)
	var dists []float32
	var tvs [][]float32
	for _, n := range near {
		tv, ok := p.tidx.Vector(n.ID)
		if !ok {
			continue // this neighbour's target vector is leaving
		}
		d := n.Dist
		if pr.pm.Metric == modality.Dot { // weigh by cosine, as align does
			pv, ok := pr.pidx.Vector(n.ID)
			if !ok {
				continue
			}
			d = align.CosineDistance(pr.vec, pv)
		}
		dists, tvs = append(dists, d), append(tvs, tv)
	}
	if len(tvs) == 0 {
		return nil, nil
	}
	weigh := pr.pm.Metric
	if weigh == modality.Dot {
		weigh = modality.Cosine
	}
	w := align.PivotWeights(align.Similarity(weigh, dists), align.PivotTemperature)
	out := make([]float32, p.tm.Dim)
	for k, tv := range tvs {
		for j, v := range tv {
			out[j] += float32(w[k]) * v
		}
	}
	v, err := p.tm.Prepare(out)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s probe carried through its nearest items: %w", ErrInvalidQuery, pr.pm.Name, err)
	}
	return v, nil
}

// hits maps internal IDs to external ones and scores to Hits. For fused
// lists the score is the fusion score and Distance its negation (Fused
// says so): no metric distance describes a fused rank.
func (db *DB) hits(p *planned, list []fusion.Ranked, k int, fused bool) ([]Hit, error) {
	if p.groupBy != "" {
		return db.groupedHits(p, list, k, fused)
	}
	skip := p.plan.Offset
	out := make([]Hit, 0, min(k, len(list)))
	var iids []uint32 // for the attributes
	if !p.noAttrs {
		iids = make([]uint32, 0, cap(out))
	}
	db.items.EachName(list, func(r fusion.Ranked, name string) bool {
		if name == "" {
			return true // mid-write: the item's vectors are leaving the index
		}
		h, in := p.hit(name, r, fused)
		if !in {
			return false // the list is best first: the rest are out of bounds too
		}
		if skip > 0 {
			skip--
			return true
		}
		out = append(out, h)
		if iids != nil {
			iids = append(iids, r.ID)
		}
		return len(out) < k
	})
	if p.noAttrs || len(out) == 0 {
		return out, nil
	}
	err := db.store.View(func(tx *storage.Tx) error {
		for i, id := range iids {
			r, ok, err := tx.Record(id)
			if err != nil {
				return err
			}
			if ok && r.ID == out[i].ID { // else deleted or replaced since: no attributes
				out[i].Attrs = r.Attrs
			}
		}
		return nil
	})
	return out, err
}

// hit makes the Hit of item name ranked r, and says whether it is within
// the query's score bounds.
func (p *planned) hit(name string, r fusion.Ranked, fused bool) (Hit, bool) {
	h := Hit{ID: name, Score: float32(r.Score), Fused: fused}
	if fused {
		h.Distance = 0 - h.Score
	} else {
		h.Distance = distanceOf(p.tm.Metric, h.Score)
	}
	in := (p.minScore == nil || h.Score >= *p.minScore) && (p.maxDistance == nil || h.Distance <= *p.maxDistance)
	return h, in
}

// groupedHits is hits with at most p.groupSize hits per value of the
// attribute p.groupBy: items without it are left out, and an item with a
// list of values counts in each (kept while any of them has room), as
// Qdrant's groups do.
func (db *DB) groupedHits(p *planned, list []fusion.Ranked, k int, fused bool) ([]Hit, error) {
	names := db.items.Names(list, len(list))
	skip := p.plan.Offset
	count := map[string]int{}
	var out []Hit
	err := db.store.View(func(tx *storage.Tx) error {
		for i, r := range list {
			if names[i] == "" {
				continue
			}
			h, in := p.hit(names[i], r, fused)
			if !in {
				p.exhausted = true // the rest are out of bounds: deeper finds nothing
				return nil
			}
			rec, ok, err := tx.Record(r.ID)
			if err != nil {
				return err
			}
			if !ok || rec.ID != h.ID {
				continue
			}
			keys := groupKeys(rec.Attrs[p.groupBy])
			room := false
			for _, key := range keys {
				room = room || count[key] < p.groupSize
			}
			if !room {
				continue
			}
			for _, key := range keys {
				count[key]++
			}
			if skip > 0 {
				skip--
				continue
			}
			if !p.noAttrs {
				h.Attrs = rec.Attrs
			}
			if out = append(out, h); len(out) == k {
				return nil
			}
		}
		p.exhausted = !fused && len(list) < p.plan.Depth // the search had no more to give
		return nil
	})
	return out, err
}

// groupKeys are the groups an attribute value puts an item in: one per
// distinct element of a list, none for a missing attribute. Numbers group
// by value, as filters compare them (2010 and 2010.0, 0 and -0 are one).
func groupKeys(v any) []string {
	switch x := query.Normalize(v).(type) {
	case nil:
		return nil
	case []string:
		out := make([]string, 0, len(x))
		for _, s := range x {
			if k := "s" + s; !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
		return out
	case string:
		return []string{"s" + x}
	case int64:
		return []string{"n" + strconv.FormatFloat(float64(x)+0, 'g', -1, 64)}
	case float64:
		return []string{"n" + strconv.FormatFloat(x+0, 'g', -1, 64)}
	case bool:
		return []string{"b" + strconv.FormatBool(x)}
	}
	return []string{fmt.Sprintf("%T:%v", v, v)}
}

// distanceOf inverts Metric.Score.
func distanceOf(m modality.Metric, score float32) float32 {
	switch m {
	case modality.L2, modality.Dot:
		return 0 - score // not -score: an exact match is 0, not -0
	}
	return 1 - score
}

// dehub applies the hubness correction to a list fetched three times as
// deep as needed (so that targets the correction lifts are in it): each
// score loses Alpha times the target's hubness, and the best depth are
// kept.
func dehub(list []fusion.Ranked, c *Calibration, depth int) []fusion.Ranked {
	for i := range list {
		list[i].Score -= float64(c.penalty(list[i].ID))
	}
	slices.SortStableFunc(list, func(a, b fusion.Ranked) int { return cmp.Compare(b.Score, a.Score) })
	return list[:min(depth, len(list))]
}

// dehubs says whether the probe's list is hubness-corrected: its
// calibration (set only off the pivot route) has a correction.
func (pr plannedProbe) dehubs() bool { return pr.calib != nil && pr.calib.Alpha > 0 }

// rankOf is the rank (1 is best) that probe i's exact search gives the
// target at row own of tvecs (the target vectors laid end to end, ids
// their items), ties counted against it: it orders targets as search and
// dehub do (by distance, or by score less the hubness penalty when the
// probe is corrected), counting the targets ahead instead of sorting.
// Evaluate ranks every target through it.
func (p *planned) rankOf(i int, tvecs []float32, ids []uint32, own int) int {
	key := p.rankKey(i, tvecs, ids)
	ownKey := key(own)
	rank := 1
	for j := range ids {
		if j != own && key(j) <= ownKey {
			rank++
		}
	}
	return rank
}

// rankOfAny is rankOf when several targets answer the query (relevant):
// the rank of the first relevant one (ties against it; notRanked when
// none is relevant) and, for k = 1..maxK, how many of the top k are
// relevant (ties in row order).
func (p *planned) rankOfAny(i int, tvecs []float32, ids []uint32, relevant func(j int) bool, maxK int) (int, []int) {
	key := p.rankKey(i, tvecs, ids)
	keys := make([]float64, len(ids))
	best := math.Inf(1)
	for j := range ids {
		keys[j] = key(j)
		if relevant(j) && keys[j] < best {
			best = keys[j]
		}
	}
	first := notRanked
	if !math.IsInf(best, 1) {
		first = 1
		for j, k := range keys {
			if !relevant(j) && k <= best {
				first++
			}
		}
	}
	top := make([]int, 0, maxK+1) // rows of the maxK smallest keys, in order
	for j, k := range keys {
		if len(top) == maxK && k >= keys[top[maxK-1]] {
			continue
		}
		at := len(top)
		for at > 0 && keys[top[at-1]] > k {
			at--
		}
		top = slices.Insert(top, at, j)
		if len(top) > maxK {
			top = top[:maxK]
		}
	}
	cum := make([]int, maxK)
	c := 0
	for r := range maxK {
		if r < len(top) && relevant(top[r]) {
			c++
		}
		cum[r] = c
	}
	return first, cum
}

// rankKey orders probe i's targets as the executor does: lower is better.
func (p *planned) rankKey(i int, tvecs []float32, ids []uint32) func(j int) float64 {
	pr, m, dim := p.probes[i], p.tm.Metric, p.tm.Dim
	return func(j int) float64 {
		d := m.Distance(pr.vec, tvecs[j*dim:(j+1)*dim])
		if !pr.dehubs() {
			return float64(d)
		}
		s, _ := m.Score(d)
		return float64(pr.calib.penalty(ids[j])) - float64(s)
	}
}

// bestScore ranks every candidate by its best example, as Qdrant's
// recommend best_score: sigmoid(best similarity to a positive probe) when
// it beats the best to a negative one, else -sigmoid(that best negative
// similarity), so every candidate nearer a positive ranks above every one
// nearer a negative, whatever the metric's scale (sigmoid(x) = (x/(1+|x|)
// + 1)/2, bounded, monotone). Weights count by their sign only.
func (db *DB) bestScore(ctx context.Context, p *planned) ([]fusion.Ranked, error) {
	cands := p.allow
	if cands == nil {
		cands = db.items.With(db.st.Load().byName[p.tm.Name])
	}
	depth := max(p.plan.Depth, 1)
	var out []fusion.Ranked
	keep := func() { // the best depth so far, best first
		slices.SortFunc(out, func(a, b fusion.Ranked) int {
			if c := cmp.Compare(b.Score, a.Score); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		out = out[:min(len(out), depth)]
	}
	it := cands.Iterator()
	for n := 0; it.HasNext(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id := it.Next()
		v, ok := p.tidx.Vector(id)
		if !ok {
			continue
		}
		pos, neg := math.Inf(-1), math.Inf(-1)
		for i, pr := range p.probes {
			s, _ := p.tm.Metric.Score(p.tm.Metric.Distance(pr.vec, v))
			if p.plan.Probes[i].Weight < 0 {
				neg = max(neg, float64(s))
			} else {
				pos = max(pos, float64(s))
			}
		}
		score := sigmoid(pos)
		if neg > pos {
			score = -sigmoid(neg)
		}
		if out = append(out, fusion.Ranked{ID: id, Score: score}); len(out) >= 2*depth+1024 {
			keep()
		}
	}
	keep()
	return out, nil
}

// sigmoid maps a score into (0, 1), keeping its order (Qdrant's fast
// sigmoid).
func sigmoid(x float64) float64 {
	if math.IsInf(x, -1) {
		return 0
	}
	return (x/(1+math.Abs(x)) + 1) / 2
}
