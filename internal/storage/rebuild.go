package storage

import (
	"context"
	"fmt"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
)

// RebuildIndex builds modality m's index from its stored vectors, on every
// core, and returns it with the IDs it holds. progress, if set, is called
// with the vectors added so far and the total.
//
// The vectors are decoded into one reused buffer and added a buffer at a
// time (rebuildBatchBytes), so a rebuild holds the index and one batch,
// not every vector besides the index: under hnsw.Config.Source
// (Options.LowMemory) the index keeps no vectors at all, and gathering
// them first would take the memory that mode saves.
func (t *Tx) RebuildIndex(m modality.Modality, cfg hnsw.Config, progress func(done, total int)) (hnsw.Index, []uint32, error) {
	stored := t.CountVectors(m.Name)
	r := &rebuild{m: m, idx: hnsw.New(m, cfg), stored: stored, ids: make([]uint32, 0, stored), progress: progress}
	if err := t.forEachRawVector(m.Name, r.take); err != nil {
		return nil, nil, err
	}
	if err := r.flush(); err != nil {
		return nil, nil, err
	}
	return r.idx, r.ids, nil
}

// rebuildBatchBytes is how many bytes of vectors RebuildIndex decodes
// before it adds them: large enough that a batch's inserts spread over
// every core and the re-linking check AddParallel ends a batch with costs
// little beside them, small beside any index worth rebuilding in batches.
var rebuildBatchBytes = 8 << 20

// rebuild is RebuildIndex's state: the vectors decoded and not yet added
// (batch, backed by buf), and the IDs of all read so far.
type rebuild struct {
	m        modality.Modality
	idx      hnsw.Index
	stored   int
	ids      []uint32 // every ID read; the batch's are the last len(batch)
	done     int      // how many of ids are in idx
	buf      []float32
	batch    [][]float32
	progress func(done, total int)
}

// take decodes one stored vector into the batch, adding the batch first
// when the vector does not fit in what is left of the buffer.
func (r *rebuild) take(id uint32, v []byte) error {
	n := len(v) / 4
	if r.m.Count(n) == 0 {
		return fmt.Errorf("%w: item %d: %s vector has %d values, %s", ErrCorrupt, id, r.m.Name, n, wants(r.m))
	}
	if len(r.buf)+n > cap(r.buf) {
		limit := rebuildBatchBytes / 4
		if cap(r.buf) >= limit {
			if err := r.flush(); err != nil {
				return err
			}
		}
		if len(r.buf)+n > cap(r.buf) {
			// Grown by doubling up to the limit, from what the vectors
			// of a single-vector modality take (the batch keeps the old
			// buffer's vectors until it is added).
			c := min(limit, max(2*cap(r.buf), r.stored*r.m.Dim))
			r.buf = make([]float32, 0, max(n, c))
		}
	}
	at := len(r.buf)
	r.buf = r.buf[:at+n]
	decodeInto(r.buf[at:], v)
	r.ids, r.batch = append(r.ids, id), append(r.batch, r.buf[at:at+n:at+n])
	return nil
}

// flush adds the batch to the index (the index copies what it keeps, so
// the buffer is then free for the next batch).
func (r *rebuild) flush() error {
	if len(r.batch) == 0 {
		return nil
	}
	ids, vecs := r.ids[r.done:], r.batch
	if r.done == 0 {
		took, err := reserve(r.idx, r.stored, ids[0], vecs[0])
		if err != nil {
			return fmt.Errorf("building the %s index: id %d: %w", r.m.Name, ids[0], err)
		}
		if took {
			r.done++
			ids, vecs = ids[1:], vecs[1:]
		}
	}
	var step func(int)
	if r.progress != nil {
		step = func(d int) { r.progress(r.done+d, r.stored) }
	}
	if err := hnsw.AddParallel(context.Background(), r.idx, ids, vecs, 0, step); err != nil {
		return fmt.Errorf("building the %s index: %w", r.m.Name, err)
	}
	r.done, r.buf, r.batch = len(r.ids), r.buf[:0], r.batch[:0]
	return nil
}

// reserve sizes idx, when it can be, for total vectors at once, so that a
// rebuild in batches grows it once rather than by doubling. An empty graph
// must take its first vector (id, v) before it can be sized (it becomes
// the codes' centre); took says it did.
func reserve(idx hnsw.Index, total int, id uint32, v []float32) (took bool, err error) {
	r, ok := idx.(interface{ Reserve(int) bool })
	if !ok || r.Reserve(total) {
		return false, nil
	}
	if err := idx.Add(id, v); err != nil {
		return false, err
	}
	r.Reserve(total - 1)
	return true, nil
}
