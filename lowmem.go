package mmdb

import (
	"log/slog"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
)

// indexConfig is the graph configuration of modality m: Options.Index,
// with the file as the vector source under Options.LowMemory.
func (db *DB) indexConfig(m Modality) hnsw.Config {
	cfg := db.indexCfg
	cfg.Source = nil
	if db.opts.LowMemory && !m.IsMulti() {
		cfg.Source = storedVectors{db: db, mod: m.Name}
	}
	return cfg
}

// storedVectors reads a modality's vectors back from the file, for a graph
// in the low-memory mode: a read transaction a batch, or a cursor over
// them all for an exact search.
type storedVectors struct {
	db  *DB
	mod string
}

// ReadVectors implements hnsw.VectorSource. A read that fails (the file
// closed under the search, or a damaged page) finds nothing, so the search
// returns nothing rather than a guess; it is logged.
func (s storedVectors) ReadVectors(ids []uint32, dst []float32, found []bool) {
	err := s.db.store.View(func(tx *storage.Tx) error {
		tx.VectorsInto(s.mod, ids, dst, found)
		return nil
	})
	if err != nil {
		clear(found)
		s.logFailure(err)
	}
}

// ScanVectors implements hnsw.VectorScanner. A failed read is logged, as
// in ReadVectors: the exact search it serves finds nothing past it.
func (s storedVectors) ScanVectors(dim int, fn func(id uint32, v []float32)) {
	err := s.db.store.View(func(tx *storage.Tx) error {
		tx.ScanVectors(s.mod, dim, fn)
		return nil
	})
	if err != nil {
		s.logFailure(err)
	}
}

func (s storedVectors) logFailure(err error) {
	if l := s.db.opts.Logger; l != nil {
		l.Warn("reading vectors back for a search failed", slog.String("modality", s.mod), slog.Any("error", err))
	}
}
