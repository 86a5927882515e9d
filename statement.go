package mmdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/query"
)

// Result is what a statement run by DB.Query returns.
type Result struct {
	// Kind is the statement: "SEARCH", "GET", "DELETE", "COUNT" or "ALIGN".
	Kind string
	// Hits of a SEARCH.
	Hits []Hit
	// Items of a GET, in the order asked; Item is the first.
	Items []Item
	Item  *Item
	// Count of a COUNT, or the number of items a DELETE removed.
	Count int
	// Plans of an EXPLAIN (one per target), with step timings for
	// EXPLAIN ANALYZE.
	Plans []*Plan
	// Report of an ALIGN: each method cross-fitted beside the pivot and chance, and the choice.
	Report *align.Report
	// Calibration of a CALIBRATE: what it measured, and what it kept.
	Calibration *Calibration
}

// Query runs one statement of the mmdb language (see query.Statement):
//
//	SEARCH image NEAR text OF 'dog-1' WHERE year >= 2010 LIMIT 10
//	SEARCH image NEAR text OF 'a' WEIGHT 0.7, audio OF 'b' WEIGHT 0.3 FUSE rrf
//	SEARCH audio, image NEAR text [0.1, 0.2, ...] LIMIT 5
//	EXPLAIN ANALYZE SEARCH audio NEAR image OF 'dog-1'
//	GET 'dog-1'
//	DELETE 'dog-1', 'dog-2'
//	COUNT WHERE tags = 'dog'
//	ALIGN image TO audio USING cca
//
// Parse errors wrap query.ErrSyntax and give the column. Several targets
// are searched one by one and their rankings fused by RRF: an item ranks
// high when any of its modalities matches.
func (db *DB) Query(ctx context.Context, statement string) (*Result, error) {
	ctx = withEncodeCache(ctx) // a probe is encoded once, however many targets
	st, err := query.ParseStatement(statement)
	if err != nil {
		return nil, fmt.Errorf("mmdb: %w: %w", ErrInvalidQuery, err)
	}
	res := &Result{Kind: st.Kind}
	switch st.Kind {
	case query.StmtGet:
		if st.Explain {
			return nil, fmt.Errorf("mmdb: %w: EXPLAIN applies to SEARCH and COUNT", ErrInvalidQuery)
		}
		for _, id := range st.IDs {
			it, err := db.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			res.Items = append(res.Items, it)
		}
		res.Item, res.Count = &res.Items[0], len(res.Items)
	case query.StmtAlign, query.StmtCalibrate, query.StmtDrop:
		if st.Explain {
			return nil, fmt.Errorf("mmdb: %w: EXPLAIN applies to SEARCH and COUNT", ErrInvalidQuery)
		}
		return db.queryModel(ctx, st, res)
	case query.StmtDelete:
		if st.Explain {
			return nil, fmt.Errorf("mmdb: %w: EXPLAIN applies to SEARCH and COUNT", ErrInvalidQuery)
		}
		if st.Filter != nil {
			n, err := db.DeleteWhere(ctx, st.Filter)
			if err != nil {
				return nil, err
			}
			res.Count = n
			break
		}
		if err := db.Delete(ctx, st.IDs...); err != nil {
			return nil, err
		}
		distinct := map[string]bool{}
		for _, id := range st.IDs {
			distinct[id] = true
		}
		res.Count = len(distinct)
	case query.StmtCount:
		n, err := db.countWhere(st.Filter)
		if err != nil {
			return nil, err
		}
		res.Count = n
		if st.Explain {
			f := "none"
			if st.Filter != nil {
				f = st.Filter.String()
			}
			res.Plans = []*Plan{{Target: "(items)", Filter: f, FilterMatches: n, Candidates: db.Count(), Strategy: StrategyPostings, Why: "COUNT reads only the attribute postings"}}
		}
	case query.StmtSearch:
		return db.querySearch(ctx, st)
	}
	return res, nil
}

// queryModel runs the statements that fit or drop what searches route
// through: ALIGN, CALIBRATE, DROP.
func (db *DB) queryModel(ctx context.Context, st *query.Statement, res *Result) (*Result, error) {
	switch st.Kind {
	case query.StmtAlign:
		m, err := align.ParseMethod(strings.ToLower(st.Method))
		if err != nil {
			return nil, fmt.Errorf("mmdb: %w: %w", ErrInvalidQuery, err)
		}
		rep, err := db.Align(ctx, st.From, st.To, &AlignOptions{Method: m, Force: st.Force, StoreAny: st.Force, Label: st.Label})
		if errors.Is(err, ErrNoGain) && rep != nil {
			res.Report = rep // what each method scored is why nothing was stored
			return res, err
		}
		if err != nil {
			return nil, err
		}
		res.Report = rep
	case query.StmtCalibrate:
		o := &CalibrateOptions{Auto: st.Auto, Centre: st.Centre, Alpha: st.Alpha, Beta: st.Beta, K: st.K, StoreAny: st.Force}
		if !o.Auto && !o.Centre && o.Alpha == 0 && o.Beta == 0 {
			return nil, fmt.Errorf("mmdb: %w: CALIBRATE %s TO %s: say what to measure (AUTO, CENTRE, ALPHA x or BETA x); DROP CALIBRATION removes one", ErrInvalidQuery, st.From, st.To)
		}
		c, err := db.Calibrate(ctx, st.From, st.To, o)
		res.Calibration = c
		if errors.Is(err, ErrNoGain) && c != nil {
			return res, err
		}
		if err != nil {
			return nil, err
		}
	case query.StmtDrop:
		if st.Drop == "MODALITY" {
			return nil, fmt.Errorf("mmdb: %w: DROP MODALITY rewrites the file's schema, which an open database serves: close it and run mmdb drop DB %s (mmdb.DropModality)", ErrInvalidQuery, st.From)
		}
		var dropped bool
		var err error
		if st.Drop == "ALIGNMENT" {
			dropped, err = db.DropAlignment(st.From, st.To)
		} else {
			dropped, err = db.dropCalibration(st.From, st.To)
		}
		if err != nil {
			return nil, err
		}
		if dropped {
			res.Count = 1
		}
	}
	return res, nil
}

