package mmdb

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
)

// IndexReport says how Open brought up one modality's index.
type IndexReport struct {
	// Modality is the modality's name.
	Modality string
	// Action is "loaded" (from its checkpoint, plus Replayed log entries)
	// or "rebuilt" (from the stored vectors).
	Action string
	// Reason says why an index was rebuilt: no checkpoint, a damaged or
	// stale one, or one that disagreed with the stored vectors.
	Reason string
	// Replayed is the number of logged changes applied on top of the
	// checkpoint.
	Replayed int
	// Relinked is the number of vectors of a loaded graph that no search
	// could reach, re-linked at load.
	Relinked int
	// Vectors is the number of vectors in the index.
	Vectors int
	// Took is how long it took.
	Took time.Duration
}

// Warnings returns what the database could not do but worked around since
// Open: saving rebuilt indexes on a full disk (they are then served from
// memory, and the next Open rebuilds again), or an index that failed to
// take a committed change and was rebuilt from the file. Empty when all
// went well.
func (db *DB) Warnings() []string {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return append([]string(nil), db.warnings...)
}

// OpenReport returns what Open did with each modality's index.
func (db *DB) OpenReport() []IndexReport {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return append([]IndexReport(nil), db.report...)
}

func (db *DB) logReport(r IndexReport) {
	if db.opts.Logger == nil {
		return
	}
	attrs := []any{"modality", r.Modality, "vectors", r.Vectors, "replayed", r.Replayed, "took", r.Took}
	if r.Action == "rebuilt" {
		db.opts.Logger.Warn("mmdb: index rebuilt from stored vectors", append(attrs, "reason", r.Reason)...)
	} else {
		db.opts.Logger.Info("mmdb: index loaded from checkpoint", attrs...)
	}
}

// loadIndex brings up modality i's index inside Open's read transaction:
// from its checkpoint and the log when they agree with the stored vectors
// (storage.LoadIndex), else rebuilt from the vectors. A derived structure
// never stops Open.
func (db *DB) loadIndex(tx *storage.Tx, s *state, i int) (IndexReport, error) {
	m := s.schema[i]
	start := time.Now()
	rep := IndexReport{Modality: m.Name, Action: "loaded"}
	idx, seq, stats, reason, err := tx.LoadIndex(m, db.indexConfig(m))
	if err != nil {
		return rep, err
	}
	if idx != nil {
		if err := db.fillHas(tx, m.Name, i); err != nil {
			return rep, err
		}
		s.indexes[i] = idx
		db.ckptSeq[i] = seq
		rep.Replayed, rep.Relinked, rep.Vectors, rep.Took = stats.Replayed, stats.Relinked, idx.Len(), time.Since(start)
		return rep, nil
	}
	idx, ids, err := db.rebuildIndex(tx, m)
	if err != nil {
		return rep, err
	}
	s.indexes[i] = idx
	db.ckptSeq[i] = 0
	db.items.SetWith(i, roaring.BitmapOf(ids...))
	rep.Action, rep.Reason = "rebuilt", reason
	rep.Vectors, rep.Took = idx.Len(), time.Since(start)
	return rep, nil
}

// rebuildIndex builds modality m's index from its stored vectors, on every
// core, and returns it with the IDs it holds.
func (db *DB) rebuildIndex(tx *storage.Tx, m Modality) (hnsw.Index, []uint32, error) {
	var progress func(int, int)
	if db.opts.Progress != nil {
		progress = func(done, total int) { db.opts.Progress("rebuild "+m.Name+" index", done, total) }
	}
	return tx.RebuildIndex(m, db.indexConfig(m), progress)
}

// repairIndex replaces modality i's index, which failed to take a
// committed change (cause), by one rebuilt from the stored vectors: the
// file is the truth, and a search must not miss what Put acknowledged.
// writeMu is held. If even the rebuild fails, the modality's searches
// fail with ErrIndex until the next Open.
func (db *DB) repairIndex(i int, cause error) {
	m := db.st.Load().schema[i]
	var idx hnsw.Index
	var ids []uint32
	err := db.store.View(func(tx *storage.Tx) error {
		var err error
		idx, ids, err = db.rebuildIndex(tx, m)
		return err
	})
	msg := fmt.Sprintf("the %s index failed to take a change (%v) and was rebuilt from the stored vectors", m.Name, cause)
	if err != nil {
		broken := fmt.Errorf("%w: the %s index failed to take a change (%v) and could not be rebuilt (%v); reopen the database", ErrIndex, m.Name, cause, err)
		db.update(func(s *state) { s.broken[m.Name] = broken })
		msg = broken.Error()
	} else {
		db.items.SetWith(i, roaring.BitmapOf(ids...))
		db.update(func(s *state) { s.indexes[i] = idx })
		db.ckptSeq[i] = 0 // saved again at the next checkpoint
	}
	db.warnings = append(db.warnings, msg)
	if db.opts.Logger != nil {
		db.opts.Logger.Error("mmdb: " + msg)
	}
}

