package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/nodetest"
	"github.com/mmdb-go/mmdb/internal/npy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exportItems fills db with modalities whose names a target may refuse
// ("clip-image"), items lacking some modalities, and attributes of every
// kind: uniform ones, one missing on some items, one of mixed types, and
// names with a dot, a hyphen, a leading digit, and one that clashes with
// the id column.
func exportItems(t *testing.T, img, txt [][]float32) *mmdb.DB {
	t.Helper()
	dim := len(img[0])
	db := openDB(t, mmdb.Modality{Name: "clip-image", Dim: dim, Metric: mmdb.Cosine, Space: "clip"},
		mmdb.Modality{Name: "text", Dim: dim, Metric: mmdb.Cosine, Space: "clip"},
		mmdb.Modality{Name: "sound", Dim: 6, Metric: mmdb.L2})
	r := rand.New(rand.NewPCG(4, 4))
	var items []mmdb.Item
	for i := range img {
		it := mmdb.Item{ID: fmt.Sprintf("item-%04d", i), Vectors: map[string][]float32{"clip-image": img[i]},
			Attrs: map[string]any{"row": int64(i), "label": fmt.Sprint("l", i%7), "score": float64(i) + 0.25, "ok": i%2 == 0,
				"my.attr": "dotted", "my_attr": "plain", "2nd-name": int64(i % 3), "ID": "shadow",
				"like": "a Milvus keyword", "_distance": 0.5, "_rowid": int64(i)}}
		if i%3 != 0 {
			it.Vectors["sound"] = randVec(r, 6)
		}
		if i%5 != 0 {
			it.Vectors["text"] = txt[i]
			it.Attrs["tags"] = []string{"a", fmt.Sprint("t", i%4)}
		}
		if i%2 == 0 {
			it.Attrs["mixed"] = int64(i)
		} else {
			it.Attrs["mixed"] = "odd"
		}
		items = append(items, it)
	}
	require.NoError(t, db.Put(context.Background(), items...))
	return db
}

func synthetic(n, dim int) (img, txt [][]float32) {
	r := rand.New(rand.NewPCG(8, 9))
	for range n {
		img = append(img, randVec(r, dim))
		txt = append(txt, randVec(r, dim))
	}
	return img, txt
}

// readArrow reads a Parquet file back as Arrow, as LanceDB's and Milvus's
// readers do (the stored Arrow schema restores FixedSizeList).
func readArrow(t *testing.T, path string) arrow.Table {
	t.Helper()
	rdr, err := file.OpenParquetFile(path, false)
	require.NoError(t, err)
	t.Cleanup(func() { rdr.Close() })
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	require.NoError(t, err)
	tbl, err := fr.ReadTable(context.Background())
	require.NoError(t, err)
	t.Cleanup(tbl.Release)
	return tbl
}

// rows turns a table into one map a row (column name -> Go value).
func rows(t *testing.T, tbl arrow.Table) []map[string]any {
	t.Helper()
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	var out []map[string]any
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for c, col := range rec.Columns() {
				name := rec.ColumnName(c)
				if col.IsNull(i) {
					row[name] = nil
					continue
				}
				switch a := col.(type) {
				case *array.String:
					row[name] = a.Value(i)
				case *array.Int64:
					row[name] = a.Value(i)
				case *array.Float64:
					row[name] = a.Value(i)
				case *array.Boolean:
					row[name] = a.Value(i)
				case *array.FixedSizeList:
					s, e := a.ValueOffsets(i)
					row[name] = a.ListValues().(*array.Float32).Float32Values()[s:e]
				case *array.List:
					s, e := a.ValueOffsets(i)
					switch v := a.ListValues().(type) {
					case *array.Float32:
						row[name] = v.Float32Values()[s:e]
					case *array.String:
						var l []string
						for j := s; j < e; j++ {
							l = append(l, v.Value(int(j)))
						}
						row[name] = l
					}
				default:
					t.Fatalf("column %s: unexpected %T", name, col)
				}
			}
			out = append(out, row)
		}
	}
	return out
}

