package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/query"
)

// searchSpec is what Qdrant's query, search and recommend requests have in
// common, once their probes are read.
type searchSpec struct {
	using          string
	probes         []mmdb.Probe
	fuse           fusion.Method
	filter         json.RawMessage
	params         json.RawMessage
	scoreThreshold *float32
	limit, offset  *int
	withPayload    json.RawMessage
	withVector     json.RawMessage
	// needAttrs: the hits carry attributes even when the answer shows no
	// payload (groups are made from them).
	needAttrs bool
	// also, if set, is a filter the hits must match too.
	also query.Expr
}

// searchParams is Qdrant's SearchParams: hnsw_ef and exact apply; the
// quantization, indexed_only and acorn hints are accepted and change no
// answer here.
type searchParams struct {
	HnswEf       *int            `json:"hnsw_ef"`
	Exact        *bool           `json:"exact"`
	Quantization json.RawMessage `json:"quantization"`
	IndexedOnly  json.RawMessage `json:"indexed_only"`
	Acorn        json.RawMessage `json:"acorn"`
}

// target resolves `using`: the named vector, or the collection's only one.
func target(using *string, mods []mmdb.Modality) (mmdb.Modality, error) {
	name := ""
	if using != nil {
		name = *using
	}
	if name == "" {
		n, err := unnamed(mods)
		if err != nil {
			return mmdb.Modality{}, badf("using: %v", message(err))
		}
		name = n
	}
	m, ok := modalityOf(mods, name)
	if !ok {
		return m, badf("using: no vector named %q (have %s)", name, modalityNames(mods))
	}
	return m, nil
}

// probe reads a VectorInput: a vector (a list of lists for a multi-vector
// modality) or a point ID whose vector of m is the probe.
func probe(raw json.RawMessage, m mmdb.Modality, weight float32) (mmdb.Probe, error) {
	raw = bytes.TrimSpace(raw)
	pr := mmdb.Probe{Modality: m.Name, Weight: weight}
	switch {
	case isNull(raw):
		return pr, badf("a query vector or point ID is missing")
	case raw[0] == '[':
		v, err := vectorOf("(query)", m, raw)
		if err != nil {
			return pr, err
		}
		pr.Vector = v
	case raw[0] == '{':
		return pr, badf("query %s: sparse vectors, documents, images and inference objects are not supported by mmdb serve (give a vector or a point ID; mmdb's POST /query encodes TEXT, FILE and DATA probes)", abbreviate(raw))
	default:
		id, err := pointID(raw)
		if err != nil {
			return pr, err
		}
		pr.ItemID = id
	}
	return pr, nil
}

// recommendProbes reads positive and negative examples: positives of
// weight 1, negatives of weight -1, fused as the strategy says.
func recommendProbes(pos, neg []json.RawMessage, strategy *string, m mmdb.Modality) ([]mmdb.Probe, fusion.Method, error) {
	if len(pos) == 0 {
		return nil, "", badf("recommend: give at least one positive example")
	}
	var probes []mmdb.Probe
	for _, list := range []struct {
		raws []json.RawMessage
		w    float32
	}{{pos, 1}, {neg, -1}} {
		for _, raw := range list.raws {
			p, err := probe(raw, m, list.w)
			if err != nil {
				return nil, "", badf("recommend: %v", message(err))
			}
			probes = append(probes, p)
		}
	}
	fuse := fusion.Early
	if strategy != nil {
		switch *strategy {
		case "average_vector":
		case "best_score":
			fuse = fusion.BestScore
		default:
			return nil, "", badf("recommend strategy %q: want average_vector or best_score", *strategy)
		}
	}
	if len(probes) == 1 {
		fuse = "" // one example: a plain search
	}
	return probes, fuse, nil
}

// run searches as spec says and returns Qdrant's scored points.
func run(ctx context.Context, db *mmdb.DB, spec searchSpec) ([]record, error) {
	out, _, err := runHits(ctx, db, spec)
	return out, err
}

