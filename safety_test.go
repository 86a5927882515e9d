package mmdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// A snapshot onto the open file, by any name, is refused: it would replace
// the file under the open database and drop its lock.
func TestSnapshotRefusesTheOpenFile(t *testing.T) {
	db, path := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	dir := filepath.Dir(path)
	require.NoError(t, os.Symlink(path, filepath.Join(dir, "link.mmdb")))
	require.NoError(t, os.Link(path, filepath.Join(dir, "hard.mmdb")))
	for _, dst := range []string{path, filepath.Join(dir, ".", "test.mmdb"), filepath.Join(dir, "link.mmdb"), filepath.Join(dir, "hard.mmdb")} {
		err := db.Snapshot(ctx, dst)
		require.ErrorIs(t, err, ErrSameFile, dst)
	}
	// The database is still the one file, locked, and keeps what it
	// acknowledges.
	require.NoError(t, db.Put(ctx, Item{ID: "b", Vectors: map[string][]float32{"image": {0, 1, 0, 0}}}))
	_, err := Open(path, &Options{Timeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, db.Close())
	again, err := Open(path, nil)
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, 2, again.Count())
}

// A killed snapshot's temporary file is removed by the next snapshot to
// the same path; one that a live writer holds is not.
func TestSnapshotRemovesStaleTemporaryFiles(t *testing.T) {
	db, path := openTest(t, imgMod)
	dst := filepath.Join(filepath.Dir(path), "snap.mmdb")
	stale := filepath.Join(filepath.Dir(path), ".snap.mmdb.tmp-123")
	require.NoError(t, os.WriteFile(stale, make([]byte, 1<<20), 0o600))
	live, err := storage.CreateTemp(dst) // another snapshot under way
	require.NoError(t, err)
	defer live.Close()
	require.NoError(t, db.Snapshot(ctx, dst))
	assert.NoFileExists(t, stale)
	assert.FileExists(t, live.Name())
	assert.FileExists(t, dst)
}

// Open does not wait forever for another process's lock: it fails with
// ErrLocked after DefaultTimeout. Read-only handles share the file.
func TestOpenLockedFailsWithinTimeout(t *testing.T) {
	_, path := openTest(t, imgMod)
	start := time.Now()
	_, err := Open(path, nil)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "database is locked by another process")
	assert.Less(t, time.Since(start), DefaultTimeout+time.Second)
	assert.Greater(t, time.Since(start), DefaultTimeout/2, "it waited for the lock")

	_, err = Open(path, &Options{ReadOnly: true, Timeout: 10 * time.Millisecond})
	require.ErrorIs(t, err, ErrLocked, "a writer holds it")
}

func TestReadOnlyHandlesShareTheFile(t *testing.T) {
	db, path := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	require.NoError(t, db.Close())
	r1, err := Open(path, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer r1.Close()
	r2, err := Open(path, &Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer r2.Close()
	assert.Equal(t, 1, r2.Count())
}

// Merge changes what it is given and keeps the rest; the indexes follow,
// also for an ID merged twice in one batch.
func TestMergeKeepsWhatItIsNotGiven(t *testing.T) {
	db, _ := openTest(t, imgMod, audioMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: map[string]any{"label": "cat", "year": 2010},
		Vectors: map[string][]float32{"image": {1, 0, 0, 0}, "audio": {1, 2, 3}}}))
	require.NoError(t, db.Merge(ctx,
		Item{ID: "a", Attrs: map[string]any{"label": "dog", "year": nil}},
		Item{ID: "a", Vectors: map[string][]float32{"audio": {4, 5, 6}}},
		Item{ID: "new", Attrs: map[string]any{"label": "x"}, Vectors: map[string][]float32{"image": {0, 1, 0, 0}}},
		Item{ID: "new", Vectors: map[string][]float32{"audio": {0, 0, 1}}},
	))
	got, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"label": "dog"}, got.Attrs)
	assert.Equal(t, map[string][]float32{"image": {1, 0, 0, 0}, "audio": {4, 5, 6}}, got.Vectors)
	got, err = db.Get(ctx, "new")
	require.NoError(t, err)
	assert.Equal(t, map[string][]float32{"image": {0, 1, 0, 0}, "audio": {0, 0, 1}}, got.Vectors)

	hits, err := db.Search(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "audio", Vector: []float32{4, 5, 6}}}, K: 1})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "a", hits[0].ID)
	hits, err = db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: []float32{0, 1, 0, 0}}}, K: 1, Filter: query.MustParse("label = 'x'")})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "new", hits[0].ID)
	rep, err := db.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)

	// Put still replaces whole.
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	got, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Nil(t, got.Attrs)
	assert.Equal(t, map[string][]float32{"image": {1, 0, 0, 0}}, got.Vectors)
	rep, err = db.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
}

