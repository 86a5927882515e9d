package mmdb

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

var ctx = context.Background()

func openTest(t testing.TB, mods ...Modality) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.mmdb")
	db, err := Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, m := range mods {
		require.NoError(t, db.DefineModality(m))
	}
	return db, path
}

var (
	imgMod   = Modality{Name: "image", Dim: 4, Metric: Cosine, Space: "clip"}
	txtMod   = Modality{Name: "text", Dim: 4, Metric: Cosine, Space: "clip"}
	audioMod = Modality{Name: "audio", Dim: 3, Metric: L2, Space: "mfcc"}
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestReopenKeepsEverythingBitExact(t *testing.T) {
	db, path := openTest(t, imgMod, txtMod, audioMod)
	r := rand.New(rand.NewPCG(1, 1))
	var items []Item
	for i := range 50 {
		it := Item{ID: fmt.Sprintf("item-%d", i), Vectors: map[string][]float32{"image": randVec(r, 4)}}
		if i%2 == 0 {
			it.Vectors["text"] = randVec(r, 4)
			it.Attrs = map[string]any{"year": int64(2000 + i), "tags": []string{"a", "b"}, "ok": true, "w": 0.25, "name": "x"}
		}
		if i%3 == 0 {
			it.Vectors["audio"] = randVec(r, 3)
		}
		items = append(items, it)
	}
	require.NoError(t, db.Put(ctx, items...))
	before := map[string]Item{}
	for _, it := range items {
		got, err := db.Get(ctx, it.ID)
		require.NoError(t, err)
		before[it.ID] = got
	}
	// Audio is L2: stored exactly as given. Cosine vectors are stored unit length.
	assert.Equal(t, items[0].Vectors["audio"], before["item-0"].Vectors["audio"])
	assert.InDelta(t, 1, norm(before["item-1"].Vectors["image"]), 1e-6)

	require.NoError(t, db.Close())
	db2, err := Open(path, nil)
	require.NoError(t, err)
	defer db2.Close()
	assert.Equal(t, []Modality{imgMod, txtMod, audioMod}, db2.Modalities())
	assert.Equal(t, 50, db2.Count())
	for id, want := range before {
		got, err := db2.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
		for m, v := range want.Vectors {
			for i := range v {
				require.Equal(t, math.Float32bits(v[i]), math.Float32bits(got.Vectors[m][i]))
			}
		}
	}
	// The index was rebuilt: every item finds itself first.
	for id, it := range before {
		hits, err := db2.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: it.Vectors["image"]}}, K: 1})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		assert.Equal(t, id, hits[0].ID)
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestOpenRefusesForeignFilesAndLeavesThemUntouched(t *testing.T) {
	dir := t.TempDir()
	random := filepath.Join(dir, "random.bin")
	rb := make([]byte, 64<<10)
	rr := rand.New(rand.NewPCG(7, 7))
	for i := range rb {
		rb[i] = byte(rr.Uint32())
	}
	require.NoError(t, os.WriteFile(random, rb, 0o600))

	text := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(text, []byte("hello, not a database\n"), 0o600))

	plainBolt := filepath.Join(dir, "other.bolt")
	bdb, err := bolt.Open(plainBolt, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("stuff"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}))
	require.NoError(t, bdb.Close())

	newer := filepath.Join(dir, "newer.mmdb")
	db, err := Open(newer, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	bdb, err = bolt.Open(newer, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 4)
		binary.BigEndian.PutUint32(v, 99)
		return tx.Bucket([]byte("meta")).Put([]byte("version"), v)
	}))
	require.NoError(t, bdb.Close())

	tests := []struct {
		name string
		path string
		err  error
	}{
		{"random bytes", random, ErrNotDatabase},
		{"text file", text, ErrNotDatabase},
		{"bbolt without mmdb meta", plainBolt, ErrNotDatabase},
		{"newer format", newer, ErrVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sum := fileSum(t, tc.path)
			_, err := Open(tc.path, nil)
			require.ErrorIs(t, err, tc.err)
			assert.Contains(t, err.Error(), tc.path)
			assert.Equal(t, sum, fileSum(t, tc.path), "file was modified")
		})
	}
	_, err = Open(dir, nil)
	assert.ErrorContains(t, err, "directory")
}

