package transfer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// Every truncation of an export, and every flip of bit 1 or 6 of each of
// its bytes (bit 1 turns the Zstd codec into LZ4_RAW, bit 6 of byte 22
// made parquet-go panic; all eight bits take 2 s), is read or refused with
// ErrBadRecord: parquet-go panics on some (in ReadPageIndex,
// in its page decoders), which ReadParquet recovers, and a flip of the
// compression codec to LZ4 would make its decoder grow a buffer until the
// process dies, which ReadParquet refuses up front.
func TestReadParquetDamaged(t *testing.T) {
	valid := validParquet(t)
	refused, panicked, lz4 := 0, 0, 0
	check := func(name string, b []byte) {
		var err error
		n := allocs(func() { _, err = ReadParquet(bytes.NewReader(b), int64(len(b))) })
		require.Less(t, n, uint64(64<<20), "%s: %d bytes allocated", name, n)
		if err != nil {
			require.ErrorIs(t, err, ErrBadRecord, name)
			refused++
			if strings.Contains(err.Error(), "the reader failed") {
				panicked++
			}
			if strings.Contains(err.Error(), "LZ4") {
				lz4++
			}
		}
	}
	for at := range valid {
		check(fmt.Sprintf("truncated at %d", at), valid[:at])
		for _, bit := range []int{1, 6} {
			b := bytes.Clone(valid)
			b[at] ^= 1 << bit
			check(fmt.Sprintf("bit %d of byte %d flipped", bit, at), b)
		}
	}
	t.Logf("%d bytes: %d damaged files refused, %d of them after a recovered panic", len(valid), refused, panicked)
	assert.Positive(t, panicked, "no damaged file made parquet-go panic: this test no longer covers the recovery")
	assert.Positive(t, lz4, "no flip reached the codec field: this test no longer covers the LZ4 refusal")
}

// allocs returns how many bytes f allocates.
func allocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A damaged file is an ErrBadRecord naming it, from ImportParquet too,
// and nothing is stored; a footer claiming more bytes than the file holds
// is refused before parquet-go allocates them.
func TestImportParquetDamagedNamesFile(t *testing.T) {
	ctx := context.Background()
	valid := validParquet(t)
	panics := bytes.Clone(valid)
	panics[22] ^= 1 << 6 // made parquet-go panic: slice bounds out of range [:-23]
	footer := hugeParquet(valid)[0].data
	for name, b := range map[string][]byte{"panic": panics, "footer": footer} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.parquet")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			db := openDB(t, damageVec)
			var n uint64
			err = runGuarded(t, name, func() (err error) {
				n = allocs(func() { _, err = ImportParquet(ctx, db, f, path, Options{}) })
				return err
			})
			require.ErrorIs(t, err, ErrBadRecord)
			assert.Contains(t, err.Error(), path)
			assert.Less(t, n, uint64(64<<20))
			assert.Zero(t, db.Count())
		})
	}
}

// FuzzReadParquet: whatever the bytes, ReadParquet returns items or an
// ErrBadRecord; it never panics.
func FuzzReadParquet(f *testing.F) {
	valid := validParquet(f)
	f.Add(valid)
	for _, v := range damage(valid, 1)[64:80] {
		f.Add(v.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ReadParquet(bytes.NewReader(b), int64(len(b))); err != nil {
			require.ErrorIs(t, err, ErrBadRecord)
		}
	})
}
