package hnsw

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shifted returns clustered unit vectors moved by shift on every axis.
func shifted(n, dim int, shift float32, seed uint64) [][]float32 {
	vecs := clustered(n, dim, 10, seed)
	for _, v := range vecs {
		for j := range v {
			v[j] += shift
		}
	}
	return vecs
}

// staleGraph is a graph whose first vector (its centre) was an item at
// the origin, since deleted, and whose data lies 5 away on every axis: a
// store that began with one odd item.
func staleGraph(t *testing.T, g Index, dim int) [][]float32 {
	require.NoError(t, g.Add(99999, make([]float32, dim)))
	g.Delete(99999)
	vecs := shifted(2000, dim, 5, 3)
	fill(t, g, vecs)
	return vecs
}

// recall10 is recall@10 at ef 64 over the first 200 vectors as queries,
// against exact search over vecs less the deleted IDs.
func recall10(t *testing.T, g Index, vecs [][]float32, deleted ...uint32) float64 {
	t.Helper()
	flat := NewFlat(len(vecs[0]), modality.L2)
	fill(t, flat, vecs)
	for _, id := range deleted {
		flat.Delete(id)
	}
	hit := 0
	for _, q := range vecs[:200] {
		hit += overlap(flat.Search(q, 10, SearchOptions{}), g.Search(q, 10, SearchOptions{Ef: 64}))
	}
	return float64(hit) / 2000
}

// A graph whose centre has gone stale is re-centred on the data's mean,
// every row re-encoded around it, and searches at full recall again; a
// second call finds nothing to do. In the low-memory mode recall was
// 0.72 before; a graph that keeps its vectors links on exact distances
// and is not hurt, but its codes are re-centred too.
func TestRecentre(t *testing.T) {
	const dim = 32
	for _, tc := range []struct {
		name   string
		make   func() Index
		before float64 // recall@10 is below this before re-centring
	}{
		{"low-memory", func() Index { return newSourced(dim, modality.L2, Config{Seed: 1}) }, 0.9},
		{"low-memory, scanning source", func() Index { return newScanned(dim, modality.L2, Config{Seed: 1}) }, 0.9},
		{"vectors in memory", func() Index { return NewHNSW(dim, modality.L2, Config{Seed: 1}) }, 1.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := tc.make()
			vecs := staleGraph(t, idx, dim)
			g := graphOf(idx)
			// Some tombstones, whose rows come from their old codes.
			var deleted []uint32
			for id := range uint32(20) {
				require.True(t, idx.Delete(id*7))
				deleted = append(deleted, id*7)
			}
			before := recall10(t, idx, vecs, deleted...)
			require.Less(t, before, tc.before)
			require.Equal(t, make([]float32, dim), g.centre)

			require.True(t, g.Recentre())
			after := recall10(t, idx, vecs, deleted...)
			t.Logf("recall@10 at ef 64: %.3f around the first vector, %.3f re-centred", before, after)
			assert.GreaterOrEqual(t, after, 0.98)
			for j, c := range g.centre {
				require.InDelta(t, 5, c, 0.3, "the centre's component %d lies near the data's mean", j)
			}
			tmp := make([]float32, dim)
			codes := make([]uint8, dim)
			for s := range uint32(g.used) {
				if slices.Contains(g.free, s) {
					continue
				}
				gc, gs := g.row(s)
				if g.isDead(s) {
					// Decoded, a tombstone's row is near its vector.
					v := vecs[g.ids[s]]
					for i, b := range gc {
						require.InDelta(t, v[i]-g.centre[i], gs.lo+gs.step*float32(b), 0.05, "tombstone slot %d", s)
					}
					continue
				}
				want := g.encode(vecs[g.ids[s]], tmp, codes)
				require.Equal(t, want, *gs, "slot %d's scale", s)
				require.Equal(t, codes, gc, "slot %d's codes", s)
			}
			centre := slices.Clone(g.centre)
			assert.False(t, g.Recentre(), "a centre at the mean is not stale")
			assert.Equal(t, centre, g.centre)
		})
	}
}

// graphOf returns the *HNSW behind an index of these tests.
func graphOf(idx Index) *HNSW {
	if s, ok := idx.(*sourced); ok {
		return s.HNSW
	}
	return idx.(*HNSW)
}