func TestDefineModality(t *testing.T) {
	db, _ := openTest(t, imgMod)
	tests := []struct {
		name string
		m    Modality
		err  error
	}{
		{"same again is a no-op", imgMod, nil},
		{"other dim", Modality{Name: "image", Dim: 8, Metric: Cosine, Space: "clip"}, ErrModalityConflict},
		{"other metric", Modality{Name: "image", Dim: 4, Metric: Dot, Space: "clip"}, ErrModalityConflict},
		{"other space", Modality{Name: "image", Dim: 4, Metric: Cosine, Space: "siglip"}, ErrModalityConflict},
		{"bad name", Modality{Name: "a b", Dim: 4, Metric: Cosine}, ErrInvalidSchema},
		{"zero dim", Modality{Name: "z", Dim: 0, Metric: Cosine}, ErrInvalidSchema},
		{"new", txtMod, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.DefineModality(tc.m)
			if tc.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.err)
			}
		})
	}
	assert.Equal(t, []Modality{imgMod, txtMod}, db.Modalities())
}

func TestModalityAddedToPopulatedDatabase(t *testing.T) {
	db, path := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	require.NoError(t, db.DefineModality(txtMod))
	require.NoError(t, db.Put(ctx, Item{ID: "b", Vectors: map[string][]float32{"image": {0, 1, 0, 0}, "text": {0, 1, 0, 0}}}))
	require.NoError(t, db.Close())
	db, err := Open(path, nil)
	require.NoError(t, err)
	defer db.Close()
	hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "b"}}, K: 2})
	require.NoError(t, err)
	require.Len(t, hits, 2)
	assert.Equal(t, "b", hits[0].ID)
	assert.InDelta(t, 1, hits[0].Score, 1e-6)
	assert.Equal(t, "a", hits[1].ID)
	assert.InDelta(t, 0, hits[1].Score, 1e-6)
}

func TestPutRejectsBadInputAndWritesNothing(t *testing.T) {
	db, _ := openTest(t, imgMod, audioMod)
	good := Item{ID: "good", Vectors: map[string][]float32{"image": {1, 2, 3, 4}}}
	nan := float32(math.NaN())
	tests := []struct {
		name string
		bad  Item
		err  error
		msg  []string
	}{
		{"wrong dimension", Item{ID: "x", Vectors: map[string][]float32{"image": {1, 2}}}, ErrDimension, []string{`"x"`, `"image"`, "got 2 values"}},
		{"NaN", Item{ID: "x", Vectors: map[string][]float32{"audio": {1, nan, 0}}}, ErrInvalidVector, []string{`"x"`, `"audio"`, "NaN"}},
		{"Inf", Item{ID: "x", Vectors: map[string][]float32{"audio": {float32(math.Inf(-1)), 0, 0}}}, ErrInvalidVector, []string{"-Inf"}},
		{"zero under cosine", Item{ID: "x", Vectors: map[string][]float32{"image": {0, 0, 0, 0}}}, ErrInvalidVector, []string{`"image"`, "zero vector"}},
		{"unknown modality", Item{ID: "x", Vectors: map[string][]float32{"smell": {1}}}, ErrUnknownModality, []string{`"smell"`, "image, audio"}},
		{"empty ID", Item{ID: ""}, ErrInvalidID, []string{"empty"}},
		{"ID too long", Item{ID: string(make([]byte, MaxIDLen+1))}, ErrInvalidID, []string{"513 bytes"}},
		{"attribute of unsupported type", Item{ID: "x", Attrs: map[string]any{"ch": make(chan int)}}, ErrAttribute, []string{`"ch"`, "chan int"}},
		{"nested map attribute", Item{ID: "x", Attrs: map[string]any{"m": map[string]any{"a": 1}}}, ErrAttribute, []string{`"m"`}},
		{"NaN attribute", Item{ID: "x", Attrs: map[string]any{"f": math.NaN()}}, ErrAttribute, []string{"non-finite"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Put(ctx, good, tc.bad)
			require.ErrorIs(t, err, tc.err)
			for _, m := range tc.msg {
				assert.Contains(t, err.Error(), m)
			}
			assert.Contains(t, err.Error(), "batch position 1")
			assert.Equal(t, 0, db.Count())
			_, err = db.Get(ctx, "good")
			assert.ErrorIs(t, err, ErrNotFound, "the good item of a failed batch must not be written")
		})
	}
	// An ID of exactly MaxIDLen bytes is fine.
	require.NoError(t, db.Put(ctx, Item{ID: string(make([]byte, MaxIDLen))}))
}

