package mmdb

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/storage"
)

// Modality is the schema of one kind of embedding: see modality.Modality.
type Modality = modality.Modality

// Metric is how a modality's vectors are compared.
type Metric = modality.Metric

// The metrics.
const (
	Cosine = modality.Cosine // cosine similarity; vectors normalised on the way in
	Dot    = modality.Dot    // raw inner product
	L2     = modality.L2     // Euclidean distance
)

// Options configure Open. The zero value (or nil) is a sensible default.
type Options struct {
	// Timeout bounds the wait for another process's lock on the file; zero
	// waits forever.
	Timeout time.Duration
	// NoSync skips fsync on commit: much faster bulk loads, at the risk of
	// losing the latest commits on power failure (not on a process crash).
	NoSync bool
	// ReadOnly opens the file shared and refuses writes.
	ReadOnly bool
	// Index tunes every modality's HNSW graph: M (links per node, default
	// 16), EfConstruction (default 200) and EfSearch (the default beam
	// width of a search, 64). Higher values trade speed for recall.
	Index hnsw.Config
}

// DB is an open mmdb database. It is safe for concurrent use.
type DB struct {
	store    *storage.Store
	readOnly bool
	indexCfg hnsw.Config

	// writeMu serialises writers: one bbolt write transaction at a time,
	// and index updates in commit order.
	writeMu sync.Mutex

	// mu guards everything below. Readers hold it shared; a writer takes it
	// exclusively only to apply a committed change to the in-memory state,
	// never across disk I/O.
	mu      sync.RWMutex
	closed  bool
	schema  []Modality
	byName  map[string]int // modality name -> index in schema and indexes
	indexes []hnsw.Index
	extIDs  []string // internal ID -> external ID; "" for deleted
	count   int
}

// Open opens the database at path, creating it if it does not exist, and
// builds each modality's index from the stored vectors. A file that is not
// an mmdb database fails with ErrNotDatabase, one written by a newer mmdb
// with ErrVersion; either way the file is left untouched.
func Open(path string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	st, err := storage.Open(path, &storage.Options{Timeout: opts.Timeout, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("mmdb: %w", err)
	}
	db := &DB{store: st, readOnly: opts.ReadOnly, byName: map[string]int{}, indexCfg: opts.Index}
	if err := db.load(); err != nil {
		st.Close()
		return nil, fmt.Errorf("mmdb: open %s: %w", path, err)
	}
	return db, nil
}

// load reads the schema, the ID map and every vector into memory.
func (db *DB) load() error {
	return db.store.View(func(tx *storage.Tx) error {
		ms, err := tx.Schema()
		if err != nil {
			return err
		}
		for _, m := range ms {
			db.addModality(m)
		}
		db.extIDs = make([]string, tx.NextID())
		if err := tx.ForEachRecord(0, func(id uint32, r storage.Record) (bool, error) {
			if int(id) >= len(db.extIDs) {
				return false, fmt.Errorf("%w: item %d beyond next ID %d", ErrCorrupt, id, len(db.extIDs))
			}
			db.extIDs[id] = r.ID
			db.count++
			return true, nil
		}); err != nil {
			return err
		}
		for i, m := range db.schema {
			var ids []uint32
			var vecs [][]float32
			if err := tx.ForEachVector(m.Name, func(id uint32, v []float32) error {
				if len(v) != m.Dim {
					return fmt.Errorf("%w: item %d: %s vector has %d values, want %d", ErrCorrupt, id, m.Name, len(v), m.Dim)
				}
				ids, vecs = append(ids, id), append(vecs, v)
				return nil
			}); err != nil {
				return err
			}
			if err := hnsw.AddParallel(context.Background(), db.indexes[i], ids, vecs, 0, nil); err != nil {
				return fmt.Errorf("building the %s index: %w", m.Name, err)
			}
		}
		return nil
	})
}

func (db *DB) addModality(m Modality) {
	db.byName[m.Name] = len(db.schema)
	db.schema = append(db.schema, m)
	db.indexes = append(db.indexes, hnsw.NewHNSW(m.Dim, m.Metric, db.indexCfg))
}

// Close releases the file. Calls after Close return ErrClosed; a second
// Close is a no-op.
func (db *DB) Close() error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.indexes = nil
	return db.store.Close()
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.store.Path() }

// DefineModality adds a modality to the schema, persistently. Defining an
// existing name again with the same Dim, Metric and Space is a no-op; with
// different ones it fails with ErrModalityConflict. Modalities can be added
// to a database that already holds items.
func (db *DB) DefineModality(m Modality) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("mmdb: %w", err)
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.mu.RLock()
	closed := db.closed
	i, exists := db.byName[m.Name]
	var old Modality
	if exists {
		old = db.schema[i]
	}
	db.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if exists {
		if old.Compatible(m) {
			return nil
		}
		return fmt.Errorf("mmdb: %w: %q is dim %d, %v, space %q; asked for dim %d, %v, space %q",
			ErrModalityConflict, m.Name, old.Dim, old.Metric, old.SpaceName(), m.Dim, m.Metric, m.SpaceName())
	}
	if err := db.store.Update(func(tx *storage.Tx) error { return tx.DefineModality(m) }); err != nil {
		return fmt.Errorf("mmdb: define modality %q: %w", m.Name, err)
	}
	db.mu.Lock()
	db.addModality(m)
	db.mu.Unlock()
	return nil
}

// Modalities returns the schema in definition order.
func (db *DB) Modalities() []Modality {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return append([]Modality(nil), db.schema...)
}

// Count returns the number of items.
func (db *DB) Count() int {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.count
}

// modalityLocked returns the named modality and its index; db.mu is held.
func (db *DB) modalityLocked(name string) (Modality, hnsw.Index, error) {
	i, ok := db.byName[name]
	if !ok {
		return Modality{}, nil, fmt.Errorf("%w %q (defined: %s)", ErrUnknownModality, name, db.namesLocked())
	}
	return db.schema[i], db.indexes[i], nil
}

func (db *DB) namesLocked() string {
	if len(db.schema) == 0 {
		return "none"
	}
	s := ""
	for i, m := range db.schema {
		if i > 0 {
			s += ", "
		}
		s += m.Name
	}
	return s
}
