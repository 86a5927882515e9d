package hnsw

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBeamMatchesHeaps checks that the beam walk expands what the two-heap
// walk of Algorithm 2 expands: on graphs with and without tombstones,
// walking on float32 vectors and on codes, every search returns the same
// results, in the same order, with the same distances. The data are
// random floats, so ties in distance, where the two may differ, do not
// occur.
func TestBeamMatchesHeaps(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine equivalence: nothing for the race detector, and 20x slower under it")
	}
	cases := []struct {
		name    string
		metric  modality.Metric
		n       int
		deleted int // every deleted-th ID is deleted after the build
		codes   bool
	}{
		{"cosine", modality.Cosine, 3000, 0, false},
		{"l2 with tombstones", modality.L2, 3000, 7, false},
		{"dot on codes with tombstones", modality.Dot, 3000, 3, true},
		{"cosine on codes", modality.Cosine, 2000, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := clustered(tc.n+50, 32, 20, 11)
			g := NewHNSW(32, tc.metric, Config{Seed: 3})
			for i, v := range data[:tc.n] {
				require.NoError(t, g.Add(uint32(i), v))
			}
			// Deletions below CompactAt keep their tombstones in the
			// graph, walked through and never returned.
			deleted := 0
			if tc.deleted > 0 {
				for id := 0; id < tc.n && float64(deleted+1) < CompactAt*float64(tc.n); id += tc.deleted {
					require.True(t, g.Delete(uint32(id)))
					deleted++
				}
				require.Positive(t, deleted)
			}
			if tc.codes {
				g.outgrown.Store(true)
			}
			require.Equal(t, tc.codes, g.walksOnCodes())
			all := roaring.New()
			all.AddRange(0, uint64(tc.n))
			for qi, q := range data[tc.n:] {
				for _, ef := range []int{1, 10, 64, 300} {
					k := min(10, ef)
					// An allow-list of every ID walks on the heaps.
					want := g.Search(q, k, SearchOptions{Ef: ef, Allow: all})
					got := g.Search(q, k, SearchOptions{Ef: ef})
					require.Equal(t, want, got, fmt.Sprintf("query %d, ef %d", qi, ef))
					assert.Len(t, got, k)
					for _, r := range got {
						assert.False(t, tc.deleted > 0 && int(r.ID)%tc.deleted == 0 && int(r.ID)/tc.deleted < deleted, "tombstone %d returned", r.ID)
					}
				}
			}
		})
	}
}

// TestBeamKeepsNegativeZero: under Dot a vector orthogonal to the query is
// at distance -0, and its score must come out +0 (not "-0" in JSON), as
// it does from the heaps.
func TestBeamKeepsNegativeZero(t *testing.T) {
	g := NewHNSW(2, modality.Dot, Config{Float32Walk: true})
	require.NoError(t, g.Add(1, []float32{1, 0}))
	q := []float32{0, 1}
	heaps := g.Search(q, 1, SearchOptions{Allow: roaring.BitmapOf(1)})
	beam := g.Search(q, 1, SearchOptions{})
	require.Len(t, heaps, 1)
	require.Len(t, beam, 1)
	for _, r := range []Result{heaps[0], beam[0]} {
		s, _ := modality.Dot.Score(r.Dist)
		assert.False(t, math.Signbit(float64(s)), "score %v", s)
	}
}

// TestBeamRanksNaNLast: the hnsw package takes vectors as given (the
// database refuses non-finite ones), and a NaN distance must never rank
// as a hit, whatever its sign bit.
func TestBeamRanksNaNLast(t *testing.T) {
	data := clustered(203, 4, 3, 1)
	g := NewHNSW(4, modality.L2, Config{Seed: 1, Float32Walk: true})
	for i, v := range data[:200] {
		require.NoError(t, g.Add(uint32(i), v))
	}
	bad := append([]float32(nil), data[0]...)
	bad[1] = math.Float32frombits(0xffc00000) // a NaN with its sign bit set
	require.NoError(t, g.Add(999, bad))
	for _, q := range data[200:] {
		for _, r := range g.Search(q, 3, SearchOptions{Ef: 10}) {
			require.NotEqual(t, uint32(999), r.ID, "a NaN distance ranked as a hit: %v", r)
		}
	}
}

