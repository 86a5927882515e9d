package mmdb

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/stretchr/testify/require"
)

// TestReopenWithTombstonesAnswersSame: a database closed with tombstones
// in a graph (deletes below CompactAt) answers every query as before once
// reopened from its checkpoint, which holds the graph without the live
// vectors: the tombstones walk with their own vectors, kept in it.
func TestReopenWithTombstonesAnswersSame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mmdb")
	opts := &Options{NoSync: true, Index: hnsw.Config{M: 4, EfConstruction: 32, Seed: 1}}
	db, err := Open(path, opts)
	require.NoError(t, err)
	m := Modality{Name: "v", Dim: 16, Metric: L2}
	require.NoError(t, db.DefineModality(m))
	r := rand.New(rand.NewPCG(3, 3))
	var items []Item
	for i := range 2000 {
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": randVec(r, 16)}})
	}
	require.NoError(t, db.Put(ctx, items...))
	var del []string
	for i := 0; i < 2000; i += 7 {
		del = append(del, fmt.Sprint(i))
	}
	require.NoError(t, db.Delete(ctx, del...))
	// Open re-links nodes that no search reaches (a delete can leave
	// some), which changes answers by design: re-link them now, so the
	// graph saved is the graph searched.
	db.st.Load().indexes[0].(interface{ Repair() int }).Repair()
	queries := make([][]float32, 200)
	before := make([][]Hit, len(queries))
	for i := range queries {
		queries[i] = randVec(r, 16)
		before[i], err = db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: queries[i]}}, K: 10, Ef: 10})
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	db2, err := Open(path, opts)
	require.NoError(t, err)
	defer db2.Close()
	require.Equal(t, "loaded", db2.OpenReport()[0].Action)
	require.Zero(t, db2.OpenReport()[0].Relinked)
	diff := 0
	for i, q := range queries {
		after, err := db2.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 10, Ef: 10})
		require.NoError(t, err)
		a, _ := json.Marshal(before[i])
		b, _ := json.Marshal(after)
		if string(a) != string(b) {
			diff++
		}
	}
	require.Zero(t, diff, "of %d queries, answered differently after reopening", len(queries))
}

// TestDotOrthogonalScoreIsZero: a Dot search whose hit is orthogonal to
// the query reports score 0, not -0, through the graph.
func TestDotOrthogonalScoreIsZero(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "d.mmdb"), &Options{NoSync: true, ExactCutoff: 1})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(Modality{Name: "d", Dim: 2, Metric: Dot}))
	var items []Item
	for i := range 50 {
		y := float32(-1)
		if i%10 == 0 {
			y = 0
		}
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"d": {float32(i%97) + 1, y}}})
	}
	require.NoError(t, db.Put(ctx, items...))
	hits, err := db.Search(ctx, Query{Target: "d", Probes: []Probe{{Modality: "d", Vector: []float32{0, 1}}}, K: 1})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	b, _ := json.Marshal(hits[0])
	t.Log(string(b))
	require.NotContains(t, string(b), `"score":-0`)
}

// TestLinksCheckpointReplay: checkpoint, then delete every vector of one
// modality, delete and re-add items with the same ID, replace others;
// "crash" (a raw copy, no checkpoint) and reopen: every index is loaded
// from its checkpoint and the log, Check is clean, and exact answers
// match; after a clean close with a modality emptied, it reopens loaded
// and takes new vectors.
func TestLinksCheckpointReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mmdb")
	db := openAt(t, path, &Options{NoSync: true})
	m := Modality{Name: "v", Dim: 8, Metric: Cosine}
	m2 := Modality{Name: "w", Dim: 3, Metric: L2}
	require.NoError(t, db.DefineModality(m))
	require.NoError(t, db.DefineModality(m2))
	r := rand.New(rand.NewPCG(5, 5))
	var items []Item
	for i := range 300 {
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": randVec(r, 8), "w": randVec(r, 3)}})
	}
	require.NoError(t, db.Put(ctx, items...))
	require.NoError(t, db.Checkpoint(ctx))
	// w: every vector deleted (Put without w replaces the item whole).
	var again []Item
	for _, it := range items {
		again = append(again, Item{ID: it.ID, Vectors: map[string][]float32{"v": it.Vectors["v"]}})
	}
	require.NoError(t, db.Put(ctx, again...))
	// v: delete then re-add with new vectors, and replace others.
	require.NoError(t, db.Delete(ctx, "1", "2", "3"))
	require.NoError(t, db.Put(ctx, Item{ID: "1", Vectors: map[string][]float32{"v": randVec(r, 8)}}, Item{ID: "2", Vectors: map[string][]float32{"v": randVec(r, 8)}}))
	require.NoError(t, db.Put(ctx, Item{ID: "10", Vectors: map[string][]float32{"v": randVec(r, 8)}}))
	crashed := filepath.Join(dir, "c.mmdb")
	rawCopy(t, db, crashed)
	c := openAt(t, crashed, nil)
	for _, rep := range c.OpenReport() {
		require.Equal(t, "loaded", rep.Action, "%+v", rep)
	}
	rep, err := c.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	for i := range 50 {
		q := randVec(r, 8)
		a, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 5, Exact: true})
		require.NoError(t, err)
		b, err := c.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: q}}, K: 5, Exact: true})
		require.NoError(t, err)
		require.Equal(t, a, b, "query %d", i)
	}
	// And after a clean close with w empty (all slots free) it reopens loaded.
	require.NoError(t, c.Close())
	require.NoError(t, db.Close())
	d := openAt(t, path, nil)
	for _, rep := range d.OpenReport() {
		require.Equal(t, "loaded", rep.Action, "%+v", rep)
	}
	require.NoError(t, d.Put(ctx, Item{ID: "new", Vectors: map[string][]float32{"w": {1, 2, 3}}}))
	hits, err := d.Search(ctx, Query{Target: "w", Probes: []Probe{{Modality: "w", Vector: []float32{1, 2, 3}}}, K: 1})
	require.NoError(t, err)
	require.Equal(t, "new", hits[0].ID)
}