func TestExportForFiles(t *testing.T) {
	img, txt := synthetic(300, 16)
	db := exportItems(t, img, txt)
	ctx := context.Background()
	for _, target := range []Target{LanceDB, Milvus} {
		t.Run(string(target), func(t *testing.T) {
			dir := t.TempDir()
			files, err := ExportFor(ctx, db, dir, target, &ForOptions{RowGroup: 64})
			require.NoError(t, err)
			require.Len(t, files, 3)
			for _, f := range files {
				tbl := readArrow(t, f.Path)
				m := db.Modalities()[indexOf(db.Modalities(), f.Modality)]
				vi := tbl.Schema().FieldIndices(f.Vector)
				require.Len(t, vi, 1, "one vector column named %s", f.Vector)
				vec := tbl.Schema().Field(vi[0])
				rdr, err := file.OpenParquetFile(f.Path, false)
				require.NoError(t, err)
				metric := rdr.MetaData().KeyValueMetadata().FindValue("mmdb.metric")
				require.NotNil(t, metric, "the metric travels in the file")
				assert.Equal(t, m.Metric.String(), *metric)
				require.NoError(t, rdr.Close())
				assert.Equal(t, f.Vector, vec.Name)
				assert.False(t, vec.Nullable, "no null vectors")
				if target == LanceDB {
					assert.Equal(t, "vector", f.Vector)
					assert.Equal(t, fmt.Sprintf("fixed_size_list[%d]<float32>", m.Dim), typeName(vec.Type))
				} else {
					assert.Equal(t, "list<float32>", typeName(vec.Type))
				}
				col := map[string]ForColumn{}
				for _, c := range f.Columns {
					col[c.Attr] = c
				}
				assert.Equal(t, "json", col["mixed"].Type, "mixed types go to JSON")
				assert.Equal(t, "int64", col["row"].Type)
				assert.Equal(t, "double", col["score"].Type)
				assert.Equal(t, "bool", col["ok"].Type)
				assert.NotEqual(t, "id", col["ID"].Column, "a name may not shadow the id column, whatever its case")
				assert.NotContains(t, col["my.attr"].Column, ".")
				assert.Equal(t, "my_attr", col["my_attr"].Column, "a valid name keeps it; the mapped one is suffixed")
				if target == LanceDB {
					assert.NotEqual(t, "_distance", col["_distance"].Column, "LanceDB adds _distance to results")
					assert.NotEqual(t, "_rowid", col["_rowid"].Column, "Lance reserves _rowid")
				} else {
					assert.NotEqual(t, "like", col["like"].Column, "a Milvus keyword")
				}
				if target == Milvus {
					assert.Regexp(t, `^[A-Za-z_][A-Za-z0-9_]*$`, col["2nd-name"].Column)
				}
				got := rows(t, tbl)
				want := 0
				for it, err := range db.Items(ctx) {
					require.NoError(t, err)
					v, ok := it.Vectors[f.Modality]
					if !ok {
						continue
					}
					require.Less(t, want, len(got))
					row := got[want]
					want++
					assert.Equal(t, it.ID, row["id"])
					assert.Equal(t, v, row[f.Vector], "item %s", it.ID)
					rest := map[string]any{}
					for k, val := range it.Attrs {
						if c := col[k]; c.Type == "json" {
							rest[k] = val
						} else {
							assert.Equal(t, val, row[c.Column], "item %s attribute %s", it.ID, k)
						}
					}
					for k, c := range col {
						if _, has := it.Attrs[k]; !has && c.Type != "json" {
							assert.Nil(t, row[c.Column], "item %s lacks %s: null", it.ID, k)
							assert.True(t, c.Nullable)
						}
					}
					var js map[string]any
					require.NoError(t, json.Unmarshal([]byte(row[jsonColumn].(string)), &js))
					assert.Equal(t, jsonRoundTrip(t, rest), js)
				}
				assert.Equal(t, want, len(got), "one row per item carrying %s", f.Modality)
				assert.Equal(t, want, f.Rows)
				if target == Milvus {
					checkMilvusRules(t, f, tbl, got)
				}
			}
		})
	}
}

// typeName names an Arrow type without its list element's field name
// (writers call it item or element).
func typeName(dt arrow.DataType) string {
	switch x := dt.(type) {
	case *arrow.ListType:
		return "list<" + typeName(x.Elem()) + ">"
	case *arrow.FixedSizeListType:
		return fmt.Sprintf("fixed_size_list[%d]<%s>", x.Len(), typeName(x.Elem()))
	}
	return dt.String()
}

