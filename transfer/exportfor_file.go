package transfer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/mmdb-go/mmdb"
	"github.com/parquet-go/parquet-go"
)

// column is one attribute column being written.
type column struct {
	ForColumn
	stat *attrStat
}

// rowWriter is parquet-go's writer of rows given as maps.
type rowWriter interface {
	Write(row any) error
	Close() error
}

// modFile is one modality's file being written: rows go to parquet-go's
// writer, which flushes a row group every RowGroup rows.
type modFile struct {
	info     ForFile
	target   Target
	m        mmdb.Modality
	st       *modStats
	tmp      string
	f        *os.File
	w        rowWriter
	attrCol  map[string]*column
	json     bool // some attributes go to the JSON column
	seen     map[string]struct{}
	closed   bool
	milvusJS []byte // the create-collection request, written at publish
}

// plan decides the file's columns: names, types, nullability.
func (mf *modFile) plan(target Target, st *modStats) {
	m := mf.m
	nm := newNamer(target, "id", jsonColumn)
	if target == LanceDB {
		mf.info.Vector = "vector"
		nm.used[nm.key("vector")] = true
	} else {
		mf.info.Vector = nm.assign([]string{m.Name})[m.Name]
	}
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
		c := &column{ForColumn: ForColumn{Attr: k, Column: names[k], Type: typ, Nullable: a.present < st.rows}, stat: a}
		mf.attrCol[k] = c
		mf.info.Columns = append(mf.info.Columns, c.ForColumn)
	}
	mf.json = len(typedKeys) < len(keys)
}

// schemas are the file's Parquet schema and the Arrow schema stored in it
// (ARROW:schema, as Arrow's own writers store it): Arrow readers
// (pyarrow, arrow-rs and so LanceDB, arrow-go and so Milvus) take from it
// what Parquet cannot say, such as the vector column's fixed size.
func (mf *modFile) schemas() (*parquet.Schema, string, error) {
	group := parquet.Group{"id": parquet.String()}
	arrowOf := map[string]arrow.Field{"id": {Name: "id", Type: arrow.BinaryTypes.String}}
	// The vector: a Parquet LIST of float, no nulls. LanceDB indexes it as
	// FixedSizeList<float32, dim>; Milvus reads a vector field from a
	// list in every release that imports Parquet (FixedSizeList only in
	// recent ones), so its hint is a list.
	group[mf.info.Vector] = parquet.List(parquet.Leaf(parquet.FloatType))
	elem := arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Float32}
	vec := arrow.DataType(arrow.ListOfField(elem))
	if mf.target == LanceDB {
		vec = arrow.FixedSizeListOfField(int32(mf.m.Dim), elem)
	}
	arrowOf[mf.info.Vector] = arrow.Field{Name: mf.info.Vector, Type: vec}
	for _, c := range mf.attrCol {
		node, typ := parquetType(c.Type)
		if c.Nullable {
			node = parquet.Optional(node)
		}
		group[c.Column] = node
		arrowOf[c.Column] = arrow.Field{Name: c.Column, Type: typ, Nullable: c.Nullable}
	}
	if mf.json {
		group[jsonColumn] = parquet.String()
		arrowOf[jsonColumn] = arrow.Field{Name: jsonColumn, Type: arrow.BinaryTypes.String}
	}
	ps := parquet.NewSchema("mmdb_"+mf.info.Vector, group)
	// The Arrow fields in the Parquet columns' order (parquet-go sorts a
	// group's fields by name).
	fields := make([]arrow.Field, 0, len(group))
	for _, f := range ps.Fields() {
		fields = append(fields, arrowOf[f.Name()])
	}
	// The modality's metric travels with the file: an index built on the
	// vectors must use it (LanceDB's default is L2).
	meta := arrow.NewMetadata([]string{"mmdb.modality", "mmdb.metric", "mmdb.dim"}, []string{mf.m.Name, mf.info.Metric, strconv.Itoa(mf.m.Dim)})
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fields, &meta)))
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("transfer: the Arrow schema of %s: %w", mf.info.Path, err)
	}
	return ps, base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// parquetType is an attribute kind's Parquet node and Arrow type.
func parquetType(kind string) (parquet.Node, arrow.DataType) {
	switch kind {
	case "string":
		return parquet.String(), arrow.BinaryTypes.String
	case "int64":
		return parquet.Int(64), arrow.PrimitiveTypes.Int64
	case "double":
		return parquet.Leaf(parquet.DoubleType), arrow.PrimitiveTypes.Float64
	case "bool":
		return parquet.Leaf(parquet.BooleanType), arrow.FixedWidthTypes.Boolean
	}
	return parquet.List(parquet.String()), arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String})
}

