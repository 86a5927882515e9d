package mmdb

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/itemset"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
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
	// Timeout bounds the wait for another process's lock on the file:
	// past it, Open fails with ErrLocked. Zero means DefaultTimeout; a
	// negative value waits as long as it takes.
	Timeout time.Duration
	// NoSync skips fsync on commit: much faster bulk loads, at the risk of
	// losing the latest commits on power failure (not on a process crash).
	NoSync bool
	// ReadOnly opens the file shared and refuses writes.
	ReadOnly bool
	// Index tunes every modality's HNSW graph: M (links per node, default
	// 16), EfConstruction (default 200) and EfSearch (the default beam
	// width of a search, 64). Higher values trade speed for recall. A graph
	// loaded from a checkpoint keeps the M and ef settings it was built
	// with; Float32Walk (walk on float32 vectors instead of byte codes) and
	// Seed are taken from these options at every Open.
	Index hnsw.Config
	// LowMemory keeps a modality's float32 vectors out of memory: its
	// graph holds a byte a component (its codes) and its links, walks on
	// the codes, and reads back from the file the vectors of the k nodes
	// it found closest on codes (k the results asked for), and of those
	// others whose distance on codes could still put them in the top k,
	// to re-score them, so results still carry exact scores in exact
	// order; links are chosen on distances between codes. A loaded 128-d
	// graph then holds about 300 bytes a vector instead of 810, at
	// 0.61-0.77x the queries per second at ef 16-32 (the lower end at ef
	// 16, where the ten or so vectors read back, each a search of the
	// file's B+tree, cost about as much as a whole default search) and
	// recall within 0.004 of the default's where both walk the graph
	// (BENCHMARKS.md, "Seventh round", "Eleventh round" and "Twelfth
	// round"). Opening reads each vector once, to
	// compute its codes, without holding them all: a 128-d Open peaks near
	// 370 bytes a vector (880 by default), a rebuild near 480. A search,
	// Evaluate, Align or Calibrate whose vectors cannot be read back (the
	// file closed or damaged under it) fails with the cause. Multi-vector
	// modalities keep their vectors in memory. The codes are quantized
	// around a centre, at first the graph's first vector; links are chosen
	// on them, so data far from it loses recall. The graph checks it as it
	// grows and at each checkpoint, and moves it to the data's mean when
	// the data has drifted away (hnsw/centre.go): with the older half of
	// the items deleted and the newer half moved by a random offset,
	// recall@10 went from 0.92 to 1.00 at the checkpoint
	// (TestLowMemoryFollowsDrift). Index.Source is set by the database:
	// one given there is ignored.
	LowMemory bool
	// CheckpointEvery is how many logged vector changes may accumulate
	// before the graphs are saved into the file (DefaultCheckpointEvery when
	// zero). Open replays at most this many changes; a checkpoint costs a
	// write of every changed graph, paid by the Put or Merge that reaches
	// the count (see Put). Graphs are also saved on Close.
	CheckpointEvery int
	// Logger, if set, receives what Open did with each index (loaded,
	// replayed, rebuilt and why) and checkpoint timings.
	Logger *slog.Logger
	// Progress, if set, is called during long work (index rebuilds) with
	// the stage, the work done and the total.
	Progress func(stage string, done, total int)
	// ExactCutoff: when a filter leaves at most this many candidates, the
	// planner scans them exactly instead of walking the graph. Zero uses a
	// cost model fitted to the benchmark's filtered sweeps
	// (hnsw.ExactCutoff): sqrt(32 * ef * n) for n target vectors (14k at
	// 100k vectors and ef 64), and every search of an index of at most
	// 100 * ef vectors, so small databases are always scanned exactly.
	// Whatever the cutoff, a filtered walk that finds the allowed vectors
	// away from the query is done again as a scan (Plan.Rescans).
	ExactCutoff int
	// NoFileProbes refuses probes that name a file (Probe.File, FILE
	// '...' in statements): for a database that runs statements from
	// people who must not read the host's files through it. Probes of
	// bytes (Probe.Data) and text still work.
	NoFileProbes bool
}

