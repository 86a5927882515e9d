package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/jsonvec"
)

// queryPoints is Qdrant's universal query (POST /points/query): nearest to
// a vector or a point, or recommend from examples.
func (s *Server) queryPoints(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req queryRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return query1(r.Context(), db, &req)
}

// queryBatch is POST /points/query/batch: several queries, answered in
// order; the first that fails fails the request, naming it.
func (s *Server) queryBatch(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Searches []queryRequest `json:"searches"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	// The answers are held until the reply: their hits together are
	// bounded as one search's are.
	hits := 0
	for _, q := range req.Searches {
		n := mmdb.DefaultK
		if q.Limit != nil {
			n = max(*q.Limit, 0)
		}
		if q.Offset != nil {
			n += max(*q.Offset, 0)
		}
		if hits += n; n > mmdb.MaxK || hits > mmdb.MaxK {
			return nil, badf("searches: %d searches asking for more than %d hits (limit + offset) in all: split the batch", len(req.Searches), mmdb.MaxK)
		}
	}
	out := make([]any, len(req.Searches))
	for i := range req.Searches {
		res, err := query1(r.Context(), db, &req.Searches[i])
		if errors.Is(err, errBadRequest) {
			return nil, badf("searches[%d]: %v", i, message(err))
		}
		if err != nil {
			return nil, fmt.Errorf("searches[%d]: %w", i, err)
		}
		out[i] = res
	}
	return out, nil
}

// searchFields are the members Qdrant's query, search and recommend
// requests share.
type searchFields struct {
	Filter         json.RawMessage `json:"filter"`
	Params         json.RawMessage `json:"params"`
	ScoreThreshold *float32        `json:"score_threshold"`
	Limit          *int            `json:"limit"`
	Offset         *int            `json:"offset"`
	WithVector     json.RawMessage `json:"with_vector"`
	WithPayload    json.RawMessage `json:"with_payload"`
	ShardKey       json.RawMessage `json:"shard_key"`
}

// spec starts a searchSpec from the shared members.
func (f *searchFields) spec(using string) searchSpec {
	return searchSpec{using: using, filter: f.Filter, params: f.Params, scoreThreshold: f.ScoreThreshold,
		limit: f.Limit, offset: f.Offset, withPayload: f.WithPayload, withVector: f.WithVector}
}

// queryRequest is Qdrant's QueryRequest.
type queryRequest struct {
	Query json.RawMessage `json:"query"`
	Using *string         `json:"using"`
	searchFields
	Prefetch   json.RawMessage `json:"prefetch"`
	LookupFrom json.RawMessage `json:"lookup_from"`
}

// query1 answers one QueryRequest.
func query1(ctx context.Context, db *mmdb.DB, req *queryRequest) (any, error) {
	spec, err := buildSpec(db, req)
	if err != nil {
		return nil, err
	}
	pts, err := run(ctx, db, spec)
	if err != nil {
		return nil, err
	}
	return map[string]any{"points": pts}, nil
}

// buildSpec reads a QueryRequest's query (a vector, a point ID, nearest,
// recommend) and settings.
func buildSpec(db *mmdb.DB, req *queryRequest) (searchSpec, error) {
	var spec searchSpec
	if err := unsupported(map[string]json.RawMessage{"prefetch": req.Prefetch, "lookup_from": req.LookupFrom, "shard_key": req.ShardKey}); err != nil {
		return spec, err
	}
	tm, err := target(req.Using, db.Modalities())
	if err != nil {
		return spec, err
	}
	spec = req.spec(tm.Name)
	q := bytes.TrimSpace(req.Query)
	if isNull(q) {
		return spec, badf("query is required (mmdb serve does not list points through query: use scroll)")
	}
	if q[0] != '{' {
		p, err := probe(q, tm, 0)
		if err != nil {
			return spec, err
		}
		spec.probes = []mmdb.Probe{p}
	} else {
		var kinds map[string]json.RawMessage
		if err := jsonvec.Fields(q, func(k string, v json.RawMessage) error {
			if kinds == nil {
				kinds = map[string]json.RawMessage{}
			}
			kinds[k] = v
			return nil
		}); err != nil {
			return spec, badf("query: %v", err)
		}
		switch {
		case kinds["nearest"] != nil:
			if !isNull(kinds["mmr"]) {
				return spec, badf("query: mmr is not supported by mmdb serve")
			}
			if len(kinds) > 2 || (len(kinds) == 2 && kinds["mmr"] == nil) {
				return spec, badf("query: nearest takes only a vector")
			}
			p, err := probe(kinds["nearest"], tm, 0)
			if err != nil {
				return spec, err
			}
			spec.probes = []mmdb.Probe{p}
		case kinds["recommend"] != nil && len(kinds) == 1:
			var rec struct {
				Positive []json.RawMessage `json:"positive"`
				Negative []json.RawMessage `json:"negative"`
				Strategy *string           `json:"strategy"`
			}
			if err := strictUnmarshal(kinds["recommend"], &rec); err != nil {
				return spec, badf("query recommend: %v", err)
			}
			if spec.probes, spec.fuse, err = recommendProbes(rec.Positive, rec.Negative, rec.Strategy, tm); err != nil {
				return spec, err
			}
		default:
			for k := range kinds {
				return spec, badf("query %q is not supported by mmdb serve (nearest and recommend are; mmdb's own POST /query takes SEARCH statements)", k)
			}
			return spec, badf("query: an empty object")
		}
	}
	return spec, nil
}