// Vectors that are finite but overflow or underflow on the way to storage
// or search are refused or stored finite; no public value is NaN or Inf.
func TestNoNonFiniteValuesReachStorageOrHits(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod, audioMod)
	tiny := float32(1e-45)
	require.NoError(t, db.Put(ctx, Item{ID: "tiny", Vectors: map[string][]float32{"image": {tiny, tiny, tiny, tiny}}}))
	got, err := db.Get(ctx, "tiny")
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, 0.5, 0.5, 0.5}, got.Vectors["image"])

	err = db.Put(ctx, Item{ID: "huge", Vectors: map[string][]float32{"audio": {2e19, 0, 0}}})
	require.ErrorIs(t, err, ErrInvalidVector)
	assert.Contains(t, err.Error(), `item "huge": modality "audio"`)

	require.NoError(t, db.Put(ctx,
		Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}, "text": {1, 0.1, 0, 0}}},
		Item{ID: "b", Vectors: map[string][]float32{"image": {0, 1, 0, 0}, "text": {0, 1, 0.1, 0}}}))
	_, err = db.Query(ctx, "SEARCH image NEAR text OF 'a' WEIGHT 3e38, image OF 'b' FUSE early")
	require.ErrorIs(t, err, ErrInvalidQuery)

	for _, fuse := range []fusion.Method{"", fusion.Weighted, fusion.DBSF} {
		hits, err := db.Search(ctx, Query{Target: "image", Fuse: fuse, Probes: []Probe{{Modality: "text", ItemID: "a"}, {Modality: "image", ItemID: "b"}}})
		require.NoError(t, err)
		require.NotEmpty(t, hits)
		_, err = json.Marshal(hits)
		require.NoError(t, err, "fused hits marshal to JSON")
		for _, h := range hits {
			assert.True(t, h.Fused)
			assert.False(t, math.IsNaN(float64(h.Distance)) || math.IsInf(float64(h.Distance), 0))
			assert.False(t, math.IsNaN(float64(h.Score)) || math.IsInf(float64(h.Score), 0))
		}
	}
}

func TestCheckFindsNonFiniteStoredVectors(t *testing.T) {
	db, path := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	require.NoError(t, db.Close())
	b, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, b.Update(func(tx *bolt.Tx) error {
		inf := float32(math.Inf(1))
		return tx.Bucket([]byte("vec/image")).Put([]byte{0, 0, 0, 0}, storage.EncodeVector([]float32{inf, inf, inf, inf}))
	}))
	require.NoError(t, b.Close())
	db, err = Open(path, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	rep, err := db.Check(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK())
	assert.Contains(t, strings.Join(rep.Problems, "\n"), `image vector of "a": invalid vector: value 0 is +Inf`)
}

// Alignments, calibrations and spaces that would poison every score are
// refused with a clear error.
func TestPoisonedDefinitionsAreRefused(t *testing.T) {
	db, _ := openTest(t, imgMod, audioMod)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	w := func(x float32) [][]float32 {
		return [][]float32{{x, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}
	}
	for name, a := range map[string]Alignment{
		"NaN weight": {From: "image", To: "audio", W: w(nan)},
		"Inf bias":   {From: "image", To: "audio", W: w(1), Bias: []float32{0, inf, 0}},
		"to itself":  {From: "audio", To: "audio", W: [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},
	} {
		assert.ErrorIs(t, db.SetAlignment(a), ErrInvalidQuery, name)
	}
	for _, alpha := range []float64{math.NaN(), math.Inf(1), -1, 1e9} {
		_, err := db.Calibrate(ctx, "image", "image", &CalibrateOptions{Alpha: alpha})
		assert.ErrorIs(t, err, ErrInvalidQuery, "alpha %v", alpha)
	}
	for _, sp := range []string{"a\x00b", string(make([]byte, 1<<20))} {
		assert.ErrorIs(t, db.DefineModality(Modality{Name: "x", Dim: 2, Metric: L2, Space: sp}), ErrInvalidSchema)
	}
}

// Restore checks the snapshot in full before copying it.
func TestRestoreRefusesADamagedSnapshot(t *testing.T) {
	db, path := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	snap := filepath.Join(filepath.Dir(path), "snap.mmdb")
	require.NoError(t, db.Snapshot(ctx, snap))
	b, err := bolt.Open(snap, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("ids")).Put([]byte("ghost"), []byte{0, 0, 0, 9})
	}))
	require.NoError(t, b.Close())
	dst := filepath.Join(filepath.Dir(path), "restored.mmdb")
	err = Restore(snap, dst, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), `ID "ghost" maps to internal 9, which has no record`)
	assert.NoFileExists(t, dst)
}