func newModFile(dir, base string, target Target, m mmdb.Modality, st *modStats, prefix string, rowGroup int) (*modFile, error) {
	mf := &modFile{target: target, m: m, st: st, attrCol: map[string]*column{}, seen: map[string]struct{}{}}
	mf.info = ForFile{Modality: m.Name, Dim: m.Dim, Metric: m.Metric.String(), Path: filepath.Join(dir, base+".parquet")}
	mf.plan(target, st)
	if target == Milvus {
		mf.info.Collection = prefix + "_" + base
		mf.info.Schema = filepath.Join(dir, base+".collection.json")
		js, err := milvusSchema(mf.info, st)
		if err != nil {
			return nil, err
		}
		mf.milvusJS = js
	}
	ps, arrowSchema, err := mf.schemas()
	if err != nil {
		return nil, err
	}
	mf.tmp = mf.info.Path + ".tmp"
	if mf.f, err = os.Create(mf.tmp); err != nil {
		return nil, err
	}
	mf.w = parquet.NewWriter(mf.f, ps, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(int64(rowGroup)),
		parquet.KeyValueMetadata("ARROW:schema", arrowSchema),
		parquet.KeyValueMetadata("mmdb.modality", m.Name), parquet.KeyValueMetadata("mmdb.metric", mf.info.Metric))
	return mf, nil
}

// changed is the error of an item whose row no longer matches what the
// first reading found.
func changed(id, why string) error {
	return fmt.Errorf("transfer: item %q changed during the export (%s): run it again, or export a snapshot of a database being written", id, why)
}

// add writes it as a row, if it carries the modality.
func (mf *modFile) add(it mmdb.Item) error {
	vec, ok := it.Vectors[mf.m.Name]
	if !ok {
		return nil
	}
	if _, dup := mf.seen[it.ID]; dup {
		return changed(it.ID, "read twice: deleted and stored again")
	}
	mf.seen[it.ID] = struct{}{}
	row := map[string]any{"id": it.ID, mf.info.Vector: vec}
	for _, c := range mf.attrCol {
		v, has := it.Attrs[c.Attr]
		if !has {
			if !c.Nullable {
				return changed(it.ID, fmt.Sprintf("attribute %q is gone", c.Attr))
			}
			continue // a null
		}
		if err := checkValue(c, v); err != nil {
			return changed(it.ID, fmt.Sprintf("attribute %q: %v", c.Attr, err))
		}
		row[c.Column] = v
	}
	rest := map[string]any{}
	for k, v := range it.Attrs {
		if _, typed := mf.attrCol[k]; !typed {
			rest[k] = v
		}
	}
	if mf.json {
		b, err := json.Marshal(exportAttrs(rest))
		if err != nil {
			return fmt.Errorf("transfer: item %q: %w", it.ID, err)
		}
		if mf.target == Milvus && len(b) > milvusMaxJSON {
			return fmt.Errorf("transfer: item %q: its attributes without a typed column make %d bytes of JSON, and Milvus's JSON field holds at most %d", it.ID, len(b), milvusMaxJSON)
		}
		row[jsonColumn] = string(b)
	} else if len(rest) > 0 {
		return changed(it.ID, "it has attributes the first reading did not see")
	}
	if err := mf.w.Write(row); err != nil {
		return fmt.Errorf("transfer: writing item %q to %s: %w", it.ID, mf.info.Path, err)
	}
	mf.info.Rows++
	return nil
}

// checkValue refuses a value of another type than its column's, or
// longer than the first reading found (the schema says so).
func checkValue(c *column, v any) error {
	if kindOf(v) != c.Type {
		return fmt.Errorf("its value %v (%s) does not fit the %s column", v, kindOf(v), c.Type)
	}
	switch x := v.(type) {
	case string:
		if len(x) > c.stat.maxBytes {
			return fmt.Errorf("%d bytes, longer than the %d the schema allows", len(x), c.stat.maxBytes)
		}
	case []string:
		if len(x) > c.stat.maxElements {
			return fmt.Errorf("%d elements, more than the %d the schema allows", len(x), c.stat.maxElements)
		}
		for _, e := range x {
			if len(e) > c.stat.maxBytes {
				return fmt.Errorf("an element of %d bytes, longer than the %d the schema allows", len(e), c.stat.maxBytes)
			}
		}
	}
	return nil
}

// finish writes the last rows, then syncs and closes the temporary file.
func (mf *modFile) finish() error {
	err := mf.w.Close()
	mf.w = nil
	if err == nil {
		err = mf.f.Sync()
	}
	if cerr := mf.f.Close(); err == nil {
		err = cerr
	}
	mf.f = nil
	return err
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
	if mf.w != nil {
		mf.w.Close()
	}
	if mf.f != nil {
		mf.f.Close()
	}
	if mf.tmp != "" {
		os.Remove(mf.tmp)
	}
}