// countWhere counts the items a filter keeps (all items without one).
// CountWhere counts the live items whose attributes match f (every item
// for nil) from the attribute postings, as COUNT WHERE does; a filter
// comparing an attribute no item has is ErrUnknownAttribute.
func (db *DB) CountWhere(ctx context.Context, f query.Expr) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return db.countWhere(f)
}

func (db *DB) countWhere(f query.Expr) (int, error) {
	if _, err := db.state(); err != nil {
		return 0, err
	}
	universe := db.items.LiveClone()
	if f == nil {
		return int(universe.GetCardinality()), nil
	}
	bm, err := db.evalFilter(f, universe)
	if err != nil {
		return 0, fmt.Errorf("mmdb: count: %w", err)
	}
	bm.And(universe)
	return int(bm.GetCardinality()), nil
}

func (db *DB) querySearch(ctx context.Context, st *query.Statement) (*Result, error) {
	res := &Result{Kind: st.Kind}
	q := Query{K: st.Limit, Ef: st.Ef, Exact: st.Exact, Fuse: st.Fuse, Offset: st.Offset, Exclude: st.Exclude,
		MinScore: bound(st.MinScore), MaxDistance: bound(st.MaxDistance), GroupBy: st.GroupBy, GroupSize: st.GroupSize, KeepProbeItems: st.KeepProbes}
	if st.Filter != nil {
		q.Filter = st.Filter
	}
	for _, p := range st.Probes {
		if err := db.checkSetDim(p); err != nil {
			return nil, err
		}
		q.Probes = append(q.Probes, Probe{Modality: p.Modality, ItemID: p.ItemID, Vector: p.Vector, File: p.File, Text: p.Text, Weight: p.Weight})
	}
	if !st.Explain {
		q.Target = st.Targets[0]
		if len(st.Targets) > 1 {
			q.Targets = st.Targets
		}
		hits, err := db.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		res.Hits = hits
		return res, nil
	}
	var lists [][]Hit
	for _, target := range st.Targets {
		q.Target = target
		if st.Analyze {
			plan, hits, err := db.ExplainAnalyze(ctx, q)
			if err != nil {
				return nil, err
			}
			res.Plans = append(res.Plans, plan)
			lists = append(lists, hits)
			continue
		}
		plan, err := db.Explain(ctx, q)
		if err != nil {
			return nil, err
		}
		res.Plans = append(res.Plans, plan)
	}
	switch {
	case len(lists) == 1:
		res.Hits = lists[0]
	case len(lists) > 1:
		k := q.K
		if k <= 0 {
			k = DefaultK
		}
		res.Hits = fuseHits(lists, k)
	}
	return res, nil
}

// fuseHits merges several targets' hit lists by RRF over external IDs.
func fuseHits(lists [][]Hit, k int) []Hit {
	ids := map[string]uint32{}
	attrs := map[string]map[string]any{}
	var names []string
	ranked := make([][]fusion.Ranked, len(lists))
	for i, l := range lists {
		for _, h := range l {
			id, ok := ids[h.ID]
			if !ok {
				id = uint32(len(names))
				ids[h.ID] = id
				names = append(names, h.ID)
				attrs[h.ID] = h.Attrs
			}
			ranked[i] = append(ranked[i], fusion.Ranked{ID: id, Score: float64(h.Score)})
		}
	}
	fused, _ := fusion.Fuse(fusion.RRF, ranked, nil) // RRF merges any lists
	out := make([]Hit, 0, min(k, len(fused)))
	for _, r := range fused[:min(k, len(fused))] {
		out = append(out, Hit{ID: names[r.ID], Score: float32(r.Score), Distance: float32(-r.Score), Fused: true, Attrs: attrs[names[r.ID]]})
	}
	return out
}

// String renders a result for a terminal: plans, then hits or the count.
func (r *Result) String() string {
	var b strings.Builder
	for _, p := range r.Plans {
		b.WriteString(p.String())
	}
	switch {
	case r.Report != nil:
		b.WriteString(r.Report.String())
	case r.Calibration != nil:
		fmt.Fprintf(&b, "calibration %s->%s: %s\n", r.Calibration.Probe, r.Calibration.Target, r.Calibration.Why)
	case r.Kind == query.StmtDrop:
		fmt.Fprintf(&b, "dropped %d\n", r.Count)
	case r.Item != nil:
		items := r.Items
		if len(items) == 0 {
			items = []Item{*r.Item}
		}
		for _, it := range items {
			fmt.Fprintf(&b, "%s attrs=%v", it.ID, it.Attrs)
			for m, v := range it.Vectors {
				fmt.Fprintf(&b, " %s=[%d floats]", m, len(v))
			}
			b.WriteString("\n")
		}
	case r.Kind == query.StmtSearch:
		for i, h := range r.Hits {
			fmt.Fprintf(&b, "%3d  %-24s %.4f\n", i+1, h.ID, h.Score)
		}
	case r.Kind == query.StmtCount && len(r.Plans) == 0, r.Kind == query.StmtDelete:
		fmt.Fprintf(&b, "%d\n", r.Count)
	}
	return b.String()
}

// bound is a statement's SCORE or DISTANCE bound as a Query takes it.
func bound(x *float64) *float32 {
	if x == nil {
		return nil
	}
	f := float32(*x)
	return &f
}
