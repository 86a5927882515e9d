package mmdb

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	tokMod    = Modality{Name: "tokens", Dim: 6, Metric: Cosine, Space: "colbert", Multi: MaxSim}
	photosMod = Modality{Name: "photos", Dim: 6, Metric: L2, Space: "shots", Multi: MaxPair}
	queryMod  = Modality{Name: "query", Dim: 6, Metric: Cosine, Space: "colbert"}
	clipsMod  = Modality{Name: "clips", Dim: 6, Metric: L2, Space: "shots", Multi: MaxSim}
)

// randSet draws a set of 1..most vectors of dimension dim, laid end to end.
func randSet(r *rand.Rand, most, dim int) []float32 {
	var vs [][]float32
	for range 1 + r.IntN(most) {
		vs = append(vs, randVec(r, dim))
	}
	return modality.Join(vs...)
}

// maxSimRef scores a stored set against a probe set from first
// principles, as a user would check it: for each probe vector its best
// cosine with the set, averaged (MaxSim), or the smallest Euclidean
// distance of any pair (MaxPair, as a distance).
func maxSimRef(m Modality, probe, set []float32) float64 {
	unit := func(v []float32) []float64 {
		out := make([]float64, len(v))
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		for i, x := range v {
			out[i] = float64(x)
			if m.Metric == Cosine {
				out[i] /= math.Sqrt(n)
			}
		}
		return out
	}
	var sum float64
	best := math.Inf(1)
	for i := 0; i < len(probe); i += m.Dim {
		q := unit(probe[i : i+m.Dim])
		near := math.Inf(-1)
		for j := 0; j < len(set); j += m.Dim {
			s := unit(set[j : j+m.Dim])
			var dot, l2 float64
			for d := range q {
				dot += q[d] * s[d]
				l2 += (q[d] - s[d]) * (q[d] - s[d])
			}
			if m.Metric == Cosine {
				near = max(near, dot)
			} else {
				near = max(near, -math.Sqrt(l2))
			}
		}
		sum += near
		best = min(best, -near)
	}
	if m.Multi == MaxSim {
		return sum / float64(len(probe)/m.Dim)
	}
	return -best
}

func multiDB(t *testing.T, n int) (*DB, string, []Item) {
	db, path := openTest(t, tokMod, photosMod, queryMod, clipsMod)
	r := rand.New(rand.NewPCG(5, 5))
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{ID: fmt.Sprintf("doc-%03d", i), Attrs: map[string]any{"even": i%2 == 0},
			Vectors: map[string][]float32{"tokens": randSet(r, 5, 6), "photos": randSet(r, 3, 6), "query": randVec(r, 6), "clips": randSet(r, 4, 6)}}
	}
	require.NoError(t, db.Put(ctx, items...))
	return db, path, items
}

