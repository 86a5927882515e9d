package transfer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mmdb-go/mmdb"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// ExportParquet writes every item as one Parquet row, for ImportParquet
// (and any Parquet reader): a string column "id", a JSON string column
// "attrs", and one nullable list of float32 per modality, named after it.
// Items without a modality have a null there. For Milvus and LanceDB,
// which refuse null vectors and variable lists, use ExportFor.
func ExportParquet(ctx context.Context, db *mmdb.DB, w io.Writer, progress func(done, total int)) (int, error) {
	mods := db.Modalities()
	group := parquet.Group{"id": parquet.String(), "attrs": parquet.Optional(parquet.String())}
	for _, m := range mods {
		if m.Name == "id" || m.Name == "attrs" {
			return 0, fmt.Errorf("transfer: a modality named %q clashes with the Parquet column of that name", m.Name)
		}
		group[m.Name] = parquet.Optional(parquet.List(parquet.Leaf(parquet.FloatType)))
	}
	schema := parquet.NewSchema("mmdb_item", group)
	pw := parquet.NewWriter(w, schema, parquet.Compression(&parquet.Zstd))
	closed := false
	defer func() {
		if !closed {
			pw.Close() // release the writer's buffers; the error is already being returned
		}
	}()
	n, total := 0, db.Count()
	for it, err := range db.Items(ctx) {
		if err != nil {
			return n, err
		}
		row := map[string]any{"id": it.ID}
		if len(it.Attrs) > 0 {
			a, err := json.Marshal(exportAttrs(it.Attrs)) // 5.0 stays a float, as in JSONL
			if err != nil {
				return n, fmt.Errorf("item %s: %w", it.ID, err)
			}
			row["attrs"] = string(a)
		}
		for _, m := range mods {
			if v, ok := it.Vectors[m.Name]; ok {
				row[m.Name] = v
			}
		}
		if err := pw.Write(row); err != nil {
			return n, fmt.Errorf("item %s: %w", it.ID, err)
		}
		n++
		if progress != nil && n%1000 == 0 {
			progress(n, total)
		}
	}
	closed = true
	if err := pw.Close(); err != nil {
		return n, err
	}
	if progress != nil {
		progress(n, total)
	}
	return n, nil
}

// ReadParquet reads a file written by ExportParquet back into items (for
// checking an export, or moving data between databases). A damaged file
// is an ErrBadRecord: its footer and the layout it declares are checked
// against size before anything is read from them, and a panic of the
// Parquet reader on data it did not expect is recovered and returned.
func ReadParquet(r io.ReaderAt, size int64) (items []mmdb.Item, err error) {
	defer func() {
		if p := recover(); p != nil {
			items, err = nil, fmt.Errorf("%w: damaged Parquet file (the reader failed: %v)", ErrBadRecord, p)
		}
	}()
	if err := checkParquetFooter(r, size); err != nil {
		return nil, err
	}
	// The page index and bloom filters only speed up searches; a full scan
	// has no use for them.
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if err := checkParquetLayout(f.Metadata(), size); err != nil {
		return nil, err
	}
	pr := parquet.NewReader(f)
	defer pr.Close()
	var out []mmdb.Item
	for i := 0; ; i++ {
		row := map[string]any{}
		if err := pr.Read(&row); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrBadRecord, i, err)
		}
		it := mmdb.Item{Vectors: map[string][]float32{}}
		for k, v := range row {
			switch k {
			case "id":
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("%w: row %d: id is %T", ErrBadRecord, i, v)
				}
				it.ID = s
			case "attrs":
				s, ok := v.(string)
				if !ok || s == "" {
					continue
				}
				item, err := decodeRecord([]byte(`{"id":"x","attrs":`+s+`}`), false, nil)
				if err != nil {
					return nil, fmt.Errorf("%w: row %d: attrs: %v", ErrBadRecord, i, err)
				}
				it.Attrs = item.Attrs
			default:
				vec, err := floats(v)
				if err != nil {
					return nil, fmt.Errorf("%w: row %d: column %s: %v", ErrBadRecord, i, k, err)
				}
				if vec != nil {
					it.Vectors[k] = vec
				}
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// checkParquetFooter checks the footer's declared length against the file
// size (parquet-go allocates it first, up to 4 GB).
func checkParquetFooter(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%w: %d bytes is too short for a Parquet file", ErrBadRecord, size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("%w: reading the Parquet footer: %v", ErrBadRecord, err)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("%w: the Parquet footer claims %d bytes in a file of %d", ErrBadRecord, n, size)
	}
	return nil
}

