package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

// payloadRequest is Qdrant's SetPayload / DeletePayload / a points selector.
type payloadRequest struct {
	Payload  json.RawMessage   `json:"payload"`
	Keys     []string          `json:"keys"`
	Points   []json.RawMessage `json:"points"`
	Filter   json.RawMessage   `json:"filter"`
	Key      json.RawMessage   `json:"key"`
	ShardKey json.RawMessage   `json:"shard_key"`
}

// payloadOp is what a payload request does to one stored item's
// attributes: the change to give DB.Update.
type payloadOp func(ctx context.Context, db *mmdb.DB, id string) (mmdb.Item, error)

// setPayload is POST /points/payload: the keys given are set, the others
// kept.
func (s *Server) setPayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadRequest(r, db, func(req *payloadRequest) (payloadOp, error) {
		if isNull(req.Payload) {
			return nil, badf("payload is required")
		}
		return func(_ context.Context, _ *mmdb.DB, id string) (mmdb.Item, error) {
			attrs, err := payloadAttrs(id, req.Payload)
			return mmdb.Item{ID: id, Attrs: attrs}, err
		}, nil
	})
}

// overwritePayload is PUT /points/payload: the payload becomes the one
// given.
func (s *Server) overwritePayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadRequest(r, db, func(req *payloadRequest) (payloadOp, error) {
		if isNull(req.Payload) {
			return nil, badf("payload is required")
		}
		return replacePayload(req.Payload), nil
	})
}

// clearPayload is POST /points/payload/clear: no payload left.
func (s *Server) clearPayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadRequest(r, db, func(*payloadRequest) (payloadOp, error) {
		return replacePayload(json.RawMessage("{}")), nil
	})
}

// deletePayload is POST /points/payload/delete: the keys named go.
func (s *Server) deletePayload(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	return s.payloadRequest(r, db, func(req *payloadRequest) (payloadOp, error) {
		if len(req.Keys) == 0 {
			return nil, badf("keys is required")
		}
		return func(_ context.Context, _ *mmdb.DB, id string) (mmdb.Item, error) {
			attrs := make(map[string]any, len(req.Keys))
			for _, k := range req.Keys {
				attrs[k] = nil // Update removes an attribute given as nil
			}
			return mmdb.Item{ID: id, Attrs: attrs}, nil
		}, nil
	})
}

// replacePayload sets payload and removes every other attribute the item
// has. An attribute another request sets between the read and the update
// survives, as if it had been set just after.
func replacePayload(payload json.RawMessage) payloadOp {
	return func(ctx context.Context, db *mmdb.DB, id string) (mmdb.Item, error) {
		attrs, err := payloadAttrs(id, payload)
		if err != nil {
			return mmdb.Item{}, err
		}
		old, err := db.Get(ctx, id)
		if err != nil {
			return mmdb.Item{}, err
		}
		if attrs == nil {
			attrs = map[string]any{}
		}
		for k := range old.Attrs {
			if _, keep := attrs[k]; !keep {
				attrs[k] = nil
			}
		}
		return mmdb.Item{ID: id, Attrs: attrs}, nil
	}
}

// payloadRequest reads the request, selects the points (by IDs: each must
// be stored, as in Qdrant; or by filter) and updates them with DB.Update,
// in batches of MaxBatch (each atomic).
func (s *Server) payloadRequest(r *http.Request, db *mmdb.DB, op func(*payloadRequest) (payloadOp, error)) (any, error) {
	var req payloadRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"key": req.Key, "shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	change, err := op(&req)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	var ids []string
	byFilter := !isNull(req.Filter)
	switch {
	case req.Points != nil && byFilter:
		return nil, badf("give points or filter, not both")
	case req.Points != nil:
		if len(req.Points) > s.cfg.MaxBatch {
			return nil, badf("%d points in one request: at most %d", len(req.Points), s.cfg.MaxBatch)
		}
		if ids, err = pointIDs(req.Points); err != nil {
			return nil, err
		}
	case byFilter:
		f, err := translateFilter(req.Filter)
		if err != nil {
			return nil, err
		}
		if ids, err = matching(ctx, db, f); err != nil {
			return nil, err
		}
	default:
		return nil, badf("give points or filter")
	}
	for start := 0; start < len(ids); start += s.cfg.MaxBatch {
		batch := ids[start:min(len(ids), start+s.cfg.MaxBatch)]
		if err := updateEach(ctx, db, batch, change, byFilter); err != nil {
			return nil, err
		}
	}
	return s.updated(), nil
}

// updateEach applies change to each ID in one Update. Points a filter
// selected that another request deleted meanwhile are left out; points
// named by ID must be stored (ErrNotFound names the first that is not).
func updateEach(ctx context.Context, db *mmdb.DB, ids []string, change payloadOp, skipGone bool) error {
	for range 8 {
		items := make([]mmdb.Item, 0, len(ids))
		for _, id := range ids {
			it, err := change(ctx, db, id)
			if skipGone && errors.Is(err, mmdb.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		err := db.Update(ctx, items...)
		var ie *mmdb.ItemError
		if !skipGone || !errors.Is(err, mmdb.ErrNotFound) || !errors.As(err, &ie) {
			return err
		}
		ids = without(ids, ie.ID)
	}
	return errors.New("update: the points kept changing under concurrent deletes; try again")
}

func without(ids []string, gone string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if id != gone {
			out = append(out, id)
		}
	}
	return out
}

// matching lists the IDs of the stored items the filter matches, in
// insertion order.
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
		id, err := pointID(p.ID)
		if err != nil {
			return nil, badf("points[%d]: %v", i, message(err))
		}
		vecs, err := namedVectors(id, p.Vector, mods)
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
