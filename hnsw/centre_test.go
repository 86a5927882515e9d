package hnsw

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shifted returns clustered unit vectors moved by shift times direction:
// a different offset on every axis, so that around a stale centre each
// row's values span the offsets and its codes' step grows.
func shifted(n, dim int, shift float32, seed uint64) [][]float32 {
	vecs := clustered(n, dim, 10, seed)
	dir := direction(dim)
	for _, v := range vecs {
		for j := range v {
			v[j] += shift * dir[j]
		}
	}
	return vecs
}

// direction is a fixed vector of dim standard normal components.
func direction(dim int) []float32 {
	r := rand.New(rand.NewPCG(77, uint64(dim)))
	d := make([]float32, dim)
	for j := range d {
		d[j] = float32(r.NormFloat64())
	}
	return d
}

// meanOf is the mean of vecs.
func meanOf(vecs [][]float32) []float32 {
	m := make([]float64, len(vecs[0]))
	for _, v := range vecs {
		for j, x := range v {
			m[j] += float64(x)
		}
	}
	out := make([]float32, len(m))
	for j := range m {
		out[j] = float32(m[j] / float64(len(vecs)))
	}
	return out
}

// nearMean requires centre to lie within tol of vecs' mean on every axis.
func nearMean(t *testing.T, centre []float32, vecs [][]float32, tol float64, msg string) {
	t.Helper()
	for j, m := range meanOf(vecs) {
		require.InDelta(t, m, centre[j], tol, "%s: the centre's component %d", msg, j)
	}
}

// staleGraph is a graph whose first vector (its centre) was an item at
// -3 on every axis, since deleted, and whose data lies 5 standard normal
// offsets away (unit-sized clusters there): a store that began with one
// odd item.
func staleGraph(t *testing.T, g Index, dim int) [][]float32 {
	noAutoCentre(g)
	require.NoError(t, g.Add(99999, firstOdd(dim)))
	g.Delete(99999)
	vecs := shifted(2000, dim, 5, 3)
	fill(t, g, vecs)
	return vecs
}

// noAutoCentre stops Add's checks of the centre (maybeRecentre), as in a
// graph built before them, so that Recentre's own work shows.
func noAutoCentre(idx Index) {
	graphOf(idx).centreAt.Store(math.MaxInt64)
}

// firstOdd is staleGraph's first vector.
func firstOdd(dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = -3
	}
	return v
}

// recall10 is recall@10 at ef 64 over 200 of vecs spread over them as
// queries, against exact search over vecs less the deleted IDs.
func recall10(t *testing.T, g Index, vecs [][]float32, deleted ...uint32) float64 {
	t.Helper()
	flat := NewFlat(len(vecs[0]), modality.L2)
	fill(t, flat, vecs)
	for _, id := range deleted {
		flat.Delete(id)
	}
	hit := 0
	for i := range 200 {
		q := vecs[i*len(vecs)/200]
		hit += overlap(flat.Search(q, 10, SearchOptions{}), g.Search(q, 10, SearchOptions{Ef: 64}))
	}
	return float64(hit) / 2000
}