// A centre that is one of the data's own vectors is not stale: Recentre
// leaves the graph as it is, codes and all, on clustered data, on data
// far from the origin and on cosine data, and on a graph too small to
// sample well.
func TestRecentreKeepsATypicalCentre(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vecs   [][]float32
		metric modality.Metric
	}{
		{"clustered", clustered(3000, 32, 10, 5), modality.L2},
		{"far from the origin", shifted(3000, 32, 1e4, 6), modality.L2},
		{"cosine", clustered(3000, 64, 4, 7), modality.Cosine},
		{"two vectors", clustered(2, 8, 1, 8), modality.L2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, low := range []bool{false, true} {
				var idx Index = NewHNSW(len(tc.vecs[0]), tc.metric, Config{Seed: 2})
				if low {
					idx = newSourced(len(tc.vecs[0]), tc.metric, Config{Seed: 2})
				}
				fill(t, idx, tc.vecs)
				g := graphOf(idx)
				rows := slices.Clone(g.rows)
				assert.False(t, g.Recentre(), "low-memory %v", low)
				assert.Equal(t, tc.vecs[0], g.centre)
				assert.Equal(t, rows, g.rows)
			}
		})
	}
}

// Loading a file whose graph keeps no codes (SaveLinks) re-centres a
// stale centre before it encodes a row, in either mode, and the graph it
// loads answers as well as one re-centred in memory; the next save holds
// the new centre, so the load after it keeps it.
func TestLoadRecentres(t *testing.T) {
	const dim = 32
	for _, low := range []bool{false, true} {
		src := newMapSource(dim)
		g := newSourcedWith(dim, modality.L2, Config{Seed: 1}, src)
		vecs := staleGraph(t, g, dim)
		var buf bytes.Buffer
		require.NoError(t, g.SaveLinks(&buf))
		read := func(id uint32, dst []float32) bool {
			v, ok := src.vecs[id]
			copy(dst, v)
			return ok
		}
		var loaded Index = NewHNSW(dim, modality.L2, Config{Seed: 1})
		if low {
			loaded = newSourcedWith(dim, modality.L2, Config{Seed: 1}, src)
		}
		_, err := graphOf(loaded).LoadLinks(bytes.NewReader(buf.Bytes()), read)
		require.NoError(t, err)
		lg := graphOf(loaded)
		for j, c := range lg.centre {
			require.InDelta(t, 5, c, 0.3, "low-memory %v: component %d", low, j)
		}
		assert.GreaterOrEqual(t, recall10(t, loaded, vecs), 0.98, "low-memory %v", low)
		assert.False(t, lg.Recentre())

		buf.Reset()
		require.NoError(t, lg.SaveLinks(&buf))
		again := newSourcedWith(dim, modality.L2, Config{Seed: 1}, src)
		_, err = again.LoadLinks(&buf, read)
		require.NoError(t, err)
		assert.Equal(t, lg.centre, again.centre, "low-memory %v: the saved centre is kept", low)
		assert.Equal(t, lg.rows, again.rows)
	}
}

// Recentre runs while searches and inserts go on (run with -race): each
// search sees the codes whole, around one centre, and finds itself.
func TestRecentreConcurrent(t *testing.T) {
	const dim = 16
	for _, low := range []bool{false, true} {
		var idx Index = NewHNSW(dim, modality.L2, Config{Seed: 3})
		if low {
			idx = newSourced(dim, modality.L2, Config{Seed: 3})
		}
		g := graphOf(idx)
		require.NoError(t, idx.Add(99999, make([]float32, dim)))
		idx.Delete(99999)
		vecs := shifted(1200, dim, 5, 9)
		fill(t, idx, vecs[:600])
		var wg sync.WaitGroup
		stop := make(chan struct{})
		misses := atomic.Int64{}
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i = (i + 7) % 600 {
					select {
					case <-stop:
						return
					default:
					}
					res := idx.Search(vecs[i], 1, SearchOptions{Ef: 64})
					if len(res) == 0 || res[0].ID != uint32(i) {
						misses.Add(1)
					}
				}
			}()
		}
		moved := 0
		for i := 600; i < len(vecs); i++ {
			require.NoError(t, idx.Add(uint32(i), vecs[i]))
			if i%150 == 0 && g.Recentre() {
				moved++
			}
		}
		close(stop)
		wg.Wait()
		assert.Equal(t, 1, moved, "low-memory %v: the first re-centring holds", low)
		assert.Zero(t, misses.Load(), "low-memory %v: searches that missed themselves", low)
	}
}