// ALIGN between modalities of one space is refused (the direct route
// applies) and leaves the calibration alone; forced, the map is stored,
// used, and the report says the calibration was dropped.
func TestAlignSharedSpaceRefusedUnlessForced(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod)
	r := rand.New(rand.NewPCG(1, 2))
	items := make([]Item, 60)
	for i := range items {
		v := randVec(r, 4)
		items[i] = Item{ID: fmt.Sprintf("i%02d", i), Vectors: map[string][]float32{"image": v, "text": v}}
	}
	require.NoError(t, db.Put(ctx, items...))
	_, err := db.Calibrate(ctx, "text", "image", &CalibrateOptions{Centre: true, StoreAny: true})
	require.NoError(t, err)

	_, err = db.Align(ctx, "text", "image", nil)
	require.ErrorIs(t, err, ErrSharedSpace)
	_, err = db.Query(ctx, "ALIGN text TO image USING ridge")
	require.ErrorIs(t, err, ErrSharedSpace)
	plan, err := db.Explain(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "i01"}}})
	require.NoError(t, err)
	assert.Equal(t, RouteDirect, plan.Probes[0].Route)
	assert.Contains(t, plan.Probes[0].Why, "corrected: centred", "the calibration is kept")

	res, err := db.Query(ctx, "ALIGN text TO image USING ridge FORCE")
	require.NoError(t, err)
	require.Len(t, res.Report.Notes, 1)
	assert.Contains(t, res.Report.Notes[0], "text->image calibration was dropped")
	plan, err = db.Explain(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "i01"}}})
	require.NoError(t, err)
	assert.Equal(t, RouteAligned, plan.Probes[0].Route)
	assert.Contains(t, plan.Probes[0].Why, "stored with force")
}

// The quadratic traps: an unbounded LIMIT and a 40,000-deep filter built
// in Go are refused at once with a clear error.
func TestUnboundedQueriesAreRefused(t *testing.T) {
	db, _ := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: map[string]any{"year": 2010}, Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	_, err := db.Query(ctx, "SEARCH image NEAR image OF 'a' LIMIT 1000000000")
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "MaxK")
	hits, err := db.Search(ctx, Query{Target: "image", K: MaxK, KeepProbeItems: true, Probes: []Probe{{Modality: "image", ItemID: "a"}}})
	require.NoError(t, err)
	assert.Len(t, hits, 1)

	var e query.Expr = query.Eq("year", 2010)
	for range 40000 {
		e = query.Not(e)
	}
	_, err = db.Search(ctx, Query{Target: "image", Filter: e, Probes: []Probe{{Modality: "image", ItemID: "a"}}})
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "deeper than 100")
}

// A filter naming an attribute that no item has is an error that lists the
// known ones (sqlite: "no such column"); EXISTS may name any attribute.
func TestFilterOnUnknownAttributeFails(t *testing.T) {
	db, _ := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: map[string]any{"year": 2010, "label": "x"}, Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	for _, f := range []string{"yeer > 2000", "distance < 0.5", "year > 2000 AND NOT (lable = 'x')"} {
		_, err := db.Search(ctx, Query{Target: "image", Filter: query.MustParse(f), Probes: []Probe{{Modality: "image", ItemID: "a"}}})
		require.ErrorIs(t, err, ErrUnknownAttribute, f)
		assert.Contains(t, err.Error(), "(known attributes: label, year)", f)
		_, err = db.Query(ctx, "COUNT WHERE "+f)
		require.ErrorIs(t, err, ErrUnknownAttribute, f)
	}
	res, err := db.Query(ctx, "COUNT WHERE NOT EXISTS deleted_at")
	require.NoError(t, err)
	assert.Equal(t, 1, res.Count)
}

// failingIndex is an index whose inserts fail, as a damaged or buggy index
// would.
type failingIndex struct{ hnsw.Index }

func (failingIndex) Add(uint32, []float32) error { return errors.New("injected insert failure") }

