package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mmdb-go/mmdb"
)

// Target is a distributed engine an export is laid out for.
type Target string

// The engines ExportFor writes for.
const (
	// LanceDB: a Parquet file per modality whose vector column is
	// FixedSizeList<float32, dim> named "vector" (LanceDB's default), with
	// the Arrow schema stored in the file so that Arrow readers
	// (pyarrow, arrow-rs, LanceDB's) see the fixed size.
	LanceDB Target = "lancedb"
	// Milvus: a Parquet file per modality for Milvus's bulk import, and
	// beside it the create-collection request (JSON for Milvus's REST v2
	// API) whose schema matches the file: names Milvus accepts, no null
	// vectors, typed scalar fields.
	Milvus Target = "milvus"
)

// ParseTarget reads a target's name.
func ParseTarget(s string) (Target, error) {
	switch t := Target(strings.ToLower(s)); t {
	case LanceDB, Milvus:
		return t, nil
	}
	return "", fmt.Errorf("transfer: unknown export target %q (want lancedb or milvus)", s)
}

// Milvus's limits (its defaults: proxy.maxFieldNum, maxDimension, the
// VarChar, Array and JSON limits) that decide what gets a typed column,
// and what is refused.
const (
	milvusMaxVarChar  = 65_535
	milvusMaxCapacity = 4096
	milvusMaxName     = 255
	milvusMaxFields   = 64
	milvusMaxDim      = 32_768
	milvusMaxJSON     = 65_536
	// DefaultRowGroup is how many rows ExportFor writes a row group.
	DefaultRowGroup = 16_384
)

// ForOptions tune ExportFor; nil takes the defaults.
type ForOptions struct {
	// Modalities limits the export to these (default: every single-vector
	// modality; a multi-vector one named here is refused).
	Modalities []string
	// Collection prefixes Milvus collection names (default "mmdb"): the
	// collection of modality m is PREFIX_m.
	Collection string
	// RowGroup is the rows per Parquet row group (DefaultRowGroup).
	RowGroup int
	// Progress, if set, is called with the items read and the total.
	Progress func(done, total int)
}

// ForFile is one file ExportFor wrote, and how the database's names map to
// its columns.
type ForFile struct {
	Modality string `json:"modality"`
	Path     string `json:"path"`
	Rows     int    `json:"rows"`
	// Vector is the vector column; Dim and Metric its length and metric.
	Vector string `json:"vector_column"`
	Dim    int    `json:"dim"`
	Metric string `json:"metric"`
	// Columns maps each attribute to its column (JSON is "attrs": the
	// attributes whose type is not uniform, as a JSON object).
	Columns []ForColumn `json:"columns"`
	// Collection and Schema: for Milvus, the collection name and the file
	// holding the create-collection request.
	Collection string `json:"collection,omitempty"`
	Schema     string `json:"schema,omitempty"`
}

// ForColumn is one attribute's column.
type ForColumn struct {
	Attr     string `json:"attr"`
	Column   string `json:"column"`
	Type     string `json:"type"` // string, int64, double, bool, string_list, json
	Nullable bool   `json:"nullable"`
}

// jsonColumn holds the attributes without a uniform type.
const jsonColumn = "attrs"

// ExportFor writes, for each modality, a Parquet file in dir holding the
// items that carry it (so no vector is null): an "id" column, the vector
// column, one typed column for each attribute whose values have one type
// (nullable where some items lack it), and the other attributes as a JSON
// object in "attrs". Names are mapped to what the target accepts (the
// returned files say how). It reads the database twice (the column types,
// then the rows) and streams rows in row groups. An item changed between
// the two readings so that its row would not match the schema (a value of
// another type, a longer string or list, an attribute gained or lost, an
// item deleted and stored again) fails the export, naming it: for a
// database being written meanwhile, export a Snapshot of it. The files are
// written beside their final names and renamed into place only when every
// one is complete; on failure none is left.
func ExportFor(ctx context.Context, db *mmdb.DB, dir string, target Target, o *ForOptions) ([]ForFile, error) {
	if o == nil {
		o = &ForOptions{}
	}
	if _, err := ParseTarget(string(target)); err != nil {
		return nil, err
	}
	prefix := o.Collection
	if prefix == "" {
		prefix = "mmdb"
	}
	if target == Milvus && !milvusName.MatchString(prefix) {
		return nil, fmt.Errorf("transfer: collection prefix %q: Milvus names are letters, digits and _, not starting with a digit", prefix)
	}
	mods, err := exportModalities(db, o.Modalities, target)
	if err != nil {
		return nil, err
	}
	stats, err := scanAttrs(ctx, db, mods)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rowGroup := o.RowGroup
	if rowGroup <= 0 {
		rowGroup = DefaultRowGroup
	}
	files, err := openFiles(dir, target, mods, stats, prefix, rowGroup)
	defer func() {
		for _, f := range files {
			f.abort()
		}
	}()
	if err != nil {
		return nil, err
	}
	done, total := 0, db.Count()
	for it, err := range db.Items(ctx) {
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := f.add(it); err != nil {
				return nil, err
			}
		}
		if done++; o.Progress != nil && done%1000 == 0 {
			o.Progress(done, total)
		}
	}
	for _, f := range files {
		if err := f.finish(); err != nil {
			return nil, err
		}
	}
	// Every file is complete: now they take their names.
	out := make([]ForFile, 0, len(files))
	for _, f := range files {
		if err := f.publish(); err != nil {
			for _, done := range out { // all or none
				os.Remove(done.Path)
				if done.Schema != "" {
					os.Remove(done.Schema)
				}
			}
			return nil, err
		}
		out = append(out, f.info)
	}
	files = nil
	if o.Progress != nil {
		o.Progress(done, total)
	}
	return out, nil
}

