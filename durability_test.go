package mmdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// rawCopy copies the file as it stands, without a checkpoint: the state a
// crash would leave.
func rawCopy(t *testing.T, db *DB, dst string) {
	f, err := os.Create(dst)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, db.store.Bolt().View(func(tx *bolt.Tx) error { _, err := tx.WriteTo(f); return err }))
}

func putRandom(t testing.TB, db *DB, prefix string, n int, seed uint64) []Item {
	r := rand.New(rand.NewPCG(seed, 1))
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{ID: fmt.Sprintf("%s-%d", prefix, i), Vectors: map[string][]float32{"image": randVec(r, 8), "audio": randVec(r, 3)}}
	}
	require.NoError(t, db.Put(ctx, items...))
	return items
}

var (
	img8  = Modality{Name: "image", Dim: 8, Metric: Cosine}
	aud3  = Modality{Name: "audio", Dim: 3, Metric: L2}
	durMs = []Modality{img8, aud3}
)

func openAt(t *testing.T, path string, opts *Options) *DB {
	db, err := Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func requireSelfFound(t *testing.T, db *DB, items []Item) {
	t.Helper()
	for _, it := range items {
		got, err := db.Get(ctx, it.ID)
		require.NoError(t, err)
		hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: got.Vectors["image"]}}, K: 1})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		require.Equal(t, it.ID, hits[0].ID)
	}
}

func TestCheckpointsAndLogReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mmdb")
	db := openAt(t, path, &Options{NoSync: true, CheckpointEvery: 250})
	for _, m := range durMs {
		require.NoError(t, db.DefineModality(m))
	}
	a := putRandom(t, db, "a", 300, 1) // 600 log entries: checkpoints ran
	require.NoError(t, db.Delete(ctx, "a-0", "a-1"))
	b := putRandom(t, db, "b", 20, 2)

	// A crash now: the file has checkpoints older than the last changes.
	crashed := filepath.Join(dir, "crashed.mmdb")
	rawCopy(t, db, crashed)
	c := openAt(t, crashed, nil)
	rep := c.OpenReport()
	require.Len(t, rep, 2)
	for _, r := range rep {
		assert.Equal(t, "loaded", r.Action, "%+v", r)
		assert.Greater(t, r.Replayed, 0, "the changes after the checkpoint are replayed")
	}
	assert.Equal(t, 318, c.Count())
	requireSelfFound(t, c, append(a[2:], b...))
	_, err := c.Get(ctx, "a-0")
	assert.ErrorIs(t, err, ErrNotFound)
	chk, err := c.Check(ctx)
	require.NoError(t, err)
	assert.True(t, chk.OK(), chk.Problems)

	// Close saves the graphs: the next Open replays nothing.
	require.NoError(t, db.Close())
	db = openAt(t, path, nil)
	for _, r := range db.OpenReport() {
		assert.Equal(t, "loaded", r.Action)
		assert.Equal(t, 0, r.Replayed)
	}
	requireSelfFound(t, db, b)

	// The log is trimmed to the checkpoints.
	require.NoError(t, db.store.View(func(tx *storage.Tx) error {
		assert.Equal(t, uint64(0), tx.FirstLogSeq(), "log empty after a full checkpoint")
		return nil
	}))
}

func TestMissingOrDamagedCheckpointIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mmdb")
	db := openAt(t, path, &Options{NoSync: true})
	for _, m := range durMs {
		require.NoError(t, db.DefineModality(m))
	}
	items := putRandom(t, db, "x", 200, 3)

	noCkpt := filepath.Join(dir, "nockpt.mmdb")
	rawCopy(t, db, noCkpt) // never checkpointed yet
	require.NoError(t, db.Close())

	// Flip one bit in the middle of the saved image graph.
	bdb, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("index/image"))
		g := append([]byte(nil), b.Get([]byte("graph"))...)
		g[len(g)/2] ^= 0x04
		return b.Put([]byte("graph"), g)
	}))
	require.NoError(t, bdb.Close())

	tests := []struct {
		name, path, reason string
	}{
		{"damaged", path, "damaged checkpoint"},
		{"missing", noCkpt, "no checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stages []string
			db := openAt(t, tc.path, &Options{Progress: func(stage string, done, total int) {
				stages = append(stages, fmt.Sprintf("%s %d/%d", stage, done, total))
			}})
			rep := db.OpenReport()
			assert.Equal(t, "rebuilt", rep[0].Action)
			assert.Contains(t, rep[0].Reason, tc.reason)
			assert.Equal(t, 200, rep[0].Vectors)
			assert.Contains(t, stages, "rebuild image index 200/200")
			requireSelfFound(t, db, items)
			chk, err := db.Check(ctx)
			require.NoError(t, err)
			assert.True(t, chk.OK(), chk.Problems)
			// The rebuilt graph was saved: the next Open loads it.
			require.NoError(t, db.Close())
			db2 := openAt(t, tc.path, nil)
			assert.Equal(t, "loaded", db2.OpenReport()[0].Action)
		})
	}
}

