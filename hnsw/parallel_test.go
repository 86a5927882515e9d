package hnsw

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bulk load reserves its nodes at once: the arrays are sized to the load,
// not doubled past it, and copied at most once; small loads into a bigger
// graph keep doubling.
func TestAddParallelReserves(t *testing.T) {
	data := clustered(5000+300, 16, 20, 59)
	ids := func(from, to int) []uint32 {
		out := make([]uint32, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, uint32(i))
		}
		return out
	}
	for _, cfg := range []Config{{Seed: 1}, {Seed: 1, Float32Walk: true}} {
		g := NewHNSW(16, modality.Cosine, cfg)
		assert.Equal(t, cfg.Float32Walk, g.Reserve(10), "an empty graph reserves only without codes (no centre needed)")
		require.NoError(t, AddParallel(context.Background(), g, ids(0, 5000), data[:5000], 2, nil))
		assert.Equal(t, 5000, len(g.ids), "sized to the load")
		assert.Equal(t, 5000, g.Len())
		if !cfg.Float32Walk {
			assert.Equal(t, data[0], g.centre, "the first vector is still the centre")
		}

		// 300 more: less than a doubling, so the next grow doubles.
		require.NoError(t, AddParallel(context.Background(), g, ids(5000, 5300), data[5000:], 2, nil))
		assert.Equal(t, 10000, len(g.ids))

		flat := NewFlat(16, modality.Cosine)
		fill(t, flat, data)
		assert.GreaterOrEqual(t, recallAt(g, flat, data[:50], 10, SearchOptions{Ef: 64}), 0.97)
	}
}

// Progress counts the vector an empty graph takes alone, and ends at the
// load's size.
func TestAddParallelProgress(t *testing.T) {
	data := clustered(3000, 8, 10, 61)
	ids := make([]uint32, len(data))
	for i := range ids {
		ids[i] = uint32(i)
	}
	var mu sync.Mutex
	var calls []int // workers call it side by side
	g := NewHNSW(8, modality.L2, Config{Seed: 2})
	require.NoError(t, AddParallel(context.Background(), g, ids, data, 2, func(done int) {
		mu.Lock()
		calls = append(calls, done)
		mu.Unlock()
	}))
	require.NotEmpty(t, calls)
	assert.Equal(t, len(data), calls[len(calls)-1], "the last call is the load's size")
	assert.LessOrEqual(t, slices.Max(calls), len(data))
}
