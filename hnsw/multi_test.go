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
	"sync/atomic"
	"testing"
	"time"

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
		if metric == modality.L2 {
			sum += math.Sqrt(near) // MaxSim averages Euclidean distances
		} else {
			sum += near
		}
		best = min(best, near)
	}
	if agg != modality.MaxSim {
		return best
	}
	if metric == modality.L2 {
		return math.Pow(sum/float64(nq), 2) // squared, as the index's L2 distances are
	}
	return sum / float64(nq)
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
	// An allow-list of 3 sets and 1,000 IDs without one: the 3.
	sparse := roaring.New()
	sparse.AddRange(100000, 101000)
	for id := range data {
		if sparse.GetCardinality() < 1003 {
			sparse.Add(id)
		}
	}
	for _, exact := range []bool{false, true} {
		assert.Len(t, m.Search(sets(1, 2, dim, 16)[0], 10, SearchOptions{Allow: sparse, Exact: exact}), 3)
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

// constSet is n copies of v, laid end to end.
func constSet(n int, v []float32) []float32 {
	out := make([]float32, 0, n*len(v))
	for range n {
		out = append(out, v...)
	}
	return out
}

// A search or a Vector read while sets are replaced sees each set whole,
// old or new, never a blend, and never another ID's vectors (keys freed by
// one replacement are reused by the next). Item 0 flips between three
// copies of a and three of b: against the probe {a, b} either scores a
// mean Euclidean distance of 5 (squared: 25), a blend 0.
func TestMultiReplaceIsAtomicForReaders(t *testing.T) {
	m := NewMulti(2, modality.L2, modality.MaxSim, Config{Seed: 5})
	a, b := []float32{0, 0}, []float32{10, 0}
	require.NoError(t, m.Add(0, constSet(3, a)))
	other := func(id uint32) []float32 { return []float32{float32(id) * 100, 50} }
	for id := uint32(1); id < 20; id++ {
		require.NoError(t, m.Add(id, constSet(2, other(id))))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			set := constSet(3, a)
			if i%2 == 0 {
				set = constSet(3, b)
			}
			if err := m.Add(0, set); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		r := rand.New(rand.NewPCG(1, 1))
		for !stop.Load() {
			id := uint32(1 + r.IntN(19))
			if err := m.Add(id, constSet(1+r.IntN(3), other(id))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var searches, bad atomic.Int64
	q := append(slices.Clone(a), b...)
	for w := range 2 {
		wg.Go(func() {
			for !stop.Load() {
				for _, r := range m.Search(q, 3, SearchOptions{Exact: w == 0, Ef: 100}) {
					if (r.ID == 0 && r.Dist != 25) || (r.ID != 0 && r.Dist < 1000) {
						bad.Add(1)
					}
				}
				for id := range uint32(20) {
					v, ok := m.Vector(id)
					want := other(id)
					if id == 0 && ok {
						want = v[:2]
					}
					for j := 0; ok && j < len(v); j += 2 {
						if v[j] != want[0] || v[j+1] != want[1] {
							bad.Add(1)
						}
					}
				}
				searches.Add(1)
			}
		})
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	assert.Positive(t, searches.Load())
	assert.Zero(t, bad.Load(), "blended sets or another ID's vectors in %d rounds of reads", searches.Load())
}

// denseSets is a set index of 800 sets of 32 vectors each close to its
// own centre (IDs 0-799), and the sets.
func denseSets(t *testing.T, dim int) (*Multi, map[uint32][]float32) {
	r := rand.New(rand.NewPCG(11, 11))
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 6})
	data := map[uint32][]float32{}
	for id := range uint32(800) {
		c := clustered(1, dim, 1, uint64(id)+100)[0]
		var vs [][]float32
		for range 32 {
			v := slices.Clone(c)
			for d := range v {
				v[d] += float32(r.NormFloat64() * 0.02)
			}
			vs = append(vs, v)
		}
		data[id] = modality.Join(vs...)
		require.NoError(t, m.Add(id, data[id]))
	}
	return m, data
}

// Sets of many close vectors (a document's tokens) fill a probe vector's
// ef nearest with a few sets; the walk is widened until k sets are named.
func TestMultiReturnsKOnDenseSets(t *testing.T) {
	const dim = 8
	m, data := denseSets(t, dim)
	for _, q := range sets(10, 1, dim, 12) {
		for _, k := range []int{10, 40} {
			got := m.Search(q, k, SearchOptions{Ef: 16})
			require.Len(t, got, k)
			want := bruteTop(modality.Cosine, modality.MaxSim, q, data, dim, k, nil)
			hit := 0
			for _, id := range ids(got) {
				if slices.Contains(want, id) {
					hit++
				}
			}
			assert.GreaterOrEqual(t, float64(hit)/float64(k), 0.9, "recall@%d", k)
		}
	}
}

// A filtered set search reports its walks' statistics in vectors: the
// share of the graph's vectors the filter allows (not of its sets), a
// budget grown by the allowed sets' mean size, the counts of the walks of
// all the query's vectors summed, and a plainly misled walk stops the
// search, which answers nothing (the database then scans).
func TestMultiWalkStats(t *testing.T) {
	const dim = 8
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 2})
	near, far, around := nearAndFar(dim, 13)
	// Even IDs: sets of 1 vector near the query; odd: sets of 4, far.
	allowFar, allowNear := roaring.New(), roaring.New()
	for id := range uint32(600) {
		c, n := near, 1
		if id%2 == 1 {
			c, n = far, 4
			allowFar.Add(id)
		} else {
			allowNear.Add(id)
		}
		var vs [][]float32
		for range n {
			vs = append(vs, around(c))
		}
		require.NoError(t, m.Add(id, modality.Join(vs...)))
	}
	q1, q2 := around(near), around(near)

	// Allowing the near sets: half the sets, a fifth of the vectors.
	w := WalkStats{Share: 0.5, Budget: 10}
	got := m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowNear, Walk: &w})
	require.Len(t, got, 10)
	assert.InDelta(t, 300.0/1500, w.Share, 1e-9, "the share of the graph's vectors")
	assert.Equal(t, 10, w.Budget, "the budget is left as given")
	assert.Positive(t, w.Candidates)
	assert.True(t, w.Confident(w.Share), "a filter keeping the vectors near the query: %+v", w)

	// Two query vectors: the sum of each one's walk.
	var one, two, both WalkStats
	m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowNear, Walk: &one})
	m.Search(q2, 10, SearchOptions{Ef: 20, Allow: allowNear, Walk: &two})
	m.Search(modality.Join(q1, q2), 10, SearchOptions{Ef: 20, Allow: allowNear, Walk: &both})
	assert.Equal(t, one.Candidates+two.Candidates, both.Candidates)
	assert.Equal(t, one.Accepted+two.Accepted, both.Accepted)

	// Allowing the far sets: half the sets, four fifths of the vectors.
	w = WalkStats{Share: 0.5}
	got = m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowFar, Walk: &w})
	require.Len(t, got, 10, "no budget: the walk runs to its end")
	assert.InDelta(t, 1200.0/1500, w.Share, 1e-9)
	assert.False(t, w.Stopped)
	assert.False(t, w.Confident(w.Share), "a filter keeping only far vectors: %+v", w)

	w = WalkStats{Share: 0.5, Budget: 5}
	got = m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowFar, Walk: &w})
	assert.True(t, w.Stopped, "%+v", w)
	assert.Empty(t, got, "a stopped search answers nothing")
	assert.GreaterOrEqual(t, w.Candidates, 20, "the budget in vectors: 5 sets of 4")

	// Each walk's budget in vectors: Budget (a number of allowed sets to
	// scan) grown by their mean size, Floor (a number of allowed
	// candidates expected by chance) by the ratio of the shares.
	m.mu.RLock()
	n, keys := m.sizes.count(allowFar, len(m.keys))
	assert.Equal(t, []int{300, 1200}, []int{n, keys})
	assert.Equal(t, WalkStats{Share: 0.8, Budget: 20, Floor: 25}, m.inVectors(WalkStats{Share: 0.5, Budget: 5, Floor: 40}, keys, n))
	n, keys = m.sizes.count(allowNear, len(m.keys))
	assert.Equal(t, []int{300, 300}, []int{n, keys})
	assert.Equal(t, WalkStats{Share: 0.2, Budget: 10, Floor: 100}, m.inVectors(WalkStats{Share: 0.5, Budget: 10, Floor: 40}, keys, n))
	m.mu.RUnlock()

	// What the caller passes in is read, not kept: a WalkStats used again
	// gives the same; one left stopped does not stop an unfiltered search.
	again := WalkStats{Share: 0.5, Budget: 5}
	m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowFar, Walk: &again})
	again.Stopped = false
	m.Search(q1, 10, SearchOptions{Ef: 20, Allow: allowFar, Walk: &again})
	assert.Equal(t, w, again)
	stale := WalkStats{Stopped: true}
	assert.Len(t, m.Search(q1, 10, SearchOptions{Ef: 20, Walk: &stale}), 10)
}