func TestPutReplacesAndDeleteRemoves(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod)
	require.NoError(t, db.Put(ctx,
		Item{ID: "a", Attrs: map[string]any{"n": 1}, Vectors: map[string][]float32{"image": {1, 0, 0, 0}, "text": {1, 0, 0, 0}}},
		Item{ID: "b", Vectors: map[string][]float32{"image": {0, 1, 0, 0}}}))
	assert.Equal(t, 2, db.Count())

	// Replace a: it loses its text vector and attributes.
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {0, 0, 1, 0}}}))
	assert.Equal(t, 2, db.Count())
	got, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Nil(t, got.Attrs)
	assert.Equal(t, map[string][]float32{"image": {0, 0, 1, 0}}, got.Vectors)
	hits, err := db.Search(ctx, Query{Target: "text", Probes: []Probe{{Modality: "text", Vector: []float32{1, 0, 0, 0}}}})
	require.NoError(t, err)
	assert.Empty(t, hits, "a's old text vector must be gone from the index")

	// Delete is atomic: one unknown ID deletes nothing.
	err = db.Delete(ctx, "a", "nope")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), `"nope"`)
	assert.Equal(t, 2, db.Count())

	require.NoError(t, db.Delete(ctx, "a"))
	assert.Equal(t, 1, db.Count())
	_, err = db.Get(ctx, "a")
	assert.ErrorIs(t, err, ErrNotFound)
	hits, err = db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: []float32{0, 0, 1, 0}}}})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "b", hits[0].ID)

	// A deleted ID can be put again.
	require.NoError(t, db.Put(ctx, Item{ID: "a"}))
	assert.Equal(t, 2, db.Count())
}

func TestSearch(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod, audioMod, Modality{Name: "big", Dim: 8, Metric: Cosine, Space: "clip"},
		Modality{Name: "smell", Dim: 2, Metric: L2, Space: "nose"})
	require.NoError(t, db.Put(ctx,
		Item{ID: "north", Vectors: map[string][]float32{"image": {0, 1, 0, 0}, "text": {0, 1, 0.1, 0}, "audio": {0, 0, 0}}},
		Item{ID: "east", Vectors: map[string][]float32{"image": {1, 0, 0, 0}, "audio": {3, 4, 0}}},
		Item{ID: "south", Vectors: map[string][]float32{"image": {0, -1, 0, 0}}},
	))
	t.Run("text to image ranks by cosine", func(t *testing.T) {
		for _, exact := range []bool{false, true} {
			hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", Vector: []float32{0.1, 2, 0, 0}}}, Exact: exact})
			require.NoError(t, err)
			require.Len(t, hits, 3)
			assert.Equal(t, []string{"north", "east", "south"}, []string{hits[0].ID, hits[1].ID, hits[2].ID})
			assert.InDelta(t, 2/math.Sqrt(4.01), hits[0].Score, 1e-6)
			assert.InDelta(t, 1-hits[0].Score, hits[0].Distance, 1e-6)
		}
	})
	t.Run("L2 reports euclidean distance", func(t *testing.T) {
		hits, err := db.Search(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "audio", Vector: []float32{0, 0, 0}}}, K: 5})
		require.NoError(t, err)
		require.Len(t, hits, 2)
		assert.Equal(t, "north", hits[0].ID)
		assert.InDelta(t, 5, hits[1].Distance, 1e-6)
		assert.InDelta(t, -5, hits[1].Score, 1e-6)
	})
	t.Run("different spaces pivot through shared items", func(t *testing.T) {
		hits, err := db.Search(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0.1, 0, 0}}}, K: 2})
		require.NoError(t, err)
		require.Len(t, hits, 2)
		assert.Equal(t, "east", hits[0].ID, "the nearest image's own sound ranks first")
		plan, err := db.Explain(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}})
		require.NoError(t, err)
		assert.Equal(t, RoutePivot, plan.Probes[0].Route)
		assert.Contains(t, plan.String(), "pivot route")
	})
	t.Run("probe by item", func(t *testing.T) {
		hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "north"}}, K: 1})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		assert.Equal(t, "north", hits[0].ID)
	})
	errCases := []struct {
		name string
		q    Query
		err  error
		msg  string
	}{
		{"different spaces, nothing shared", Query{Target: "smell", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}}, ErrNoRoute, `image is in space "clip", smell in space "nose"`},
		{"pivot impossible", Query{Target: "smell", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}}, ErrNoRoute, "no item carries both to pivot through"},
		{"bad fusion", Query{Target: "image", Fuse: "average", Probes: []Probe{{Modality: "text", ItemID: "north"}}}, ErrInvalidQuery, "unknown fusion"},
		{"same space other dim", Query{Target: "big", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}}, ErrNoRoute, "dimensions 4 and 8"},
		{"unknown target", Query{Target: "taste", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}}, ErrUnknownModality, `"taste"`},
		{"unknown probe modality", Query{Target: "image", Probes: []Probe{{Modality: "taste", Vector: []float32{1}}}}, ErrUnknownModality, `"taste"`},
		{"probe item missing", Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "nope"}}}, ErrNotFound, `"nope"`},
		{"probe item lacks modality", Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "east"}}}, ErrNotFound, "no text vector"},
		{"bad probe vector", Query{Target: "image", Probes: []Probe{{Modality: "text", Vector: []float32{1}}}}, ErrDimension, "got 1 values"},
		{"no probe", Query{Target: "image"}, ErrInvalidQuery, "0 probes"},
		{"early fusion across spaces", Query{Target: "image", Fuse: "early", Probes: []Probe{{Modality: "text", ItemID: "north"}, {Modality: "audio", ItemID: "north"}}}, ErrInvalidQuery, "early fusion"},
		{"both vector and item", Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "east", Vector: []float32{1, 0, 0, 0}}}}, ErrInvalidQuery, "more than one of Vector, ItemID"},
		{"negative K", Query{Target: "image", K: -1, Probes: []Probe{{Modality: "text", ItemID: "north"}}}, ErrInvalidQuery, "K = -1"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Search(ctx, tc.q)
			require.ErrorIs(t, err, tc.err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestEvaluateCountsTiesAgainstTheQuery(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod)
	// a's text is equally close to a's and b's images (a tie): rank 2.
	// b's text finds b's image first: rank 1. c has no text: not a query,
	// but its image is a target.
	require.NoError(t, db.Put(ctx,
		Item{ID: "a", Vectors: map[string][]float32{"text": {1, 1, 0, 0}, "image": {1, 0, 0, 0}}},
		Item{ID: "b", Vectors: map[string][]float32{"text": {0, 1, 0, 0}, "image": {0, 1, 0, 0}}},
		Item{ID: "c", Vectors: map[string][]float32{"image": {0, 0, 1, 0}}},
	))
	rep, err := db.Evaluate(ctx, "text", "image", &EvalOptions{Ks: []int{1, 2}})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.N)
	assert.Equal(t, 3, rep.Targets)
	assert.Equal(t, map[int]float64{1: 0.5, 2: 1}, rep.Recall)
	assert.InDelta(t, (1+0.5)/2, rep.MRR, 1e-9)
	assert.Equal(t, 1.5, rep.MedianRank)

	_, err = db.Evaluate(ctx, "text", "nope", nil)
	assert.ErrorIs(t, err, ErrUnknownModality)
	_, err = db.Evaluate(ctx, "text", "image", &EvalOptions{Ks: []int{0}})
	assert.ErrorIs(t, err, ErrInvalidQuery)
}

