package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

// maxFilterUpdate is the most points a payload update by filter may
// select: they are changed in one atomic write.
const maxFilterUpdate = 100_000

// selector is a points selector: IDs, or a filter.
type selector struct {
	Points   []json.RawMessage `json:"points"`
	Filter   json.RawMessage   `json:"filter"`
	ShardKey json.RawMessage   `json:"shard_key"`
}

// setPayloadRequest is Qdrant's SetPayload (also for overwrite).
type setPayloadRequest struct {
	Payload  json.RawMessage   `json:"payload"`
	Points   []json.RawMessage `json:"points"`
	Filter   json.RawMessage   `json:"filter"`
	Key      json.RawMessage   `json:"key"`
	ShardKey json.RawMessage   `json:"shard_key"`
}

// deletePayloadRequest is Qdrant's DeletePayload.
type deletePayloadRequest struct {
	Keys     []string          `json:"keys"`
	Points   []json.RawMessage `json:"points"`
	Filter   json.RawMessage   `json:"filter"`
	ShardKey json.RawMessage   `json:"shard_key"`
}

// setPayload is POST /points/payload: the keys given are set, the others
// kept.
func (s *Server) setPayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadWrite(r, db, false)
}

// overwritePayload is PUT /points/payload: the payload becomes the one
// given, in one step (DB.SetAttrs).
func (s *Server) overwritePayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadWrite(r, db, true)
}

func (s *Server) payloadWrite(r *http.Request, db *mmdb.DB, overwrite bool) (any, error) {
	var req setPayloadRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"key": req.Key, "shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	if isNull(req.Payload) {
		return nil, badf("payload is required")
	}
	attrs, err := payloadOf("the request", req.Payload) // refused before any point is chosen
	if err != nil {
		return nil, err
	}
	write := db.Update
	if overwrite {
		write = db.SetAttrs
	}
	return s.updatePoints(r.Context(), db, selector{Points: req.Points, Filter: req.Filter}, attrs, write)
}

// clearPayload is POST /points/payload/clear: no payload left.
func (s *Server) clearPayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req selector
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	return s.updatePoints(r.Context(), db, req, nil, db.SetAttrs)
}

// deletePayload is POST /points/payload/delete: the keys named go.
func (s *Server) deletePayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req deletePayloadRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	if req.Keys == nil {
		return nil, badf("keys is required")
	}
	attrs := make(map[string]any, len(req.Keys))
	for _, k := range req.Keys {
		attrs[k] = nil // Update removes an attribute given as nil
	}
	return s.updatePoints(r.Context(), db, selector{Points: req.Points, Filter: req.Filter}, attrs, db.Update)
}

// updatePoints writes attrs to the selected points in one atomic write:
// points named by ID must all be stored (ErrNotFound names the first that
// is not, and nothing is written); points a filter selected that another
// request deleted meanwhile are left out.
func (s *Server) updatePoints(ctx context.Context, db *mmdb.DB, sel selector, attrs map[string]any,
	write func(context.Context, ...mmdb.Item) error) (any, error) {
	byFilter := !isNull(sel.Filter)
	var ids []string
	var err error
	switch {
	case sel.Points != nil && byFilter:
		return nil, badf("give points or filter, not both")
	case sel.Points != nil:
		if len(sel.Points) > s.cfg.MaxBatch {
			return nil, badf("%d points in one request: at most %d", len(sel.Points), s.cfg.MaxBatch)
		}
		if ids, err = pointIDs(sel.Points); err != nil {
			return nil, err
		}
	case byFilter:
		f, err := translateFilter(sel.Filter)
		if err != nil {
			return nil, err
		}
		if ids, err = matching(ctx, db, f); err != nil {
			return nil, err
		}
	default:
		return nil, badf("give points or filter")
	}
	for range 8 {
		items := make([]mmdb.Item, len(ids))
		for i, id := range ids {
			items[i] = mmdb.Item{ID: id, Attrs: attrs}
		}
		err := write(ctx, items...)
		if !byFilter || !errors.Is(err, mmdb.ErrNotFound) {
			if err != nil {
				return nil, err
			}
			return s.updated(), nil
		}
		if ids, err = stored(ctx, db, ids); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: the points the filter selected kept being deleted meanwhile; try again", errConflict)
}

// stored is those of ids still stored.
func stored(ctx context.Context, db *mmdb.DB, ids []string) ([]string, error) {
	out := ids[:0:0]
	for _, id := range ids {
		_, err := db.Get(ctx, id)
		switch {
		case err == nil:
			out = append(out, id)
		case !errors.Is(err, mmdb.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// matching lists the IDs of the stored items the filter matches, in
// insertion order, at most maxFilterUpdate.
func matching(ctx context.Context, db *mmdb.DB, f query.Expr) ([]string, error) {
	if f == nil {
		return nil, badf("an empty filter would select every point: give a filter that selects")
	}
	var ids []string
	for it, err := range db.Items(ctx) {
		if err != nil {
			return nil, err
		}
		if query.Match(f, it.Attrs) {
			if len(ids) == maxFilterUpdate {
				return nil, badf("the filter selects more than %d points, the most one update changes at once: narrow it", maxFilterUpdate)
			}
			ids = append(ids, it.ID)
		}
	}
	return ids, nil
}

// updateVectors is PUT /points/vectors: the vectors given replace those of
// their names; the point's other vectors and payload are kept. Every point
// must be stored.
func (s *Server) updateVectors(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Points []struct {
			ID     json.RawMessage `json:"id"`
			Vector json.RawMessage `json:"vector"`
		} `json:"points"`
		UpdateFilter json.RawMessage `json:"update_filter"`
		ShardKey     json.RawMessage `json:"shard_key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"update_filter": req.UpdateFilter, "shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	if len(req.Points) > s.cfg.MaxBatch {
		return nil, badf("%d points in one request: at most %d", len(req.Points), s.cfg.MaxBatch)
	}
	mods := db.Modalities()
	items := make([]mmdb.Item, 0, len(req.Points))
	for i, p := range req.Points {
		id, vecs, err := pointVectors(i, p.ID, p.Vector, mods)
		if err != nil {
			return nil, err
		}
		if len(vecs) == 0 {
			return nil, badf("point %s: no vector given", id)
		}
		items = append(items, mmdb.Item{ID: id, Vectors: vecs})
	}
	if err := db.Update(r.Context(), items...); err != nil {
		return nil, err
	}
	return s.updated(), nil
}
