package hnsw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sets draws n sets of 1..most vectors (clustered unit vectors, each set
// around one centre of its own so its vectors are related, as a caption's
// tokens are), laid end to end.
func sets(n, most, dim int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	pool := clustered(n*most, dim, 20, seed)
	out := make([][]float32, n)
	for i := range out {
		c := 1 + r.IntN(most)
		out[i] = modality.Join(pool[i*most : i*most+c]...)
	}
	return out
}

// lateInteraction is the reference score, written independently of
// Multi: float64, every pair, distance by the metric's definition.
func lateInteraction(metric modality.Metric, agg modality.Multi, q, set []float32, dim int) float64 {
	dist := func(a, b []float32) float64 {
		var dot, l2 float64
		for i := range a {
			dot += float64(a[i]) * float64(b[i])
			d := float64(a[i]) - float64(b[i])
			l2 += d * d
		}
		switch metric {
		case modality.L2:
			return l2
		case modality.Dot:
			return -dot
		}
		return 1 - dot
	}
	var sum float64
	best := math.Inf(1)
	nq := len(q) / dim
	for i := range nq {
		near := math.Inf(1)
		for j := 0; j < len(set); j += dim {
			near = min(near, dist(q[i*dim:(i+1)*dim], set[j:j+dim]))
		}
		sum += near
		best = min(best, near)
	}
	if agg == modality.MaxSim {
		return sum / float64(nq)
	}
	return best
}

// bruteTop is the reference top k: IDs by lateInteraction, ties by ID.
func bruteTop(metric modality.Metric, agg modality.Multi, q []float32, data map[uint32][]float32, dim, k int, allow *roaring.Bitmap) []uint32 {
	type scored struct {
		id uint32
		d  float64
	}
	var all []scored
	for id, set := range data {
		if allow == nil || allow.Contains(id) {
			all = append(all, scored{id, lateInteraction(metric, agg, q, set, dim)})
		}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.d != b.d {
			if a.d < b.d {
				return -1
			}
			return 1
		}
		return int(a.id) - int(b.id)
	})
	out := []uint32{}
	for _, s := range all[:min(k, len(all))] {
		out = append(out, s.id)
	}
	return out
}

func ids(res []Result) []uint32 {
	out := []uint32{}
	for _, r := range res {
		out = append(out, r.ID)
	}
	return out
}

func TestMultiMatchesLateInteraction(t *testing.T) {
	const dim, k = 16, 10
	cases := []struct {
		metric modality.Metric
		agg    modality.Multi
	}{
		{modality.Cosine, modality.MaxSim},
		{modality.Cosine, modality.MaxPair},
		{modality.Dot, modality.MaxSim},
		{modality.L2, modality.MaxSim},
		{modality.L2, modality.MaxPair},
	}
	data := map[uint32][]float32{}
	for i, s := range sets(400, 6, dim, 3) {
		data[uint32(i)] = s
	}
	queries := sets(30, 4, dim, 4)
	for _, c := range cases {
		t.Run(c.metric.String()+"/"+c.agg.String(), func(t *testing.T) {
			m := NewMulti(dim, c.metric, c.agg, Config{Seed: 1})
			for id, s := range data {
				require.NoError(t, m.Add(id, s))
			}
			assert.Equal(t, len(data), m.Len())
			hit, total := 0, 0
			for _, q := range queries {
				want := bruteTop(c.metric, c.agg, q, data, dim, k, nil)
				exact := m.Search(q, k, SearchOptions{Exact: true})
				require.Equal(t, want, ids(exact), "the exact scan ranks as the reference")
				for _, r := range exact {
					ref := lateInteraction(c.metric, c.agg, q, data[r.ID], dim)
					assert.InDelta(t, ref, float64(r.Dist), 1e-4, "distance of %d", r.ID)
				}
				got := ids(m.Search(q, k, SearchOptions{Ef: 64}))
				for _, id := range want {
					if slices.Contains(got, id) {
						hit++
					}
				}
				total += len(want)
			}
			recall := float64(hit) / float64(total)
			t.Logf("recall@%d through the graph: %.3f", k, recall)
			assert.GreaterOrEqual(t, recall, 0.95)
		})
	}
}

