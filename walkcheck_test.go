package mmdb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recheck is what the planner does after a filtered walk.
type recheck int

const (
	trusted recheck = iota // answers with the walk
	rescan                 // scans the allowed vectors exactly
	rewalk                 // walks again, wider
)

// A filtered walk whose filter keeps only vectors away from the query
// (the farthest cluster, or every cluster but the query's) misses the
// closest allowed ones; the planner must see it from the walk's
// statistics and answer by a scan (Plan.Rescans), or by a wider walk
// where the filter keeps many vectors for what the walk cost
// (Plan.Rewalks), while a filter that ignores the clusters is answered by
// the walk alone.
func TestFilteredWalkRescansFarFilters(t *testing.T) {
	if raceEnabled {
		t.Skip("the planner's single-threaded checks, and 20 s under the race detector")
	}
	const n, dim, clusters, ef = 6000, 32, 4, 10
	r := rand.New(rand.NewPCG(5, 5))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = randVec(r, dim)
	}
	around := func(c int) []float32 {
		v := make([]float32, dim)
		for j := range v {
			v[j] = centres[c][j] + 0.5*float32(r.NormFloat64())
		}
		kernel.Normalize(v)
		return v
	}
	farthest := func(c int) int {
		best := -1
		for o := range clusters {
			if o != c && (best < 0 || kernel.DotProduct(centres[c], centres[o]) < kernel.DotProduct(centres[c], centres[best])) {
				best = o
			}
		}
		return best
	}
	const setSize = 3
	items := make([]Item, n)
	sets := make([]Item, n)
	for i := range items {
		c := i % clusters
		attrs := map[string]any{"cluster": c, "half": (i / clusters) % 2}
		items[i] = Item{ID: fmt.Sprint(i), Attrs: attrs, Vectors: map[string][]float32{"v": around(c)}}
		var set []float32
		for range setSize {
			set = append(set, around(c)...)
		}
		sets[i] = Item{ID: fmt.Sprint(i), Attrs: attrs, Vectors: map[string][]float32{"v": set}}
	}
	type query1 struct {
		vec  []float32
		pair []float32 // two vectors around the same centre, for sets
		c    int
	}
	queries := make([]query1, 30)
	for i := range queries {
		c := r.IntN(clusters)
		queries[i] = query1{around(c), append(around(c), around(c)...), c}
	}
	modes := []struct {
		name            string
		low, sets, pair bool
	}{
		{"one vector", false, false, false},
		{"one vector, low memory", true, false, false},
		// Sets of 3 around their item's centre, searched by one vector
		// and by two (hnsw.Multi; LowMemory keeps sets in memory).
		{"sets of 3", false, true, false},
		{"sets of 3, queried by 2", false, true, true},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			db, err := Open(t.TempDir()+"/w.mmdb", &Options{NoSync: true, LowMemory: mode.low, Index: hnsw.Config{Seed: 1}})
			require.NoError(t, err)
			defer db.Close()
			m, put := Modality{Name: "v", Dim: dim, Metric: Cosine}, items
			// The trusted walks' recall@10 at ef 10: 0.88-0.91 on one
			// vector; 0.78-0.81 on sets (their graph's build runs in
			// parallel, and differs between runs).
			trustedRecall, rewalkRecall := 0.8, 0.95
			if mode.sets {
				// Walked again 8x as wide: 0.98-1.000 over 12 runs.
				m.Multi, put, trustedRecall, rewalkRecall = MaxSim, sets, 0.7, 0.9
			}
			if mode.pair {
				// Two query vectors' late interaction at ef 10 finds
				// 0.45 of the top 10 even under a filter that keeps
				// every item: candidates are each vector's 10 nearest.
				// Walked again 8x as wide, 0.983-1.000 in 30 runs, and
				// 0.923 once, beside other tests (the graph is built in
				// parallel, and differs between runs).
				trustedRecall, rewalkRecall = 0.4, 0.85
			}
			require.NoError(t, db.DefineModality(m))
			require.NoError(t, db.Put(ctx, put...))
			tests := []struct {
				name   string
				filter func(c int) query.Expr
				then   recheck // what the planner does after most walks
				// deeper: GROUP BY's deeper passes walk first (the
				// filter keeps more than the cutoff at their depth).
				deeper bool
			}{
				{"the farthest cluster", func(c int) query.Expr { return query.Eq("cluster", farthest(c)) }, rescan, false},
				{"every other cluster", func(c int) query.Expr { return query.Ne("cluster", c) }, rescan, true},
				{"half of every cluster", func(int) query.Expr { return query.Eq("half", 0) }, trusted, false},
				{"every other cluster, and half of the query's", func(c int) query.Expr {
					return query.Or(query.Ne("cluster", c), query.Eq("half", 0))
				}, rewalk, false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					rescans, rewalks, stopped, walkHits, planHits := 0, 0, 0, 0, 0
					for _, q := range queries {
						if mode.pair {
							q.vec = q.pair
						}
						qq := Query{Target: "v", NoAttrs: true, K: 10, Ef: ef, Filter: tt.filter(q.c), Probes: []Probe{{Modality: "v", Vector: q.vec}}}
						plan, hits, err := db.ExplainAnalyze(ctx, qq)
						require.NoError(t, err)
						require.Equal(t, StrategyHNSW, plan.Strategy, plan.Why)
						rescans += plan.Rescans
						rewalks += plan.Rewalks
						assert.Equal(t, plan.Rescans+plan.Rewalks > 0, strings.Contains(plan.String(), "checked: "), "EXPLAIN shows the searches done again")
						for _, st := range plan.Steps {
							if strings.Contains(st.Name, "stopped early") {
								stopped++
							}
						}
						planHits += int(math.Round(plan.Recall * 10))
						require.Len(t, hits, 10)
						// The walk alone, as the planner ran it before the check.
						p, err := db.plan(ctx, qq, false)
						require.NoError(t, err)
						want := p.tidx.Search(q.vec, 10, hnsw.SearchOptions{Exact: true, Allow: p.allow})
						got := p.tidx.Search(q.vec, 10, hnsw.SearchOptions{Ef: ef, Allow: p.allow})
						for _, w := range want {
							for _, g := range got {
								if g.ID == w.ID {
									walkHits++
								}
							}
						}
					}
					if tt.deeper {
						// GROUP BY over 2 values leaves the page short, so the
						// search goes deeper: once a walk was rescanned, the
						// deeper passes scan rather than walk and rescan again.
						qq := Query{Target: "v", NoAttrs: true, K: 10, Ef: ef, Filter: tt.filter(queries[0].c), GroupBy: "half", Probes: []Probe{{Modality: "v", Vector: queries[0].vec}}}
						plan, hits, err := db.ExplainAnalyze(ctx, qq)
						require.NoError(t, err)
						assert.Len(t, hits, 2)
						assert.Equal(t, StrategyExact, plan.Strategy, "the deeper passes")
						assert.Equal(t, 1, plan.Rescans)
					}
					walk := float64(walkHits) / float64(10*len(queries))
					planned := float64(planHits) / float64(10*len(queries))
					t.Logf("recall@10: the walk alone %.3f, the planner %.3f; of %d, %d rescanned (%d stopped early), %d walked again", walk, planned, len(queries), rescans, stopped, rewalks)
					switch tt.then {
					case rescan:
						assert.Less(t, walk, 0.9, "the walk alone: the case must be a hard one")
						assert.GreaterOrEqual(t, rescans, len(queries)*9/10, "rescans")
						assert.GreaterOrEqual(t, stopped, len(queries)*9/10, "walks stopped early, once they cost what the scan does")
						assert.GreaterOrEqual(t, planned, 0.99, "the planner's recall@10")
					case rewalk:
						assert.GreaterOrEqual(t, rewalks, len(queries)*2/3, "walks again")
						assert.GreaterOrEqual(t, planned, walk, "the planner's recall@10")
						assert.GreaterOrEqual(t, planned, rewalkRecall, "the planner's recall@10")
					case trusted:
						// A few walks fall below hnsw.ConfidentShare by
						// chance, and are done again.
						assert.LessOrEqual(t, rescans+rewalks, len(queries)/10, "walks done again")
						assert.GreaterOrEqual(t, planned, walk, "the planner's recall@10")
						assert.GreaterOrEqual(t, planned, trustedRecall, "the planner's recall@10")
					}
				})
			}
		})
	}
}

