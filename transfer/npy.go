package transfer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/npy"
)

// ReadIDs reads one ID per line, for ImportNPY. Blank lines (every row
// needs its ID), invalid UTF-8 and an ID given twice are errors naming the
// line.
func ReadIDs(r io.Reader, name string) ([]string, error) {
	var ids []string
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		id := strings.TrimRight(sc.Text(), "\r")
		switch first, dup := seen[id]; {
		case id == "":
			return nil, fmt.Errorf("%w: %s:%d: empty ID", ErrBadRecord, name, line)
		case !utf8.ValidString(id):
			return nil, fmt.Errorf("%w: %s:%d: not valid UTF-8", ErrBadRecord, name, line)
		case dup:
			return nil, fmt.Errorf("%w: %s:%d: ID %q repeats line %d", ErrBadRecord, name, line, id, first)
		}
		seen[id] = line
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

// ImportNPY stores the rows of a 2-D float32 or float64 .npy matrix as
// vectors of one modality; for a multi-vector modality a 3-D array (N, S,
// D) stores its [i, :, :] as item i's set of S vectors. Row i goes to item ids[i], or to item "i" (the
// row number) when ids is nil. An item that already exists keeps its
// attributes and other vectors: the row is added to it.
func ImportNPY(ctx context.Context, db *mmdb.DB, r io.Reader, name, modality string, ids []string, o Options) (Report, error) {
	return ImportNPYWith(ctx, db, r, name, modality, ids, NPYOptions{Options: o, Index: -1})
}

// NPYOptions tune ImportNPYWith.
type NPYOptions struct {
	Options
	// Index picks the matrix of a 3-D file (L, N, D): its rows are the
	// file's [Index, i, :]. It must be given (0..L-1) for such a file, and
	// be -1 for a 2-D one.
	Index int
	// Define, when the database has no such modality, defines it: a zero
	// Dim is the file's, a zero Metric Cosine.
	Define *mmdb.Modality
}

// ImportNPYWith is ImportNPY for 3-D files and modalities it defines.
func ImportNPYWith(ctx context.Context, db *mmdb.DB, r io.Reader, name, modality string, ids []string, no NPYOptions) (Report, error) {
	o := no.Options
	rep := Report{File: name}
	a, err := npy.Read(r)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: %w", ErrBadRecord, name, err)
	}
	// A 3-D file (N, S, D) without an index, for a multi-vector
	// modality: item i's set is its S vectors [i, :, :].
	set := 1
	if len(a.Shape) == 3 && no.Index < 0 && takesSets(db, modality, no.Define) {
		set = a.Shape[1]
		a.Shape = []int{a.Shape[0] * a.Shape[1], a.Shape[2]}
		if set < 1 || set > mmdb.MaxSet || set*a.Shape[1] > mmdb.MaxSetValues {
			return rep, fmt.Errorf("%w: %s: sets of %d vectors of %d values (1 to %d vectors, at most %d values)", ErrBadRecord, name, set, a.Shape[1], mmdb.MaxSet, mmdb.MaxSetValues)
		}
	}
	data, rows, dim, err := npyMatrix(a, name, no.Index)
	if err != nil {
		return rep, err
	}
	rows /= set
	if d := no.Define; d != nil && !slices.ContainsFunc(db.Modalities(), func(m mmdb.Modality) bool { return m.Name == modality }) {
		def := *d
		def.Name = modality
		if def.Dim == 0 {
			def.Dim = dim
		}
		if def.Metric == 0 {
			def.Metric = mmdb.Cosine
		}
		if err := db.DefineModality(def); err != nil {
			return rep, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Refuse a shape the modality cannot take before reading any row: a
	// file claiming a billion rows of dimension 0 would otherwise go
	// through a billion refused items.
	i := slices.IndexFunc(db.Modalities(), func(m mmdb.Modality) bool { return m.Name == modality })
	switch {
	case i < 0:
		return rep, fmt.Errorf("%s: %w %q; define it first (.define in the shell, or a schema file)", name, mmdb.ErrUnknownModality, modality)
	case db.Modalities()[i].Dim != dim:
		return rep, fmt.Errorf("%w: %s: rows of dimension %d, modality %q has %d: %w", ErrBadRecord, name, dim, modality, db.Modalities()[i].Dim, mmdb.ErrDimension)
	}
	if ids != nil && len(ids) != rows {
		return rep, fmt.Errorf("%w: %s has %d rows but %d IDs were given", ErrBadRecord, name, rows, len(ids))
	}
	var batch []mmdb.Item
	first := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := putBatch(ctx, db, batch, o.Replace, o.SkipBad, func(i int, err error) {
			rep.skip(fmt.Errorf("%s: row %d: %w", name, first+i, err))
		})
		if err != nil {
			return fmt.Errorf("%s: rows %d-%d: %w", name, first, first+len(batch)-1, err)
		}
		rep.Imported += n
		first += len(batch)
		batch = batch[:0]
		if o.Progress != nil {
			o.Progress(rep.Imported, rows)
		}
		return nil
	}
	for i := range rows {
		id := strconv.Itoa(i)
		if ids != nil {
			id = ids[i]
		}
		vec := data[i*dim*set : (i+1)*dim*set : (i+1)*dim*set]
		batch = append(batch, mmdb.Item{ID: id, Vectors: map[string][]float32{modality: vec}})
		if len(batch) >= o.batch() {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	return rep, flush()
}

// npyMatrix is the rows x dim matrix of a 2-D file, or the one a 3-D
// file holds at index.
func npyMatrix(a npy.Array, name string, index int) (data []float32, rows, dim int, err error) {
	switch {
	case len(a.Shape) == 2 && index < 0:
		return a.Data, a.Shape[0], a.Shape[1], nil
	case len(a.Shape) == 2:
		return nil, 0, 0, fmt.Errorf("%w: %s: an index (%d) for a 2-D file of shape %v", ErrBadRecord, name, index, a.Shape)
	case len(a.Shape) == 3 && (index < 0 || index >= a.Shape[0]):
		return nil, 0, 0, fmt.Errorf("%w: %s: shape %v holds %d matrices: give the index of one (0..%d)", ErrBadRecord, name, a.Shape, a.Shape[0], a.Shape[0]-1)
	case len(a.Shape) == 3:
		rows, dim = a.Shape[1], a.Shape[2]
		return a.Data[index*rows*dim : (index+1)*rows*dim], rows, dim, nil
	}
	return nil, 0, 0, fmt.Errorf("%w: %s: shape %v is not a matrix (rows x dimension) or a stack of them", ErrBadRecord, name, a.Shape)
}

// takesSets reports whether the modality named holds sets: as defined, or
// as define would define it.
func takesSets(db *mmdb.DB, name string, define *mmdb.Modality) bool {
	for _, m := range db.Modalities() {
		if m.Name == name {
			return m.IsMulti()
		}
	}
	return define != nil && define.IsMulti()
}
