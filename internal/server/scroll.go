package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

// scroll pages through the points in insertion order (Qdrant orders by ID;
// mmdb by insertion), matching the filter: next_page_offset is the ID of
// the first point of the next page, the offset to give to go on.
func (s *Server) scroll(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Offset      json.RawMessage `json:"offset"`
		Limit       *int            `json:"limit"`
		Filter      json.RawMessage `json:"filter"`
		WithPayload json.RawMessage `json:"with_payload"`
		WithVector  json.RawMessage `json:"with_vector"`
		OrderBy     json.RawMessage `json:"order_by"`
		ShardKey    json.RawMessage `json:"shard_key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"order_by": req.OrderBy, "shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	limit := 10
	if req.Limit != nil {
		limit = *req.Limit
	}
	if limit < 1 || limit > mmdb.MaxK {
		return nil, badf("limit %d: want 1 to %d", limit, mmdb.MaxK)
	}
	f, err := translateFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	var cur mmdb.Cursor
	if !isNull(req.Offset) {
		id, err := pointID(req.Offset)
		if err != nil {
			return nil, badf("offset: %v", message(err))
		}
		if cur, err = db.CursorAt(id); err != nil {
			return nil, fmt.Errorf("offset point %s: %w", id, err)
		}
	}
	mods := db.Modalities()
	ps, err := parsePayloadSelector(req.WithPayload, true)
	if err != nil {
		return nil, err
	}
	vs, err := parseVectorSelector(req.WithVector, mods)
	if err != nil {
		return nil, err
	}
	out := []record{}
	var next any
	for {
		page, after, err := db.Scroll(ctx, cur, min(mmdb.MaxK, max(limit+1, 256)))
		if err != nil {
			return nil, err
		}
		for _, it := range page {
			if err := ctx.Err(); err != nil {
				return nil, err // a filter slow to match must not outlive the request
			}
			if f != nil && !query.Match(f, it.Attrs) {
				continue
			}
			if len(out) == limit {
				next = outID(it.ID)
				break
			}
			out = append(out, toRecord(it, ps, vs, mods))
		}
		if next != nil || after.String() == "" {
			break
		}
		cur = after
	}
	return map[string]any{"points": out, "next_page_offset": next}, nil
}

// count is POST /points/count: exact, from the attribute postings.
func (s *Server) count(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Filter   json.RawMessage `json:"filter"`
		Exact    *bool           `json:"exact"`
		ShardKey json.RawMessage `json:"shard_key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	f, err := translateFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	var n int
	err = withFilter(r.Context(), db, f, func(f query.Expr) (err error) {
		n, err = db.CountWhere(r.Context(), f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]int{"count": n}, nil
}
