package mmdb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// DropModality removes a modality from a closed file: its vectors, index,
// alignments and calibrations go, the items keep their attributes and
// other vectors, Check is clean, searches of the others are unchanged, and
// the name can be defined again. While the file is open it is ErrLocked;
// an unknown name is ErrUnknownModality; the statement says how.
func TestDropModality(t *testing.T) {
	db, _ := surfaceDB(t)
	path := db.Path()
	_, err := db.Query(ctx, "CALIBRATE text TO audio CENTRE FORCE")
	require.NoError(t, err)
	q := Query{Target: "image", K: 10, Probes: []Probe{{Modality: "text", ItemID: "it-004"}}}
	before, err := db.Search(ctx, q)
	require.NoError(t, err)
	_, err = db.Query(ctx, "DROP MODALITY audio")
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "close it and run mmdb drop DB audio")
	err = DropModality(ctx, path, "audio", &Options{Timeout: 50e6})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, db.Close())

	require.ErrorIs(t, DropModality(ctx, path, "smell", nil), ErrUnknownModality)
	require.NoError(t, DropModality(ctx, path, "audio", nil))
	require.Error(t, DropModality(ctx, filepath.Join(t.TempDir(), "none.mmdb"), "audio", nil))
	assert.NoFileExists(t, filepath.Join(t.TempDir(), "none.mmdb"))

	db2, err := Open(path, nil)
	require.NoError(t, err)
	defer db2.Close()
	var names []string
	for _, m := range db2.Modalities() {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"image", "text"}, names)
	st, err := db2.Stats()
	require.NoError(t, err)
	assert.Empty(t, st.Alignments)
	assert.Empty(t, st.Calibrations)
	assert.Equal(t, 400, st.Items)
	it, err := db2.Get(ctx, "it-003")
	require.NoError(t, err)
	assert.NotNil(t, it.Attrs["year"])
	assert.Len(t, it.Vectors, 2)
	after, err := db2.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, ids(before), ids(after))
	rep, err := db2.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)

	require.NoError(t, db2.DefineModality(Modality{Name: "audio", Dim: 2, Metric: L2}))
	require.NoError(t, db2.Merge(ctx, Item{ID: "it-003", Vectors: map[string][]float32{"audio": {1, 2}}}))
	hits, err := db2.Search(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "audio", Vector: []float32{1, 2}}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"it-003"}, ids(hits), "a new audio, none of the old vectors")
}

// A file left by a crash (log entries past the checkpoints) drops a
// modality, takes the same name again with another dimension, and opens
// clean: the dropped modality's log entries replay into nothing.
func TestDropModalityAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.mmdb")
	db, err := Open(path, &Options{CheckpointEvery: 1 << 30})
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(Modality{Name: "image", Dim: 2, Metric: Cosine}))
	require.NoError(t, db.DefineModality(Modality{Name: "audio", Dim: 3, Metric: L2}))
	for i := range 50 {
		require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"image": {1, float32(i)}, "audio": {float32(i), 0, 1}}}))
	}
	crashed := filepath.Join(dir, "crashed.mmdb")
	raw, err := os.ReadFile(path) // the file as a kill -9 would leave it
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(crashed, raw, 0o644))
	require.NoError(t, db.Close())

	require.NoError(t, DropModality(ctx, crashed, "audio", nil))
	db2, err := Open(crashed, nil)
	require.NoError(t, err)
	require.NoError(t, db2.DefineModality(Modality{Name: "audio", Dim: 2, Metric: L2}))
	require.NoError(t, db2.Merge(ctx, Item{ID: "7", Vectors: map[string][]float32{"audio": {7, 7}}}))
	require.NoError(t, db2.Close())
	db3, err := Open(crashed, nil)
	require.NoError(t, err)
	defer db3.Close()
	rep, err := db3.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	hits, err := db3.Search(ctx, Query{Target: "audio", K: 50, Probes: []Probe{{Modality: "audio", Vector: []float32{7, 7}}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"7"}, ids(hits))
	img, err := db3.Search(ctx, Query{Target: "image", K: 50, Probes: []Probe{{Modality: "image", Vector: []float32{1, 3}}}})
	require.NoError(t, err)
	assert.Len(t, img, 50)
	empty := filepath.Join(dir, "empty.mmdb")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	require.Error(t, DropModality(ctx, empty, "audio", nil))
	fi, err := os.Stat(empty)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "an empty file stays empty")
}
