package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
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

// Milvus's limits that decide whether an attribute gets a typed column.
const (
	milvusMaxVarChar  = 65_535
	milvusMaxCapacity = 4096
	milvusMaxName     = 255
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
// then the rows) and streams rows in row groups; an item changed between
// the two readings so that its value no longer fits its column fails the
// export, naming it. Files are written beside their final names and
// renamed into place.
func ExportFor(ctx context.Context, db *mmdb.DB, dir string, target Target, o *ForOptions) ([]ForFile, error) {
	if o == nil {
		o = &ForOptions{}
	}
	if _, err := ParseTarget(string(target)); err != nil {
		return nil, err
	}
	mods, err := exportModalities(db, o.Modalities)
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
	prefix := o.Collection
	if prefix == "" {
		prefix = "mmdb"
	}
	var files []*modFile
	defer func() {
		for _, f := range files {
			f.abort()
		}
	}()
	for _, m := range mods {
		f, err := newModFile(dir, target, m, stats[m.Name], prefix)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	rowGroup := o.RowGroup
	if rowGroup <= 0 {
		rowGroup = DefaultRowGroup
	}
	done, total := 0, db.Count()
	for it, err := range db.Items(ctx) {
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := f.add(it, rowGroup); err != nil {
				return nil, err
			}
		}
		if done++; o.Progress != nil && done%1000 == 0 {
			o.Progress(done, total)
		}
	}
	out := make([]ForFile, 0, len(files))
	for _, f := range files {
		if err := f.finish(); err != nil {
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

// exportModalities resolves the modalities to export.
func exportModalities(db *mmdb.DB, names []string) ([]mmdb.Modality, error) {
	all := db.Modalities()
	if len(names) == 0 {
		var out []mmdb.Modality
		for _, m := range all {
			if !m.IsMulti() {
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("transfer: the database has no single-vector modality to export")
		}
		return out, nil
	}
	var out []mmdb.Modality
	for _, n := range names {
		i := indexOf(all, n)
		if i < 0 {
			return nil, fmt.Errorf("transfer: %w: %q", mmdb.ErrUnknownModality, n)
		}
		if all[i].IsMulti() {
			return nil, fmt.Errorf("transfer: modality %q holds sets of vectors: Milvus and LanceDB exports hold one vector an item (export it as JSONL)", n)
		}
		out = append(out, all[i])
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

// namer maps names to column names the target accepts, without
// collisions.
type namer struct {
	target Target
	used   map[string]bool
}

func (n *namer) name(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case n.target == LanceDB && r != '.':
			b.WriteRune(r) // Lance reads a dot as a nested field's path
		case r == '_' || r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 0 && r >= '0' && r <= '9')):
			b.WriteRune(r)
		case i == 0 && r >= '0' && r <= '9':
			b.WriteString("_")
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	for len(base) > milvusMaxName-8 || !utf8.ValidString(base) {
		base = base[:len(base)-1] // within the limit, on a rune boundary
	}
	out := base
	for i := 2; n.used[strings.ToLower(out)]; i++ {
		out = fmt.Sprintf("%s_%d", base, i)
	}
	n.used[strings.ToLower(out)] = true
	return out
}

// column is one attribute column being written.
type column struct {
	ForColumn
	index int // of its field in the schema
	build array.Builder
}

// modFile is one modality's file being written.
type modFile struct {
	info    ForFile
	m       mmdb.Modality
	tmp     string
	f       *os.File
	w       *pqarrow.FileWriter
	schema  *arrow.Schema
	rb      *array.RecordBuilder
	attrCol map[string]*column
	jsonIdx int // the JSON column's field, -1 for none
	pending int
	closed  bool
}

func newModFile(dir string, target Target, m mmdb.Modality, st *modStats, prefix string) (*modFile, error) {
	nm := &namer{target: target, used: map[string]bool{"id": true, jsonColumn: true}}
	mf := &modFile{m: m, attrCol: map[string]*column{}, jsonIdx: -1}
	mf.info = ForFile{Modality: m.Name, Dim: m.Dim, Metric: m.Metric.String(), Rows: 0}
	vecType := arrow.DataType(arrow.FixedSizeListOf(int32(m.Dim), arrow.PrimitiveTypes.Float32))
	if target == LanceDB {
		mf.info.Vector = "vector"
		nm.used["vector"] = true
	} else {
		mf.info.Vector = nm.name(m.Name)
		// Milvus reads a vector field from a Parquet list of float in
		// every release that imports Parquet; FixedSizeList only in
		// recent ones.
		vecType = arrow.ListOf(arrow.PrimitiveTypes.Float32)
	}
	fields := []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}, {Name: mf.info.Vector, Type: vecType}}
	keys := make([]string, 0, len(st.attrs))
	for k := range st.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var jsonAttrs bool
	for _, k := range keys {
		a := st.attrs[k]
		typ := ""
		if len(a.kinds) == 1 {
			for kind := range a.kinds {
				typ = kind
			}
		}
		if target == Milvus && (a.maxBytes > milvusMaxVarChar || a.maxElements > milvusMaxCapacity) {
			typ = "" // beyond Milvus's VarChar or Array limits: JSON
		}
		if typ == "" {
			jsonAttrs = true
			mf.info.Columns = append(mf.info.Columns, ForColumn{Attr: k, Column: jsonColumn, Type: "json"})
			continue
		}
		c := &column{ForColumn: ForColumn{Attr: k, Column: nm.name(k), Type: typ, Nullable: a.present < st.rows}, index: len(fields)}
		mf.attrCol[k] = c
		mf.info.Columns = append(mf.info.Columns, c.ForColumn)
		fields = append(fields, arrow.Field{Name: c.Column, Type: arrowType(typ), Nullable: c.Nullable})
	}
	if jsonAttrs {
		mf.jsonIdx = len(fields)
		fields = append(fields, arrow.Field{Name: jsonColumn, Type: arrow.BinaryTypes.String})
	}
	mf.schema = arrow.NewSchema(fields, nil)
	mf.rb = array.NewRecordBuilder(memory.DefaultAllocator, mf.schema)
	for _, c := range mf.attrCol {
		c.build = mf.rb.Field(c.index)
	}
	base := nm.name(m.Name)
	if target == Milvus {
		base = mf.info.Vector
	}
	mf.info.Path = filepath.Join(dir, base+".parquet")
	if target == Milvus {
		mf.info.Collection = prefix + "_" + base
		mf.info.Schema = filepath.Join(dir, base+".collection.json")
		if err := writeMilvusSchema(mf.info, st); err != nil {
			mf.rb.Release()
			return nil, err
		}
	}
	mf.tmp = mf.info.Path + ".tmp"
	f, err := os.Create(mf.tmp)
	if err != nil {
		mf.rb.Release()
		return nil, err
	}
	mf.f = f
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1<<20))
	mf.w, err = pqarrow.NewFileWriter(mf.schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		mf.abort()
		return nil, err
	}
	return mf, nil
}

func arrowType(kind string) arrow.DataType {
	switch kind {
	case "string":
		return arrow.BinaryTypes.String
	case "int64":
		return arrow.PrimitiveTypes.Int64
	case "double":
		return arrow.PrimitiveTypes.Float64
	case "bool":
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.ListOf(arrow.BinaryTypes.String)
}

// add appends it, if it carries the modality, and writes a row group when
// rowGroup rows are pending.
func (mf *modFile) add(it mmdb.Item, rowGroup int) error {
	vec, ok := it.Vectors[mf.m.Name]
	if !ok {
		return nil
	}
	mf.rb.Field(0).(*array.StringBuilder).Append(it.ID)
	switch vb := mf.rb.Field(1).(type) {
	case *array.FixedSizeListBuilder:
		vb.Append(true)
		vb.ValueBuilder().(*array.Float32Builder).AppendValues(vec, nil)
	case *array.ListBuilder:
		vb.Append(true)
		vb.ValueBuilder().(*array.Float32Builder).AppendValues(vec, nil)
	}
	rest := map[string]any{}
	for _, c := range mf.attrCol {
		v, has := it.Attrs[c.Attr]
		if !has {
			if !c.Nullable {
				return fmt.Errorf("transfer: item %q lost attribute %q during the export: run it again", it.ID, c.Attr)
			}
			c.build.AppendNull()
			continue
		}
		if err := appendValue(c, v); err != nil {
			return fmt.Errorf("transfer: item %q, attribute %q: %w", it.ID, c.Attr, err)
		}
	}
	for k, v := range it.Attrs {
		if _, typed := mf.attrCol[k]; !typed {
			rest[k] = v
		}
	}
	if mf.jsonIdx >= 0 {
		b, err := json.Marshal(exportAttrs(rest))
		if err != nil {
			return fmt.Errorf("transfer: item %q: %w", it.ID, err)
		}
		mf.rb.Field(mf.jsonIdx).(*array.StringBuilder).Append(string(b))
	} else if len(rest) > 0 {
		return fmt.Errorf("transfer: item %q gained attributes during the export: run it again", it.ID)
	}
	mf.info.Rows++
	if mf.pending++; mf.pending >= rowGroup {
		return mf.flush()
	}
	return nil
}

// appendValue appends v to a typed column, refusing a value of another
// type (an item changed between the two readings).
func appendValue(c *column, v any) error {
	bad := fmt.Errorf("its value %v (%s) does not fit the %s column: the item changed during the export; run it again", v, kindOf(v), c.Type)
	switch b := c.build.(type) {
	case *array.StringBuilder:
		s, ok := v.(string)
		if !ok {
			return bad
		}
		b.Append(s)
	case *array.Int64Builder:
		n, ok := v.(int64)
		if !ok {
			return bad
		}
		b.Append(n)
	case *array.Float64Builder:
		f, ok := v.(float64)
		if !ok {
			return bad
		}
		b.Append(f)
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return bad
		}
		b.Append(x)
	case *array.ListBuilder:
		l, ok := v.([]string)
		if !ok {
			return bad
		}
		b.Append(true)
		b.ValueBuilder().(*array.StringBuilder).AppendValues(l, nil)
	}
	return nil
}

// flush writes the pending rows as a row group.
func (mf *modFile) flush() error {
	if mf.pending == 0 {
		return nil
	}
	rec := mf.rb.NewRecordBatch()
	defer rec.Release()
	mf.pending = 0
	if err := mf.w.Write(rec); err != nil {
		return fmt.Errorf("transfer: writing %s: %w", mf.info.Path, err)
	}
	return nil
}

// finish writes the last rows, closes, syncs and renames the file.
func (mf *modFile) finish() error {
	if err := mf.flush(); err != nil {
		return err
	}
	mf.closed = true
	mf.rb.Release()
	if err := mf.w.Close(); err != nil { // closes mf.f too
		os.Remove(mf.tmp)
		return err
	}
	f, err := os.OpenFile(mf.tmp, os.O_RDWR, 0)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		os.Remove(mf.tmp)
		return err
	}
	return os.Rename(mf.tmp, mf.info.Path)
}

