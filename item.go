package mmdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/itemset"
	"github.com/mmdb-go/mmdb/internal/storage"
)

// MaxIDLen is the longest item ID, in bytes.
const MaxIDLen = 512

// MaxAttrs is the most attributes one item may have (each attribute name
// is a posting bucket: 100,000 names on one item held the write lock for
// half a minute).
const MaxAttrs = storage.MaxAttrs

// Item is one stored object: an ID, attributes, and at most one vector per
// modality. An item may carry any subset of the defined modalities.
type Item struct {
	// ID is the caller's identifier: 1 to MaxIDLen bytes of UTF-8.
	ID string
	// Attrs are filterable attributes, at most MaxAttrs of them. Values
	// must be strings, integers, floats, bools or []string; they are stored
	// as string, int64, float64, bool and []string, which is what Get
	// returns.
	Attrs map[string]any
	// Vectors maps a modality name to the item's vector of that modality.
	// Cosine vectors are stored normalised to unit length.
	Vectors map[string][]float32
}

// ItemError is why Put refused one item of its batch (and so the whole
// batch): Index is the item's position in the batch. Use errors.As to
// find it; it unwraps to the sentinel (ErrDimension, ...).
type ItemError struct {
	// Index is the refused item's position in the batch, ID its ID.
	Index int
	ID    string
	// Err is why: it wraps a sentinel such as ErrDimension.
	Err error
}

// Error names the batch position and the reason.
func (e *ItemError) Error() string {
	return fmt.Sprintf("batch position %d: %v", e.Index, e.Err)
}

// Unwrap gives the reason, for errors.Is.
func (e *ItemError) Unwrap() error { return e.Err }

// prepared is an item validated and converted for storage.
type prepared struct {
	ext   string
	attrs map[string]any
	drop  []string    // Merge only: attributes given as nil, to remove
	vecs  [][]float32 // by schema index; nil where the item has none
}

// change is a committed write, to apply to the in-memory state.
type change struct {
	id      uint32
	ext     string
	deleted bool
	isNew   bool
	// merged: only the modalities with a vector in vecs changed; the
	// others keep what they had. Otherwise (a Put) the item was replaced
	// whole, and a modality without a vector lost any it had.
	merged bool
	vecs   [][]float32
}

// touches reports whether c changed modality mi's vector of its item.
func (c change) touches(mi int) bool {
	if c.deleted {
		return true
	}
	if mi < len(c.vecs) && c.vecs[mi] != nil {
		return true
	}
	return !c.merged && !c.isNew
}

func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidID, len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidID)
	}
	return nil
}

// writeMode is how a write meets the stored item of the same ID.
type writeMode uint8

const (
	// writePut replaces the stored item whole (Put).
	writePut writeMode = iota
	// writeMerge merges into it, or stores a new item (Merge).
	writeMerge
	// writeUpdate merges into it, and the item must be stored (Update).
	writeUpdate
	// writeAttrs replaces the stored item's attributes whole and keeps
	// its vectors; the item must be stored (SetAttrs).
	writeAttrs
)

// merges: attributes given as nil are removals, and vectors not given
// are kept.
func (m writeMode) merges() bool { return m == writeMerge || m == writeUpdate }

// existing: the item must be stored already.
func (m writeMode) existing() bool { return m == writeUpdate || m == writeAttrs }

func (m writeMode) String() string {
	return [...]string{"put", "merge", "update", "set attributes"}[m]
}

// prepare validates one item against the schema of state s.
// With merge, an attribute given as nil is a removal (listed in drop).
func prepare(s *state, it Item, merge bool) (prepared, error) {
	if err := validateID(it.ID); err != nil {
		return prepared{}, fmt.Errorf("item %q: %w", it.ID, err)
	}
	in := it.Attrs
	var drop []string
	if merge {
		for k, v := range it.Attrs {
			if v == nil {
				if in != nil && len(drop) == 0 {
					in = maps.Clone(it.Attrs)
				}
				drop = append(drop, k)
				delete(in, k)
			}
		}
		slices.Sort(drop)
	}
	attrs, err := storage.CanonicalAttrs(in)
	if err != nil {
		return prepared{}, fmt.Errorf("item %q: %w", it.ID, err)
	}
	p := prepared{ext: it.ID, attrs: attrs, drop: drop, vecs: make([][]float32, len(s.schema))}
	for name, v := range it.Vectors {
		m, _, err := s.modality(name)
		if err != nil {
			return prepared{}, fmt.Errorf("item %q: %w", it.ID, err)
		}
		pv, err := m.Prepare(v)
		if err != nil {
			return prepared{}, fmt.Errorf("item %q: modality %q: %w", it.ID, name, err)
		}
		p.vecs[s.byName[name]] = pv
	}
	return p, nil
}

