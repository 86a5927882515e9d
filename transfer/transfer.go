// Package transfer moves items in and out of an mmdb database: JSON Lines
// (one item per line, the form every tool reads), NumPy .npy matrices (one
// modality's vectors), and Parquet laid out for bulk import into Milvus and
// LanceDB.
//
// Imports are batched: each batch is one atomic Put. By default the first
// bad line stops the import, with everything before its batch stored and
// nothing of its batch; with SkipBad, bad lines are counted and reported
// and the good ones stored.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mmdb-go/mmdb"
)

// ErrBadRecord: a line or row of an import could not be turned into an
// item. The error names the file and line.
var ErrBadRecord = errors.New("transfer: bad record")

// DefaultBatch is the number of items per Put in an import.
const DefaultBatch = 1000

// Options tune an import.
type Options struct {
	// Batch is the number of items per atomic Put; default DefaultBatch.
	Batch int
	// SkipBad stores the good records and counts the bad ones instead of
	// stopping at the first.
	SkipBad bool
	// Replace stores each record as the whole item (mmdb.DB.Put): a stored
	// item's attributes and modalities that the record lacks are removed.
	// By default a record is merged into the stored item (mmdb.DB.Merge):
	// its vectors replace those modalities and the others are kept, its
	// attributes replace those of the same names (null removes one) and
	// the others are kept.
	Replace bool
	// Progress, if set, is called after each batch with the items stored
	// so far and, when known, the total (else 0).
	Progress func(done, total int)
}

func (o Options) batch() int {
	if o.Batch <= 0 {
		return DefaultBatch
	}
	return o.Batch
}

// Report is what an import did.
type Report struct {
	// File is the input's name.
	File string `json:"file"`
	// Imported is the number of items stored.
	Imported int `json:"imported"`
	// Skipped is the number of records left out: bad ones (SkipBad only),
	// and media paths that are not regular files (always).
	Skipped int `json:"skipped"`
	// Reencoded is the number of stored vectors a refit made again from
	// their source files (ImportMedia with Refit).
	Reencoded int `json:"reencoded,omitempty"`
	// Errors holds the first few skipped records' errors.
	Errors []string `json:"errors,omitempty"`
}

// maxReported caps Report.Errors.
const maxReported = 20

func (r *Report) skip(err error) {
	r.Skipped++
	if len(r.Errors) < maxReported {
		r.Errors = append(r.Errors, err.Error())
	}
}

// String summarises the report on one line.
func (r Report) String() string {
	s := fmt.Sprintf("%s: imported %d items", r.File, r.Imported)
	if r.Reencoded > 0 {
		s += fmt.Sprintf(", re-encoded %d stored vectors", r.Reencoded)
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf(", skipped %d records", r.Skipped)
	}
	return s
}

// putBatch stores batch as one atomic write: Merge, or Put with replace.
// With skipBad, an item that the write refuses (an *mmdb.ItemError: bad
// dimension, unknown modality, ...) is reported through bad with its
// position in batch and left out, and the rest is stored again as one
// batch. Any other failure (a read-only or closed database, a full disk, a
// cancelled context) stops the import: it is not the records' fault.
func putBatch(ctx context.Context, db *mmdb.DB, batch []mmdb.Item, replace, skipBad bool, bad func(i int, err error)) (int, error) {
	write := db.Merge
	if replace {
		write = db.Put
	}
	return putWith(ctx, write, batch, skipBad, bad)
}

// putWith is putBatch with the write given.
func putWith(ctx context.Context, write func(context.Context, ...mmdb.Item) error, batch []mmdb.Item, skipBad bool, bad func(i int, err error)) (int, error) {
	items := slices.Clone(batch)
	pos := make([]int, len(items))
	for i := range pos {
		pos[i] = i
	}
	for len(items) > 0 {
		err := write(ctx, items...)
		if err == nil {
			return len(items), nil
		}
		var ie *mmdb.ItemError
		if !skipBad || ctx.Err() != nil || !errors.As(err, &ie) || ie.Index < 0 || ie.Index >= len(items) {
			return 0, err
		}
		bad(pos[ie.Index], err)
		items = slices.Delete(items, ie.Index, ie.Index+1)
		pos = slices.Delete(pos, ie.Index, ie.Index+1)
	}
	return 0, nil
}
