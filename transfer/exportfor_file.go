package transfer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/mmdb-go/mmdb"
)

// column is one attribute column being written.
type column struct {
	ForColumn
	index int // of its field in the schema
	stat  *attrStat
	build array.Builder
}

// modFile is one modality's file being written.
type modFile struct {
	info     ForFile
	target   Target
	m        mmdb.Modality
	st       *modStats
	tmp      string
	f        *os.File
	w        *pqarrow.FileWriter
	schema   *arrow.Schema
	rb       *array.RecordBuilder
	attrCol  map[string]*column
	jsonIdx  int // the JSON column's field, -1 for none
	seen     map[string]struct{}
	pending  int
	closed   bool
	milvusJS []byte // the create-collection request, written at publish
}

// plan decides the file's columns: names, types, nullability.
func (mf *modFile) plan(target Target, st *modStats) []arrow.Field {
	m := mf.m
	nm := newNamer(target, "id", jsonColumn)
	vecType := arrow.DataType(arrow.FixedSizeListOf(int32(m.Dim), arrow.PrimitiveTypes.Float32))
	if target == LanceDB {
		mf.info.Vector = "vector"
		nm.used[nm.key("vector")] = true
	} else {
		mf.info.Vector = nm.assign([]string{m.Name})[m.Name]
		// Milvus reads a vector field from a Parquet list of float in
		// every release that imports Parquet; FixedSizeList only in
		// recent ones.
		vecType = arrow.ListOf(arrow.PrimitiveTypes.Float32)
	}
	fields := []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}, {Name: mf.info.Vector, Type: vecType}}
	keys := make([]string, 0, len(st.attrs))
	typed := map[string]string{}
	for k, a := range st.attrs {
		keys = append(keys, k)
		if len(a.kinds) != 1 {
			continue
		}
		for kind := range a.kinds {
			typed[k] = kind
		}
		if target == Milvus && (a.maxBytes > milvusMaxVarChar || a.maxElements > milvusMaxCapacity) {
			delete(typed, k) // beyond Milvus's VarChar or Array limits: JSON
		}
	}
	sort.Strings(keys)
	if target == Milvus {
		// Milvus holds at most milvusMaxFields fields: id, the vector and
		// attrs leave the rest for typed columns, in name order.
		n := 0
		for _, k := range keys {
			if _, ok := typed[k]; ok {
				if n++; n > milvusMaxFields-3 {
					delete(typed, k)
				}
			}
		}
	}
	var typedKeys []string
	for _, k := range keys {
		if _, ok := typed[k]; ok {
			typedKeys = append(typedKeys, k)
		}
	}
	names := nm.assign(typedKeys)
	mf.info.Columns = []ForColumn{}
	for _, k := range keys {
		typ, ok := typed[k]
		if !ok {
			mf.info.Columns = append(mf.info.Columns, ForColumn{Attr: k, Column: jsonColumn, Type: "json"})
			continue
		}
		a := st.attrs[k]
		c := &column{ForColumn: ForColumn{Attr: k, Column: names[k], Type: typ, Nullable: a.present < st.rows}, index: len(fields), stat: a}
		mf.attrCol[k] = c
		mf.info.Columns = append(mf.info.Columns, c.ForColumn)
		fields = append(fields, arrow.Field{Name: c.Column, Type: arrowType(typ), Nullable: c.Nullable})
	}
	if len(typedKeys) < len(keys) {
		mf.jsonIdx = len(fields)
		fields = append(fields, arrow.Field{Name: jsonColumn, Type: arrow.BinaryTypes.String})
	}
	return fields
}