// fakeWalk is an index whose walk reports what a test says, to check
// walkChecked's decisions one by one; it records the searches asked.
type fakeWalk struct {
	hnsw.Index
	walk  hnsw.WalkStats // what a filtered walk reports
	found int            // how many results a walk finds
	asked []hnsw.SearchOptions
}

func (f *fakeWalk) Search(_ []float32, k int, opts hnsw.SearchOptions) []hnsw.Result {
	f.asked = append(f.asked, opts)
	n := k
	if !opts.Exact {
		n = min(k, f.found)
		if opts.Walk != nil {
			opts.Walk.Candidates, opts.Walk.Accepted, opts.Walk.Stopped = f.walk.Candidates, f.walk.Accepted, f.walk.Stopped
		}
	}
	out := make([]hnsw.Result, n)
	for i := range out {
		out[i] = hnsw.Result{ID: uint32(i)}
	}
	return out
}

// TestWalkCheckedDecides: what walkChecked does after each kind of walk,
// with a filter keeping 1,000 of 10,000 vectors (10%).
func TestWalkCheckedDecides(t *testing.T) {
	tests := []struct {
		name  string
		walk  hnsw.WalkStats
		found int
		then  recheck
	}{
		{"confident", hnsw.WalkStats{Candidates: 400, Accepted: 40}, 10, trusted},
		{"an engine that does not count", hnsw.WalkStats{}, 10, trusted},
		{"fewer found than asked", hnsw.WalkStats{Candidates: 400, Accepted: 40}, 7, rescan},
		{"stopped early", hnsw.WalkStats{Candidates: 30, Accepted: 3, Stopped: true}, 10, rescan}, // else trusted
		{"an engine that does not count, short", hnsw.WalkStats{}, 7, rescan},
		{"misled, and the scan is cheaper", hnsw.WalkStats{Candidates: 400, Accepted: 20}, 10, rescan},   // 1,000 <= 25 x 400
		{"misled, and a wider walk is cheaper", hnsw.WalkStats{Candidates: 30, Accepted: 1}, 10, rewalk}, // 1,000 > 25 x 30
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeWalk{walk: tt.walk, found: tt.found}
			p := &planned{tidx: f, allow: roaring.New(), plan: &Plan{FilterMatches: 1000, Candidates: 10_000}}
			var steps []Step
			res := p.walkChecked(make([]float32, 4), 10, hnsw.SearchOptions{Ef: 16}, &steps)
			require.Len(t, res, 10)
			require.NotNil(t, f.asked[0].Walk, "the first walk counts")
			assert.InDelta(t, 0.1, f.asked[0].Walk.Share, 1e-12)
			assert.Equal(t, 40, f.asked[0].Walk.Budget, "1,000 / 25: the scan's cost in candidates")
			assert.Equal(t, 200, f.asked[0].Walk.Floor, "20 / 10%: 20 allowed candidates expected")
			switch tt.then {
			case trusted:
				assert.Len(t, f.asked, 1)
				assert.Empty(t, steps)
			case rescan:
				require.Len(t, f.asked, 2)
				assert.True(t, f.asked[1].Exact)
				assert.Equal(t, 1, p.plan.Rescans)
				require.Len(t, steps, 1)
				assert.Contains(t, steps[0].Name, "rescan exactly")
				assert.Equal(t, tt.walk.Stopped, strings.Contains(steps[0].Name, "stopped early"), steps[0].Name)
			case rewalk:
				require.Len(t, f.asked, 2)
				assert.False(t, f.asked[1].Exact)
				assert.Equal(t, 8*16, f.asked[1].Ef)
				assert.Equal(t, 1, p.plan.Rewalks)
				require.Len(t, steps, 1)
				assert.Contains(t, steps[0].Name, "walk again at ef 128")
			}
		})
	}
}