// A filter that ignores where vectors lie, keeping some of the small sets
// among large ones, must not stop walks by chance: the floor of allowed
// candidates expected is counted in vectors, not in sets grown by the
// allowed ones' size (with that, 31 walks in 300 stopped here).
func TestMultiWalkBudgetMixedSizes(t *testing.T) {
	const dim, n, queries = 16, 4000, 300
	r := rand.New(rand.NewPCG(3, 3))
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 3})
	allow := roaring.New()
	vec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for id := range uint32(n) {
		size := 1
		if id%2 == 1 {
			size = 8
		}
		var vs [][]float32
		for range size {
			vs = append(vs, vec())
		}
		require.NoError(t, m.Add(id, modality.Join(vs...)))
		if id%2 == 0 && r.IntN(2) == 0 {
			allow.Add(id)
		}
	}
	allowed := int(allow.GetCardinality())
	share := float64(allowed) / n
	budget, floor := max(1, allowed/25), int(20/share) // as the database sets them
	stops, confident := 0, 0
	for range queries {
		w := WalkStats{Share: share, Budget: budget, Floor: floor}
		m.Search(vec(), 10, SearchOptions{Ef: 10, Allow: allow, Walk: &w})
		if w.Stopped {
			stops++
		}
		if w.Confident(w.Share) {
			confident++
		}
	}
	t.Logf("%d of %d walks stopped, %d trusted", stops, queries, confident)
	assert.LessOrEqual(t, stops, queries/100, "walks stopped by chance")
	assert.GreaterOrEqual(t, confident, queries*9/10, "walks trusted")
}

