package hnsw

import (
	"runtime"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
)

// MemoryBytes is within 10% of what building the graph grew the live heap
// by, with its vectors and without (Config.Source), and the difference
// between the two is the float32 vectors.
func TestMemoryBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what the heap holds")
	}
	const n, dim = 10_000, 64
	vecs := clustered(n, dim, 20, 13)
	live := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	src := newMapSource(dim)
	for i, v := range vecs {
		src.put(uint32(i), v)
	}
	var got [2]int64
	for i, cfg := range []Config{{Seed: 1}, {Seed: 1, Source: src}} {
		before := live()
		g := NewHNSW(dim, modality.L2, cfg)
		for j, v := range vecs {
			_ = g.Add(uint32(j), v)
		}
		grown := live() - before
		got[i] = g.MemoryBytes()
		assert.InEpsilon(t, float64(grown), float64(got[i]), 0.10, "source %v: heap grew %d, MemoryBytes %d", cfg.Source != nil, grown, got[i])
		assert.Equal(t, cfg.Source == nil, g.VectorsInMemory())
		runtime.KeepAlive(g)
	}
	// The float32 vectors, with the room the doubling arrays keep.
	assert.GreaterOrEqual(t, got[0]-got[1], int64(4*n*dim))
	assert.LessOrEqual(t, got[0]-got[1], int64(2*4*n*dim))
}

// A graph of a few nodes holds room for a few more, not for a thousand:
// a file with many small modalities pays for each.
func TestSmallGraphIsSmall(t *testing.T) {
	const dim = 128
	for _, n := range []int{1, 3, 40} {
		g := NewHNSW(dim, modality.Cosine, Config{Seed: 1})
		for i, v := range clustered(n, dim, 2, 3) {
			assert.NoError(t, g.Add(uint32(i), v))
		}
		perSlot := 4*dim + g.rowSize + 4*(g.m0+1) + 8
		assert.LessOrEqual(t, g.MemoryBytes(), int64(2*max(n, 16)*perSlot+nodeLocks*8+64<<10),
			"%d nodes: %d bytes", n, g.MemoryBytes())
	}
}
