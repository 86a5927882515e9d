package coder

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clustered returns n unit vectors drawn around `clusters` random centres.
func clustered(n, dim, clusters int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 99))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(clusters)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.5*float32(r.NormFloat64())
		}
		kernel.Normalize(v)
		out[i] = v
	}
	return out
}

func fill(t testing.TB, idx hnsw.Index, vecs [][]float32) {
	for i, v := range vecs {
		require.NoError(t, idx.Add(uint32(i), v))
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return c
}

// The hnsw.Index contract, as far as the baseline keeps it: its graph
// searches are not held to recall, to a full allow-list or to updates.
func TestConformance(t *testing.T) {
	const dim = 16
	vecs := clustered(500, dim, 10, 1)
	var idx hnsw.Index = New(dim, modality.Cosine, hnsw.Config{})
	assert.Equal(t, dim, idx.Dim())
	assert.Equal(t, modality.Cosine, idx.Metric())
	assert.Empty(t, idx.Search(vecs[0], 5, hnsw.SearchOptions{}), "empty index")
	fill(t, idx, vecs)
	assert.Equal(t, 500, idx.Len())

	assert.ErrorIs(t, idx.Add(9999, make([]float32, dim+1)), hnsw.ErrDimension)
	assert.Nil(t, idx.Search(make([]float32, dim-1), 5, hnsw.SearchOptions{}))
	assert.Nil(t, idx.Search(vecs[0], 0, hnsw.SearchOptions{}))

	// Results are sorted and carry the metric's distance.
	res := idx.Search(vecs[7], 10, hnsw.SearchOptions{Exact: true})
	require.Len(t, res, 10)
	assert.Equal(t, uint32(7), res[0].ID)
	assert.InDelta(t, 0, res[0].Dist, 1e-5)
	for i := 1; i < len(res); i++ {
		assert.LessOrEqual(t, res[i-1].Dist, res[i].Dist)
		assert.InDelta(t, modality.Cosine.Distance(vecs[7], vecs[res[i].ID]), res[i].Dist, 1e-5)
	}
	res = idx.Search(vecs[7], 10, hnsw.SearchOptions{})
	require.NotEmpty(t, res)
	for i := 1; i < len(res); i++ {
		assert.LessOrEqual(t, res[i-1].Dist, res[i].Dist)
	}

	v, ok := idx.Vector(3)
	require.True(t, ok)
	assert.Equal(t, vecs[3], v)
	v[0] = 42
	v2, _ := idx.Vector(3)
	assert.NotEqual(t, float32(42), v2[0], "Vector returns a copy")

	// Allow-list: only allowed IDs come back, exact or not; all of them
	// from an exact search.
	allow := roaring.BitmapOf(1, 2, 3, 100, 200, 300, 400)
	for _, exact := range []bool{true, false} {
		got := idx.Search(vecs[0], 10, hnsw.SearchOptions{Allow: allow, Exact: exact})
		for _, r := range got {
			assert.True(t, allow.Contains(r.ID), "id %d not allowed", r.ID)
		}
		if exact {
			assert.Len(t, got, 7)
		}
	}
	// A filter function restricts the same way, and with the allow-list
	// to both's intersection (the filtered benchmark gives it one).
	odd := func(id uint32) bool { return id%2 == 1 }
	for _, exact := range []bool{true, false} {
		got := idx.Search(vecs[0], 10, hnsw.SearchOptions{Filter: odd, Exact: exact})
		for _, r := range got {
			assert.True(t, odd(r.ID), "id %d rejected by the filter", r.ID)
		}
		got = idx.Search(vecs[0], 10, hnsw.SearchOptions{Allow: allow, Filter: odd, Exact: exact})
		for _, r := range got {
			assert.True(t, allow.Contains(r.ID) && odd(r.ID), "id %d not in both", r.ID)
		}
		if exact {
			assert.Len(t, got, 2) // 1 and 3
		}
	}

	// Delete: gone from results at once.
	assert.True(t, idx.Delete(7))
	assert.False(t, idx.Delete(7))
	assert.Equal(t, 499, idx.Len())
	_, ok = idx.Vector(7)
	assert.False(t, ok)
	for _, exact := range []bool{true, false} {
		for _, r := range idx.Search(vecs[7], 20, hnsw.SearchOptions{Exact: exact}) {
			assert.NotEqual(t, uint32(7), r.ID)
		}
	}

	// Save and load into a fresh index: same exact answers.
	var buf bytes.Buffer
	require.NoError(t, idx.Save(&buf))
	saved := buf.Bytes()
	loaded := New(dim, modality.Cosine, hnsw.Config{})
	require.NoError(t, loaded.Load(bytes.NewReader(saved)))
	assert.Equal(t, idx.Len(), loaded.Len())
	for _, q := range vecs[:20] {
		assert.Equal(t, idx.Search(q, 5, hnsw.SearchOptions{Exact: true}), loaded.Search(q, 5, hnsw.SearchOptions{Exact: true}))
	}
	_, ok = loaded.Vector(7)
	assert.False(t, ok, "deletes survive a save")
	// Damaged data: an error, never a panic.
	for _, bad := range [][]byte{nil, saved[:10], saved[:len(saved)-1], flip(saved, len(saved)/2)} {
		assert.ErrorIs(t, New(dim, modality.Cosine, hnsw.Config{}).Load(bytes.NewReader(bad)), hnsw.ErrFormat)
	}
	assert.ErrorIs(t, New(dim+1, modality.Cosine, hnsw.Config{}).Load(bytes.NewReader(saved)), hnsw.ErrFormat, "other dimension")

	// Updates are refused, of live and of deleted IDs alike: coder/hnsw
	// panics on re-adds.
	assert.ErrorIs(t, idx.Add(3, vecs[100]), ErrUnsupported)
	assert.ErrorIs(t, idx.Add(7, vecs[100]), ErrUnsupported)
	assert.Equal(t, 499, idx.Len())

	// Unreachable does not inspect the graph.
	assert.Nil(t, idx.Unreachable())
}

// Every metric ranks like an exact scan on its own distances.
func TestMetrics(t *testing.T) {
	vecs := clustered(200, 8, 5, 2)
	for _, m := range []modality.Metric{modality.L2, modality.Dot, modality.Cosine} {
		t.Run(m.String(), func(t *testing.T) {
			c := New(8, m, hnsw.Config{M: 8})
			fill(t, c, vecs)
			for _, r := range c.Search(vecs[0], 5, hnsw.SearchOptions{}) {
				assert.InDelta(t, m.Distance(vecs[0], vecs[r.ID]), r.Dist, 1e-5)
			}
			var buf bytes.Buffer
			require.NoError(t, c.Save(&buf))
			assert.ErrorIs(t, New(8, m+1, hnsw.Config{}).Load(&buf), hnsw.ErrFormat, "other metric")
		})
	}
}

// The baseline's recall on a 5k clustered set is logged, not asserted: it
// is the reason mmdb has its own engine.
func TestRecall5k(t *testing.T) {
	const dim = 32
	data := clustered(5100, dim, 50, 7)
	base, queries := data[:5000], data[5000:]
	flat := hnsw.NewFlat(dim, modality.Cosine)
	c := New(dim, modality.Cosine, hnsw.Config{})
	fill(t, flat, base)
	fill(t, c, base)
	for _, ef := range []int{16, 64} {
		hit := 0
		for _, q := range queries {
			want := map[uint32]bool{}
			for _, r := range flat.Search(q, 10, hnsw.SearchOptions{}) {
				want[r.ID] = true
			}
			for _, r := range c.Search(q, 10, hnsw.SearchOptions{Ef: ef}) {
				if want[r.ID] {
					hit++
				}
			}
		}
		t.Logf("coder ef=%d recall@10 = %.3f", ef, float64(hit)/float64(10*len(queries)))
	}
}
