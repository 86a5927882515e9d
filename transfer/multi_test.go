package transfer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var setMod = mmdb.Modality{Name: "frames", Dim: 3, Metric: mmdb.L2, Multi: mmdb.MaxSim}

func TestJSONLRoundTripSets(t *testing.T) {
	ctx := context.Background()
	src := openDB(t, setMod, posMod)
	r := rand.New(rand.NewPCG(3, 3))
	var items []mmdb.Item
	for i := range 30 {
		var set [][]float32
		for range 1 + i%5 {
			set = append(set, randVec(r, 3))
		}
		items = append(items, mmdb.Item{ID: fmt.Sprintf("clip-%d", i), Vectors: map[string][]float32{"frames": modality.Join(set...), "pos": randVec(r, 3)}})
	}
	require.NoError(t, src.Put(ctx, items...))
	schema := filepath.Join(t.TempDir(), "sets.jsonl.schema.json")
	require.NoError(t, WriteSchemaFile(src, schema))
	var buf bytes.Buffer
	_, err := ExportJSONL(ctx, src, &buf, nil)
	require.NoError(t, err)
	first := strings.SplitN(buf.String(), "\n", 2)[0]
	assert.Contains(t, first, `"frames":[[`, "a set is written as a list of vectors")

	dst := openDB(t)
	require.NoError(t, ApplySchemaFile(dst, schema))
	assert.Equal(t, src.Modalities(), dst.Modalities(), "the schema file keeps Multi")
	_, err = ImportJSONL(ctx, dst, bytes.NewReader(buf.Bytes()), "sets.jsonl", Options{})
	require.NoError(t, err)
	for _, it := range items {
		got, err := dst.Get(ctx, it.ID)
		require.NoError(t, err)
		requireSameItem(t, it, got)
	}
}

func TestImportJSONLBadSets(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, setMod, posMod)
	for _, c := range []struct{ line, want string }{
		{`{"id":"a","vectors":{"frames":[[1,2,3],[4,5]]}}`, `vector "frames": vector 1 of the set has 2 values, "frames" wants 3`},
		{`{"id":"a","vectors":{"frames":[[1,2],[3,4],[5,6]]}}`, `vector 0 of the set has 2 values`},
		{`{"id":"a","vectors":{"pos":[[1,2,3]]}}`, `"pos" is not a multi-vector modality`},
		{`{"id":"a","vectors":{"frames":[]}}`, `wrong dimension`},
		{`{"id":"a","vectors":{"frames":[[1,2,null]]}}`, `vector 0 of the set`},
		{`{"id":"a","vectors":{"frames":[ [`, `x.jsonl:1`},
		{`{"id":"a","vectors":{"frames":[ `, `x.jsonl:1`},
	} {
		_, err := ImportJSONL(ctx, db, strings.NewReader(c.line+"\n"), "x.jsonl", Options{})
		require.Error(t, err, c.line)
		assert.ErrorContains(t, err, c.want, c.line)
	}
	assert.Equal(t, 0, db.Count(), "nothing refused was stored")
	// A flat list is a set too: its values laid end to end.
	_, err := ImportJSONL(ctx, db, strings.NewReader(`{"id":"b","vectors":{"frames":[1,2,3,4,5,6]}}`+"\n"), "y.jsonl", Options{})
	require.NoError(t, err)
	got, err := db.Get(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, got.Vectors["frames"])
}

// FuzzDecodeRecord: any line decodes or fails with an error; a set that
// decodes is a whole number of the modality's vectors.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","attrs":{"k":1},"vectors":{"frames":[[1,2,3],[4,5,6]],"pos":[1,2,3]}}`,
		`{"id":"a","vectors":{"frames":[ [1,2,3] ]}}`,
		`{"id":"a","vectors":{"frames":[[1,2,3],[4,5]]}}`,
		`{"id":"a","vectors":{"frames":[1,2,3]}}`,
		`{"id":"a","vectors":null}`,
	} {
		f.Add([]byte(s))
	}
	sets := map[string]mmdb.Modality{"frames": setMod}
	f.Fuzz(func(t *testing.T, line []byte) {
		it, err := decodeRecord(line, false, sets)
		if err != nil {
			return
		}
		if v, ok := it.Vectors["frames"]; ok && bytes.Contains(line, []byte("[[")) && len(v)%3 != 0 {
			t.Fatalf("a set of %d values for 3-d vectors from %q", len(v), line)
		}
	})
}