// DefaultTimeout is how long Open waits for another process's lock on the
// file when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// DefaultCheckpointEvery is the default for Options.CheckpointEvery.
const DefaultCheckpointEvery = 50_000

// DB is an open mmdb database. It is safe for concurrent use.
type DB struct {
	store    *storage.Store
	readOnly bool
	indexCfg hnsw.Config
	opts     Options

	// Guarded by writeMu: the sequence number of the last change applied to
	// the indexes, and the one each modality's saved graph covers.
	appliedSeq uint64
	ckptSeq    []uint64
	report     []IndexReport
	warnings   []string // what could not be done but was worked around, for Warnings

	// writeMu serialises writers: one bbolt write transaction at a time,
	// and index updates in commit order.
	writeMu sync.Mutex

	// st is the schema and what hangs off it, replaced whole by writers
	// and read with one atomic load (state.go); items is the map of items,
	// with its own lock.
	st    atomic.Pointer[state]
	items *itemset.Set

	// closing is cancelled when Close starts: long measurements (Align,
	// Calibrate, Evaluate) stop then instead of running to the end.
	closing     context.Context
	stopClosing context.CancelFunc

	// readBack counts the failed reads of vectors back from the file
	// (Options.LowMemory), the last one's error in readBackErr.
	readBack    atomic.Int64
	readBackErr atomic.Pointer[error]
}

// measuring returns ctx, cancelled too when the database starts closing,
// for the long measurements; done releases it. Its Err reports the
// closing at once: the cancel that closes its Done channel runs in a
// goroutine of its own (context.AfterFunc), and a fit that polled Err
// in between went on after Close had returned (TestCloseStopsAlign, seen
// once in four CI runs under load).
func (db *DB) measuring(ctx context.Context) (c context.Context, done func()) {
	c, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(db.closing, cancel)
	return closingCtx{c, db.closing}, func() { stop(); cancel() }
}

// closingCtx is a context whose Err also reports closing's, synchronously.
type closingCtx struct {
	context.Context
	closing context.Context
}

// Err implements context.Context.
func (c closingCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.closing.Err() != nil {
		return context.Canceled
	}
	return nil
}

// closedErr is err, or ErrClosed when the database closing cancelled it.
func (db *DB) closedErr(err error) error {
	if err != nil && db.closing.Err() != nil && errors.Is(err, context.Canceled) {
		return ErrClosed
	}
	return err
}