// abort removes an unfinished file.
func (mf *modFile) abort() {
	if mf.closed {
		return
	}
	mf.closed = true
	mf.rb.Release()
	if mf.w != nil {
		mf.w.Close()
	} else if mf.f != nil {
		mf.f.Close()
	}
	os.Remove(mf.tmp)
}

// writeMilvusSchema writes the create-collection request (Milvus REST v2,
// POST /v2/vectordb/collections/create) matching the file: the primary
// key "id", the vector field, a typed field for each typed column, and
// "attrs" as JSON.
func writeMilvusSchema(info ForFile, st *modStats) error {
	metric := map[string]string{"cosine": "COSINE", "dot": "IP", "l2": "L2"}[strings.ToLower(info.Metric)]
	if metric == "" {
		return fmt.Errorf("transfer: modality %q: metric %s has no Milvus equivalent", info.Modality, info.Metric)
	}
	fields := []map[string]any{
		{"fieldName": "id", "dataType": "VarChar", "isPrimary": true, "elementTypeParams": map[string]any{"max_length": mmdb.MaxIDLen}},
		{"fieldName": info.Vector, "dataType": "FloatVector", "elementTypeParams": map[string]any{"dim": info.Dim}},
	}
	hasJSON := false
	for _, c := range info.Columns {
		a := st.attrs[c.Attr]
		f := map[string]any{"fieldName": c.Column}
		switch c.Type {
		case "json":
			hasJSON = true
			continue
		case "string":
			f["dataType"] = "VarChar"
			f["elementTypeParams"] = map[string]any{"max_length": max(1, a.maxBytes)}
		case "int64":
			f["dataType"] = "Int64"
		case "double":
			f["dataType"] = "Double"
		case "bool":
			f["dataType"] = "Bool"
		case "string_list":
			f["dataType"] = "Array"
			f["elementDataType"] = "VarChar"
			f["elementTypeParams"] = map[string]any{"max_capacity": max(1, a.maxElements), "max_length": max(1, a.maxBytes)}
		}
		if c.Nullable {
			f["nullable"] = true
		}
		fields = append(fields, f)
	}
	if hasJSON {
		fields = append(fields, map[string]any{"fieldName": jsonColumn, "dataType": "JSON"})
	}
	req := map[string]any{
		"collectionName": info.Collection,
		"schema":         map[string]any{"autoId": false, "enableDynamicField": false, "fields": fields},
		"indexParams":    []map[string]any{{"fieldName": info.Vector, "metricType": metric, "indexType": "AUTOINDEX"}},
	}
	b, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(info.Schema, append(b, '\n'), 0o644)
}
