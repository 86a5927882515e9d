package mmdb

import (
	"fmt"
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
//
// Its read transactions may open inside another: the graph's Add reads
// the source (the centre's checks, hnsw/centre.go), and at Open the log
// replay and the rebuild add to the graph inside Open's own read
// transaction. bbolt allows that while no write transaction commits
// between them (a commit that grows the file waits for every reader):
// every write holds writeMu, and Open's reads run before any write can.
// A write path without writeMu, or a rebuild moved to the background,
// would need its reads of the source outside the other transaction.
type storedVectors struct {
	db  *DB
	mod string
}

// ReadVectors implements hnsw.VectorSource. A read that fails (the file
// closed under the search, or a damaged page) finds nothing; it is logged
// and recorded, and the search, evaluation or alignment that asked fails
// with it (readBackCheck) rather than answer from what was left.
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

// ScanVectors implements hnsw.VectorScanner. A failed read is handled as
// in ReadVectors.
func (s storedVectors) ScanVectors(dim int, fn func(id uint32, v []float32)) {
	err := s.db.store.View(func(tx *storage.Tx) error {
		tx.ScanVectors(s.mod, dim, fn)
		return nil
	})
	if err != nil {
		s.logFailure(err)
	}
}

// logFailure records a failed read for readBackCheck and logs it.
func (s storedVectors) logFailure(err error) {
	err = fmt.Errorf("reading %s vectors back from the file: %w", s.mod, err)
	s.db.readBackErr.Store(&err)
	s.db.readBack.Add(1)
	if l := s.db.opts.Logger; l != nil {
		l.Warn("reading vectors back for a search failed", slog.String("modality", s.mod), slog.Any("error", err))
	}
}

// readBackCheck, deferred as
//
//	defer db.readBackCheck(db.readBack.Load(), &err)
//
// puts into *err the error of a read back from the file that failed since
// the count was since (Options.LowMemory: a search whose vectors could not
// be read must not answer as if they were not stored). A nil *err becomes
// it; an error the call met on its own, which the failed read may have
// caused (an evaluation finding no items that carry both modalities), is
// kept after it as text only, so errors.Is finds the cause and not a
// consequence (ErrInvalidQuery, ErrNoGain) a caller would act on. A failure during another call
// running at the same time fails this one too: the file was closed or is
// damaged either way. It allocates nothing when no read failed.
func (db *DB) readBackCheck(since int64, err *error) {
	if db.readBack.Load() == since {
		return
	}
	e := db.readBackErr.Load()
	switch {
	case e == nil:
	case *err == nil:
		*err = *e
	default:
		*err = fmt.Errorf("%w (then: %v)", *e, *err)
	}
}
