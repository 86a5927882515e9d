package mmdb

import (
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
