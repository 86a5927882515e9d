package storage

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestLoadIndexFromLinks checks LoadIndex on a checkpoint saved without
// its vectors: the vectors come from the vector bucket, and the changes
// logged after the checkpoint (a vector replaced, one deleted, one added)
// are replayed onto it. A vector that left the bucket with no change
// logged makes the checkpoint unusable (rebuild), not a graph that
// answers with a borrowed vector.
func TestLoadIndexFromLinks(t *testing.T) {
	m := modality.Modality{Name: "image", Dim: 16, Metric: modality.L2}
	r := rand.New(rand.NewPCG(1, 2))
	p := newPropStore(t)
	vecs := map[uint32][]float32{}
	g := hnsw.NewHNSW(m.Dim, m.Metric, hnsw.Config{Seed: 1})
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		require.NoError(t, tx.DefineModality(m))
		for id := range uint32(500) {
			vecs[id] = randomVec(r, m.Dim)
			require.NoError(t, tx.PutVector(m.Name, id, vecs[id]))
			require.NoError(t, g.Add(id, vecs[id]))
		}
		var buf bytes.Buffer
		require.NoError(t, g.SaveLinks(&buf))
		return tx.PutCheckpoint(m.Name, tx.Seq(), buf.Bytes())
	}))
	// After the checkpoint: 10 replaced far away, 20 deleted, 600 added.
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		vecs[10] = make([]float32, m.Dim)
		vecs[10][0] = 100
		require.NoError(t, tx.PutVector(m.Name, 10, vecs[10]))
		require.NoError(t, tx.DeleteVector(m.Name, 20))
		delete(vecs, 20)
		vecs[600] = randomVec(r, m.Dim)
		return tx.PutVector(m.Name, 600, vecs[600])
	}))
	require.NoError(t, p.s.View(func(tx *Tx) error {
		idx, _, st, reason, err := tx.LoadIndex(m, hnsw.Config{})
		require.NoError(t, err)
		require.Empty(t, reason)
		assert.Equal(t, 3, st.Replayed)
		assert.Equal(t, len(vecs), idx.Len())
		for id, v := range vecs {
			got, ok := idx.Vector(id)
			require.True(t, ok, "item %d", id)
			require.Equal(t, v, got, "item %d", id)
		}
		_, ok := idx.Vector(20)
		assert.False(t, ok)
		res := idx.Search(vecs[10], 1, hnsw.SearchOptions{})
		require.Len(t, res, 1)
		assert.Equal(t, uint32(10), res[0].ID, "the replaced vector is found where it is now")
		return nil
	}))

	// Damage: a vector leaves the bucket with no change logged.
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		return tx.tx.Bucket(vecBucketName(m.Name)).Delete(be32(30))
	}))
	require.NoError(t, p.s.View(func(tx *Tx) error {
		idx, _, _, reason, err := tx.LoadIndex(m, hnsw.Config{})
		require.NoError(t, err)
		assert.Nil(t, idx)
		assert.Contains(t, reason, "item 30")
		return nil
	}))
}
