package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/jsonvec"
)

// Qdrant's distance names.
const (
	distCosine    = "Cosine"
	distDot       = "Dot"
	distEuclid    = "Euclid"
	distManhattan = "Manhattan"
)

func distanceName(m mmdb.Metric) string {
	switch m {
	case mmdb.Cosine:
		return distCosine
	case mmdb.Dot:
		return distDot
	}
	return distEuclid
}

func (s *Server) listCollections(*http.Request) (any, error) {
	type desc struct {
		Name string `json:"name"`
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []desc{}
	for _, n := range s.namesLocked() {
		if _, ok := s.cols[n]; ok {
			out = append(out, desc{n})
		}
	}
	return map[string]any{"collections": out}, nil
}

func (s *Server) collectionExists(r *http.Request) (any, error) {
	_, err := s.lookup(r.PathValue("name"))
	return map[string]bool{"exists": err == nil}, nil
}

// vectorParams is Qdrant's VectorParams, as mmdb reads it.
type vectorParams struct {
	Size              int     `json:"size"`
	Distance          string  `json:"distance"`
	Datatype          *string `json:"datatype"`
	MultivectorConfig *struct {
		Comparator string `json:"comparator"`
	} `json:"multivector_config"`
	// Tuning hints that change no answer: accepted and not applied.
	HnswConfig         json.RawMessage `json:"hnsw_config"`
	QuantizationConfig json.RawMessage `json:"quantization_config"`
	OnDisk             json.RawMessage `json:"on_disk"`
	Memory             json.RawMessage `json:"memory"`
}

// modality is the mmdb modality a named vector's parameters make: in a
// space of its own (named vectors of a Qdrant collection are not
// comparable with each other).
func (p vectorParams) modality(name string) (mmdb.Modality, error) {
	m := mmdb.Modality{Name: name, Dim: p.Size}
	switch p.Distance {
	case distCosine:
		m.Metric = mmdb.Cosine
	case distDot:
		m.Metric = mmdb.Dot
	case distEuclid:
		m.Metric = mmdb.L2
	case distManhattan:
		return m, badf("vector %q: distance Manhattan is not supported by mmdb (Cosine, Dot, Euclid are)", name)
	default:
		return m, badf("vector %q: distance %q: want Cosine, Dot or Euclid", name, p.Distance)
	}
	if p.Datatype != nil && *p.Datatype != "float32" {
		return m, badf("vector %q: datatype %q: mmdb stores float32", name, *p.Datatype)
	}
	if p.MultivectorConfig != nil {
		if p.MultivectorConfig.Comparator != "max_sim" {
			return m, badf("vector %q: multivector comparator %q: want max_sim", name, p.MultivectorConfig.Comparator)
		}
		m.Multi = mmdb.MaxSim
	}
	if err := m.Validate(); err != nil {
		return m, badf("vector %q: %v", name, err)
	}
	return m, nil
}

// defaultVector names the modality of a collection created with one
// unnamed vector: Qdrant's unnamed vector, which requests then reach
// without naming it.
const defaultVector = "vector"

func (s *Server) createCollection(r *http.Request) (any, error) {
	name := r.PathValue("name")
	var req struct {
		Vectors       json.RawMessage `json:"vectors"`
		SparseVectors json.RawMessage `json:"sparse_vectors"`
		// Distribution and tuning: accepted, not applied (one process,
		// one file; mmdb tunes its graphs itself).
		ShardNumber            json.RawMessage `json:"shard_number"`
		ShardingMethod         json.RawMessage `json:"sharding_method"`
		ReplicationFactor      json.RawMessage `json:"replication_factor"`
		WriteConsistencyFactor json.RawMessage `json:"write_consistency_factor"`
		OnDiskPayload          json.RawMessage `json:"on_disk_payload"`
		HnswConfig             json.RawMessage `json:"hnsw_config"`
		WalConfig              json.RawMessage `json:"wal_config"`
		OptimizersConfig       json.RawMessage `json:"optimizers_config"`
		QuantizationConfig     json.RawMessage `json:"quantization_config"`
		StrictModeConfig       json.RawMessage `json:"strict_mode_config"`
		Metadata               json.RawMessage `json:"metadata"`
		InitFrom               json.RawMessage `json:"init_from"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"sparse_vectors": req.SparseVectors, "init_from": req.InitFrom}); err != nil {
		return nil, err
	}
	mods, err := vectorsConfig(req.Vectors)
	if err != nil {
		return nil, err
	}
	if s.dir == "" {
		return nil, fmt.Errorf("%w: this server serves one file; serve a folder (mmdb serve DIR) to create collections", errForbidden)
	}
	if !collectionName.MatchString(name) {
		return nil, badf("collection name %q: letters, digits, _ and -, up to 128", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cols[name]; ok {
		return nil, fmt.Errorf("%w: Collection `%s` already exists", errConflict, name)
	}
	path := filepath.Join(s.dir, name+Ext)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w: %s exists but is not served (was it made after the server started?)", errConflict, path)
	}
	o := s.cfg.Open
	db, err := mmdb.Open(path, &o)
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if err := db.DefineModality(m); err != nil {
			db.Close()
			os.Remove(path)
			return nil, err
		}
	}
	s.cols[name] = &collection{name: name, path: path, db: db}
	s.cfg.Logger.Info("created collection", "name", name, "path", path)
	return true, nil
}

// vectorsConfig reads Qdrant's VectorsConfig: one VectorParams (the
// unnamed vector) or named ones.
func vectorsConfig(raw json.RawMessage) ([]mmdb.Modality, error) {
	if isNull(raw) {
		return nil, badf("vectors: a collection needs at least one vector")
	}
	var one vectorParams
	if err := strictUnmarshal(raw, &one); err == nil && one.Size != 0 {
		m, err := one.modality(defaultVector)
		if err != nil {
			return nil, err
		}
		return []mmdb.Modality{m}, nil
	}
	var mods []mmdb.Modality
	err := jsonvec.Fields(bytes.TrimSpace(raw), func(name string, v json.RawMessage) error {
		var p vectorParams
		if err := strictUnmarshal(v, &p); err != nil {
			return badf("vectors %q: %v", name, err)
		}
		m, err := p.modality(name)
		if err != nil {
			return err
		}
		mods = append(mods, m)
		return nil
	})
	if err != nil {
		return nil, badf("vectors: %v", message(err))
	}
	if len(mods) == 0 {
		return nil, badf("vectors: a collection needs at least one vector")
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods, nil
}

func (s *Server) deleteCollection(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if s.dir == "" {
		return nil, fmt.Errorf("%w: this server serves one file; it does not delete it", errForbidden)
	}
	s.mu.Lock()
	c, ok := s.cols[name]
	if !ok {
		s.mu.Unlock()
		return false, nil // Qdrant: deleting a missing collection is false, not an error
	}
	delete(s.cols, name)
	s.mu.Unlock()
	c.mu.Lock() // waits for the requests using it
	defer c.mu.Unlock()
	if c.db != nil {
		if err := c.db.Close(); err != nil {
			return nil, err
		}
		c.db = nil
	}
	if err := os.Remove(c.path); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("deleted collection", "name", name, "path", c.path)
	return true, nil
}

func (s *Server) collectionInfo(_ *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	st, err := db.Stats()
	if err != nil {
		return nil, err
	}
	named := map[string]any{}
	var vectors any = named
	indexed := 0
	for _, m := range st.Modalities {
		// on_disk is Qdrant's "vectors served from disk": mmdb's
		// LowMemory, where the graph keeps codes and reads the vectors
		// back from the file.
		p := map[string]any{"size": m.Dim, "distance": distanceName(m.Metric), "on_disk": !m.VectorsInMemory}
		switch m.Multi {
		case mmdb.MaxSim:
			p["multivector_config"] = map[string]string{"comparator": "max_sim"}
		case mmdb.MaxPair:
			p["multivector_config"] = map[string]string{"comparator": "max_pair"} // mmdb's own: Qdrant has none
		}
		named[m.Name] = p
		indexed += m.Vectors
		if isUnnamed([]mmdb.Modality{m.Modality}) && len(st.Modalities) == 1 {
			vectors = p
		}
	}
	idx := s.cfg.Open.Index
	if idx.M == 0 {
		idx.M = 16
	}
	if idx.EfConstruction == 0 {
		idx.EfConstruction = 200
	}
	return map[string]any{
		"status":                "green",
		"optimizer_status":      "ok",
		"points_count":          st.Items,
		"indexed_vectors_count": indexed,
		"segments_count":        1,
		"config": map[string]any{
			"params": map[string]any{"vectors": vectors, "shard_number": 1, "replication_factor": 1,
				"write_consistency_factor": 1, "on_disk_payload": false},
			"hnsw_config": map[string]any{"m": idx.M, "ef_construct": idx.EfConstruction,
				"full_scan_threshold": 0, "on_disk": false},
			"optimizer_config": map[string]any{"deleted_threshold": 0, "vacuum_min_vector_number": 0,
				"default_segment_number": 1, "flush_interval_sec": 0},
			"wal_config": map[string]any{"wal_capacity_mb": 0, "wal_segments_ahead": 0},
		},
		"payload_schema": map[string]any{},
	}, nil
}

// createIndex answers Qdrant's payload index creation: mmdb keeps postings
// for every attribute, so every field is indexed already.
func (s *Server) createIndex(r *http.Request, _ *mmdb.DB, _ *collection) (any, error) {
	var req struct {
		FieldName   string          `json:"field_name"`
		FieldSchema json.RawMessage `json:"field_schema"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.FieldName == "" {
		return nil, badf("field_name is required")
	}
	return s.updated(), nil
}

// updated is the answer to a write that is durable when it is sent.
func (s *Server) updated() map[string]any {
	return map[string]any{"operation_id": s.ops.Add(1), "status": "completed"}
}
