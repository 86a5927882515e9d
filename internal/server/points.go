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
	"github.com/mmdb-go/mmdb/query"
)

// record is Qdrant's Record (and, with a score, its ScoredPoint).
type record struct {
	ID      any             `json:"id"`
	Version *int            `json:"version,omitempty"`
	Score   *float32        `json:"score,omitempty"`
	Payload *map[string]any `json:"payload,omitempty"`
	Vector  any             `json:"vector,omitempty"`
}

var zero = 0

// upsert stores points (Qdrant's PointsList or PointsBatch) with one
// atomic mmdb Put: a point replaces the stored one whole.
func (s *Server) upsert(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Points []struct {
			ID      json.RawMessage `json:"id"`
			Vector  json.RawMessage `json:"vector"`
			Payload json.RawMessage `json:"payload"`
		} `json:"points"`
		Batch *struct {
			IDs      []json.RawMessage `json:"ids"`
			Vectors  json.RawMessage   `json:"vectors"`
			Payloads []json.RawMessage `json:"payloads"`
		} `json:"batch"`
		ShardKey     json.RawMessage `json:"shard_key"`
		UpdateFilter json.RawMessage `json:"update_filter"`
		UpdateMode   json.RawMessage `json:"update_mode"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey, "update_filter": req.UpdateFilter, "update_mode": req.UpdateMode}); err != nil {
		return nil, err
	}
	mods := db.Modalities()
	var items []mmdb.Item
	switch {
	case req.Points != nil && req.Batch != nil:
		return nil, badf("give points or batch, not both")
	case req.Points != nil:
		if len(req.Points) > s.cfg.MaxBatch {
			return nil, badf("%d points in one request: at most %d (send several requests)", len(req.Points), s.cfg.MaxBatch)
		}
		for i, p := range req.Points {
			id, vecs, err := pointVectors(i, p.ID, p.Vector, mods)
			if err != nil {
				return nil, err
			}
			attrs, err := payloadAttrs(id, p.Payload)
			if err != nil {
				return nil, err
			}
			items = append(items, mmdb.Item{ID: id, Vectors: vecs, Attrs: attrs})
		}
	case req.Batch != nil:
		var err error
		if items, err = s.batchItems(req.Batch.IDs, req.Batch.Vectors, req.Batch.Payloads, mods); err != nil {
			return nil, err
		}
	default:
		return nil, badf("give points or batch")
	}
	if err := db.Put(r.Context(), items...); err != nil {
		return nil, err
	}
	return s.updated(), nil
}

// batchItems reads Qdrant's column-wise batch.
func (s *Server) batchItems(rawIDs []json.RawMessage, rawVecs json.RawMessage, payloads []json.RawMessage, mods []mmdb.Modality) ([]mmdb.Item, error) {
	if len(rawIDs) > s.cfg.MaxBatch {
		return nil, badf("%d points in one request: at most %d (send several requests)", len(rawIDs), s.cfg.MaxBatch)
	}
	ids, err := pointIDs(rawIDs)
	if err != nil {
		return nil, err
	}
	if payloads != nil && len(payloads) != len(ids) {
		return nil, badf("batch: %d payloads for %d ids", len(payloads), len(ids))
	}
	items := make([]mmdb.Item, len(ids))
	for i, id := range ids {
		items[i].ID = id
		items[i].Vectors = map[string][]float32{}
		if payloads != nil {
			if items[i].Attrs, err = payloadAttrs(id, payloads[i]); err != nil {
				return nil, err
			}
		}
	}
	columns := map[string]json.RawMessage{}
	if trimmed := bytes.TrimSpace(rawVecs); len(trimmed) > 0 && trimmed[0] == '{' {
		if err := jsonvec.Fields(trimmed, func(k string, v json.RawMessage) error { columns[k] = v; return nil }); err != nil {
			return nil, badf("batch vectors: %v", err)
		}
	} else {
		name, err := unnamed(mods)
		if err != nil {
			return nil, badf("batch vectors: %v", message(err))
		}
		columns[name] = rawVecs
	}
	for name, col := range columns {
		m, ok := modalityOf(mods, name)
		if !ok {
			return nil, badf("batch vectors: no vector named %q (have %s)", name, modalityNames(mods))
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(col, &rows); err != nil || len(rows) != len(ids) {
			return nil, badf("batch vectors %q: want a list of %d vectors, one per id", name, len(ids))
		}
		for i, row := range rows {
			if isNull(row) {
				continue // this point has no vector of the modality
			}
			v, err := vectorOf(ids[i], m, row)
			if err != nil {
				return nil, err
			}
			items[i].Vectors[name] = v
		}
	}
	return items, nil
}

// pointVectors reads the ID and the vectors of points[i].
func pointVectors(i int, rawID, rawVec json.RawMessage, mods []mmdb.Modality) (string, map[string][]float32, error) {
	id, err := pointID(rawID)
	if err != nil {
		return "", nil, badf("points[%d]: %v", i, message(err))
	}
	vecs, err := namedVectors(id, rawVec, mods)
	return id, vecs, err
}

// unnamed is the modality a request reaches without naming one: the
// collection's only modality.
func unnamed(mods []mmdb.Modality) (string, error) {
	if len(mods) != 1 {
		return "", badf("the collection has %d vectors (%s): name the one meant", len(mods), modalityNames(mods))
	}
	return mods[0].Name, nil
}

// namedVectors reads a point's vector: a list of numbers (or of lists, for
// a multi-vector modality) for the collection's only vector, or an object
// of named ones.
func namedVectors(id string, raw json.RawMessage, mods []mmdb.Modality) (map[string][]float32, error) {
	raw = bytes.TrimSpace(raw)
	out := map[string][]float32{}
	if isNull(raw) {
		return out, nil
	}
	if raw[0] != '{' {
		name, err := unnamed(mods)
		if err != nil {
			return nil, badf("point %s: %v", id, message(err))
		}
		m, _ := modalityOf(mods, name)
		v, err := vectorOf(id, m, raw)
		if err != nil {
			return nil, err
		}
		out[name] = v
		return out, nil
	}
	err := jsonvec.Fields(raw, func(name string, v json.RawMessage) error {
		m, ok := modalityOf(mods, name)
		if !ok {
			return badf("point %s: no vector named %q (have %s)", id, name, modalityNames(mods))
		}
		vec, err := vectorOf(id, m, v)
		if err != nil {
			return err
		}
		out[name] = vec
		return nil
	})
	if err != nil {
		if errors.Is(err, errBadRequest) {
			return nil, err
		}
		return nil, badf("point %s: vector: %v", id, err)
	}
	return out, nil
}

// vectorOf reads one vector of modality m strictly (null, strings and
// out-of-range numbers are errors): a list of numbers, or for a
// multi-vector modality a list of Dim-long lists, laid end to end.
func vectorOf(id string, m mmdb.Modality, raw json.RawMessage) ([]float32, error) {
	if jsonvec.Nested(raw) {
		if !m.IsMulti() {
			return nil, badf("point %s, vector %q: a list of lists is a multi-vector, and %q holds one vector", id, m.Name, m.Name)
		}
		var set []jsonvec.Floats
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, badf("point %s, vector %q: %v", id, m.Name, err)
		}
		var flat []float32
		for i, v := range set {
			if len(v) != m.Dim {
				return nil, badf("point %s, vector %q: vector %d of the set has %d values, want %d", id, m.Name, i, len(v), m.Dim)
			}
			flat = append(flat, v...)
		}
		return flat, nil
	}
	if m.IsMulti() {
		return nil, badf("point %s, vector %q: a multi-vector is a list of lists ([[...], ...])", id, m.Name)
	}
	var v jsonvec.Floats
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, badf("point %s, vector %q: %v", id, m.Name, err)
	}
	return v, nil
}

// retrieve is POST /points: the points of the IDs given, those found.
func (s *Server) retrieve(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		IDs         []json.RawMessage `json:"ids"`
		WithPayload json.RawMessage   `json:"with_payload"`
		WithVector  json.RawMessage   `json:"with_vector"`
		ShardKey    json.RawMessage   `json:"shard_key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	if len(req.IDs) > s.cfg.MaxBatch {
		return nil, badf("%d ids in one request: at most %d", len(req.IDs), s.cfg.MaxBatch)
	}
	ids, err := pointIDs(req.IDs)
	if err != nil {
		return nil, err
	}
	out, err := points(r.Context(), db, ids, req.WithPayload, req.WithVector, true)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// points reads the records of ids, skipping those not stored.