func TestImportNPYSets(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, setMod, posMod)
	// Two items, sets of two 3-d vectors each: shape (2, 2, 3).
	data := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	f := npyFile(t, "<f4", []int{2, 2, 3}, data)
	rep, err := ImportNPY(ctx, db, bytes.NewReader(f), "sets.npy", "frames", []string{"a", "b"}, Options{})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Imported)
	got, err := db.Get(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, []float32{7, 8, 9, 10, 11, 12}, got.Vectors["frames"])
	// A 2-D file gives sets of one; a stack for a single-vector modality
	// still needs an index; vectors of another length are refused.
	_, err = ImportNPY(ctx, db, bytes.NewReader(npyFile(t, "<f4", []int{1, 3}, data[:3])), "one.npy", "frames", []string{"c"}, Options{})
	require.NoError(t, err)
	_, err = ImportNPY(ctx, db, bytes.NewReader(f), "sets.npy", "pos", nil, Options{})
	assert.ErrorContains(t, err, "give the index of one")
	_, err = ImportNPY(ctx, db, bytes.NewReader(npyFile(t, "<f4", []int{1, 3, 4}, data)), "bad.npy", "frames", nil, Options{})
	assert.ErrorIs(t, err, mmdb.ErrDimension)
	_, err = ImportNPY(ctx, db, bytes.NewReader(npyFile(t, "<f4", []int{2, 0, 3}, nil)), "empty.npy", "frames", nil, Options{})
	assert.ErrorIs(t, err, ErrBadRecord)
}

// Stacks beyond a set's values are refused before any row, and a stack
// for a modality that NPYOptions.Define defines as sets is sets.
func TestImportNPYSetsBoundsAndDefine(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	f := npyFile(t, "<f4", []int{2, 2, 3}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	rep, err := ImportNPYWith(ctx, db, bytes.NewReader(f), "s.npy", "frames", nil, NPYOptions{Index: -1, Define: &mmdb.Modality{Metric: mmdb.L2, Multi: mmdb.MaxSim}})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Imported)
	got, err := db.Get(ctx, "1")
	require.NoError(t, err)
	assert.Len(t, got.Vectors["frames"], 6, "item 1 holds a set of two 3-d vectors")

	wide := openDB(t, mmdb.Modality{Name: "w", Dim: 8192, Metric: mmdb.L2, Multi: mmdb.MaxSim})
	big := npyFile(t, "<f4", []int{1, 200, 8192}, make([]float64, 200*8192))
	_, err = ImportNPY(ctx, wide, bytes.NewReader(big), "big.npy", "w", nil, Options{SkipBad: true})
	assert.ErrorIs(t, err, ErrBadRecord, "a set of 200 x 8192 values is refused up front, not skipped")
}

// Parquet keeps a set as its values laid end to end, and reads it back.
func TestParquetRoundTripSets(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, setMod)
	r := rand.New(rand.NewPCG(4, 4))
	var items []mmdb.Item
	for i := range 20 {
		items = append(items, mmdb.Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"frames": randVec(r, 3*(1+i%4))}})
	}
	require.NoError(t, db.Put(ctx, items...))
	var buf bytes.Buffer
	_, err := ExportParquet(ctx, db, &buf, nil)
	require.NoError(t, err)
	back, err := ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	require.Len(t, back, len(items))
	for i, it := range items {
		assert.Equal(t, it.Vectors["frames"], back[i].Vectors["frames"], "set of %s", it.ID)
	}
}