func jsonRoundTrip(t *testing.T, v any) map[string]any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// checkMilvusRules checks a file and its create-collection request against
// Milvus's documented bulk-import rules (Milvus itself cannot run here):
// collection and field names match [A-Za-z_][A-Za-z0-9_]*; every schema
// field but the auto ones is a column of the file with a matching type and
// no other columns; the primary key is unique and never null; vectors are
// never null and have dim values; VarChar values fit max_length, arrays fit
// max_capacity; non-nullable fields hold no nulls; JSON fields hold JSON
// objects.
func checkMilvusRules(t *testing.T, f ForFile, tbl arrow.Table, rows []map[string]any) {
	t.Helper()
	b, err := os.ReadFile(f.Schema)
	require.NoError(t, err)
	var req struct {
		CollectionName string
		Schema         struct {
			AutoID             bool `json:"autoId"`
			EnableDynamicField bool
			Fields             []struct {
				FieldName         string
				DataType          string
				IsPrimary         bool
				ElementDataType   string
				Nullable          bool
				ElementTypeParams map[string]int
			}
		}
		IndexParams []struct{ FieldName, MetricType, IndexType string }
	}
	require.NoError(t, json.Unmarshal(b, &req))
	assert.Regexp(t, milvusName, req.CollectionName)
	assert.LessOrEqual(t, len(req.Schema.Fields), milvusMaxFields)
	assert.False(t, req.Schema.AutoID)
	require.Len(t, req.IndexParams, 1)
	assert.Equal(t, f.Vector, req.IndexParams[0].FieldName)
	assert.Contains(t, []string{"COSINE", "L2", "IP"}, req.IndexParams[0].MetricType)
	cols := map[string]arrow.DataType{}
	for _, fd := range tbl.Schema().Fields() {
		cols[fd.Name] = fd.Type
	}
	require.Len(t, req.Schema.Fields, len(cols), "one schema field a column, and no column without a field")
	primaries := 0
	for _, fd := range req.Schema.Fields {
		assert.Regexp(t, milvusName, fd.FieldName)
		assert.False(t, milvusKeywords[strings.ToLower(fd.FieldName)], "%s is a Milvus keyword", fd.FieldName)
		typ, ok := cols[fd.FieldName]
		require.True(t, ok, "field %s is a column", fd.FieldName)
		want := map[string]string{"VarChar": "utf8", "Int64": "int64", "Double": "float64", "Bool": "bool", "JSON": "utf8",
			"FloatVector": "list<float32>", "Array": "list<utf8>"}[fd.DataType]
		assert.Equal(t, want, typeName(typ), "field %s (%s)", fd.FieldName, fd.DataType)
		if fd.IsPrimary {
			primaries++
			assert.Equal(t, "VarChar", fd.DataType)
		}
		seen := map[any]bool{}
		for _, row := range rows {
			v := row[fd.FieldName]
			if v == nil {
				assert.True(t, fd.Nullable && !fd.IsPrimary && fd.DataType != "FloatVector", "field %s holds a null and is not nullable", fd.FieldName)
				continue
			}
			switch fd.DataType {
			case "VarChar":
				assert.LessOrEqual(t, len(v.(string)), fd.ElementTypeParams["max_length"], fd.FieldName)
			case "FloatVector":
				assert.Len(t, v, fd.ElementTypeParams["dim"])
			case "Array":
				assert.LessOrEqual(t, len(v.([]string)), fd.ElementTypeParams["max_capacity"])
				for _, e := range v.([]string) {
					assert.LessOrEqual(t, len(e), fd.ElementTypeParams["max_length"])
				}
			case "JSON":
				var obj map[string]any
				assert.NoError(t, json.Unmarshal([]byte(v.(string)), &obj), "JSON objects")
			}
			if fd.IsPrimary {
				assert.False(t, seen[v], "primary key %v repeated", v)
				seen[v] = true
			}
		}
	}
	assert.Equal(t, 1, primaries)
}

