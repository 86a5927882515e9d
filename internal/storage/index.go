package storage

import (
	"bytes"
	"fmt"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
)

// LoadStats says what LoadIndex did besides loading: the changes replayed
// from the log, and the graph nodes it re-linked.
type LoadStats struct {
	Replayed, Relinked int
}

// LoadIndex loads modality m's index from its checkpoint and replays the
// log past it. It returns a nil index and the reason when the index must
// be rebuilt instead: no checkpoint, a damaged one, one older than the
// retained log or newer than the last change, or one that, replayed,
// disagrees with the stored vectors. seq is the change the checkpoint
// covers.
func (t *Tx) LoadIndex(m modality.Modality, cfg hnsw.Config) (idx hnsw.Index, seq uint64, st LoadStats, reason string, err error) {
	graph, seq, ok := t.Checkpoint(m.Name)
	if !ok {
		return nil, 0, st, "no checkpoint", nil
	}
	h := hnsw.New(m, cfg)
	// A Buffer is parsed in place (the value is valid for this read
	// transaction, and Load keeps no reference to it). A graph saved
	// without its vectors takes them from the vector bucket.
	var missing []uint32
	if ls, ok := h.(hnsw.LinkSaver); ok {
		missing, err = ls.LoadLinks(bytes.NewBuffer(graph), t.vectorReader(m.Name))
	} else {
		err = h.Load(bytes.NewBuffer(graph))
	}
	if err != nil {
		return nil, 0, st, fmt.Sprintf("damaged checkpoint: %v", err), nil
	}
	if first := t.FirstLogSeq(); seq < t.Seq() && (first == 0 || first > seq+1) {
		return nil, 0, st, fmt.Sprintf("stale checkpoint: covers change %d but the log starts at %d", seq, first), nil
	}
	if seq > t.Seq() {
		return nil, 0, st, fmt.Sprintf("checkpoint covers change %d, beyond the last logged change %d", seq, t.Seq()), nil
	}
	touched := map[uint32]struct{}{}
	if err := t.ForEachLog(seq, func(e LogEntry) error {
		if e.Modality == m.Name {
			touched[e.ID] = struct{}{}
		}
		return nil
	}); err != nil {
		return nil, 0, st, "", err
	}
	// A node whose vector is gone must be one a later change deleted or
	// replaced, which the replay below applies.
	for _, id := range missing {
		if _, ok := touched[id]; !ok {
			return nil, 0, st, fmt.Sprintf("the checkpoint holds item %d, whose %s vector is not stored", id, m.Name), nil
		}
	}
	for id := range touched {
		if v, ok := t.Vector(m.Name, id); ok && m.Count(len(v)) > 0 {
			if err := h.Add(id, v); err != nil {
				return nil, 0, st, "", err
			}
		} else {
			h.Delete(id)
		}
	}
	if stored := t.CountVectors(m.Name); h.Len() != stored {
		return nil, 0, st, fmt.Sprintf("checkpoint plus log holds %d vectors, the file %d", h.Len(), stored), nil
	}
	// A graph saved with nodes no search reaches (an older build's
	// parallel inserts) is re-linked: one walk over the links when there
	// is nothing to mend.
	if r, ok := h.(interface{ Repair() int }); ok {
		st.Relinked = r.Repair()
	}
	st.Replayed = len(touched)
	return h, seq, st, "", nil
}

// wants says what lengths modality m's values may have, for errors.
func wants(m modality.Modality) string {
	if m.IsMulti() {
		return fmt.Sprintf("want a whole number (1 to %d) of %d-d vectors", modality.MaxSet, m.Dim)
	}
	return fmt.Sprintf("want %d", m.Dim)
}
