package transfer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every line that encoding/json would have accepted by changing it is
// refused, naming the file and line.
func TestImportJSONLRefusesSilentRewrites(t *testing.T) {
	cases := []struct {
		name, lines, want string
	}{
		{"invalid UTF-8 in an ID", "{\"id\":\"k\xff\",\"vectors\":{\"pos\":[1,2,3]}}\n", "x.jsonl:1: invalid UTF-8 at byte 8"},
		{"upper-case key", `{"ID":"a","vectors":{"pos":[1,2,3]}}` + "\n", `x.jsonl:1: unknown key "ID"`},
		{"repeated key", `{"id":"a","id":"b","vectors":{"pos":[1,2,3]}}` + "\n", `x.jsonl:1: key "id" appears twice`},
		{"null in a vector", `{"id":"a","vectors":{"pos":[1,null,3]}}` + "\n", `x.jsonl:1: vector "pos": element 1: null is not a number`},
		{"string in a vector", `{"id":"a","vectors":{"pos":[1,"2",3]}}` + "\n", `x.jsonl:1: vector "pos": element 1`},
		{"NaN spelled out", `{"id":"a","vectors":{"pos":[1,NaN,3]}}` + "\n", `x.jsonl:1: key "vectors": invalid character 'N'`},
		{"beyond float32", `{"id":"a","vectors":{"pos":[1,1e39,3]}}` + "\n", `element 1: 1e39 is beyond float32's range`},
		{"a repeated ID", `{"id":"a","vectors":{"pos":[1,2,3]}}` + "\n\n" + `{"id":"a","vectors":{"pos":[4,5,6]}}` + "\n", `x.jsonl:3: item "a" appears again (first on line 1)`},
		{"a lone surrogate escape", `{"id":"k\ud800","vectors":{"pos":[1,2,3]}}` + "\n", `x.jsonl:1: a lone high surrogate \ud800 at byte 8`},
		{"two IDs that differ in one invalid byte", "{\"id\":\"k\xff\"}\n{\"id\":\"k\xfe\"}\n", "x.jsonl:1: invalid UTF-8"},
		{"text after the object", `{"id":"a","vectors":{"pos":[1,2,3]}} {}` + "\n", "x.jsonl:1: text after the JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openDB(t, posMod)
			rep, err := ImportJSONL(context.Background(), db, strings.NewReader(c.lines), "x.jsonl", Options{})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadRecord)
			assert.Contains(t, err.Error(), c.want)
			assert.Zero(t, rep.Imported)

			// With SkipBad the line is counted as skipped, never as imported.
			db2 := openDB(t, posMod)
			rep, err = ImportJSONL(context.Background(), db2, strings.NewReader(c.lines), "x.jsonl", Options{SkipBad: true})
			require.NoError(t, err)
			assert.Equal(t, db2.Count(), rep.Imported, "the report counts what was stored")
			assert.Positive(t, rep.Skipped)
		})
	}
}

// An attributes-only line relabels an item and keeps its vectors; null
// removes an attribute; --replace stores the line as the whole item.
func TestImportJSONLMergesByDefault(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, posMod, mmdb.Modality{Name: "other", Dim: 2, Metric: mmdb.L2})
	require.NoError(t, db.Put(ctx, mmdb.Item{ID: "a", Attrs: map[string]any{"label": "old", "year": 2010, "tmp": true},
		Vectors: map[string][]float32{"pos": {1, 2, 3}, "other": {4, 5}}}))

	rep, err := ImportJSONL(ctx, db, strings.NewReader(`{"id":"a","attrs":{"label":"x","tmp":null}}`+"\n"), "relabel.jsonl", Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Imported)
	got, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"label": "x", "year": int64(2010)}, got.Attrs)
	assert.Equal(t, map[string][]float32{"pos": {1, 2, 3}, "other": {4, 5}}, got.Vectors)

	// A vector replaces its modality only.
	_, err = ImportJSONL(ctx, db, strings.NewReader(`{"id":"a","vectors":{"other":[7,8]}}`+"\n"), "v.jsonl", Options{})
	require.NoError(t, err)
	got, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string][]float32{"pos": {1, 2, 3}, "other": {7, 8}}, got.Vectors)
	assert.Equal(t, "x", got.Attrs["label"])

	// Replace: the line is the whole item.
	_, err = ImportJSONL(ctx, db, strings.NewReader(`{"id":"a","attrs":{"label":"y"},"vectors":{"other":[1,1]}}`+"\n"), "r.jsonl", Options{Replace: true})
	require.NoError(t, err)
	got, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"label": "y"}, got.Attrs)
	assert.Equal(t, map[string][]float32{"other": {1, 1}}, got.Vectors)

	// Null is refused where it cannot mean a removal.
	_, err = ImportJSONL(ctx, db, strings.NewReader(`{"id":"a","attrs":{"label":null}}`+"\n"), "r.jsonl", Options{Replace: true})
	assert.ErrorIs(t, err, ErrBadRecord)

	// Searches see the merged state.
	rep2, err := db.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep2.Problems)
}

func TestReadIDsRefusesRepeats(t *testing.T) {
	_, err := ReadIDs(strings.NewReader("a\nb\na\n"), "ids.txt")
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), `ids.txt:3: ID "a" repeats line 1`)
	_, err = ReadIDs(strings.NewReader("a\nk\xff\n"), "ids.txt")
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "ids.txt:2: not valid UTF-8")
}

// A Parquet file that repeats an ID is refused like a JSONL file, or its
// later row skipped and counted under SkipBad.
func TestImportParquetRefusesRepeatedIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	schema := parquet.NewSchema("mmdb_item", parquet.Group{
		"id":    parquet.String(),
		"attrs": parquet.Optional(parquet.String()),
		"pos":   parquet.Optional(parquet.List(parquet.Leaf(parquet.FloatType))),
	})
	w := parquet.NewWriter(f, schema)
	for _, row := range []map[string]any{
		{"id": "a", "pos": []float32{1, 2, 3}},
		{"id": "b", "pos": []float32{4, 5, 6}},
		{"id": "a", "pos": []float32{7, 8, 9}},
	} {
		require.NoError(t, w.Write(row))
	}
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())

	db := openDB(t, posMod)
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	_, err = ImportParquet(ctx, db, in, "x.parquet", Options{})
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), `x.parquet: row 2: item "a" appears again (first in row 0)`)
	assert.Zero(t, db.Count())

	rep, err := ImportParquet(ctx, db, in, "x.parquet", Options{SkipBad: true})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Imported)
	assert.Equal(t, 1, rep.Skipped)
	got, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3}, got.Vectors["pos"])
}

// A whole float attribute comes back from Parquet as a float, as from
// JSONL (5.0 and -0.0 came back as int64).
func TestParquetKeepsWholeFloats(t *testing.T) {
	ctx := context.Background()
	src := openDB(t, posMod)
	require.NoError(t, src.Put(ctx, mmdb.Item{ID: "a", Attrs: map[string]any{"f5": 5.0, "n": int64(5)}, Vectors: map[string][]float32{"pos": {1, 2, 3}}}))
	path := filepath.Join(t.TempDir(), "x.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = ExportParquet(ctx, src, f, nil)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	dst := openDB(t, posMod)
	_, err = ImportParquet(ctx, dst, in, "x.parquet", Options{})
	require.NoError(t, err)
	got, err := dst.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"f5": 5.0, "n": int64(5)}, got.Attrs)
}
