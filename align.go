package mmdb

import (
	"fmt"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/storage"
	"github.com/vmihailenco/msgpack/v5"
)

// RouteAligned is the route of a probe projected into the target's space
// by a stored Alignment.
const RouteAligned = "aligned"

// Alignment is a linear map from one modality's space into another's:
// y = W x + Bias, then normalised when the target is Cosine. The planner
// uses a stored alignment from a probe's modality to the target (the
// aligned route) before it falls back to pivoting.
type Alignment struct {
	// From and To name the modalities.
	From string `msgpack:"from"`
	To   string `msgpack:"to"`
	// W has one row per To dimension, each with one weight per From
	// dimension.
	W [][]float32 `msgpack:"w"`
	// Bias has To's dimension, or is empty.
	Bias []float32 `msgpack:"b,omitempty"`
	// Method says how the map was made ("ridge", "procrustes", ...).
	Method string `msgpack:"method,omitempty"`
}

// project maps x through the alignment.
func (a *Alignment) project(x []float32) []float32 {
	y := make([]float32, len(a.W))
	for i, row := range a.W {
		y[i] = modality.DotProduct(row, x)
		if len(a.Bias) > 0 {
			y[i] += a.Bias[i]
		}
	}
	return y
}

func (a *Alignment) validate(from, to Modality) error {
	if len(a.W) != to.Dim {
		return fmt.Errorf("%w: alignment %s->%s has %d rows, %s has dimension %d", ErrInvalidQuery, a.From, a.To, len(a.W), to.Name, to.Dim)
	}
	for i, row := range a.W {
		if len(row) != from.Dim {
			return fmt.Errorf("%w: alignment %s->%s row %d has %d weights, %s has dimension %d", ErrInvalidQuery, a.From, a.To, i, len(row), from.Name, from.Dim)
		}
	}
	if len(a.Bias) != 0 && len(a.Bias) != to.Dim {
		return fmt.Errorf("%w: alignment %s->%s bias has %d values, want %d", ErrInvalidQuery, a.From, a.To, len(a.Bias), to.Dim)
	}
	return nil
}

// SetAlignment stores a projection from a.From to a.To, replacing any
// earlier one; searches from a.From to a.To use it at once (the aligned
// route).
func (db *DB) SetAlignment(a Alignment) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	from, _, err1 := db.modalityLocked(a.From)
	to, _, err2 := db.modalityLocked(a.To)
	db.mu.RUnlock()
	if err1 != nil {
		return fmt.Errorf("mmdb: alignment: %w", err1)
	}
	if err2 != nil {
		return fmt.Errorf("mmdb: alignment: %w", err2)
	}
	if err := a.validate(from, to); err != nil {
		return fmt.Errorf("mmdb: %w", err)
	}
	data, err := msgpack.Marshal(&a)
	if err != nil {
		return err
	}
	if err := db.store.Update(func(tx *storage.Tx) error { return tx.PutAlignment(a.From, a.To, data) }); err != nil {
		return fmt.Errorf("mmdb: alignment: %w", err)
	}
	db.mu.Lock()
	db.aligns[[2]string{a.From, a.To}] = &a
	db.mu.Unlock()
	return nil
}

// loadAlignments reads the stored projections at Open.
func (db *DB) loadAlignments(tx *storage.Tx) error {
	return tx.ForEachAlignment(func(data []byte) error {
		var a Alignment
		if err := msgpack.Unmarshal(data, &a); err != nil {
			return fmt.Errorf("%w: alignment: %v", ErrCorrupt, err)
		}
		from, ok1 := db.byName[a.From]
		to, ok2 := db.byName[a.To]
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: alignment %s->%s names an unknown modality", ErrCorrupt, a.From, a.To)
		}
		if err := a.validate(db.schema[from], db.schema[to]); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		db.aligns[[2]string{a.From, a.To}] = &a
		return nil
	})
}
