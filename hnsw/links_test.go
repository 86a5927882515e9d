package hnsw

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"runtime"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// store is a vector store for LoadLinks: the vectors by ID.
type store map[uint32][]float32

func (s store) vec(id uint32, dst []float32) bool {
	v, ok := s[id]
	if ok {
		copy(dst, v)
	}
	return ok
}

// TestSaveLinks checks that a graph saved without its vectors and loaded
// with them from a store answers as the graph it was saved from: the same
// vectors, codes and results for every query, tombstones (whose vectors
// the store no longer has, and the file keeps) included.
func TestSaveLinks(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine equivalence: nothing for the race detector, and 20x slower under it")
	}
	cases := []struct {
		name    string
		metric  modality.Metric
		cfg     Config
		deleted int // every deleted-th ID is deleted
		codes   bool
	}{
		{"float32 walk", modality.Cosine, Config{Seed: 1}, 0, false},
		{"codes", modality.L2, Config{Seed: 2}, 0, true},
		{"Float32Walk config", modality.Dot, Config{Seed: 3, Float32Walk: true}, 0, false},
		{"tombstones, codes", modality.Cosine, Config{Seed: 4}, 9, true},
		{"tombstones, float32", modality.L2, Config{Seed: 5}, 7, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2000
			data := clustered(n+100, 24, 15, 21)
			g := NewHNSW(24, tc.metric, tc.cfg)
			st := store{}
			for i, v := range data[:n] {
				require.NoError(t, g.Add(uint32(i), v))
				st[uint32(i)] = v
			}
			for id := 0; tc.deleted > 0 && id < n; id += tc.deleted {
				require.True(t, g.Delete(uint32(id)))
				delete(st, uint32(id))
			}
			g.outgrown.Store(tc.codes)

			var full, links bytes.Buffer
			require.NoError(t, g.Save(&full))
			require.NoError(t, g.SaveLinks(&links))
			assert.Less(t, links.Len(), full.Len()-4*g.Len()*24, "the vectors are not in the links")

			h := NewHNSW(24, tc.metric, tc.cfg)
			missing, err := h.LoadLinks(bytes.NewReader(links.Bytes()), st.vec)
			require.NoError(t, err)
			assert.Empty(t, missing)
			h.outgrown.Store(tc.codes)
			assert.Equal(t, g.Len(), h.Len())
			assert.Equal(t, g.tombstones, h.tombstones)
			{
				assert.Equal(t, g.vecs[:g.used*24], h.vecs[:h.used*24])
				if g.rows != nil {
					assert.Equal(t, g.rows[:g.used*g.rowSize], h.rows[:h.used*h.rowSize], "the codes are computed again as they were")
				} else {
					assert.Nil(t, h.rows)
				}
			}
			for _, q := range data[n:] {
				for _, ef := range []int{10, 32} {
					require.Equal(t, g.Search(q, 10, SearchOptions{Ef: ef}), h.Search(q, 10, SearchOptions{Ef: ef}))
				}
			}
		})
	}
}

// TestLoadLinksRefuses checks what LoadLinks reports instead of loading a
// wrong graph: live nodes the store has no vector for, vectors that are
// not finite, and a links file given to Load, which has no store.
func TestLoadLinksRefuses(t *testing.T) {
	data := clustered(300, 8, 4, 2)
	g := NewHNSW(8, modality.L2, Config{Seed: 1})
	st := store{}
	for i, v := range data {
		require.NoError(t, g.Add(uint32(i), v))
		st[uint32(i)] = v
	}
	var links bytes.Buffer
	require.NoError(t, g.SaveLinks(&links))

	partial := store{}
	for id, v := range st {
		if id != 17 && id != 250 {
			partial[id] = v
		}
	}
	h := NewHNSW(8, modality.L2, Config{})
	missing, err := h.LoadLinks(bytes.NewReader(links.Bytes()), partial.vec)
	require.NoError(t, err)
	assert.ElementsMatch(t, []uint32{17, 250}, missing)
	v, ok := h.Vector(17)
	require.True(t, ok)
	assert.NotEqual(t, make([]float32, 8), v, "a missing vector borrows a neighbour's")

	bad := store{}
	for id, v := range st {
		bad[id] = v
	}
	bad[40] = append([]float32(nil), st[40]...)
	bad[40][3] = float32(math.Inf(1))
	_, err = NewHNSW(8, modality.L2, Config{}).LoadLinks(bytes.NewReader(links.Bytes()), bad.vec)
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "item 40")

	err = NewHNSW(8, modality.L2, Config{}).Load(bytes.NewReader(links.Bytes()))
	require.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "LoadLinks")

	// What Save wrote loads through LoadLinks too, without the store.
	var full bytes.Buffer
	require.NoError(t, g.Save(&full))
	missing, err = NewHNSW(8, modality.L2, Config{}).LoadLinks(bytes.NewReader(full.Bytes()), func(uint32, []float32) bool {
		t.Fatal("the store was asked for a vector in the file")
		return false
	})
	require.NoError(t, err)
	assert.Empty(t, missing)
}

// TestLoadLinksBoundsMemory checks that a crafted version-3 frame cannot
// make LoadLinks allocate far more than its own size: it holds only the
// links in use (12 bytes a slot at least), while the graph's link blocks
// are sized from the M it claims (up to 8 KB a slot).
func TestLoadLinksBoundsMemory(t *testing.T) {
	const n = 20000
	le := binary.LittleEndian
	b := []byte("MMHN")
	b = le.AppendUint32(b, linksVersion)
	for _, v := range []uint32{4, uint32(modality.L2), 1024, 1, 1} { // dim, metric, M, efC, efS
		b = le.AppendUint32(b, v)
	}
	b = le.AppendUint64(b, n)      // used
	b = le.AppendUint64(b, noNode) // entry
	b = le.AppendUint32(b, 0)      // free
	b = le.AppendUint32(b, 0)      // centre
	for range n {
		b = le.AppendUint32(b, 0) // ID 0 in every slot: refused, if read
		b = le.AppendUint32(b, 0)
	}
	for range n {
		b = le.AppendUint32(b, 0)
	}
	b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewHNSW(4, modality.L2, Config{}).LoadLinks(bytes.NewReader(b), func(uint32, []float32) bool { return true })
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrFormat)
	alloc := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, alloc, uint64(32*len(b)), "allocated %d MB for a %d KB frame", alloc>>20, len(b)>>10)
}