// Put stores items, replacing any existing item with the same ID whole:
// its old attributes and vectors are all replaced, and a modality the new
// version lacks is removed (Merge changes only what it is given). The
// batch is atomic: every item is validated first, and one bad item means
// nothing is written. Within a batch, a later item with a repeated ID wins.
//
// The Put that brings the logged changes to Options.CheckpointEvery also
// saves the changed graphs before it returns: a pause that grows with the
// graph (about 0.1 s at 100,000 x 128, where a 1,000-item Put takes a
// median of 0.6 s, BenchmarkCheckpointPause). Call Checkpoint at a quiet
// moment, or raise CheckpointEvery, to move it.
func (db *DB) Put(ctx context.Context, items ...Item) error {
	return db.write(ctx, items, writePut)
}

// Merge stores items, merging each into the stored item of the same ID (an
// ID not stored yet is stored as Put stores it): a vector given replaces
// that modality's vector and the other modalities keep theirs; an
// attribute given replaces the attribute of that name, an attribute given
// as nil removes it, and the other attributes are kept. Use it to relabel
// items or add a modality without resending the rest. The batch is atomic,
// as Put's; within a batch, repeated IDs merge in order.
func (db *DB) Merge(ctx context.Context, items ...Item) error {
	return db.write(ctx, items, writeMerge)
}

// Update merges items into the stored items of the same IDs, as Merge
// does, but only into stored ones: an ID not stored fails the whole batch
// with ErrNotFound, naming it, where Merge would store a new item. Use it
// to change attributes or vectors of items that must already exist (as
// Qdrant's set-payload and update-vectors).
func (db *DB) Update(ctx context.Context, items ...Item) error {
	return db.write(ctx, items, writeUpdate)
}

// SetAttrs replaces the attributes of stored items whole: each item's
// Attrs become its attributes (nil or empty removes them all), and its
// vectors are kept; an item given with vectors is refused. An ID not
// stored fails the batch with ErrNotFound. Unlike a Get then an Update,
// it is one step: a write between the two cannot leave old attributes
// beside the new ones (Qdrant's overwrite-payload).
func (db *DB) SetAttrs(ctx context.Context, items ...Item) error {
	for i, it := range items {
		if len(it.Vectors) > 0 {
			return fmt.Errorf("mmdb: set attributes: %w", &ItemError{Index: i, ID: it.ID,
				Err: fmt.Errorf("%w: item %q: SetAttrs changes attributes only (Update changes vectors)", ErrInvalidQuery, it.ID)})
		}
	}
	return db.write(ctx, items, writeAttrs)
}

// write is Put, Merge, Update and SetAttrs.
func (db *DB) write(ctx context.Context, items []Item, mode writeMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()

	s, err := db.state()
	if err != nil {
		return err
	}
	return db.writeLocked(ctx, mode.String(), s, items, mode, nil)
}

// writeLocked validates and stores items against s; also, when set, runs
// in the same transaction (a schema change that must land with the
// items). writeMu is held.
func (db *DB) writeLocked(ctx context.Context, op string, s *state, items []Item, mode writeMode, also func(*storage.Tx) error) error {
	preps := make([]prepared, len(items))
	for i, it := range items {
		p, err := prepare(s, it, mode.merges())
		if err != nil {
			return fmt.Errorf("mmdb: %s: %w", op, &ItemError{Index: i, ID: it.ID, Err: err})
		}
		preps[i] = p
	}
	names := s.names()

	changes := make([]change, 0, len(preps))
	var seq uint64
	err := db.store.Update(func(tx *storage.Tx) error {
		var post storage.PostingDelta
		for i, p := range preps {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			c, err := writeOne(tx, &post, p, names, mode)
			if errors.Is(err, ErrAttribute) || errors.Is(err, ErrNotFound) {
				return &ItemError{Index: i, ID: p.ext, Err: err} // the item's fault: SkipBad can leave it out
			}
			if err != nil {
				return err
			}
			changes = append(changes, c)
		}
		if err := tx.ApplyPostings(&post); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		seq = tx.Seq()
		return nil
	})
	if err != nil {
		return fmt.Errorf("mmdb: %s: %w", op, err)
	}
	db.apply(changes, seq)
	return nil
}

