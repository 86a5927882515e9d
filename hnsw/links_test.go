package hnsw

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
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

// TestLoadLinksBoundsMemory checks that crafted frames of versions 3 and 4
// cannot make LoadLinks allocate far more than their own size: they hold
// only the links in use (12 bytes a slot at least in version 3, a few bits
// in version 4), while the graph's link blocks are sized from the M they
// claim (up to 8 KB a block).
func TestLoadLinksBoundsMemory(t *testing.T) {
	const n = 20000
	le := binary.LittleEndian
	header := func(version uint32, used uint64) []byte {
		b := []byte("MMHN")
		b = le.AppendUint32(b, version)
		for _, v := range []uint32{4, uint32(modality.L2), 1024, 1, 1} { // dim, metric, M, efC, efS
			b = le.AppendUint32(b, v)
		}
		b = le.AppendUint64(b, used)
		b = le.AppendUint64(b, noNode) // entry
		b = le.AppendUint32(b, 0)      // free
		return le.AppendUint32(b, 0)   // centre
	}
	v3 := header(3, n)
	for range n {
		v3 = le.AppendUint32(v3, 0) // ID 0 in every slot: refused, if read
		v3 = le.AppendUint32(v3, 0)
	}
	for range n {
		v3 = le.AppendUint32(v3, 0)
	}
	// Version 4, every slot at level 31: 31 upper blocks of 4 KB each,
	// claimed in a few bytes a slot.
	packed := func(b []byte, v []uint32, width uint) []byte {
		f := &frameWriter{buf: b}
		f.packed(v, width)
		return f.buf
	}
	const n4 = 100 // within the layer-0 bound
	v4 := header(4, n4)
	v4 = le.AppendUint32(v4, 11)
	v4 = packed(v4, make([]uint32, n4), 11) // IDs
	levels := make([]uint32, n4)
	for i := range levels {
		levels[i] = 31
	}
	v4 = packed(v4, levels, levelWidth)
	v4 = packed(v4, make([]uint32, 32*n4), countWidth(2048))
	v4 = le.AppendUint32(v4, 11)
	v4 = packed(v4, nil, 11)
	// Version 4 cut short after the link counts, each 4,095: the links
	// they add up to must not be sized before the frame is found short.
	cut := header(4, 100)
	cut = le.AppendUint32(cut, 7)
	cut = packed(cut, make([]uint32, 100), 7)
	levels = make([]uint32, 100)
	for i := range levels {
		levels[i] = 2
	}
	cut = packed(cut, levels, levelWidth)
	counts := make([]uint32, 300)
	for i := range counts {
		counts[i] = 4095
	}
	cut = packed(cut, counts, countWidth(2048))
	for name, b := range map[string][]byte{"version 3": v3, "version 4": v4, "version 4 cut short": cut} {
		b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewHNSW(4, modality.L2, Config{}).LoadLinks(bytes.NewReader(b), func(uint32, []float32) bool { return true })
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, ErrFormat, name)
		alloc := after.TotalAlloc - before.TotalAlloc
		// The loader's bound: 64 times the frame, and 1 MiB (unbounded,
		// version 3 would take 164 MB here and version 4 13 MB).
		assert.Less(t, alloc, uint64(64*len(b)+2<<20), "%s: allocated %d MB for a %d KB frame", name, alloc>>20, len(b)>>10)
	}
}

// TestLoadsVersion3 loads the two files an earlier build wrote of one
// graph (testdata: Save's version 2 and SaveLinks' version 3, of 500
// 16-d vectors with IDs 0, 3, 6, ... and every 11th deleted, M 6, seed 5),
// and checks that both give the same graph, that the version-4 file this
// build writes of it gives that graph again, and that it is smaller.
func TestLoadsVersion3(t *testing.T) {
	data := clustered(600, 16, 8, 77)
	st := store{}
	for i, v := range data[:500] {
		if i%11 != 0 {
			st[uint32(i)*3] = v
		}
	}
	load := func(name string, b []byte) *HNSW {
		g := NewHNSW(16, modality.L2, Config{})
		missing, err := g.LoadLinks(bytes.NewReader(b), st.vec)
		require.NoError(t, err, name)
		require.Empty(t, missing, name)
		return g
	}
	full, err := os.ReadFile("testdata/full-v2.bin")
	require.NoError(t, err)
	v3, err := os.ReadFile("testdata/links-v3.bin")
	require.NoError(t, err)
	want, got := load("version 2", full), load("version 3", v3)
	require.Equal(t, 46, want.tombstones)
	sameGraph(t, want, got)
	var v4 bytes.Buffer
	require.NoError(t, got.SaveLinks(&v4))
	assert.Equal(t, uint32(linksVersion), binary.LittleEndian.Uint32(v4.Bytes()[4:]))
	sameGraph(t, want, load("version 4", v4.Bytes()))
	assert.Less(t, v4.Len(), len(v3)*3/4, "version 4 is %d bytes, version 3 %d", v4.Len(), len(v3))
	for _, q := range data[500:] {
		assert.Equal(t, want.Search(q, 10, SearchOptions{}), got.Search(q, 10, SearchOptions{}))
	}
}

// sameGraph asserts that two graphs hold the same nodes, links and vectors
// in the same slots.
func sameGraph(t *testing.T, want, got *HNSW) {
	t.Helper()
	require.Equal(t, want.used, got.used)
	assert.Equal(t, want.entry.Load(), got.entry.Load())
	assert.Equal(t, want.free, got.free)
	assert.Equal(t, slotsOf(want), slotsOf(got))
	isFree := make([]bool, want.used)
	for _, s := range want.free {
		isFree[s] = true
	}
	for s := range uint32(want.used) {
		require.Equal(t, want.levels[s], got.levels[s], "slot %d", s)
		assert.Equal(t, want.isDead(s), got.isDead(s), "slot %d", s)
		if isFree[s] {
			continue
		}
		assert.Equal(t, want.ids[s], got.ids[s], "slot %d", s)
		assert.Equal(t, want.vec(s), got.vec(s), "slot %d", s)
		for l := 0; l <= int(want.levels[s]); l++ {
			b := want.block(s, l)
			assert.Equal(t, b[:1+b[0]], got.block(s, l)[:1+b[0]], "slot %d layer %d", s, l)
		}
	}
}