func TestExportForRefuses(t *testing.T) {
	db := openDB(t, mmdb.Modality{Name: "tokens", Dim: 2, Metric: mmdb.Dot, Multi: mmdb.MaxSim})
	_, err := ExportFor(context.Background(), db, t.TempDir(), Milvus, &ForOptions{Modalities: []string{"tokens"}})
	assert.ErrorContains(t, err, `"tokens" holds sets of vectors`)
	_, err = ExportFor(context.Background(), db, t.TempDir(), Milvus, nil)
	assert.ErrorContains(t, err, "no single-vector modality")
	_, err = ExportFor(context.Background(), db, t.TempDir(), Milvus, &ForOptions{Modalities: []string{"nope"}})
	assert.ErrorIs(t, err, mmdb.ErrUnknownModality)
	_, err = ExportFor(context.Background(), db, t.TempDir(), Target("chroma"), nil)
	assert.ErrorContains(t, err, "lancedb or milvus")
}

// TestLanceDBRoundTrip loads the LanceDB export of real CLIP embeddings
// (coco500) into LanceDB through its official Node package, builds an IVF
// index on each table, and checks that LanceDB's top 10 for 20 probes is
// mmdb's exact top 10, id for id, in order.
func TestLanceDBRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the npm LanceDB round trip")
	}
	needData(t, "coco500-clip/features_clip.npy")
	a, err := npy.ReadFile(filepath.Join(sharedData, "coco500-clip/features_clip.npy"))
	require.NoError(t, err)
	img, err := a.Rows(0)
	require.NoError(t, err)
	txt, err := a.Rows(1)
	require.NoError(t, err)
	nodeDir := nodetest.Install(t, "@lancedb/lancedb@0.31.0", "apache-arrow@18.1.0", "parquet-wasm@0.6.1")
	db := exportItems(t, img, txt)
	ctx := context.Background()
	dir := t.TempDir()
	files, err := ExportFor(ctx, db, filepath.Join(dir, "export"), LanceDB, nil)
	require.NoError(t, err)

	type planFile struct {
		Path   string      `json:"path"`
		Table  string      `json:"table"`
		Metric string      `json:"metric"`
		Probes [][]float32 `json:"probes"`
	}
	plan := struct {
		Dir   string     `json:"dir"`
		Files []planFile `json:"files"`
	}{Dir: filepath.Join(dir, "lance")}
	want := map[string][][]string{}
	r := rand.New(rand.NewPCG(5, 6))
	for _, f := range files {
		pf := planFile{Path: f.Path, Table: f.Modality, Metric: f.Metric}
		for i := range 20 {
			var probe []float32
			if f.Modality == "sound" {
				probe = randVec(r, 6)
			} else {
				probe = txt[(i*37)%len(txt)] // a caption searching the pictures (and the captions)
			}
			pf.Probes = append(pf.Probes, probe)
			hits, err := db.Search(ctx, mmdb.Query{Target: f.Modality, Probes: []mmdb.Probe{{Modality: f.Modality, Vector: probe}}, K: 10, Exact: true, NoAttrs: true})
			require.NoError(t, err)
			var ids []string
			for _, h := range hits {
				ids = append(ids, h.ID)
			}
			want[f.Modality] = append(want[f.Modality], ids)
		}
		plan.Files = append(plan.Files, pf)
	}
	b, err := json.Marshal(plan)
	require.NoError(t, err)
	planPath, outPath := filepath.Join(dir, "plan.json"), filepath.Join(dir, "out.json")
	require.NoError(t, os.WriteFile(planPath, b, 0o644))
	nodetest.Run(t, nodeDir, "testdata/lancedb_roundtrip.mjs", 5*time.Minute, planPath, outPath)
	b, err = os.ReadFile(outPath)
	require.NoError(t, err)
	var got []struct {
		Table  string
		Rows   int
		Fields []struct {
			Name, Type string
			Nullable   bool
		}
		Indices []struct {
			Name, Type string
			Columns    []string
		}
		Top [][]string
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got, len(files))
	for i, f := range files {
		g := got[i]
		assert.Equal(t, f.Rows, g.Rows, f.Modality)
		types := map[string]string{}
		for _, fd := range g.Fields {
			types[fd.Name] = fd.Type
		}
		assert.Equal(t, fmt.Sprintf("FixedSizeList[%d]<Float32>", f.Dim), types["vector"], "LanceDB reads the vector column as fixed-size")
		require.Len(t, g.Indices, 1)
		assert.Equal(t, []string{"vector"}, g.Indices[0].Columns)
		assert.Equal(t, want[f.Modality], g.Top, "LanceDB's top 10 for %s", f.Modality)
	}
}