// A graph whose centre has gone stale is re-centred on the data's mean,
// every row re-encoded around it; a second call finds nothing to do. Each
// row's values span the data's offsets from the stale centre, so its
// codes are coarse: the low-memory graph, which links on them and reads
// back what could be in the top k, read about 6 times as many vectors a
// search as re-centred (with a fixed count read back, it searched at recall@10
// 0.90, and 0.999 re-centred); a graph that keeps its vectors links on
// exact distances and is not hurt. Tombstones keep the vectors
// they had, also those whose ID was stored again since (the source then
// holds the new vector under it).
func TestRecentre(t *testing.T) {
	skipUnderRace(t)
	const dim = 32
	for _, tc := range []struct {
		name string
		make func() Index
	}{
		{"low-memory", func() Index { return newSourced(dim, modality.L2, Config{Seed: 1}) }},
		{"low-memory, scanning source", func() Index { return newScanned(dim, modality.L2, Config{Seed: 1}) }},
		{"vectors in memory", func() Index { return NewHNSW(dim, modality.L2, Config{Seed: 1}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := tc.make()
			vecs := staleGraph(t, idx, dim)
			g := graphOf(idx)
			// Tombstones, whose rows come from their old codes; half of
			// their IDs are stored again with another vector.
			var deleted []uint32
			live := slices.Clone(vecs)
			for id := range uint32(20) {
				require.True(t, idx.Delete(id*7))
				if id%2 == 0 {
					deleted = append(deleted, id*7)
					continue
				}
				live[id*7] = vecs[int(id)*7+1000]
				require.NoError(t, idx.Add(id*7, live[id*7]))
			}
			src, _ := idx.(*sourced)
			reads := func() int {
				if src == nil {
					return 0
				}
				n := src.src.reads
				src.src.reads = 0
				return n
			}
			reads()
			before := recall10(t, idx, live, deleted...)
			readsBefore := reads()
			require.Equal(t, firstOdd(dim), g.centre)

			require.True(t, g.Recentre())
			reads()
			after := recall10(t, idx, live, deleted...)
			readsAfter := reads()
			t.Logf("recall@10 at ef 64: %.3f around the first vector, %.3f re-centred; vectors read back %d and %d", before, after, readsBefore, readsAfter)
			assert.GreaterOrEqual(t, after, 0.98)
			if g.lowMem() {
				// Coarse codes err more, so a search reads back more of
				// what it found to be sure of its top 10
				// (rescoreFromSource): before it did, the stale centre
				// cost recall instead (0.90).
				assert.Greater(t, readsBefore, 2*readsAfter, "the stale centre cost reads")
			}
			nearMean(t, g.centre, live, 0.3, tc.name)
			tmp := make([]float32, dim)
			codes := make([]uint8, dim)
			tombstones := 0
			for s := range uint32(g.used) {
				if slices.Contains(g.free, s) {
					continue
				}
				gc, gs := g.row(s)
				if g.isDead(s) {
					// Decoded, a tombstone's row is near its old vector.
					tombstones++
					v := vecs[g.ids[s]]
					for i, b := range gc {
						require.InDelta(t, v[i]-g.centre[i], gs.lo+gs.step*float32(b), 0.05, "tombstone slot %d", s)
					}
					continue
				}
				want := g.encode(live[g.ids[s]], tmp, codes)
				require.Equal(t, want, *gs, "slot %d's scale", s)
				require.Equal(t, codes, gc, "slot %d's codes", s)
			}
			require.Equal(t, 20, tombstones)
			centre := slices.Clone(g.centre)
			assert.False(t, g.Recentre(), "a centre at the mean is not stale")
			assert.Equal(t, centre, g.centre)
		})
	}
}

// Add checks the centre as the graph grows, so a graph whose first vector
// was unlike the data that followed is built on codes around the data's
// mean from its 64th insert, and searches at full recall, in either mode.
// Add's checks look vectors up in the source rather than scan it: while a
// store's graph is being rebuilt, it holds a fraction of the store.
func TestAddRecentres(t *testing.T) {
	skipUnderRace(t)
	const dim = 32
	for _, low := range []bool{false, true} {
		var idx Index = NewHNSW(dim, modality.L2, Config{Seed: 1})
		if low {
			idx = newScanned(dim, modality.L2, Config{Seed: 1})
		}
		require.NoError(t, idx.Add(99999, firstOdd(dim)))
		idx.Delete(99999)
		vecs := shifted(2000, dim, 5, 3)
		g := graphOf(idx)
		fill(t, idx, vecs[:70])
		nearMean(t, g.centre, vecs[:70], 0.5, fmt.Sprintf("low-memory %v, after 70 inserts", low))
		for i, v := range vecs[70:] {
			require.NoError(t, idx.Add(uint32(70+i), v))
		}
		nearMean(t, g.centre, vecs, 0.3, fmt.Sprintf("low-memory %v", low))
		rec := recall10(t, idx, vecs)
		t.Logf("low-memory %v: recall@10 at ef 64 %.3f", low, rec)
		assert.GreaterOrEqual(t, rec, 0.98, "low-memory %v", low)
		assert.GreaterOrEqual(t, g.centreAt.Load(), int64(1000), "low-memory %v: the last check counted the nodes then", low)
		assert.Less(t, g.sinceCentre.Load(), g.centreAt.Load(), "low-memory %v", low)
		if low {
			src := idx.(*sourced).src
			assert.Zero(t, src.scans, "Add's checks look vectors up")
			g.mu.Lock()
			g.centre = firstOdd(dim) // stale again
			g.mu.Unlock()
			require.True(t, g.Recentre())
			assert.Equal(t, 1, src.scans, "Recentre (the checkpoint's) scans")
		}
	}
}

// Add's checks run while other inserts, searches and saves go on (run
// with -race): a parallel build of data that jumps away three times
// re-centres as it goes, and every live row ends encoded around the final
// centre.
func TestAddRecentresConcurrently(t *testing.T) {
	const dim = 16
	var vecs [][]float32
	for i, shift := range []float32{0, 6, 14, 30} {
		vecs = append(vecs, shifted(300<<i, dim, shift, uint64(40+i))...)
	}
	ids := make([]uint32, len(vecs))
	for i := range ids {
		ids[i] = uint32(i)
	}
	for _, low := range []bool{false, true} {
		var idx Index = NewHNSW(dim, modality.L2, Config{Seed: 1, EfConstruction: 40})
		if low {
			idx = newSourced(dim, modality.L2, Config{Seed: 1, EfConstruction: 40})
		}
		g := graphOf(idx)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				idx.Search(vecs[i%len(vecs)], 5, SearchOptions{Ef: 32})
				if i%100 == 0 {
					assert.NoError(t, g.SaveLinks(io.Discard)) // not require: this is not the test goroutine
				}
			}
		})
		require.NoError(t, AddParallel(context.Background(), idx, ids, vecs, 4, nil))
		close(stop)
		wg.Wait()
		var moved float64
		for j, c := range g.centre {
			moved += float64(c-vecs[0][j]) * float64(c-vecs[0][j])
		}
		require.Greater(t, moved, 100.0, "low-memory %v: the centre moved off the first vector's cluster", low)
		tmp := make([]float32, dim)
		codes := make([]uint8, dim)
		for s := range uint32(g.used) {
			if g.isDead(s) {
				continue
			}
			want := g.encode(vecs[g.ids[s]], tmp, codes)
			gc, gs := g.row(s)
			require.Equal(t, want, *gs, "low-memory %v: slot %d's scale", low, s)
			require.Equal(t, codes, gc, "low-memory %v: slot %d's codes", low, s)
		}
	}
}