func points(ctx context.Context, db *mmdb.DB, ids []string, withPayload, withVector json.RawMessage, defPayload bool) ([]record, error) {
	mods := db.Modalities()
	ps, err := parsePayloadSelector(withPayload, defPayload)
	if err != nil {
		return nil, err
	}
	vs, err := parseVectorSelector(withVector, mods)
	if err != nil {
		return nil, err
	}
	out := []record{}
	for _, id := range ids {
		it, err := db.Get(ctx, id)
		if errors.Is(err, mmdb.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, toRecord(it, ps, vs, mods))
	}
	return out, nil
}

func toRecord(it mmdb.Item, ps payloadSelector, vs []string, mods []mmdb.Modality) record {
	rec := record{ID: outID(it.ID), Payload: ps.apply(it.Attrs)}
	if vs != nil {
		rec.Vector = outVectors(it, vs, mods)
	}
	return rec
}

// getPoint is GET /points/{id}: one point with its payload and vectors.
func (s *Server) getPoint(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	id, err := pathID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	it, err := db.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	mods := db.Modalities()
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return toRecord(it, payloadSelector{all: true}, names, mods), nil
}

// deletePoints deletes by IDs (those not stored are skipped, as Qdrant
// does) or by filter.
func (s *Server) deletePoints(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		Points   []json.RawMessage `json:"points"`
		Filter   json.RawMessage   `json:"filter"`
		ShardKey json.RawMessage   `json:"shard_key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"shard_key": req.ShardKey}); err != nil {
		return nil, err
	}
	switch {
	case req.Points != nil && !isNull(req.Filter):
		return nil, badf("give points or filter, not both")
	case req.Points != nil:
		if len(req.Points) > s.cfg.MaxBatch {
			return nil, badf("%d points in one request: at most %d", len(req.Points), s.cfg.MaxBatch)
		}
		ids, err := pointIDs(req.Points)
		if err != nil {
			return nil, err
		}
		if err := deleteStored(r.Context(), db, ids); err != nil {
			return nil, err
		}
	case !isNull(req.Filter):
		f, err := translateFilter(req.Filter)
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, badf("an empty filter would delete every point: delete the collection, or give a filter that selects")
		}
		err = withFilter(r.Context(), db, f, func(f query.Expr) error {
			_, err := db.DeleteWhere(r.Context(), f)
			return err
		})
		if err != nil {
			return nil, err
		}
	default:
		return nil, badf("give points or filter")
	}
	return s.updated(), nil
}

// deleteStored deletes those of ids that are stored, atomically; an ID
// deleted by another request meanwhile is retried without it.
func deleteStored(ctx context.Context, db *mmdb.DB, ids []string) error {
	for range 8 {
		err := db.Delete(ctx, ids...)
		if !errors.Is(err, mmdb.ErrNotFound) {
			return err
		}
		kept := ids[:0:0]
		for _, id := range ids {
			if _, err := db.Get(ctx, id); err == nil {
				kept = append(kept, id)
			} else if !errors.Is(err, mmdb.ErrNotFound) {
				return err
			}
		}
		if len(kept) == 0 {
			return nil
		}
		ids = kept
	}
	return fmt.Errorf("delete: the points kept changing under concurrent deletes; try again")
}