// noSource is a vector source with nothing in it.
type noSource struct{}

func (noSource) ReadVectors(_ []uint32, _ []float32, found []bool) { clear(found) }

// A graph that reads its vectors back from the file scans 8x slower, so
// a misled walk is scanned only when the filter keeps fewer vectors a
// candidate; set indexes keep the higher cutoff whatever their sets'
// size, and weigh a rescan by the vectors it scores.
func TestWalkCheckCosts(t *testing.T) {
	mem := &planned{tidx: hnsw.NewHNSW(4, L2, hnsw.Config{})}
	low := &planned{tidx: hnsw.NewHNSW(4, L2, hnsw.Config{Source: noSource{}})}
	assert.Equal(t, 25, mem.rescanPer())
	assert.Equal(t, 3, low.rescanPer())

	db := &DB{}
	multi := hnsw.NewMulti(4, L2, MaxSim, hnsw.Config{})
	for i := range uint32(10) {
		require.NoError(t, multi.Add(i, []float32{float32(i), 1, 0, 0})) // sets of one vector
	}
	const ef, n = 16, 100_000
	assert.Equal(t, setCutoff(ef, n, 1), db.exactCutoff(ef, n, multi))
	assert.Greater(t, db.exactCutoff(ef, n, multi), hnsw.ExactCutoff(ef, n))

	// A scan of allowed items scores one vector each; of allowed sets,
	// their vectors (a share of the graph's) once for each query vector.
	assert.Equal(t, 700, mem.scanCost(make([]float32, 4), 700, 0.5))
	sets := hnsw.NewMulti(4, L2, MaxSim, hnsw.Config{})
	for i := range uint32(10) {
		require.NoError(t, sets.Add(i, make([]float32, 4*3))) // sets of three
	}
	assert.Equal(t, 6*2, (&planned{tidx: sets}).scanCost(make([]float32, 4*2), 2, 0.2))
}