// The sample is spread over every slot: a graph whose first 500 vectors
// are typical and whose later 1,547 drifted is re-centred (its centre lies
// 3.1 spreads from the mean; a sample of the first 1,024 slots alone, half
// of them drifted, measured 1.0), as is data that drifted steadily along
// one direction from its first vector, whose centre lies about 3 spreads
// from the mean (the bound is 2).
func TestRecentreSeesTheWholeGraph(t *testing.T) {
	skipUnderRace(t)
	const dim = 32
	late := shifted(2047, dim, 0, 4)
	dir := direction(dim)
	for _, v := range late[500:] {
		for j := range v {
			v[j] += 5 * dir[j]
		}
	}
	r := rand.New(rand.NewPCG(5, 5))
	steady := make([][]float32, 3000)
	for i := range steady {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(i)/3000*50 + 0.3*float32(r.NormFloat64())
		}
		steady[i] = v
	}
	for _, tc := range []struct {
		name string
		vecs [][]float32
	}{{"late drift", late}, {"steady drift", steady}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newSourced(dim, modality.L2, Config{Seed: 1})
			noAutoCentre(g)
			fill(t, g, tc.vecs)
			before := recall10(t, g, tc.vecs)
			require.True(t, g.Recentre())
			after := recall10(t, g, tc.vecs)
			t.Logf("recall@10 at ef 64: %.3f around the first vector, %.3f re-centred", before, after)
			assert.GreaterOrEqual(t, after, 0.98)
		})
	}
}

// A vector the source gives that is not finite (a damaged store) is left
// out of the sample, not made the centre, nor does it stop a re-centring.
func TestRecentreSkipsNonFinite(t *testing.T) {
	skipUnderRace(t)
	const dim = 32
	g := newSourced(dim, modality.L2, Config{Seed: 1})
	vecs := staleGraph(t, g, dim)
	bad := make([]float32, dim)
	bad[3] = float32(math.NaN())
	g.src.put(0, bad) // slot 0, the sample's first
	require.True(t, g.Recentre())
	assert.True(t, allFinite(g.centre))
	nearMean(t, g.centre, vecs[1:], 0.3, "slot 0 left out")
}

