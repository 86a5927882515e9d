package hnsw

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slotsOf is a graph's ID map as a Go map.
func slotsOf(h *HNSW) map[uint32]uint32 {
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	out := map[uint32]uint32{}
	h.slotOf.each(func(id, s uint32) { out[id] = s })
	return out
}

// slotMap answers as a Go map does, over dense, sparse and mixed IDs, and
// keeps dense IDs in its array.
func TestSlotMap(t *testing.T) {
	for _, c := range []struct {
		name string
		id   func(r *rand.Rand, i int) uint32
	}{
		{"dense from 1", func(_ *rand.Rand, i int) uint32 { return uint32(i + 1) }},
		{"dense, shuffled", func(r *rand.Rand, i int) uint32 { return uint32(r.IntN(5000)) }},
		{"random", func(r *rand.Rand, _ int) uint32 { return r.Uint32() }},
		{"mixed", func(r *rand.Rand, i int) uint32 {
			if i%3 == 0 {
				return r.Uint32()
			}
			return uint32(i)
		}},
		{"edges", func(r *rand.Rand, i int) uint32 { return []uint32{0, 1, 1 << 31, ^uint32(0), 2047, 2048}[i%6] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m, want := newSlotMap(0), map[uint32]uint32{}
			for i := range 20000 {
				id := c.id(r, i)
				switch r.IntN(4) {
				case 0:
					_, had := want[id]
					delete(want, id)
					assert.Equal(t, had, m.del(id))
				default:
					s := uint32(r.IntN(1 << 20))
					want[id] = s
					m.set(id, s)
				}
				if i%997 == 0 {
					probe := c.id(r, i)
					s, ok := m.get(probe)
					ws, wok := want[probe]
					require.Equal(t, wok, ok)
					require.Equal(t, ws, s)
				}
			}
			require.Equal(t, len(want), m.len())
			got := map[uint32]uint32{}
			m.each(func(id, s uint32) { got[id] = s })
			assert.Equal(t, want, got)
			for id, s := range want {
				gs, ok := m.get(id)
				require.True(t, ok)
				require.Equal(t, s, gs)
			}
		})
	}
	// Dense IDs cost 4 bytes each and more only for the array's slack.
	m := newSlotMap(0)
	for id := range uint32(100_000) {
		m.set(id+1, id)
	}
	assert.Empty(t, m.sparse)
	assert.Less(t, m.bytes(), int64(5*100_000))
}

// IDs counting up after many sparse ones (a graph loaded with both) grow
// the array a logarithmic number of times, each a pass over the map: not
// one pass an ID (a review measured 6.3 s for 20k of each).
func TestSlotMapDenseAfterSparse(t *testing.T) {
	const n = 20_000
	r := rand.New(rand.NewPCG(4, 4))
	m := newSlotMap(2 * n)
	for i := range n {
		m.set(1<<30+r.Uint32()%(1<<30), uint32(i))
	}
	for id := range uint32(n) {
		m.set(id+1, id)
	}
	assert.LessOrEqual(t, m.grows, 10, "64 doubled to 20,000 and past")
	for id := range uint32(n) {
		s, ok := m.get(id + 1)
		require.True(t, ok)
		require.Equal(t, id, s)
	}
}