func TestExportForNamesAndLimits(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, mmdb.Modality{Name: "a-b", Dim: 2, Metric: mmdb.L2}, mmdb.Modality{Name: "a_b", Dim: 2, Metric: mmdb.Dot})
	attrs := map[string]any{}
	for i := range 70 {
		attrs[fmt.Sprintf("f%02d", i)] = int64(i)
	}
	require.NoError(t, db.Put(ctx, mmdb.Item{ID: "x", Attrs: attrs, Vectors: map[string][]float32{"a-b": {1, 2}, "a_b": {3, 4}}}))
	dir := t.TempDir()
	files, err := ExportFor(ctx, db, dir, Milvus, nil)
	require.NoError(t, err)
	require.Len(t, files, 2)
	assert.NotEqual(t, files[0].Path, files[1].Path, "a-b and a_b get files of their own")
	for _, f := range files {
		tbl := readArrow(t, f.Path)
		assert.Equal(t, milvusMaxFields, len(tbl.Schema().Fields()), "Milvus's field limit: the rest go to attrs")
		checkMilvusRules(t, f, tbl, rows(t, tbl))
	}
	_, err = ExportFor(ctx, db, t.TempDir(), Milvus, &ForOptions{Modalities: []string{"a_b", "a_b"}})
	assert.ErrorContains(t, err, "named twice")
	_, err = ExportFor(ctx, db, t.TempDir(), Milvus, &ForOptions{Collection: "my-coll"})
	assert.ErrorContains(t, err, "collection prefix")

	big := openDB(t, mmdb.Modality{Name: "wide", Dim: 40_000, Metric: mmdb.L2})
	_, err = ExportFor(ctx, big, t.TempDir(), Milvus, nil)
	assert.ErrorContains(t, err, "at most 32768")
}

// An item changed between the two readings fails the export by name, and
// leaves no file behind.
func TestExportForChangedMeanwhile(t *testing.T) {
	ctx := context.Background()
	changes := map[string]func(db *mmdb.DB) error{
		"a longer string": func(db *mmdb.DB) error {
			return db.Merge(ctx, mmdb.Item{ID: "i1900", Attrs: map[string]any{"label": strings.Repeat("x", 300)}})
		},
		"more tags": func(db *mmdb.DB) error {
			return db.Merge(ctx, mmdb.Item{ID: "i1900", Attrs: map[string]any{"tags": []string{"x", "y", "z"}}})
		},
		"deleted and stored again": func(db *mmdb.DB) error {
			if err := db.Delete(ctx, "i0001"); err != nil {
				return err
			}
			return db.Put(ctx, mmdb.Item{ID: "i0001", Attrs: map[string]any{"label": "ab", "tags": []string{"x"}}, Vectors: map[string][]float32{"pos": {-1, -1, -1}}})
		},
		"another type": func(db *mmdb.DB) error {
			return db.Merge(ctx, mmdb.Item{ID: "i1900", Attrs: map[string]any{"label": int64(5)}})
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			db := openDB(t, posMod)
			var items []mmdb.Item
			for i := range 2000 {
				items = append(items, mmdb.Item{ID: fmt.Sprintf("i%04d", i), Attrs: map[string]any{"label": "ab", "tags": []string{"x"}},
					Vectors: map[string][]float32{"pos": {float32(i), 1, 1}}})
			}
			require.NoError(t, db.Put(ctx, items...))
			dir := t.TempDir()
			var once sync.Once
			_, err := ExportFor(ctx, db, dir, Milvus, &ForOptions{Progress: func(done, _ int) {
				if done >= 1000 {
					once.Do(func() { require.NoError(t, change(db)) })
				}
			}})
			require.Error(t, err)
			assert.ErrorContains(t, err, "changed during the export")
			left, _ := os.ReadDir(dir)
			assert.Empty(t, left, "a failed export leaves nothing")
		})
	}
}