// writeOne stores one prepared item in tx: replacing the stored item whole,
// or merging into it.
func writeOne(tx *storage.Tx, post *storage.PostingDelta, p prepared, names []string, mode writeMode) (change, error) {
	merge := mode.merges()
	keepVectors := mode != writePut // vectors not given are kept
	id, exists := tx.LookupID(p.ext)
	if !exists && mode.existing() {
		return change{}, fmt.Errorf("item %q: %w (%s changes stored items only)", p.ext, ErrNotFound, mode)
	}
	var oldAttrs map[string]any
	if exists {
		old, ok, err := tx.Record(id)
		if err != nil {
			return change{}, fmt.Errorf("item %q: %w", p.ext, err)
		}
		if ok {
			oldAttrs = old.Attrs
		}
	} else {
		var err error
		if id, err = tx.AllocID(p.ext); err != nil {
			return change{}, err
		}
	}
	attrs := p.attrs
	if merge && exists {
		attrs = mergeAttrs(oldAttrs, p.attrs, p.drop)
		if len(attrs) > MaxAttrs {
			return change{}, fmt.Errorf("item %q: %w: merged, it would have %d attributes; an item holds at most %d (MaxAttrs)", p.ext, ErrAttribute, len(attrs), MaxAttrs)
		}
	}
	post.Update(id, oldAttrs, attrs)
	if err := tx.PutRecord(id, storage.Record{ID: p.ext, Attrs: attrs}); err != nil {
		return change{}, fmt.Errorf("item %q: %w", p.ext, err)
	}
	for mi, v := range p.vecs {
		switch {
		case v != nil:
			if err := tx.PutVector(names[mi], id, v); err != nil {
				return change{}, err
			}
		case !keepVectors && exists && tx.HasVector(names[mi], id):
			if err := tx.DeleteVector(names[mi], id); err != nil {
				return change{}, err
			}
		}
	}
	return change{id: id, ext: p.ext, isNew: !exists, merged: keepVectors, vecs: p.vecs}, nil
}

// mergeAttrs returns old with set's attributes replacing those of the same
// names and drop's removed; old is not modified.
func mergeAttrs(old, set map[string]any, drop []string) map[string]any {
	out := make(map[string]any, len(old)+len(set))
	maps.Copy(out, old)
	maps.Copy(out, set)
	for _, k := range drop {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// apply brings the in-memory state up to date with changes committed up
// to log sequence number seq. Only writers call it, in commit order, under
// writeMu. The item set is updated under its own lock, the indexes (which
// are safe for concurrent use) without one, in parallel, so searches go on
// during a large batch. An ID is mapped before its vectors enter an index and unmapped
// after they leave, so a search never returns a vector it cannot name.
func (db *DB) apply(changes []change, seq uint64) {
	indexes := db.st.Load().indexes
	set := make([]itemset.Change, len(changes))
	for i, c := range changes {
		set[i] = itemset.Change{ID: c.id, Ext: c.ext, Deleted: c.deleted, Vecs: c.vecs}
	}
	db.items.Added(set)

	// Later changes to the same vector win: per modality, keep the last
	// change of each ID that touched it.
	var gone [][2]uint32 // (modality, id) pairs that lost their vector
	for mi, idx := range indexes {
		last := make(map[uint32]int, len(changes))
		for i, c := range changes {
			if c.touches(mi) {
				last[c.id] = i
			}
		}
		var ids []uint32
		var vecs [][]float32
		for i, c := range changes {
			if j, ok := last[c.id]; !ok || j != i {
				continue
			}
			if !c.deleted && mi < len(c.vecs) && c.vecs[mi] != nil {
				ids, vecs = append(ids, c.id), append(vecs, c.vecs[mi])
			} else {
				idx.Delete(c.id)
				gone = append(gone, [2]uint32{uint32(mi), c.id})
			}
		}
		// Dimensions were validated, so Add should not fail; if it does,
		// the index no longer matches the file, and is rebuilt from it.
		if err := hnsw.AddParallel(context.Background(), idx, ids, vecs, 0, nil); err != nil {
			db.repairIndex(mi, err)
		}
	}

	db.items.Removed(set, gone)
	db.appliedSeq = seq
	db.maybeCheckpointLocked()
}