// TestBeamTiesAndTombstones: on small graphs of integer vectors (many
// ties in distance) with tombstones, the beam and the heaps return as
// many results for every ef, including ef 1 and ef beyond the graph.
func TestBeamTiesAndTombstones(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine equivalence: nothing for the race detector, and 20x slower under it")
	}
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 30 {
		n := 20 + r.IntN(200)
		metric := []modality.Metric{modality.L2, modality.Dot}[trial%2]
		g := NewHNSW(3, metric, Config{Seed: uint64(trial), M: 2 + r.IntN(4), EfConstruction: 1 + r.IntN(20), Float32Walk: trial%3 == 0})
		vec := func() []float32 {
			return []float32{float32(r.IntN(3) - 1), float32(r.IntN(3) - 1), float32(r.IntN(3) - 1)}
		}
		for i := range n {
			require.NoError(t, g.Add(uint32(i), vec()))
		}
		for i := 0; i < n; i += 6 {
			g.Delete(uint32(i))
		}
		all := roaring.New()
		all.AddRange(0, uint64(n))
		for range 20 {
			q := vec()
			for _, ef := range []int{1, 2, 5, 1000} {
				a := g.Search(q, ef, SearchOptions{Ef: ef, Allow: all})
				b := g.Search(q, ef, SearchOptions{Ef: ef})
				require.Equal(t, len(a), len(b), "trial %d ef %d", trial, ef)
			}
		}
	}
}

// descend is Search's start (mu held): the query as the walk scores it,
// and the node its greedy walk down the upper layers reaches on layer 0.
func descend(h *HNSW, q []float32, sc *searcher) (query, Result) {
	ep := h.entry.Load()
	qq := h.searchQuery(q, h.walksOnCodes(), sc)
	cur := Result{ID: uint32(ep), Dist: h.qdist(&qq, uint32(ep))}
	for l := int(ep >> 32); l > 0; l-- {
		cur = h.greedy(&qq, cur, l, sc)
	}
	return qq, cur
}

// walkLayer0 is Search without an allow-list, its layer-0 walk on the beam
// or on the two heaps: what BenchmarkBeamVsHeaps compares.
func walkLayer0(h *HNSW, q []float32, k, ef int, heaps bool) []Result {
	h.mu.RLock()
	defer h.mu.RUnlock()
	sc := h.getSearcher()
	defer h.searchers.Put(sc)
	qq, cur := descend(h, q, sc)
	var found []Result
	if heaps {
		found = h.searchHeaps(&qq, []Result{cur}, max(ef, k), 0, nil, true, sc)
	} else {
		found = h.searchBeam(&qq, []Result{cur}, max(ef, k), 0, true, sc)
	}
	if qq.approx {
		h.rescore(q, found)
	}
	return h.toIDs(found, k)
}

// BenchmarkBeamVsHeaps times the layer-0 walk on the beam against the same
// walk on the two heaps (what a filtered walk uses), on one sift5k graph,
// the two alternating in blocks of 100 queries; it reports the beam's time
// over the heaps' and checks they return the same results.
//
//	go test -run '^$' -bench '^BenchmarkBeamVsHeaps$' -benchtime 200x ./hnsw
func BenchmarkBeamVsHeaps(b *testing.B) {
	dir := "../../shared/data/sift5k"
	base, err := dataset.ReadVecs(dir + "/sift5k_base4900.fvecs")
	if err != nil {
		b.Skipf("sift5k not found (%v): it is in ../shared/data beside the repository", err)
	}
	qs, err := dataset.ReadVecs(dir + "/sift5k_query100.fvecs")
	require.NoError(b, err)
	g := NewHNSW(128, modality.L2, Config{Seed: 1})
	for i, v := range base {
		require.NoError(b, g.Add(uint32(i), v))
	}
	for _, ef := range []int{16, 56, 96, 128, 200, 256, 512} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			for _, q := range qs {
				require.Equal(b, walkLayer0(g, q, 10, ef, true), walkLayer0(g, q, 10, ef, false))
			}
			var took [2]time.Duration
			for b.Loop() {
				for v, heaps := range []bool{false, true} {
					start := time.Now()
					for _, q := range qs {
						walkLayer0(g, q, 10, ef, heaps)
					}
					took[v] += time.Since(start)
				}
			}
			b.ReportMetric(float64(took[0])/float64(took[1]), "beam/heaps")
		})
	}
}