// openFiles plans each modality's file (names, columns) and opens its
// writer.
func openFiles(dir string, target Target, mods []mmdb.Modality, stats map[string]*modStats, prefix string, rowGroup int) ([]*modFile, error) {
	bases := newNamer(Milvus, "") // file names: the strict rules suit every file system
	var files []*modFile
	for _, m := range mods {
		f, err := newModFile(dir, bases.assign([]string{m.Name})[m.Name], target, m, stats[m.Name], prefix, rowGroup)
		if err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}

// exportModalities resolves the modalities to export: the named ones (each
// once), or every single-vector one.
func exportModalities(db *mmdb.DB, names []string, target Target) ([]mmdb.Modality, error) {
	all := db.Modalities()
	var out []mmdb.Modality
	if len(names) == 0 {
		for _, m := range all {
			if !m.IsMulti() {
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("transfer: the database has no single-vector modality to export")
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		i := indexOf(all, n)
		switch {
		case i < 0:
			return nil, fmt.Errorf("transfer: %w: %q", mmdb.ErrUnknownModality, n)
		case seen[n]:
			return nil, fmt.Errorf("transfer: modality %q is named twice", n)
		case all[i].IsMulti():
			return nil, fmt.Errorf("transfer: modality %q holds sets of vectors: Milvus and LanceDB exports hold one vector an item (export it as JSONL)", n)
		}
		seen[n] = true
		out = append(out, all[i])
	}
	if target == Milvus {
		for _, m := range out {
			if m.Dim > milvusMaxDim {
				return nil, fmt.Errorf("transfer: modality %q: %d dimensions, and a Milvus vector field holds at most %d", m.Name, m.Dim, milvusMaxDim)
			}
		}
	}
	return out, nil
}

func indexOf(mods []mmdb.Modality, name string) int {
	for i, m := range mods {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// attrStat is what the first reading learnt of one attribute among the
// items carrying one modality.
type attrStat struct {
	kinds       map[string]bool
	present     int
	maxBytes    int // longest string, or list element
	maxElements int // longest list
}

// modStats are a modality's rows and attributes.
type modStats struct {
	rows  int
	attrs map[string]*attrStat
}

func scanAttrs(ctx context.Context, db *mmdb.DB, mods []mmdb.Modality) (map[string]*modStats, error) {
	stats := map[string]*modStats{}
	for _, m := range mods {
		stats[m.Name] = &modStats{attrs: map[string]*attrStat{}}
	}
	for it, err := range db.Items(ctx) {
		if err != nil {
			return nil, err
		}
		for _, m := range mods {
			if _, ok := it.Vectors[m.Name]; !ok {
				continue
			}
			s := stats[m.Name]
			s.rows++
			for k, v := range it.Attrs {
				a := s.attrs[k]
				if a == nil {
					a = &attrStat{kinds: map[string]bool{}}
					s.attrs[k] = a
				}
				a.present++
				a.kinds[kindOf(v)] = true
				switch x := v.(type) {
				case string:
					a.maxBytes = max(a.maxBytes, len(x))
				case []string:
					a.maxElements = max(a.maxElements, len(x))
					for _, e := range x {
						a.maxBytes = max(a.maxBytes, len(e))
					}
				}
			}
		}
	}
	return stats, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "int64"
	case float64:
		return "double"
	case bool:
		return "bool"
	case []string:
		return "string_list"
	}
	return fmt.Sprintf("%T", v)
}