// Open opens the database at path, creating it if it does not exist, and
// builds each modality's index from the stored vectors. A file that is not
// an mmdb database fails with ErrNotDatabase, one written by a newer mmdb
// with ErrVersion; either way the file is left untouched.
func Open(path string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait as long as it takes
	}
	st, err := storage.Open(path, &storage.Options{Timeout: timeout, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("mmdb: %w", err)
	}
	if !opts.ReadOnly {
		// What a killed Restore to this path left behind.
		storage.RemoveStaleTemps(path)
	}
	db := &DB{store: st, readOnly: opts.ReadOnly, indexCfg: opts.Index, opts: *opts, items: itemset.New()}
	db.closing, db.stopClosing = context.WithCancel(context.Background())
	if db.opts.CheckpointEvery <= 0 {
		db.opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if err := db.load(); err != nil {
		st.Close()
		return nil, fmt.Errorf("mmdb: open %s: %w", path, err)
	}
	rebuilt := false
	for _, r := range db.report {
		rebuilt = rebuilt || r.Action == "rebuilt"
	}
	if rebuilt && !db.readOnly {
		// Save the rebuilt graphs now, so the next Open is fast again. A
		// graph is derived data: when it cannot be saved (a full disk),
		// the database is served from memory and the next Open rebuilds.
		db.writeMu.Lock()
		err = db.checkpointLocked()
		db.writeMu.Unlock()
		if err != nil {
			db.warnings = append(db.warnings, fmt.Sprintf("rebuilt indexes could not be saved (%v); they are served from memory and the next Open rebuilds them", err))
			if db.opts.Logger != nil {
				db.opts.Logger.Warn("mmdb: rebuilt indexes could not be saved; serving them from memory", "err", err)
			}
		}
	}
	return db, nil
}

// Close saves every index changed since its last checkpoint into the file
// and releases it. Calls after Close return ErrClosed; a second Close is a
// no-op.
func (db *DB) Close() error {
	db.stopClosing() // long measurements stop (with ErrClosed) instead of finishing first
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if db.st.Load().closed {
		return nil
	}
	var ckErr error
	if !db.readOnly {
		ckErr = db.checkpointLocked()
	}
	db.st.Store(&state{closed: true})
	if err := db.store.Close(); err != nil {
		return err
	}
	if ckErr != nil {
		return fmt.Errorf("mmdb: close: saving indexes (they will be rebuilt or replayed on the next Open; no data is lost): %w", ckErr)
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.store.Path() }

// DefineModality adds a modality to the schema, persistently. Defining an
// existing name again with the same Dim, Metric and Space (and the same
// encoder, or none given) is a no-op; with different ones it fails with
// ErrModalityConflict. Modalities can be added to a database that already
// holds items. With an Encoder, a zero Dim is the encoder's and a zero
// Metric is Cosine. Defining an existing modality again may move its
// remote encoder's server (URL, key variable), and may give a fitted
// standardisation to one that holds no vectors yet.
func (db *DB) DefineModality(m Modality) error {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("mmdb: %w", err)
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	s, err := db.state()
	if err != nil {
		return err
	}
	if i, exists := s.byName[m.Name]; exists {
		return db.redefine(s, s.schema[i], m)
	}
	if err := sharesSpaceWith(s, m); err != nil {
		return err
	}
	if err := db.store.Update(func(tx *storage.Tx) error { return tx.DefineModality(m) }); err != nil {
		return fmt.Errorf("mmdb: define modality %q: %w", m.Name, err)
	}
	db.update(func(s *state) { db.addModality(s, m) })
	return nil
}

// redefine is DefineModality of a modality s has as old; writeMu is held.
// The same definition is a no-op, and so is one without an encoder. A
// remote encoder's server may move (URL, key variable). A fitted
// standardisation may be given to a modality that holds no vectors yet;
// any other change is ErrModalityConflict.
func (db *DB) redefine(s *state, old, m Modality) error {
	conflict := func(what string) error {
		return fmt.Errorf("mmdb: %w: %q is %d-d %v in space %q made by %s; asked for %d-d %v in space %q made by %s%s",
			ErrModalityConflict, m.Name, old.Dim, old.Metric, old.SpaceName(), specName(old.Encoder), m.Dim, m.Metric, m.SpaceName(), specName(m.Encoder), what)
	}
	switch {
	case !old.Compatible(m):
		return conflict("")
	case old.Multi != m.Multi:
		return fmt.Errorf("mmdb: %w: %q holds %s; asked for %s", ErrModalityConflict, m.Name, setKind(old), setKind(m))
	case m.Encoder == nil:
		return nil
	case !old.SameEncoder(m):
		return conflict(" (SetEncoder changes the encoder, with every vector re-encoded)")
	case m.Encoder.Scaler != nil && !sameSpec(old.Encoder, m.Encoder) && db.items.WithCount(s.byName[m.Name]) > 0:
		return conflict(": standardised differently, and it holds vectors (a refit re-encodes them)")
	}
	next := old
	next.Encoder = m.Encoder
	if m.Encoder.Scaler == nil {
		keep := *m.Encoder
		keep.Scaler = old.Encoder.Scaler
		next.Encoder = &keep
	}
	if reflect.DeepEqual(next.Encoder, old.Encoder) {
		return nil
	}
	if err := db.store.Update(func(tx *storage.Tx) error { return tx.ReplaceModality(next) }); err != nil {
		return fmt.Errorf("mmdb: define modality %q: %w", m.Name, err)
	}
	db.update(func(s *state) { s.schema[s.byName[m.Name]] = next })
	return nil
}

// Modalities returns the schema in definition order.
func (db *DB) Modalities() []Modality {
	return append([]Modality(nil), db.st.Load().schema...)
}

// Count returns the number of items.
func (db *DB) Count() int { return db.items.Size() }

// specName names an encoder for messages.
func specName(s *encoder.Spec) string {
	if s == nil {
		return "none"
	}
	return s.String()
}