func TestMultiVectorSearchIsLateInteraction(t *testing.T) {
	db, _, items := multiDB(t, 300)
	r := rand.New(rand.NewPCG(6, 6))

	got, err := db.Get(ctx, "doc-007")
	require.NoError(t, err)
	require.Len(t, got.Vectors["tokens"], len(items[7].Vectors["tokens"]), "Get gives the whole set")
	for j, v := range tokMod.Split(got.Vectors["tokens"]) {
		assert.InDelta(t, 1, norm(v), 1e-5, "vector %d of the set is normalised", j)
	}
	assert.Equal(t, items[7].Vectors["photos"], got.Vectors["photos"], "L2 sets are stored as given")

	for _, c := range []struct {
		target, probeMod string
		probe            []float32
		filter           query.Expr
	}{
		{"tokens", "tokens", randSet(r, 4, 6), nil},
		{"tokens", "query", randVec(r, 6), nil}, // a single vector of the space: a set of one
		{"tokens", "tokens", randSet(r, 4, 6), query.MustParse("even = true")},
		{"photos", "photos", randSet(r, 3, 6), nil},
		{"clips", "clips", randSet(r, 3, 6), nil}, // L2 MaxSim: the mean Euclidean distance
	} {
		m := map[string]Modality{"tokens": tokMod, "photos": photosMod, "clips": clipsMod}[c.target]
		type ref struct {
			id    string
			score float64
		}
		var want []ref
		for i, it := range items {
			if c.filter == nil || i%2 == 0 {
				want = append(want, ref{it.ID, maxSimRef(m, c.probe, it.Vectors[c.target])})
			}
		}
		slices.SortStableFunc(want, func(a, b ref) int {
			if a.score != b.score {
				if a.score > b.score {
					return -1
				}
				return 1
			}
			return strings.Compare(a.id, b.id)
		})
		for _, exact := range []bool{true, false} {
			name := fmt.Sprintf("%s<-%s exact=%v filter=%v", c.target, c.probeMod, exact, c.filter)
			hits, err := db.Search(ctx, Query{Target: c.target, K: 10, Exact: exact, Filter: c.filter,
				Probes: []Probe{{Modality: c.probeMod, Vector: c.probe}}})
			require.NoError(t, err, name)
			require.Len(t, hits, 10, name)
			found := 0
			for i, h := range hits {
				if exact {
					assert.Equal(t, want[i].id, h.ID, "%s: rank %d", name, i)
					assert.InDelta(t, want[i].score, float64(h.Score), 1e-4, "%s: score of %s", name, h.ID)
				}
				for _, w := range want[:10] {
					if w.id == h.ID {
						found++
					}
				}
			}
			assert.GreaterOrEqual(t, found, 9, "%s: recall@10 against exact late interaction", name)
		}
	}

	own, err := db.Get(ctx, "doc-003")
	require.NoError(t, err)
	plan, hits, err := db.ExplainAnalyze(ctx, Query{Target: "tokens", K: 5, Probes: []Probe{{Modality: "tokens", Vector: own.Vectors["tokens"]}}})
	require.NoError(t, err)
	assert.Equal(t, "doc-003", hits[0].ID, "an item's own set scores best against itself")
	assert.InDelta(t, 1, hits[0].Score, 1e-5)
	text := plan.String()
	assert.Contains(t, text, "scored by maxsim late interaction")
	assert.Contains(t, text, "late interaction 2/2")
	chk, err := db.Check(ctx)
	require.NoError(t, err)
	assert.True(t, chk.OK(), chk.Problems)
}

func TestMultiVectorRefusals(t *testing.T) {
	db, _, _ := multiDB(t, 20)
	r := rand.New(rand.NewPCG(7, 7))
	set := randSet(r, 4, 6)
	cases := []struct {
		name string
		err  error
		run  func() error
	}{
		{"a set probe against single vectors", ErrInvalidQuery, func() error {
			_, err := db.Search(ctx, Query{Target: "query", K: 3, Probes: []Probe{{Modality: "tokens", Vector: set}}})
			return err
		}},
		{"a set probe from another space", ErrNoRoute, func() error {
			_, err := db.Search(ctx, Query{Target: "photos", K: 3, Probes: []Probe{{Modality: "tokens", Vector: set}}})
			return err
		}},
		{"early fusion into sets", ErrInvalidQuery, func() error {
			_, err := db.Search(ctx, Query{Target: "tokens", K: 3, Fuse: fusion.Early, Probes: []Probe{{Modality: "tokens", Vector: set}, {Modality: "query", Vector: randVec(r, 6)}}})
			return err
		}},
		{"a negative example against sets", ErrInvalidQuery, func() error {
			_, err := db.Search(ctx, Query{Target: "tokens", K: 3, Fuse: fusion.RRF, Probes: []Probe{{Modality: "tokens", Vector: set}, {Modality: "query", Vector: randVec(r, 6), Weight: -1}}})
			if err != nil && !strings.Contains(err.Error(), "holds sets") {
				return fmt.Errorf("the error does not say why sets cannot: %w", err)
			}
			return err
		}},
		{"best_score of one probe against sets", ErrInvalidQuery, func() error {
			_, err := db.Search(ctx, Query{Target: "tokens", K: 3, Fuse: fusion.BestScore, Probes: []Probe{{Modality: "tokens", Vector: set}}})
			return err
		}},
		{"a stored alignment into sets", ErrInvalidQuery, func() error {
			w := make([][]float32, 6)
			for i := range w {
				w[i] = make([]float32, 6)
				w[i][i] = 1
			}
			return db.SetAlignment(Alignment{From: "query", To: "tokens", W: w})
		}},
		{"align", ErrInvalidQuery, func() error {
			_, err := db.Align(ctx, "tokens", "photos", nil)
			return err
		}},
		{"evaluate", ErrInvalidQuery, func() error {
			_, err := db.Evaluate(ctx, "query", "tokens", nil)
			return err
		}},
		{"calibrate", ErrInvalidQuery, func() error {
			_, err := db.Calibrate(ctx, "query", "tokens", nil)
			return err
		}},
		{"a set of 7 values for 6-d vectors", ErrDimension, func() error {
			return db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"tokens": make([]float32, 7)}})
		}},
		{"more than MaxSet vectors", ErrDimension, func() error {
			return db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"tokens": randSet(rand.New(rand.NewPCG(1, 1)), 1, 6*(MaxSet+1))}})
		}},
		{"a zero vector in a cosine set", ErrInvalidVector, func() error {
			return db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"tokens": append(randVec(r, 6), make([]float32, 6)...)}})
		}},
		{"two vectors for a single-vector modality", ErrDimension, func() error {
			return db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"query": randVec(r, 12)}})
		}},
		{"redefined as one vector an item", ErrModalityConflict, func() error {
			m := tokMod
			m.Multi = Single
			return db.DefineModality(m)
		}},
		{"an encoder whose output is no set", ErrInvalidSchema, func() error {
			return db.DefineModality(Modality{Name: "pics", Multi: MaxSim, Encoder: &encoder.Spec{Kind: encoder.KindImage}})
		}},
	}
	for _, c := range cases {
		err := c.run()
		require.ErrorIs(t, err, c.err, c.name)
		t.Logf("%s: %v", c.name, err)
	}
	err := db.Put(ctx, Item{ID: "bad", Vectors: map[string][]float32{"tokens": append(randVec(r, 6), make([]float32, 6)...)}})
	assert.ErrorContains(t, err, `item "bad": modality "tokens": vector 1 of the set`, "the error names the item, the modality and the vector")
	_, err = db.Get(ctx, "x")
	assert.ErrorIs(t, err, ErrNotFound, "nothing refused was written")
}

func TestMultiVectorSurvivesReopenAndReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.mmdb")
	db := openAt(t, path, &Options{NoSync: true, CheckpointEvery: 100})
	for _, m := range []Modality{tokMod, photosMod} {
		require.NoError(t, db.DefineModality(m))
	}
	r := rand.New(rand.NewPCG(8, 8))
	put := func(prefix string, n int) {
		for i := range n {
			require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprintf("%s-%d", prefix, i), Vectors: map[string][]float32{"tokens": randSet(r, 6, 6), "photos": randSet(r, 2, 6)}}))
		}
	}
	put("a", 150) // 300 changes: checkpoints ran
	require.NoError(t, db.Merge(ctx, Item{ID: "a-3", Vectors: map[string][]float32{"tokens": randSet(r, 6, 6)}}))
	require.NoError(t, db.Delete(ctx, "a-4"))
	put("b", 10)
	probe := randSet(r, 3, 6)
	q := Query{Target: "tokens", K: 10, Exact: true, Probes: []Probe{{Modality: "tokens", Vector: probe}}}
	want, err := db.Search(ctx, q)
	require.NoError(t, err)

	crashed := filepath.Join(dir, "crashed.mmdb")
	rawCopy(t, db, crashed)
	c := openAt(t, crashed, nil)
	for _, rep := range c.OpenReport() {
		assert.Equal(t, "loaded", rep.Action, "%+v", rep)
		assert.Greater(t, rep.Replayed, 0, "the sets written after the checkpoint are replayed")
	}
	got, err := c.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	chk, err := c.Check(ctx)
	require.NoError(t, err)
	assert.True(t, chk.OK(), chk.Problems)
	assert.Equal(t, 159, chk.Vectors["tokens"])

	require.NoError(t, db.Close())
	db = openAt(t, path, nil)
	got, err = db.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, want, got, "after a clean close the saved sets answer the same")
	q.Exact = false
	graph, err := db.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, ids(want)[:5], ids(graph)[:5])
}