// Every walk a set search makes is counted, those of the rounds it widened
// through included.
func TestMultiWalkStatsCountWidenedRounds(t *testing.T) {
	const dim, k = 8, 40
	m, _ := denseSets(t, dim)
	allow := roaring.New()
	for id := uint32(0); id < 800; id += 2 {
		allow.Add(id)
	}
	q := sets(1, 1, dim, 12)[0]
	w := WalkStats{Share: 0.5}
	require.Len(t, m.Search(q, k, SearchOptions{Ef: 16, Allow: allow, Walk: &w}), k)

	m.mu.RLock()
	keys, _ := m.keysOf(allow)
	sum, rounds := 0, 0
	for ef := k; ; ef *= 4 { // the rounds Multi runs: ef from max(Ef, k)
		one := WalkStats{Share: w.Share}
		named := map[uint32]bool{}
		for _, x := range m.g.Search(q, ef, SearchOptions{Ef: ef, Allow: keys, Walk: &one}) {
			named[m.owner[x.ID]] = true
		}
		sum += one.Candidates
		rounds++
		if len(named) >= k {
			break
		}
	}
	m.mu.RUnlock()
	require.Greater(t, rounds, 1, "the case must widen")
	assert.Equal(t, sum, w.Candidates)
}

// keysOf is the keys of the sets of the IDs allow holds, and the number of
// those sets (mu held shared): the allow-list a set search's walks would
// take over the graph's vectors, for tests that walk it by hand.
func (m *Multi) keysOf(allow *roaring.Bitmap) (*roaring.Bitmap, int) {
	out, n := roaring.New(), 0
	m.eachSet(allow, func(_ uint32, keys []uint32) {
		out.AddMany(keys)
		n++
	})
	return out, n
}

// A filter keeping a few large sets far from the queries among many small
// ones near them misleads every walk, which must stop once it has cost
// what the scan would: each part of the budget converted on its own
// (Budget by the allowed sets' size, Floor by the ratio of the shares),
// not both by the larger factor, which gave a budget past the graph's
// size (16,000 candidates of 4,280 vectors) and no stop.
func TestMultiWalkStopsOnBigFarSets(t *testing.T) {
	const dim, n, queries = 8, 4000, 100
	m := NewMulti(dim, modality.Cosine, modality.MaxSim, Config{Seed: 5})
	near, far, around := nearAndFar(dim, 17)
	allow := roaring.New()
	for id := range uint32(n) {
		c, size := near, 1
		if id%100 == 0 {
			c, size = far, 8
			allow.Add(id)
		}
		var vs [][]float32
		for range size {
			vs = append(vs, around(c))
		}
		require.NoError(t, m.Add(id, modality.Join(vs...)))
	}
	share := float64(allow.GetCardinality()) / n
	budget, floor := max(1, int(allow.GetCardinality())/25), int(20/share) // as the database sets them
	stops, candidates := 0, 0
	for range queries {
		w := WalkStats{Share: share, Budget: budget, Floor: floor}
		m.Search(around(near), 10, SearchOptions{Ef: 10, Allow: allow, Walk: &w})
		if w.Stopped {
			stops++
		}
		candidates += w.Candidates
	}
	t.Logf("%d of %d walks stopped, %d candidates a search, of %d vectors", stops, queries, candidates/queries, m.Vectors())
	assert.GreaterOrEqual(t, stops, queries*9/10, "misled walks stopped")
	assert.Less(t, candidates/queries, m.Vectors()/4, "candidates a search")
}

// nearAndFar is two opposite centres and a function drawing a vector
// around either (seeded).
func nearAndFar(dim int, seed uint64) (near, far []float32, around func([]float32) []float32) {
	r := rand.New(rand.NewPCG(seed, seed))
	near, far = make([]float32, dim), make([]float32, dim)
	near[0], far[0] = 1, -1
	return near, far, func(c []float32) []float32 {
		v := slices.Clone(c)
		for d := range v {
			v[d] += float32(r.NormFloat64() * 0.3)
		}
		return v
	}
}