func TestItemsIteratesAcrossPages(t *testing.T) {
	db, _ := openTest(t, imgMod)
	const n = 2*itemsPage + 17
	batch := make([]Item, n)
	for i := range batch {
		batch[i] = Item{ID: fmt.Sprintf("%05d", i), Vectors: map[string][]float32{"image": {1, float32(i), 0, 0}}}
	}
	require.NoError(t, db.Put(ctx, batch...))
	require.NoError(t, db.Delete(ctx, "00003"))
	var ids []string
	for it, err := range db.Items(ctx) {
		require.NoError(t, err)
		ids = append(ids, it.ID)
		require.Len(t, it.Vectors["image"], 4)
	}
	require.Len(t, ids, n-1)
	assert.Equal(t, "00002", ids[2])
	assert.Equal(t, "00004", ids[3])
	assert.Equal(t, fmt.Sprintf("%05d", n-1), ids[n-2])

	// Breaking early stops, and writing inside the loop does not deadlock.
	count := 0
	for it, err := range db.Items(ctx) {
		require.NoError(t, err)
		require.NoError(t, db.Put(ctx, Item{ID: "copy-" + it.ID}))
		if count++; count == 3 {
			break
		}
	}
	assert.Equal(t, 3, count)
}

func TestClosedDatabase(t *testing.T) {
	db, _ := openTest(t, imgMod)
	require.NoError(t, db.Close())
	require.NoError(t, db.Close(), "second Close is a no-op")
	calls := map[string]func() error{
		"Put":            func() error { return db.Put(ctx, Item{ID: "a"}) },
		"Get":            func() error { _, err := db.Get(ctx, "a"); return err },
		"Delete":         func() error { return db.Delete(ctx, "a") },
		"DefineModality": func() error { return db.DefineModality(txtMod) },
		"Search": func() error {
			_, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}})
			return err
		},
		"Evaluate": func() error { _, err := db.Evaluate(ctx, "image", "image", nil); return err },
		"Items": func() error {
			for _, err := range db.Items(ctx) {
				return err
			}
			return nil
		},
	}
	for name, call := range calls {
		assert.ErrorIs(t, call(), ErrClosed, name)
	}
}

