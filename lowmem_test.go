package mmdb

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// TestLowMemory: under Options.LowMemory the graphs read the float32
// vectors back from the file, and a search answers with the exact scores
// of the stored vectors, walked, filtered or exact, after deletes and
// replacements, and the same after reopening from the checkpoint.
func TestLowMemory(t *testing.T) {
	for _, metric := range []Metric{L2, Cosine} {
		t.Run(metric.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "low.mmdb")
			opts := &Options{NoSync: true, LowMemory: true, ExactCutoff: 1, Index: hnsw.Config{M: 8, EfConstruction: 64, Seed: 1}}
			db, err := Open(path, opts)
			require.NoError(t, err)
			const dim, n = 16, 2000
			require.NoError(t, db.DefineModality(Modality{Name: "v", Dim: dim, Metric: metric}))
			require.NotNil(t, db.st.Load().indexes[0].(*hnsw.HNSW).Config().Source, "the graph reads its vectors from the file")
			r := rand.New(rand.NewPCG(7, 7))
			vecs := map[string][]float32{}
			var items []Item
			for i := range n {
				id := fmt.Sprint(i)
				vecs[id] = randVec(r, dim)
				items = append(items, Item{ID: id, Attrs: map[string]any{"even": i%2 == 0}, Vectors: map[string][]float32{"v": vecs[id]}})
			}
			require.NoError(t, db.Put(ctx, items...))
			var del []string
			for i := 0; i < n; i += 9 {
				del = append(del, fmt.Sprint(i))
				delete(vecs, fmt.Sprint(i))
			}
			require.NoError(t, db.Delete(ctx, del...))
			for i := 1; i < n; i += 50 { // replaced
				id := fmt.Sprint(i)
				vecs[id] = randVec(r, dim)
				require.NoError(t, db.Put(ctx, Item{ID: id, Attrs: map[string]any{"even": i%2 == 0}, Vectors: map[string][]float32{"v": vecs[id]}}))
			}
			score := func(q, v []float32) float32 {
				if metric == L2 {
					var s float64
					for i := range q {
						d := float64(q[i] - v[i])
						s += d * d
					}
					return -float32(math.Sqrt(s))
				}
				var d, nq, nv float64
				for i := range q {
					d += float64(q[i]) * float64(v[i])
					nq += float64(q[i]) * float64(q[i])
					nv += float64(v[i]) * float64(v[i])
				}
				return float32(d / math.Sqrt(nq*nv))
			}
			queries := make([][]float32, 100)
			for i := range queries {
				queries[i] = randVec(r, dim)
			}
			run := func(db *DB) []string {
				var out []string
				hits, found := 0, 0
				for _, q := range queries {
					for _, c := range []struct {
						exact  bool
						filter query.Expr
					}{{false, nil}, {true, nil}, {false, query.MustParse("even = true")}} {
						got, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 10, Ef: 64, Exact: c.exact, Filter: c.filter})
						require.NoError(t, err)
						require.Len(t, got, 10)
						exact, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 10, Exact: true, Filter: c.filter})
						require.NoError(t, err)
						in := map[string]bool{}
						for _, h := range exact {
							in[h.ID] = true
						}
						for i, h := range got {
							v, ok := vecs[h.ID]
							require.True(t, ok, "deleted item %s answered", h.ID)
							assert.InDelta(t, score(q, v), h.Score, 1e-4, "item %s", h.ID)
							if i > 0 {
								assert.GreaterOrEqual(t, got[i-1].Score, h.Score)
							}
							if c.filter != nil {
								assert.Equal(t, true, h.Attrs["even"])
							}
							if in[h.ID] {
								hits++
							}
						}
						found += len(exact)
						b, _ := json.Marshal(got)
						out = append(out, string(b))
					}
				}
				assert.GreaterOrEqual(t, float64(hits)/float64(found), 0.95, "recall@10 against exact search")
				return out
			}
			db.st.Load().indexes[0].(interface{ Repair() int }).Repair() // as TestReopenWithTombstonesAnswersSame
			before := run(db)
			require.NoError(t, db.Close())

			db2, err := Open(path, opts)
			require.NoError(t, err)
			require.Equal(t, "loaded", db2.OpenReport()[0].Action)
			require.NotNil(t, db2.st.Load().indexes[0].(*hnsw.HNSW).Config().Source)
			assert.Equal(t, before, run(db2), "answers after reopening")
			rep, err := db2.Check(ctx)
			require.NoError(t, err)
			assert.Empty(t, rep.Problems)
			require.NoError(t, db2.Close())

			// Rebuilt from the vectors (no checkpoint): the same mode.
			raw, err := Open(path, &Options{NoSync: true})
			require.NoError(t, err)
			require.NoError(t, raw.store.Bolt().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("index/v")) }))
			require.NoError(t, raw.Close())
			db3, err := Open(path, opts)
			require.NoError(t, err)
			defer db3.Close()
			require.Equal(t, "rebuilt", db3.OpenReport()[0].Action)
			require.NotNil(t, db3.st.Load().indexes[0].(*hnsw.HNSW).Config().Source)
			run(db3)
		})
	}
}