// fillHas records which items have a vector of modality i: a key scan of
// the vector bucket, no vectors decoded.
func (db *DB) fillHas(tx *storage.Tx, name string, i int) error {
	bm := roaring.New()
	err := tx.ForEachVectorID(name, func(id uint32) { bm.Add(id) })
	db.items.SetWith(i, bm)
	return err
}

// Checkpoint saves every index changed since its last checkpoint into the
// file, so the next Open loads it instead of replaying or rebuilding.
// mmdb checkpoints by itself every Options.CheckpointEvery changes and on
// Close; call this before copying the file by other means. A graph whose
// codes' centre has gone stale is re-centred first (hnsw.HNSW.Recentre),
// holding its searches for the re-encoding.
func (db *DB) Checkpoint(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if _, err := db.readNames(); err != nil {
		return err
	}
	if db.readOnly {
		return fmt.Errorf("mmdb: checkpoint: database is read-only")
	}
	return db.checkpointLocked()
}

// checkpointLocked saves the changed graphs and trims the log, in one
// transaction. writeMu is held, so the indexes reflect exactly appliedSeq.
func (db *DB) checkpointLocked() error {
	s := db.st.Load()
	indexes, schema := s.indexes, s.schema
	start := time.Now()
	type saved struct {
		i     int
		graph []byte
	}
	var todo []saved
	for i, idx := range indexes {
		if db.ckptSeq[i] == db.appliedSeq && db.appliedSeq != 0 {
			continue
		}
		if r, ok := idx.(hnsw.Recentrer); ok {
			r.Recentre() // the codes' centre follows the data (hnsw/centre.go)
		}
		var buf bytes.Buffer
		save := idx.Save
		if ls, ok := idx.(hnsw.LinkSaver); ok {
			save = ls.SaveLinks // the vectors are in the file already
		}
		if err := save(&buf); err != nil {
			return err
		}
		todo = append(todo, saved{i, buf.Bytes()})
	}
	if len(todo) == 0 {
		return nil
	}
	seq := db.appliedSeq
	err := db.store.Update(func(tx *storage.Tx) error {
		for _, s := range todo {
			if err := tx.PutCheckpoint(schema[s.i].Name, seq, s.graph); err != nil {
				return err
			}
		}
		// Keep the log past the oldest checkpoint that stays as it was.
		saving := map[int]bool{}
		for _, s := range todo {
			saving[s.i] = true
		}
		oldest := seq
		for i, c := range db.ckptSeq {
			if !saving[i] {
				oldest = min(oldest, c)
			}
		}
		return tx.TrimLog(oldest)
	})
	if err != nil {
		return fmt.Errorf("mmdb: checkpoint: %w", err)
	}
	for _, s := range todo {
		db.ckptSeq[s.i] = seq
	}
	if db.opts.Logger != nil {
		db.opts.Logger.Info("mmdb: checkpoint", "indexes", len(todo), "seq", seq, "took", time.Since(start))
	}
	return nil
}

// maybeCheckpointLocked checkpoints when the log has grown past
// Options.CheckpointEvery since the oldest checkpoint. writeMu is held.
func (db *DB) maybeCheckpointLocked() {
	oldest := db.appliedSeq
	for _, c := range db.ckptSeq {
		oldest = min(oldest, c)
	}
	if db.appliedSeq-oldest < uint64(db.opts.CheckpointEvery) {
		return
	}
	if err := db.checkpointLocked(); err != nil && db.opts.Logger != nil {
		// The log still holds every change: a failed checkpoint costs
		// replay time on the next Open, never data.
		db.opts.Logger.Error("mmdb: checkpoint failed", "err", err)
	}
}