func TestMultiVectorStatements(t *testing.T) {
	db, _, items := multiDB(t, 50)
	at := slices.IndexFunc(items, func(it Item) bool { return len(it.Vectors["tokens"]) >= 2*tokMod.Dim })
	require.GreaterOrEqual(t, at, 0)
	set := tokMod.Split(items[at].Vectors["tokens"])
	lit := func(vs [][]float32) string {
		var parts []string
		for _, v := range vs {
			var nums []string
			for _, x := range v {
				nums = append(nums, fmt.Sprint(x))
			}
			parts = append(parts, "["+strings.Join(nums, ", ")+"]")
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	res, err := db.Query(ctx, "SEARCH tokens NEAR tokens "+lit(set)+" LIMIT 3 EXACT")
	require.NoError(t, err)
	require.NotEmpty(t, res.Hits)
	assert.Equal(t, items[at].ID, res.Hits[0].ID)
	assert.InDelta(t, 1, res.Hits[0].Score, 1e-5)

	_, err = db.Query(ctx, "SEARCH tokens NEAR tokens [[1, 2, 3], [4, 5, 6], [1, 1, 1], [2, 2, 2]]")
	assert.ErrorIs(t, err, ErrDimension, "3-d vectors for a 6-d modality, though 12 values make two 6-d ones")
	_, err = db.Query(ctx, "SEARCH tokens NEAR query "+lit(set[:2]))
	assert.ErrorIs(t, err, ErrInvalidQuery, "a set for a single-vector probe modality")
	res, err = db.Query(ctx, "SEARCH tokens NEAR query "+lit(set[:1])+" LIMIT 2")
	require.NoError(t, err, "a set of one is one vector")
	assert.Len(t, res.Hits, 2)
}

func TestMultiVectorFusedAndPaged(t *testing.T) {
	db, _, items := multiDB(t, 120)
	r := rand.New(rand.NewPCG(9, 9))
	a, b := randSet(r, 3, 6), randVec(r, 6)
	one := func(p Probe) []Hit {
		hits, err := db.Search(ctx, Query{Target: "tokens", K: 40, Exact: true, Probes: []Probe{p}})
		require.NoError(t, err)
		return hits
	}
	ha, hb := one(Probe{Modality: "tokens", Vector: a}), one(Probe{Modality: "query", Vector: b})
	// RRF of the two exact lists, by hand (k = 60, as fusion.RRF).
	score := map[string]float64{}
	for _, hs := range [][]Hit{ha, hb} {
		for i, h := range hs {
			score[h.ID] += 1 / float64(60+i+1)
		}
	}
	fused, err := db.Search(ctx, Query{Target: "tokens", K: 5, Exact: true, Fuse: fusion.RRF,
		Probes: []Probe{{Modality: "tokens", Vector: a}, {Modality: "query", Vector: b}}})
	require.NoError(t, err)
	require.Len(t, fused, 5)
	for i := 1; i < len(fused); i++ {
		assert.GreaterOrEqual(t, score[fused[i-1].ID], score[fused[i].ID], "fused by RRF of the late-interaction lists")
	}
	// Pages of an exact set search neither repeat nor miss a hit.
	var paged []string
	for off := 0; off < 30; off += 10 {
		hits, err := db.Search(ctx, Query{Target: "tokens", K: 10, Offset: off, Exact: true, Probes: []Probe{{Modality: "tokens", Vector: a}}})
		require.NoError(t, err)
		paged = append(paged, ids(hits)...)
	}
	assert.Equal(t, ids(ha)[:30], paged)
	// A score bound keeps what late interaction scores above it.
	bound := float32(ha[7].Score)
	hits, err := db.Search(ctx, Query{Target: "tokens", K: 40, MinScore: &bound, Probes: []Probe{{Modality: "tokens", Vector: a}}, Exact: true})
	require.NoError(t, err)
	assert.Equal(t, ids(ha)[:8], ids(hits))
	_ = items
}

func TestMultiVectorUsesTheConfiguredEf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ef.mmdb")
	db, err := Open(path, &Options{NoSync: true, Index: hnsw.Config{EfSearch: 300}, ExactCutoff: 1})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(tokMod))
	r := rand.New(rand.NewPCG(10, 10))
	var items []Item
	for i := range 300 {
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"tokens": randSet(r, 2, 6)}})
	}
	require.NoError(t, db.Put(ctx, items...))
	plan, err := db.Explain(ctx, Query{Target: "tokens", K: 5, Probes: []Probe{{Modality: "tokens", Vector: randVec(r, 6)}}})
	require.NoError(t, err)
	assert.Equal(t, 300, plan.Ef, "Options.Index.EfSearch reaches a multi-vector target")
}