// skipUnderRace skips a test that runs on one goroutine: the race
// detector has nothing to find there and slows it tenfold. The concurrent
// tests of re-centring run under it.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("one goroutine: the plain run covers it, the concurrent tests run under -race")
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
	skipUnderRace(t)
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
	skipUnderRace(t)
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
		nearMean(t, lg.centre, vecs, 0.3, fmt.Sprintf("low-memory %v", low))
		// Links chosen on the stale codes stay (TestRecentre).
		assert.GreaterOrEqual(t, recall10(t, loaded, vecs), 0.85, "low-memory %v", low)
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
		noAutoCentre(idx)
		require.NoError(t, idx.Add(99999, make([]float32, dim)))
		idx.Delete(99999)
		vecs := shifted(1200, dim, 5, 9)
		fill(t, idx, vecs[:600])
		var wg sync.WaitGroup
		stop := make(chan struct{})
		misses := atomic.Int64{} // after the first re-centring: before it, codes are stale
		var moved atomic.Int64
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
					was := moved.Load()
					res := idx.Search(vecs[i], 1, SearchOptions{Ef: 64})
					if was > 0 && (len(res) == 0 || res[0].ID != uint32(i)) {
						misses.Add(1)
					}
				}
			}()
		}
		for i := 600; i < len(vecs); i++ {
			require.NoError(t, idx.Add(uint32(i), vecs[i]))
			if i%150 == 0 && g.Recentre() {
				moved.Add(1)
			}
		}
		close(stop)
		wg.Wait()
		assert.Equal(t, int64(1), moved.Load(), "low-memory %v: the first re-centring holds", low)
		assert.Zero(t, misses.Load(), "low-memory %v: searches that missed themselves", low)
	}
}

// BenchmarkRecentre times Recentre on 20,000 x 128: the check alone, on a
// centre that is not stale (what every checkpoint and each doubling pays),
// and the re-encoding of every row when it is (the graph is held
// exclusively meanwhile), keeping its vectors or reading them from a
// source:
//
//	go test -run '^$' -bench Recentre -benchtime 20x ./hnsw
func BenchmarkRecentre(b *testing.B) {
	const dim, n = 128, 20_000
	vecs := clustered(n, dim, 50, 6)
	for _, low := range []bool{false, true} {
		var idx Index = NewHNSW(dim, modality.L2, Config{Seed: 1})
		name := "in-memory"
		if low {
			idx, name = newScanned(dim, modality.L2, Config{Seed: 1}), "source"
		}
		fill(b, idx, vecs)
		g := graphOf(idx)
		b.Run(name+"/check", func(b *testing.B) {
			for b.Loop() {
				if g.Recentre() {
					b.Fatal("a typical centre was stale")
				}
			}
		})
		b.Run(name+"/re-encode", func(b *testing.B) {
			for b.Loop() {
				g.mu.Lock()
				g.centre = firstOdd(dim) // stale: the rows are re-encoded around the mean
				g.mu.Unlock()
				if !g.Recentre() {
					b.Fatal("not re-centred")
				}
			}
		})
	}
}

// The L2 estimate from codes is accurate for near nodes however far the
// data lies from the centre (see scale): a low-memory graph, which links
// on it, built on data in four groups 0, 6, 14 and 30 away on every axis
// from its centre (Add's checks off, so the centre stays the first
// vector), leaves no node unreachable and searches at full recall. With
// the norm term |x - centre|², 2,749 of its 13,200 nodes were unreachable
// after the build, and its inserts made 35,000 re-links.
func TestCodeDistanceFarFromCentre(t *testing.T) {
	skipUnderRace(t)
	const dim = 16
	var vecs [][]float32
	for i, s := range []struct {
		n     int
		shift float32
	}{{300, 0}, {900, 6}, {3000, 14}, {9000, 30}} {
		group := clustered(s.n, dim, 10, uint64(40+i))
		for _, v := range group {
			for j := range v {
				v[j] += s.shift
			}
		}
		vecs = append(vecs, group...)
	}
	g := newSourced(dim, modality.L2, Config{Seed: 1, EfConstruction: 40})
	noAutoCentre(g)
	fill(t, g, vecs)
	assert.Equal(t, vecs[0], g.centre)
	lost := len(g.Unreachable())
	rec := recall10(t, g, vecs)
	t.Logf("unreachable %d of %d, re-links %d, recall@10 at ef 64 %.3f", lost, len(vecs), g.relinks.Load(), rec)
	assert.Less(t, lost, len(vecs)/1000)
	assert.GreaterOrEqual(t, rec, 0.98)
}

// A vector whose squared norm is finite but twice it is not (components of
// 1e19) gets a finite norm term, so a graph saved with it loads (the term
// is computed as x·x̂ - (|x|² - x·x̂), not 2x·x̂ - |x|²).
func TestCodeNormTermFinite(t *testing.T) {
	g := NewHNSW(2, modality.L2, Config{Seed: 1})
	require.NoError(t, g.Add(1, []float32{0, 0}))
	require.NoError(t, g.Add(2, []float32{1e19, 1e19}))
	_, sc := g.row(1)
	require.True(t, finite(sc.sq), "sq %v", sc.sq)
	var buf bytes.Buffer
	require.NoError(t, g.Save(&buf))
	require.NoError(t, NewHNSW(2, modality.L2, Config{Seed: 1}).Load(&buf))
}