// checkParquetLayout checks that the row counts and column chunks the
// footer declares are possible in a file of size bytes, and that no column
// chunk is LZ4-compressed.
func checkParquetLayout(m *format.FileMetaData, size int64) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: damaged Parquet footer: "+format, append([]any{ErrBadRecord}, args...)...)
	}
	if m.NumRows < 0 {
		return bad("%d rows", m.NumRows)
	}
	var rows int64
	for i, rg := range m.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > m.NumRows-rows {
			return bad("row group %d of %d rows, in a file of %d", i, rg.NumRows, m.NumRows)
		}
		rows += rg.NumRows
		for j, c := range rg.Columns {
			cm := c.MetaData
			if cm.Codec == format.Lz4 || cm.Codec == format.Lz4Raw {
				// parquet-go's LZ4 decoder doubles its buffer without
				// bound on a damaged page, until the process runs out of
				// memory: a fatal error, which recover cannot stop.
				return fmt.Errorf("%w: row group %d column %d is LZ4-compressed, which is not read (export it with Zstd, Snappy or Gzip)", ErrBadRecord, i, j)
			}
			end := cm.DataPageOffset + cm.TotalCompressedSize
			if cm.DictionaryPageOffset > 0 && cm.DictionaryPageOffset < cm.DataPageOffset {
				end = cm.DictionaryPageOffset + cm.TotalCompressedSize
			}
			if cm.NumValues < 0 || cm.TotalCompressedSize < 0 || cm.TotalUncompressedSize < 0 ||
				cm.DataPageOffset < 4 || cm.DictionaryPageOffset < 0 || cm.TotalCompressedSize > size || end > size {
				return bad("row group %d column %d declares %d bytes at offset %d in a file of %d",
					i, j, cm.TotalCompressedSize, cm.DataPageOffset, size)
			}
		}
	}
	if rows != m.NumRows {
		return bad("the row groups hold %d rows, the file %d", rows, m.NumRows)
	}
	return nil
}

func floats(v any) ([]float32, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []float32:
		return x, nil
	case []any:
		if len(x) == 0 {
			return nil, nil
		}
		out := make([]float32, len(x))
		for i, e := range x {
			f, ok := e.(float32)
			if !ok {
				return nil, fmt.Errorf("element %d is %T", i, e)
			}
			out[i] = f
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T is not a list of floats", v)
}

// ImportParquet stores the rows of a file written by ExportParquet, in
// atomic batches, as ImportJSONL does (a bad row is named by its number).
// The file is read whole before anything is stored.
func ImportParquet(ctx context.Context, db *mmdb.DB, f interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}, name string, o Options) (Report, error) {
	rep := Report{File: name}
	fi, err := f.Stat()
	if err != nil {
		return rep, err
	}
	items, err := ReadParquet(f, fi.Size())
	if err != nil {
		return rep, fmt.Errorf("%s: %w", name, err)
	}
	// An ID given twice in one import is refused (or, with SkipBad, its
	// later rows skipped), as in JSONL: otherwise one row would overwrite
	// another while both count as imported.
	seen := make(map[string]int, len(items))
	kept := items[:0]
	for i, it := range items {
		if first, dup := seen[it.ID]; dup {
			err := fmt.Errorf("%w: %s: row %d: item %q appears again (first in row %d); one import stores an ID once", ErrBadRecord, name, i, it.ID, first)
			if !o.SkipBad {
				return rep, err
			}
			rep.skip(err)
			continue
		}
		seen[it.ID] = i
		kept = append(kept, it)
	}
	items = kept
	for s := 0; s < len(items); s += o.batch() {
		batch := items[s:min(len(items), s+o.batch())]
		n, err := putBatch(ctx, db, batch, o.Replace, o.SkipBad, func(i int, err error) {
			rep.skip(fmt.Errorf("%s: row %d: %w", name, s+i, err))
		})
		if err != nil {
			return rep, fmt.Errorf("%s: rows %d-%d: %w", name, s, s+len(batch)-1, err)
		}
		rep.Imported += n
		if o.Progress != nil {
			o.Progress(rep.Imported, len(items))
		}
	}
	return rep, nil
}
