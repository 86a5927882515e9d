package storage

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vecMap is an hnsw.VectorSource over a map, as the database's file is
// for a graph in the low-memory mode.
type vecMap map[uint32][]float32

func (s vecMap) ReadVectors(ids []uint32, dst []float32, found []bool) {
	for i, id := range ids {
		v, ok := s[id]
		if found[i] = ok; ok {
			copy(dst[i*len(v):], v)
		}
	}
}

// RebuildIndex reads and adds the stored vectors a batch at a time: the
// index comes out whole (every vector, each its own nearest neighbour),
// progress counts up to the total, and a graph that keeps no vectors
// (a Source) is rebuilt allocating about its own size plus one batch, not
// every vector. Batches of a few dozen, across the table's cases, cover a
// vector that does not fit in what is left of a batch, and a set of
// vectors larger than a whole batch.
func TestRebuildInBatches(t *testing.T) {
	cases := []struct {
		name   string
		m      modality.Modality
		batch  int // bytes
		source bool
	}{
		{"one batch", modality.Modality{Name: "v", Dim: 32, Metric: modality.L2}, 32 << 20, false},
		{"batches of 37", modality.Modality{Name: "v", Dim: 32, Metric: modality.L2}, 37 * 32 * 4, false},
		{"a source, batches of 64", modality.Modality{Name: "v", Dim: 128, Metric: modality.Cosine}, 64 * 128 * 4, true},
		{"sets, a batch smaller than a set", modality.Modality{Name: "s", Dim: 8, Metric: modality.Cosine, Multi: modality.MaxSim}, 3 * 8 * 4, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func(b int) { rebuildBatchBytes = b }(rebuildBatchBytes)
			rebuildBatchBytes = tc.batch
			r := rand.New(rand.NewPCG(3, 4))
			n := 1500
			measure := tc.source && !raceEnabled
			if raceEnabled {
				n = 400
			}
			if measure {
				n = 6000 // the graph's first 1,024 slots, outgrown, are small beside it
			}
			vecs := vecMap{}
			p := newPropStore(t)
			require.NoError(t, p.s.Update(func(tx *Tx) error {
				require.NoError(t, tx.DefineModality(tc.m))
				for id := range uint32(n) {
					v := randomVec(r, tc.m.Dim)
					if tc.m.IsMulti() {
						v = randomVec(r, tc.m.Dim*(1+int(id)%5))
					}
					vecs[2*id] = v // IDs with gaps
					require.NoError(t, tx.PutVector(tc.m.Name, 2*id, v))
				}
				return nil
			}))
			cfg := hnsw.Config{Seed: 1, EfConstruction: 64}
			if tc.source {
				cfg.Source = vecMap(vecs)
			}
			var mu sync.Mutex // AddParallel reports from its workers
			var calls [][2]int
			var idx hnsw.Index
			var ids []uint32
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			require.NoError(t, p.s.View(func(tx *Tx) (err error) {
				idx, ids, err = tx.RebuildIndex(tc.m, cfg, func(done, total int) {
					mu.Lock()
					calls = append(calls, [2]int{done, total})
					mu.Unlock()
				})
				return err
			}))
			runtime.ReadMemStats(&after)

			require.Equal(t, n, idx.Len())
			require.Len(t, ids, n)
			assert.True(t, slices.IsSorted(ids))
			require.NotEmpty(t, calls)
			assert.Equal(t, [2]int{n, n}, calls[len(calls)-1])
			// Workers may report out of order within a batch; every count
			// is of the whole rebuild.
			for _, c := range calls {
				assert.True(t, c[0] >= 1 && c[0] <= n && c[1] == n, "progress %v", c)
			}
			for _, id := range ids[:100] {
				got := idx.Search(vecs[id], 1, hnsw.SearchOptions{Ef: 200})
				require.Len(t, got, 1)
				if !tc.m.IsMulti() { // a set's nearest by MaxSim need not be itself
					assert.Equal(t, id, got[0].ID)
				}
				assert.Equal(t, idx.Search(vecs[id], 1, hnsw.SearchOptions{Exact: true}), got)
			}
			if measure {
				h := idx.(*hnsw.HNSW)
				vectorBytes := uint64(n * tc.m.Dim * 4)
				allocated := after.TotalAlloc - before.TotalAlloc
				assert.Less(t, allocated, uint64(h.MemoryBytes())+vectorBytes/4,
					"rebuilding allocated %d bytes for a graph of %d and vectors of %d", allocated, h.MemoryBytes(), vectorBytes)
			}
		})
	}
}

// VectorsInto and vectorReader read through one cursor, seeking each ID:
// an ID with no vector (in a gap, before the first, past the last) must
// not take the next one's, and a vector of another length is not found.
func TestVectorsIntoSeeks(t *testing.T) {
	m := modality.Modality{Name: "v", Dim: 2, Metric: modality.L2}
	p := newPropStore(t)
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		require.NoError(t, tx.DefineModality(m))
		for _, id := range []uint32{5, 6, 9} {
			require.NoError(t, tx.PutVector(m.Name, id, []float32{float32(id), 1}))
		}
		return tx.PutVector(m.Name, 12, []float32{1, 2, 3}) // another length
	}))
	ids := []uint32{9, 0, 5, 7, 6, 12, 10, 100}
	want := []bool{true, false, true, false, true, false, false, false}
	require.NoError(t, p.s.View(func(tx *Tx) error {
		dst := make([]float32, 2*len(ids))
		found := make([]bool, len(ids))
		tx.VectorsInto(m.Name, ids, dst, found)
		assert.Equal(t, want, found)
		read := tx.vectorReader(m.Name)
		for i, id := range ids {
			v := make([]float32, 2)
			assert.Equal(t, want[i], read(id, v), "ID %d", id)
			if want[i] {
				assert.Equal(t, []float32{float32(id), 1}, dst[2*i:2*i+2])
				assert.Equal(t, []float32{float32(id), 1}, v)
			}
		}
		assert.False(t, tx.vectorReader("none")(5, make([]float32, 2)), "no such modality")
		return nil
	}))
}