func TestMultiReplaceDeleteAllow(t *testing.T) {
	const dim = 8
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 2})
	data := map[uint32][]float32{}
	for i, s := range sets(200, 5, dim, 5) {
		data[uint32(i)] = s
		require.NoError(t, m.Add(uint32(i), s))
	}
	// Replace half the sets with sets of other sizes, delete a quarter.
	repl := sets(100, 7, dim, 6)
	for i := range 100 {
		data[uint32(2*i)] = repl[i]
		require.NoError(t, m.Add(uint32(2*i), repl[i]))
	}
	for i := 0; i < 200; i += 4 {
		delete(data, uint32(i+1))
		assert.True(t, m.Delete(uint32(i+1)))
	}
	assert.False(t, m.Delete(1), "a second delete finds nothing")
	assert.Equal(t, len(data), m.Len())
	nodes := 0
	for id, s := range data {
		got, ok := m.Vector(id)
		require.True(t, ok)
		require.Equal(t, s, got, "set of %d", id)
		nodes += len(s) / dim
	}
	assert.Equal(t, nodes, m.Vectors())
	assert.Equal(t, nodes, m.graph().Len(), "replaced and deleted sets left no node behind")
	_, ok := m.Vector(1)
	assert.False(t, ok)

	allow := roaring.New()
	for id := range data {
		if id%3 == 0 {
			allow.Add(id)
		}
	}
	allow.Add(1) // deleted: never returned
	for _, q := range sets(20, 3, dim, 8) {
		want := bruteTop(modality.Cosine, modality.MaxSim, q, data, dim, 10, allow)
		assert.Equal(t, want, ids(m.Search(q, 10, SearchOptions{Exact: true, Allow: allow})))
		for _, r := range m.Search(q, 10, SearchOptions{Allow: allow}) {
			assert.True(t, allow.Contains(r.ID) && data[r.ID] != nil, "%d allowed and live", r.ID)
		}
	}
	// A small allow-list is scored set by set (rank), a large one by the
	// pass over every slot (scan): the same distances, bit for bit.
	for _, q := range sets(10, 3, dim, 15) {
		all := m.Search(q, 20, SearchOptions{Exact: true})
		few := roaring.New()
		for _, r := range all[:12] {
			few.Add(r.ID)
		}
		require.Less(t, few.GetCardinality()*4, uint64(m.Len()), "the small list takes the set-by-set path")
		assert.Equal(t, all[:10], m.Search(q, 10, SearchOptions{Exact: true, Allow: few}))
		want := bruteTop(modality.Cosine, modality.MaxSim, q, data, dim, 10, few)
		assert.Equal(t, want, ids(m.Search(q, 10, SearchOptions{Allow: few})), "the walk, filtered to 12 sets, finds them")
	}
	assert.Empty(t, m.Search(make([]float32, dim+1), 5, SearchOptions{}), "a query of no whole vectors")
	assert.ErrorIs(t, m.Add(9999, make([]float32, dim*(modality.MaxSet+1))), ErrDimension)
	assert.ErrorIs(t, m.Add(9999, nil), ErrDimension)
	assert.Empty(t, m.Unreachable())
}

func TestMultiSaveLoad(t *testing.T) {
	const dim = 8
	m := NewMulti(dim, modality.L2, modality.MaxPair, Config{Seed: 3})
	for i, s := range sets(300, 4, dim, 9) {
		require.NoError(t, m.Add(uint32(i), s))
	}
	for i := range 30 {
		m.Delete(uint32(3 * i))
	}
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	l := NewMulti(dim, modality.L2, modality.MaxPair, Config{})
	require.NoError(t, l.Load(bytes.NewReader(buf.Bytes())))
	assert.Equal(t, m.Len(), l.Len())
	assert.Equal(t, m.Vectors(), l.Vectors())
	for _, q := range sets(20, 3, dim, 10) {
		assert.Equal(t, m.Search(q, 10, SearchOptions{}), l.Search(q, 10, SearchOptions{}))
		assert.Equal(t, m.Search(q, 10, SearchOptions{Exact: true}), l.Search(q, 10, SearchOptions{Exact: true}))
	}
	// Loaded, it takes writes: freed keys are reused, not duplicated.
	require.NoError(t, l.Add(3, sets(1, 4, dim, 11)[0]))
	require.NoError(t, l.Add(100000, sets(1, 4, dim, 12)[0]))
	assert.Equal(t, l.Vectors(), l.graph().Len())

	other := NewMulti(dim, modality.L2, modality.MaxSim, Config{})
	assert.ErrorIs(t, other.Load(bytes.NewReader(buf.Bytes())), ErrFormat, "another aggregation")
	b := buf.Bytes()
	assert.ErrorIs(t, l.Load(bytes.NewReader(flip(b, 40))), ErrFormat)
	assert.ErrorIs(t, l.Load(bytes.NewReader(b[:len(b)/2])), ErrFormat)
}

func TestMultiConcurrent(t *testing.T) {
	const dim = 8
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 4})
	data := sets(600, 4, dim, 13)
	for i := range 300 {
		require.NoError(t, m.Add(uint32(i), data[i]))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			qs := sets(50, 3, dim, 14)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, r := range m.Search(qs[i%len(qs)], 5, SearchOptions{}) {
					if r.Dist < -1e-3 || r.Dist > 2+1e-3 {
						t.Errorf("cosine MaxSim distance %v", r.Dist)
					}
				}
			}
		})
	}
	// Writers: replaces of the same IDs from two goroutines, new IDs,
	// deletes.
	var ww sync.WaitGroup
	for w := range 2 {
		ww.Go(func() {
			for i := range 300 {
				id := uint32(i)
				if i%2 == w {
					id = uint32(300 + i)
				}
				require.NoError(t, m.Add(id, data[300+i]))
				if i%10 == w {
					m.Delete(uint32(i / 2))
				}
			}
		})
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	assert.Equal(t, m.Vectors(), m.graph().Len(), "every key in the graph belongs to a live set")
	sum := 0
	for id := range uint32(600) {
		if v, ok := m.Vector(id); ok {
			sum += len(v) / dim
		}
	}
	assert.Equal(t, m.Vectors(), sum)
}

func FuzzMultiLoad(f *testing.F) {
	m := NewMulti(4, modality.L2, modality.MaxSim, Config{M: 4, Seed: 1})
	for i, s := range sets(30, 3, 4, 1) {
		m.Add(uint32(i), s)
	}
	m.Delete(5)
	var buf bytes.Buffer
	m.Save(&buf)
	saved := buf.Bytes()
	f.Add(saved[:len(saved)-4])
	f.Add([]byte("MMMV\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		l := NewMulti(4, modality.L2, modality.MaxSim, Config{})
		if err := l.Load(bytes.NewReader(b)); err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not wrapping ErrFormat: %v", err)
			}
			return
		}
		l.Search([]float32{0, 0, 0, 1, 1, 0, 0, 0}, 5, SearchOptions{})
		l.Search([]float32{1, 0, 0, 0}, 5, SearchOptions{Exact: true})
		require.NoError(t, l.Add(1000, []float32{1, 2, 3, 4}))
		l.Delete(1000)
		l.Delete(3)
		assert.Equal(t, l.Vectors(), l.graph().Len())
	})
}