func TestCancelledContext(t *testing.T) {
	db, _ := openTest(t, imgMod)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, db.Put(cctx, Item{ID: "a"}), context.Canceled)
	_, err := db.Search(cctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, db.Count())
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod)
	r := rand.New(rand.NewPCG(2, 2))
	seed := make([]Item, 100)
	for i := range seed {
		seed[i] = Item{ID: fmt.Sprintf("s%d", i), Vectors: map[string][]float32{"image": randVec(r, 4), "text": randVec(r, 4)}}
	}
	require.NoError(t, db.Put(ctx, seed...))

	var wg sync.WaitGroup
	errc := make(chan error, 16)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			q := []float32{1, float32(w), 0, 1}
			for {
				select {
				case <-stop:
					return
				default:
				}
				hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", Vector: q}}, K: 5})
				if err == nil && len(hits) != 5 {
					err = fmt.Errorf("got %d hits", len(hits))
				}
				if err == nil {
					_, err = db.Get(ctx, "s1")
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wr := rand.New(rand.NewPCG(3, 3))
	for i := range 200 {
		id := fmt.Sprintf("w%d", i%50)
		if i%7 == 6 {
			if err := db.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			continue
		}
		require.NoError(t, db.Put(ctx, Item{ID: id, Vectors: map[string][]float32{"image": randVec(wr, 4)}}))
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	n := 0
	for _, err := range db.Items(ctx) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, db.Count(), n)
}

func TestUpdateChangesStoredItemsOnly(t *testing.T) {
	db, _ := openTest(t, Modality{Name: "v", Dim: 2, Metric: L2})
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: map[string]any{"k": "x", "n": 1}, Vectors: map[string][]float32{"v": {1, 2}}}))
	err := db.Update(ctx, Item{ID: "a", Attrs: map[string]any{"k": "y"}}, Item{ID: "b", Attrs: map[string]any{"k": "z"}})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), `"b"`)
	var ie *ItemError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, 1, ie.Index)
	it, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "x", it.Attrs["k"], "the batch is atomic: nothing changed")
	_, err = db.Get(ctx, "b")
	assert.ErrorIs(t, err, ErrNotFound, "Update stores no new item")

	require.NoError(t, db.Update(ctx, Item{ID: "a", Attrs: map[string]any{"k": "y", "n": nil}}))
	it, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "y"}, it.Attrs, "merged: set, and nil removes")
	assert.Equal(t, []float32{1, 2}, it.Vectors["v"], "vectors not given are kept")
}

func TestSetAttrsReplacesAttributesOnly(t *testing.T) {
	db, _ := openTest(t, Modality{Name: "v", Dim: 2, Metric: L2})
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: map[string]any{"k": "x", "n": 1}, Vectors: map[string][]float32{"v": {1, 2}}}))
	require.NoError(t, db.SetAttrs(ctx, Item{ID: "a", Attrs: map[string]any{"m": true}}))
	it, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"m": true}, it.Attrs, "the old attributes are gone")
	assert.Equal(t, []float32{1, 2}, it.Vectors["v"], "the vectors are kept")
	hits, err := db.Search(ctx, Query{Target: "v", Probes: []Probe{{Modality: "v", Vector: []float32{1, 2}}}, K: 1})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "a", hits[0].ID, "still indexed")
	n, err := db.CountWhere(ctx, query.Has("k"))
	require.NoError(t, err)
	assert.Zero(t, n, "postings follow")
	require.NoError(t, db.SetAttrs(ctx, Item{ID: "a"}))
	it, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Empty(t, it.Attrs)
	assert.ErrorIs(t, db.SetAttrs(ctx, Item{ID: "zz", Attrs: map[string]any{"a": 1}}), ErrNotFound)
	assert.ErrorIs(t, db.SetAttrs(ctx, Item{ID: "a", Vectors: map[string][]float32{"v": {3, 4}}}), ErrInvalidQuery)
}