func TestSnapshotDuringWritesOpensWithoutRebuild(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "live.mmdb"), &Options{NoSync: true, CheckpointEvery: 500})
	for _, m := range durMs {
		require.NoError(t, db.DefineModality(m))
	}
	putRandom(t, db, "seed", 300, 4)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			putRandom(t, db, fmt.Sprintf("w%d", i), 20, uint64(10+i))
		}
	})
	snap := filepath.Join(dir, "snap.mmdb")
	require.NoError(t, db.Snapshot(ctx, snap))
	close(stop)
	wg.Wait()

	s := openAt(t, snap, nil)
	for _, r := range s.OpenReport() {
		assert.Equal(t, "loaded", r.Action, "a snapshot opens without rebuilding: %+v", r)
	}
	assert.GreaterOrEqual(t, s.Count(), 300)
	assert.Equal(t, 0, (s.Count()-300)%20, "a snapshot holds whole batches")
	chk, err := s.Check(ctx)
	require.NoError(t, err)
	assert.True(t, chk.OK(), chk.Problems)

	// Restore: refuses an open snapshot, refuses to overwrite unless told,
	// then works.
	dst := filepath.Join(dir, "restored.mmdb")
	assert.ErrorIs(t, Restore(snap, dst, nil), ErrLocked)
	n := s.Count()
	require.NoError(t, s.Close())
	require.NoError(t, Restore(snap, dst, nil))
	assert.ErrorIs(t, Restore(snap, dst, nil), ErrExists)
	require.NoError(t, Restore(snap, dst, &RestoreOptions{Overwrite: true}))
	r := openAt(t, dst, nil)
	assert.Equal(t, n, r.Count())
}

func TestSnapshotAndRestoreErrors(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "a.mmdb"), &Options{NoSync: true})
	require.NoError(t, db.DefineModality(img8))
	assert.ErrorContains(t, db.Snapshot(ctx, dir), "is a directory")
	assert.Error(t, db.Snapshot(ctx, filepath.Join(dir, "no", "such", "dir", "s.mmdb")))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, db.Snapshot(cctx, filepath.Join(dir, "s.mmdb")), context.Canceled)
	_, err := os.Stat(filepath.Join(dir, "s.mmdb"))
	assert.True(t, os.IsNotExist(err), "a failed snapshot leaves nothing behind")

	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("not a database at all, not even close"), 0o600))
	assert.ErrorIs(t, Restore(junk, filepath.Join(dir, "r.mmdb"), nil), ErrNotDatabase)
	assert.Error(t, Restore(filepath.Join(dir, "missing"), filepath.Join(dir, "r.mmdb"), nil))
}

func TestTruncatedDatabaseFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mmdb")
	db := openAt(t, path, &Options{NoSync: true})
	for _, m := range durMs {
		require.NoError(t, db.DefineModality(m))
	}
	putRandom(t, db, "x", 2000, 5)
	require.NoError(t, db.Close())
	full, err := os.ReadFile(path)
	require.NoError(t, err)
	var used int64
	{
		bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		require.NoError(t, err)
		require.NoError(t, bdb.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }))
		require.NoError(t, bdb.Close())
	}
	for _, keep := range []int{100, 4096, len(full) / 2, int(used) - 1, int(used), len(full) - 4096} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("t%d.mmdb", keep))
			require.NoError(t, os.WriteFile(p, full[:keep], 0o600))
			db, err := Open(p, nil)
			if err != nil {
				// Too short to be bbolt at all: ErrNotDatabase; a bbolt
				// header with pages missing: ErrCorrupt.
				require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotDatabase), "%v", err)
				require.Less(t, int64(keep), used, "a file holding all its pages must open")
				return
			}
			require.GreaterOrEqual(t, int64(keep), used, "a file missing pages must not open")
			// bbolt grows the file ahead of its data: a cut that only
			// removes that slack loses nothing, and must read back whole.
			defer db.Close()
			assert.Equal(t, 2000, db.Count())
			chk, err := db.Check(ctx)
			require.NoError(t, err)
			assert.True(t, chk.OK(), chk.Problems)
		})
	}
}
