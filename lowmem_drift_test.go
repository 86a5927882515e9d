package mmdb

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A low-memory database whose older items were deleted, leaving newer ones
// unlike them (another encoder's vectors, data that moved), keeps the
// centre of its codes until something checks it: the graph's own checks
// run as it grows, and deletes do not grow it. The checkpoint re-centres
// the codes on the data; the re-centred graph is saved, and a reopened
// database answers as it did.
func TestLowMemoryFollowsDrift(t *testing.T) {
	const dim, n = 32, 2000
	path := filepath.Join(t.TempDir(), "drift.mmdb")
	opts := &Options{NoSync: true, LowMemory: true, ExactCutoff: 1, CheckpointEvery: 1 << 20, Index: hnsw.Config{Seed: 1}}
	db, err := Open(path, opts)
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(Modality{Name: "v", Dim: dim, Metric: L2}))

	r := rand.New(rand.NewPCG(3, 3))
	centres := make([][]float32, 10)
	for i := range centres {
		centres[i] = randVec(r, dim)
	}
	away := randVec(r, dim) // where the newer half lies: a different offset on every axis
	items := make([]Item, n)
	var old []string
	for i := range items {
		shift := float32(5) // the newer half, 5 times away
		if i < n/2 {
			shift = 0
			old = append(old, fmt.Sprint(i))
		}
		v := make([]float32, dim)
		for j, c := range centres[r.IntN(len(centres))] {
			v[j] = shift*away[j] + (c+0.5*float32(r.NormFloat64()))/6 // unit-sized clusters
		}
		items[i] = Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": v}}
	}
	require.NoError(t, db.Put(ctx, items...))
	require.NoError(t, db.Delete(ctx, old...))
	items = items[n/2:]

	run := func(db *DB, ef int) (float64, []string) {
		hits := 0
		var out []string
		for i := range 200 {
			q := items[i*len(items)/200].Vectors["v"]
			got, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, Probes: []Probe{{Modality: "v", Vector: q}}, K: 10, Ef: ef})
			require.NoError(t, err)
			exact, err := db.Search(ctx, Query{Target: "v", NoAttrs: true, Probes: []Probe{{Modality: "v", Vector: q}}, K: 10, Exact: true})
			require.NoError(t, err)
			in := map[string]bool{}
			for _, h := range exact {
				in[h.ID] = true
			}
			for _, h := range got {
				if in[h.ID] {
					hits++
				}
			}
			b, _ := json.Marshal(got)
			out = append(out, string(b))
		}
		return float64(hits) / 2000, out
	}
	// At ef 64 a search reads back whatever could be in its top 10
	// (hnsw's rescoreFromSource), more of it where the codes are coarse,
	// which hides them; at ef 10 it reads back only the 10 the walk ranked
	// first on its codes.
	before10, _ := run(db, 10)
	require.NoError(t, db.Checkpoint(ctx))
	after10, _ := run(db, 10)
	after, answers := run(db, 64)
	t.Logf("recall@10 at ef 10: %.3f around the first item's vector, %.3f after the checkpoint re-centred; at ef 64 %.3f", before10, after10, after)
	assert.Greater(t, after10, before10+0.1, "the stale centre costs recall at ef 10 (else this test shows nothing)")
	assert.GreaterOrEqual(t, after, 0.98)
	require.NoError(t, db.Close())

	db2, err := Open(path, opts)
	require.NoError(t, err)
	defer db2.Close()
	require.Equal(t, "loaded", db2.OpenReport()[0].Action)
	_, again := run(db2, 64)
	assert.Equal(t, answers, again, "answers after reopening")
}