// An index that fails to take a committed change is rebuilt from the file
// (it used to drift from it silently until the next Open), and the
// database says so.
func TestIndexThatFailsAnInsertIsRebuilt(t *testing.T) {
	db, _ := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	db.writeMu.Lock()
	db.update(func(s *state) { s.indexes[0] = failingIndex{s.indexes[0]} })
	db.writeMu.Unlock()
	require.NoError(t, db.Put(ctx, Item{ID: "b", Vectors: map[string][]float32{"image": {0, 1, 0, 0}}}))

	hits, err := db.Search(ctx, Query{Target: "image", K: 1, Probes: []Probe{{Modality: "image", Vector: []float32{0, 1, 0, 0}}}})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	assert.Equal(t, "b", hits[0].ID)
	rep, err := db.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	require.Len(t, db.Warnings(), 1)
	assert.Contains(t, db.Warnings()[0], "the image index failed to take a change (id 1: injected insert failure) and was rebuilt")
}

// lostIndex reports one of its vectors as unreachable, as a damaged graph
// would.
type lostIndex struct {
	hnsw.Index
	lost uint32
}

func (l lostIndex) Unreachable() []uint32 { return []uint32{l.lost} }

// Check reports vectors that no search of the graph can reach.
func TestCheckReportsUnreachableVectors(t *testing.T) {
	db, _ := openTest(t, imgMod)
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	rep, err := db.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	db.writeMu.Lock()
	db.update(func(s *state) { s.indexes[0] = lostIndex{s.indexes[0], 0} })
	db.writeMu.Unlock()
	rep, err = db.Check(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{`image index: 1 vectors no search can reach (e.g. "a"); reopening rebuilds or repairs the graph`}, rep.Problems)
}

// A calibration of large Dot vectors stores hubness values whose list,
// read as a vector, is longer than MaxNorm: Open refused the database for
// good. Stored and loaded by one rule, it opens again.
func TestCalibrationOfLargeVectorsReopens(t *testing.T) {
	db, path := openTest(t, Modality{Name: "v", Dim: 2, Metric: Dot})
	items := make([]Item, 40)
	for i := range items {
		items[i] = Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"v": {1e8, float32(i)}}}
	}
	require.NoError(t, db.Put(ctx, items...))
	_, err := db.Calibrate(ctx, "v", "v", &CalibrateOptions{Alpha: 1, StoreAny: true})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	again, err := Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

// A snapshot may not replace a database that another handle (another
// process) has open for writing: its acknowledged writes would be lost.
func TestSnapshotRefusesADatabaseOpenElsewhere(t *testing.T) {
	src, path := openTest(t, imgMod)
	require.NoError(t, src.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	other := filepath.Join(filepath.Dir(path), "other.mmdb")
	held, err := Open(other, nil)
	require.NoError(t, err)
	defer held.Close()
	err = src.Snapshot(ctx, other)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "open in another process")
	require.NoError(t, held.Close())
	require.NoError(t, src.Snapshot(ctx, other), "once it is closed, it may be replaced")
}

// Merge holds an item to MaxAttrs as Put does, counting what it keeps.
func TestMergeKeepsMaxAttrs(t *testing.T) {
	db, _ := openTest(t, imgMod)
	attrs := func(from, n int) map[string]any {
		a := map[string]any{}
		for i := range n {
			a[fmt.Sprintf("k%05d", from+i)] = i
		}
		return a
	}
	require.NoError(t, db.Put(ctx, Item{ID: "a", Attrs: attrs(0, MaxAttrs-10)}))
	err := db.Merge(ctx, Item{ID: "b"}, Item{ID: "a", Attrs: attrs(MaxAttrs, 11)})
	var ie *ItemError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, 1, ie.Index)
	require.ErrorIs(t, err, ErrAttribute)
	assert.Contains(t, err.Error(), "1025 attributes")
	_, err = db.Get(ctx, "b")
	require.ErrorIs(t, err, ErrNotFound, "the batch is atomic")
	require.NoError(t, db.Merge(ctx, Item{ID: "a", Attrs: attrs(MaxAttrs, 10)}))
}

// Open sizes the ID map by the item records the file holds, never by its
// next-ID counter: a counter damaged to four billion must not make Open
// allocate 16 bytes for each.
func TestOpenDoesNotSizeByTheNextIDCounter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "next.mmdb")
	db, err := Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, db.Put(ctx, Item{ID: "a"}, Item{ID: "b"}))
	require.NoError(t, db.Close())
	b, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("nextid"), []byte{0xff, 0xff, 0xff, 0x00})
	}))
	require.NoError(t, b.Close())

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	db, err = Open(path, nil)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	defer db.Close()
	assert.Equal(t, 2, db.Count())
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20))
}
