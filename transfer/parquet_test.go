package transfer

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Parquet export reads back to the same items: ids, attributes (through
// the JSON column) and float32 vectors bit for bit; a missing modality is
// a null, not an empty vector.
func TestParquetRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, err := mmdb.Open(filepath.Join(t.TempDir(), "a.mmdb"), nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "image", Dim: 3, Metric: mmdb.L2}))
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "text", Dim: 2, Metric: mmdb.Cosine}))
	want := []mmdb.Item{
		{ID: "a", Attrs: map[string]any{"year": 2014, "score": 0.25, "ok": true, "name": "dog", "tags": []string{"x", "y"}},
			Vectors: map[string][]float32{"image": {1.5, -2, 3e-7}, "text": {0.6, 0.8}}},
		{ID: "b", Vectors: map[string][]float32{"image": {7, 8, 9}}},
		{ID: "c", Attrs: map[string]any{"year": 1999}, Vectors: map[string][]float32{"text": {1, 0}}},
	}
	require.NoError(t, db.Put(ctx, want...))
	var buf bytes.Buffer
	n, err := ExportParquet(ctx, db, &buf, nil)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	got, err := ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, g := range got {
		stored, err := db.Get(ctx, want[i].ID)
		require.NoError(t, err)
		assert.Equal(t, stored.ID, g.ID)
		if len(stored.Attrs) == 0 {
			assert.Empty(t, g.Attrs)
		} else {
			assert.Equal(t, stored.Attrs, g.Attrs)
		}
		assert.Equal(t, stored.Vectors, g.Vectors)
	}
	_, err = ReadParquet(bytes.NewReader([]byte("not parquet at all")), 18)
	require.ErrorIs(t, err, ErrBadRecord)
}

// SkipBad skips records the database refuses, not failures of the
// database itself: on a closed database the import fails and skips
// nothing.
func TestSkipBadDoesNotHideDatabaseFailures(t *testing.T) {
	ctx := context.Background()
	db, err := mmdb.Open(filepath.Join(t.TempDir(), "a.mmdb"), nil)
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "v", Dim: 2, Metric: mmdb.L2}))
	data := `{"id":"a","vectors":{"v":[1,2]}}` + "\n" + `{"id":"b","vectors":{"v":[1,2,3]}}` + "\n" + `{"id":"c","vectors":{"v":[3,4]}}` + "\n"
	rep, err := ImportJSONL(ctx, db, strings.NewReader(data), "x.jsonl", Options{SkipBad: true})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Imported)
	assert.Equal(t, 1, rep.Skipped)
	assert.Contains(t, rep.Errors[0], "x.jsonl:2:")

	require.NoError(t, db.Close())
	rep, err = ImportJSONL(ctx, db, strings.NewReader(data), "x.jsonl", Options{SkipBad: true})
	require.ErrorIs(t, err, mmdb.ErrClosed)
	assert.Zero(t, rep.Skipped)
	assert.Zero(t, rep.Imported)
}