// Under LowMemory the planner's exact cutoff is the cost model's for a
// graph that reads its vectors from the file (a scan costs more there).
func TestLowMemoryExactCutoff(t *testing.T) {
	for _, low := range []bool{false, true} {
		db, r := openRandom(t, &Options{NoSync: true, LowMemory: low}, L2, 3000, 1)
		plan, err := db.Explain(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: randVec(r, 8)}}, K: 10, Ef: 64})
		require.NoError(t, err)
		want, strategy := hnsw.ExactCutoff(64, 3000), StrategyExact // 3,000: a small index, scanned
		if low {
			want, strategy = hnsw.ExactCutoffSourced(64, 3000), StrategyHNSW // 876: the graph
		}
		assert.Contains(t, plan.Why, fmt.Sprintf("exact cutoff %d", want), "low memory %v", low)
		assert.Equal(t, strategy, plan.Strategy, "low memory %v", low)
		require.NoError(t, db.Close())
	}
}

// A search whose vectors cannot be read back (the file closed under it)
// fails with the cause instead of answering from what was left; Check
// compares the stored vectors with the index's codes of them.
func TestLowMemoryFailures(t *testing.T) {
	db, r := openRandom(t, &Options{NoSync: true, LowMemory: true, ExactCutoff: 1}, Cosine, 500, 2)

	idx := db.st.Load().indexes[0]
	require.NoError(t, idx.Add(7, randVec(r, 8))) // the index out of step with the file
	rep, err := db.Check(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1)
	assert.Contains(t, rep.Problems[0], "differs from its index's codes")

	require.NoError(t, db.store.Close()) // as a Close racing the search
	for _, exact := range []bool{false, true} {
		_, err = db.Search(ctx, Query{Target: "v", NoAttrs: true, Exact: exact, Probes: []Probe{{Modality: "v", Vector: randVec(r, 8)}}, K: 5})
		require.ErrorIs(t, err, ErrClosed, "exact %v", exact)
		assert.Contains(t, err.Error(), "reading v vectors back from the file")
	}
}

// openRandom opens a new database with opts and puts n items with a random
// 8-d vector of modality "v" (metric m), drawn from seed; it returns the
// generator to draw queries from.
func openRandom(t *testing.T, opts *Options, m Metric, n int, seed uint64) (*DB, *rand.Rand) {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "r.mmdb"), opts)
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(Modality{Name: "v", Dim: 8, Metric: m}))
	r := rand.New(rand.NewPCG(seed, seed))
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": randVec(r, 8)}}
	}
	require.NoError(t, db.Put(ctx, items...))
	return db, r
}

// Evaluate, Align and Calibrate read vectors back from the file under
// LowMemory as Search does, and fail with the cause when a read fails (the
// file closed under them) rather than report figures on what was left.
func TestLowMemoryFailuresBeyondSearch(t *testing.T) {
	calls := []struct {
		name string
		call func(db *DB) error
	}{
		{"Evaluate", func(db *DB) error { _, err := db.Evaluate(ctx, "a", "b", nil); return err }},
		{"Align", func(db *DB) error { _, err := db.Align(ctx, "a", "c", nil); return err }},
		{"Calibrate", func(db *DB) error {
			_, err := db.Calibrate(ctx, "a", "b", &CalibrateOptions{Centre: true, StoreAny: true})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "f.mmdb"), &Options{NoSync: true, LowMemory: true})
			require.NoError(t, err)
			for _, m := range []Modality{{Name: "a", Dim: 8, Metric: Cosine, Space: "s"}, {Name: "b", Dim: 8, Metric: Cosine, Space: "s"}, {Name: "c", Dim: 8, Metric: Cosine}} {
				require.NoError(t, db.DefineModality(m))
			}
			r := rand.New(rand.NewPCG(4, 4))
			items := make([]Item, 100)
			for i := range items {
				v := randVec(r, 8)
				items[i] = Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"a": v, "b": v, "c": v}}
			}
			require.NoError(t, db.Put(ctx, items...))
			require.NoError(t, tc.call(db), "before the file closes")
			require.NoError(t, db.store.Close()) // as a Close racing the call
			err = tc.call(db)
			require.ErrorIs(t, err, ErrClosed)
			assert.Contains(t, err.Error(), "vectors back from the file: mmdb: database is closed")
			// What the call then met is a consequence, not a finding a
			// caller should act on.
			assert.NotErrorIs(t, err, ErrInvalidQuery)
			assert.NotErrorIs(t, err, ErrNoGain)
		})
	}
}