// A picture as a set of its patches: an image encoder with Patches on a
// multi-vector modality, kept across a reopen.
func TestMultiVectorImagePatches(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	enc := encoder.Image{Patches: true}
	var raw [][]float32
	for range 50 {
		grid := make([]float64, 64)
		for i := range grid {
			grid[i] = r.Float64() * 16
		}
		v, err := enc.EncodeGrid(grid)
		require.NoError(t, err)
		raw = append(raw, v)
	}
	sc, err := encoder.FitScaler(raw)
	require.NoError(t, err)
	m := Modality{Name: "patches", Multi: MaxSim, Encoder: &encoder.Spec{Kind: encoder.KindImage, Image: &encoder.Image{Patches: true}, Scaler: sc}}
	db, path := openTest(t, m)
	require.Equal(t, 24, db.Modalities()[0].Dim, "a 24-d vector a patch")
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	vs, err := db.Encode(ctx, "patches", encoder.Input{Data: b.Bytes()})
	require.NoError(t, err)
	require.Len(t, vs[0], 9*24, "nine patches")
	require.NoError(t, db.Put(ctx, Item{ID: "pic", Vectors: map[string][]float32{"patches": vs[0]}}))
	require.NoError(t, db.Close())
	db2 := openAt(t, path, nil)
	require.Equal(t, m.Encoder.Image.Patches, db2.Modalities()[0].Encoder.Image.Patches, "the schema keeps Patches")
	hits, err := db2.Search(ctx, Query{Target: "patches", K: 1, Probes: []Probe{{Modality: "patches", Data: b.Bytes()}}})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "pic", hits[0].ID)
	assert.InDelta(t, 1, hits[0].Score, 1e-5)
}

// The planner counts a set's vectors: 600 sets of 32 vectors go to the
// graph, where 600 single vectors are scanned.
func TestMultiVectorPlannerCountsVectors(t *testing.T) {
	set := Modality{Name: "set", Dim: 4, Metric: Cosine, Space: "s", Multi: MaxSim}
	one := Modality{Name: "one", Dim: 4, Metric: Cosine, Space: "s"}
	db, _ := openTest(t, set, one)
	r := rand.New(rand.NewPCG(13, 13))
	var items []Item
	for i := range 600 {
		var vs [][]float32
		for range 32 {
			vs = append(vs, randVec(r, 4))
		}
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"set": modality.Join(vs...), "one": randVec(r, 4)}})
	}
	require.NoError(t, db.Put(ctx, items...))
	for target, want := range map[string]Strategy{"set": StrategyHNSW, "one": StrategyExact} {
		plan, err := db.Explain(ctx, Query{Target: target, K: 10, Probes: []Probe{{Modality: "one", Vector: randVec(r, 4)}}})
		require.NoError(t, err)
		assert.Equal(t, want, plan.Strategy, "%s: %s", target, plan.Why)
	}
}

// A calibration stored for modalities that a damaged or crafted file says
// hold sets is refused at Open (centring a set by a one-vector mean would
// read past it), not applied to a search.
func TestMultiVectorStoredCalibrationRefused(t *testing.T) {
	p := Modality{Name: "p", Dim: 4, Metric: Cosine, Space: "s"}
	q := Modality{Name: "q", Dim: 4, Metric: Cosine, Space: "s"}
	db, path := openTest(t, p, q)
	r := rand.New(rand.NewPCG(14, 14))
	var items []Item
	for i := range 200 {
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"p": randVec(r, 4), "q": randVec(r, 4)}})
	}
	require.NoError(t, db.Put(ctx, items...))
	_, err := db.Calibrate(ctx, "p", "q", &CalibrateOptions{Centre: true, StoreAny: true})
	require.NoError(t, err)
	require.NoError(t, db.store.Update(func(tx *storage.Tx) error {
		for _, m := range []Modality{p, q} {
			m.Multi = MaxSim
			if err := tx.ReplaceModality(m); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	_, err = Open(path, nil)
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "calibration p->q")
}

func TestMultiVectorEncoderSetBounds(t *testing.T) {
	db, _ := openTest(t)
	err := db.DefineModality(Modality{Name: "big", Multi: MaxSim, Encoder: &encoder.Spec{Kind: encoder.KindImage, Image: &encoder.Image{Size: 17, Cell: 1, Stride: 1, Patches: true}}})
	assert.ErrorIs(t, err, ErrInvalidSchema, "17 x 17 patches are more than MaxSet")
	require.NoError(t, db.DefineModality(Modality{Name: "ok", Multi: MaxSim, Encoder: &encoder.Spec{Kind: encoder.KindImage, Image: &encoder.Image{Size: 16, Cell: 1, Stride: 1, Patches: true}}}))
}