// runHits is run, also returning mmdb's hits (with their attributes when
// a group is asked for).
func runHits(ctx context.Context, db *mmdb.DB, spec searchSpec) ([]record, []mmdb.Hit, error) {
	mods := db.Modalities()
	tm, _ := modalityOf(mods, spec.using)
	q := mmdb.Query{Target: spec.using, Probes: spec.probes, Fuse: spec.fuse, K: mmdb.DefaultK}
	if spec.limit != nil {
		q.K = *spec.limit
	}
	if q.K < 1 || q.K > mmdb.MaxK {
		return nil, nil, badf("limit %d: want 1 to %d", q.K, mmdb.MaxK)
	}
	if spec.offset != nil {
		q.Offset = *spec.offset
	}
	var err error
	if q.Filter, err = translateFilter(spec.filter); err != nil {
		return nil, nil, err
	}
	if spec.also != nil {
		q.Filter = and(slices.DeleteFunc([]query.Expr{q.Filter, spec.also}, func(e query.Expr) bool { return e == nil }))
	}
	if err := applyParams(&q, spec.params); err != nil {
		return nil, nil, err
	}
	distance := tm.Metric == mmdb.L2 && spec.fuse != fusion.BestScore
	// Qdrant's max_sim sums over the query's vectors; mmdb's MaxSim
	// averages them: scores (and thresholds) scale by the set's size.
	scale, err := setScale(ctx, db, tm, spec)
	if err != nil {
		return nil, nil, err
	}
	if spec.scoreThreshold != nil {
		t := *spec.scoreThreshold / scale
		if distance {
			q.MaxDistance = &t
		} else {
			q.MinScore = &t
		}
	}
	ps, err := parsePayloadSelector(spec.withPayload, false)
	if err != nil {
		return nil, nil, err
	}
	vs, err := parseVectorSelector(spec.withVector, mods)
	if err != nil {
		return nil, nil, err
	}
	q.NoAttrs = ps.none && !spec.needAttrs
	var hits []mmdb.Hit
	err = withFilter(ctx, db, q.Filter, func(f query.Expr) (err error) {
		q.Filter = f
		hits, err = db.Search(ctx, q)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]record, 0, len(hits))
	for _, h := range hits {
		score := h.Score
		if distance && !h.Fused {
			score = h.Distance // Qdrant's Euclid score is the distance
		}
		score *= scale
		rec := record{ID: outID(h.ID), Version: &zero, Score: &score, Payload: ps.apply(h.Attrs)}
		if vs != nil {
			it, err := db.Get(ctx, h.ID)
			if err != nil && !errors.Is(err, mmdb.ErrNotFound) {
				return nil, nil, err
			}
			rec.Vector = outVectors(it, vs, mods)
		}
		out = append(out, rec)
	}
	return out, hits, nil
}

// applyParams reads SearchParams into q: hnsw_ef and exact.
func applyParams(q *mmdb.Query, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var p searchParams
	if err := strictUnmarshal(raw, &p); err != nil {
		return badf("params: %v", err)
	}
	if p.HnswEf != nil {
		if *p.HnswEf < 1 {
			return badf("params.hnsw_ef %d: want at least 1", *p.HnswEf)
		}
		q.Ef = *p.HnswEf
	}
	if p.Exact != nil {
		q.Exact = *p.Exact
	}
	return nil
}

// setScale is the number of vectors in the query's set when one probe
// searches a MaxSim modality (1 otherwise).
func setScale(ctx context.Context, db *mmdb.DB, tm mmdb.Modality, spec searchSpec) (float32, error) {
	if tm.Multi != mmdb.MaxSim || len(spec.probes) != 1 || spec.fuse != "" {
		return 1, nil
	}
	v := spec.probes[0].Vector
	if id := spec.probes[0].ItemID; id != "" {
		it, err := db.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		v = it.Vectors[tm.Name]
	}
	if n := len(v) / tm.Dim; n > 1 {
		return float32(n), nil
	}
	return 1, nil
}

// searchPoints is the older POST /points/search: a vector, or
// {"name", "vector"} for a named one.
func (s *Server) searchPoints(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Vector json.RawMessage `json:"vector"`
		searchFields
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	var using *string
	vec := bytes.TrimSpace(req.Vector)
	if len(vec) > 0 && vec[0] == '{' {
		var named struct {
			Name   string          `json:"name"`
			Vector json.RawMessage `json:"vector"`
		}
		if err := strictUnmarshal(vec, &named); err != nil {
			return nil, badf("vector: want a list of numbers or {\"name\", \"vector\"}: %v", err)
		}
		using, vec = &named.Name, named.Vector
	}
	tm, err := target(using, db.Modalities())
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(vec)) == 0 || bytes.TrimSpace(vec)[0] != '[' {
		return nil, badf("vector: want a list of numbers")
	}
	p, err := probe(vec, tm, 0)
	if err != nil {
		return nil, err
	}
	spec := req.spec(tm.Name)
	spec.probes = []mmdb.Probe{p}
	return run(r.Context(), db, spec)
}

// recommendPoints is the older POST /points/recommend.
func (s *Server) recommendPoints(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Positive []json.RawMessage `json:"positive"`
		Negative []json.RawMessage `json:"negative"`
		Strategy *string           `json:"strategy"`
		Using    *string           `json:"using"`
		searchFields
		LookupFrom json.RawMessage `json:"lookup_from"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"lookup_from": req.LookupFrom, "shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	tm, err := target(req.Using, db.Modalities())
	if err != nil {
		return nil, err
	}
	spec := req.spec(tm.Name)
	if spec.probes, spec.fuse, err = recommendProbes(req.Positive, req.Negative, req.Strategy, tm); err != nil {
		return nil, err
	}
	return run(r.Context(), db, spec)
}