func newModFile(dir, base string, target Target, m mmdb.Modality, st *modStats, prefix string) (*modFile, error) {
	mf := &modFile{target: target, m: m, st: st, attrCol: map[string]*column{}, jsonIdx: -1, seen: map[string]struct{}{}}
	mf.info = ForFile{Modality: m.Name, Dim: m.Dim, Metric: m.Metric.String(), Path: filepath.Join(dir, base+".parquet")}
	fields := mf.plan(target, st)
	// The modality's metric travels with the file: an index built on the
	// vectors must use it (LanceDB's default is L2).
	meta := arrow.NewMetadata([]string{"mmdb.modality", "mmdb.metric", "mmdb.dim"}, []string{m.Name, mf.info.Metric, strconv.Itoa(m.Dim)})
	mf.schema = arrow.NewSchema(fields, &meta)
	mf.rb = array.NewRecordBuilder(memory.DefaultAllocator, mf.schema)
	for _, c := range mf.attrCol {
		c.build = mf.rb.Field(c.index)
	}
	if target == Milvus {
		mf.info.Collection = prefix + "_" + base
		mf.info.Schema = filepath.Join(dir, base+".collection.json")
		js, err := milvusSchema(mf.info, st)
		if err != nil {
			mf.closed = true
			mf.rb.Release()
			return nil, err
		}
		mf.milvusJS = js
	}
	mf.tmp = mf.info.Path + ".tmp"
	f, err := os.Create(mf.tmp)
	if err != nil {
		mf.closed = true
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

// changed is the error of an item whose row no longer matches what the
// first reading found.
func changed(id, why string) error {
	return fmt.Errorf("transfer: item %q changed during the export (%s): run it again, or export a snapshot of a database being written", id, why)
}

// add appends it, if it carries the modality, and writes a row group when
// rowGroup rows are pending.
func (mf *modFile) add(it mmdb.Item, rowGroup int) error {
	vec, ok := it.Vectors[mf.m.Name]
	if !ok {
		return nil
	}
	if _, dup := mf.seen[it.ID]; dup {
		return changed(it.ID, "read twice: deleted and stored again")
	}
	mf.seen[it.ID] = struct{}{}
	mf.rb.Field(0).(*array.StringBuilder).Append(it.ID)
	switch vb := mf.rb.Field(1).(type) {
	case *array.FixedSizeListBuilder:
		vb.Append(true)
		vb.ValueBuilder().(*array.Float32Builder).AppendValues(vec, nil)
	case *array.ListBuilder:
		vb.Append(true)
		vb.ValueBuilder().(*array.Float32Builder).AppendValues(vec, nil)
	}
	for _, c := range mf.attrCol {
		v, has := it.Attrs[c.Attr]
		if !has {
			if !c.Nullable {
				return changed(it.ID, fmt.Sprintf("attribute %q is gone", c.Attr))
			}
			c.build.AppendNull()
			continue
		}
		if err := appendValue(c, v); err != nil {
			return changed(it.ID, fmt.Sprintf("attribute %q: %v", c.Attr, err))
		}
	}
	rest := map[string]any{}
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
		if mf.target == Milvus && len(b) > milvusMaxJSON {
			return fmt.Errorf("transfer: item %q: its attributes without a typed column make %d bytes of JSON, and Milvus's JSON field holds at most %d", it.ID, len(b), milvusMaxJSON)
		}
		mf.rb.Field(mf.jsonIdx).(*array.StringBuilder).Append(string(b))
	} else if len(rest) > 0 {
		return changed(it.ID, "it has attributes the first reading did not see")
	}
	mf.info.Rows++
	if mf.pending++; mf.pending >= rowGroup {
		return mf.flush()
	}
	return nil
}

// appendValue appends v to a typed column, refusing a value of another
// type, or longer than the first reading found (the schema says so).
func appendValue(c *column, v any) error {
	bad := fmt.Errorf("its value %v (%s) does not fit the %s column", v, kindOf(v), c.Type)
	switch b := c.build.(type) {
	case *array.StringBuilder:
		s, ok := v.(string)
		if !ok {
			return bad
		}
		if len(s) > c.stat.maxBytes {
			return fmt.Errorf("%d bytes, longer than the %d the schema allows", len(s), c.stat.maxBytes)
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
		if len(l) > c.stat.maxElements {
			return fmt.Errorf("%d elements, more than the %d the schema allows", len(l), c.stat.maxElements)
		}
		for _, e := range l {
			if len(e) > c.stat.maxBytes {
				return fmt.Errorf("an element of %d bytes, longer than the %d the schema allows", len(e), c.stat.maxBytes)
			}
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

// finish writes the last rows, closes and syncs the temporary file.
func (mf *modFile) finish() error {
	if err := mf.flush(); err != nil {
		return err
	}
	err := mf.w.Close() // closes mf.f too
	mf.w, mf.f = nil, nil
	if err != nil {
		return err
	}
	return syncFile(mf.tmp)
}

// publish renames the finished file into place, and writes Milvus's
// request beside it.
func (mf *modFile) publish() error {
	if mf.milvusJS != nil {
		tmp := mf.info.Schema + ".tmp"
		if err := os.WriteFile(tmp, mf.milvusJS, 0o644); err != nil {
			return err
		}
		if err := syncFile(tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, mf.info.Schema); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(mf.tmp, mf.info.Path); err != nil {
		return err
	}
	mf.closed = true
	mf.rb.Release()
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// abort removes an unpublished file.
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
