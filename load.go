package mmdb

import (
	"fmt"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
)

// load reads the schema and the ID map, then brings up each modality's
// index: from its checkpoint plus the log when it can, else rebuilt from
// the stored vectors.
func (db *DB) load() (err error) {
	defer func() {
		// bbolt panics on some kinds of page damage; a damaged file must
		// give an error, never take the caller's process down.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	// The state is built here, before anyone can read it, and published
	// whole at the end.
	s := newState()
	defer func() {
		if err == nil {
			db.st.Store(s)
		}
	}()
	return db.store.View(func(tx *storage.Tx) error {
		ms, err := tx.Schema()
		if err != nil {
			return err
		}
		for _, m := range ms {
			db.addModality(s, m)
		}
		if err := db.loadItems(tx); err != nil {
			return err
		}
		if err := loadAlignments(tx, s); err != nil {
			return err
		}
		if err := loadCalibrations(tx, s); err != nil {
			return err
		}
		db.appliedSeq = tx.Seq()
		for i := range s.schema {
			rep, err := db.loadIndex(tx, s, i)
			if err != nil {
				return err
			}
			db.report = append(db.report, rep)
			db.logReport(rep)
		}
		return nil
	})
}

// loadItems reads the ID map. It grows with the records read, never to a
// size the file claims: a damaged counter must not allocate gigabytes. It
// is sized at first for the IDs up to the last record stored (which it
// would grow to anyway), or fewer when the counter says IDs stop sooner.
func (db *DB) loadItems(tx *storage.Tx) error {
	next := tx.NextID()
	db.items.Reserve(min(uint64(next), tx.ItemsEnd()))
	return tx.ForEachRecord(0, func(id uint32, r storage.Record) (bool, error) {
		if id >= next {
			return false, fmt.Errorf("%w: item %d beyond next ID %d", ErrCorrupt, id, next)
		}
		db.items.Load(id, r.ID)
		return true, nil
	})
}

// addModality adds m to s (a state not yet published) and makes room for
// its items and checkpoint; writeMu is held or the DB is opening.
func (db *DB) addModality(s *state, m Modality) {
	db.items.AddModality() // before s is published: readers index has by it
	s.byName[m.Name] = len(s.schema)
	s.schema = append(s.schema, m)
	s.indexes = append(s.indexes, hnsw.New(m, db.indexConfig(m)))
	db.ckptSeq = append(db.ckptSeq, 0)
}

// setKind says what a modality holds an item, for errors.
func setKind(m Modality) string {
	if m.IsMulti() {
		return fmt.Sprintf("sets of vectors scored by %v", m.Multi)
	}
	return "one vector an item"
}
