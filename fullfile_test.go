//go:build linux

package mmdb

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

const (
	fullEnv      = "MMDB_FULL_FILE_CHILD"
	fullLimitEnv = "MMDB_FULL_FILE_LIMIT"
)

// TestFullFileChild opens a database that needs its index rebuilt while
// the file may not grow (RLIMIT_FSIZE: writes past the limit fail, as on
// a full disk). It runs only when TestOpenOnAFullDisk starts it.
func TestFullFileChild(t *testing.T) {
	path := os.Getenv(fullEnv)
	if path == "" {
		t.Skip("the child process of TestOpenOnAFullDisk")
	}
	signal.Ignore(syscall.SIGXFSZ)
	limit, err := strconv.ParseUint(os.Getenv(fullLimitEnv), 10, 64)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	db, err := Open(path, nil)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	hits, err := db.Search(ctx, Query{Target: "image", K: 1, Probes: []Probe{{Modality: "image", ItemID: "i0007"}}})
	if err != nil || len(hits) == 0 {
		fmt.Println("ERR search", err)
		os.Exit(3)
	}
	fmt.Printf("count %d hits %d\n", db.Count(), len(hits))
	for _, w := range db.Warnings() {
		fmt.Println("warning", w)
	}
	os.Exit(0) // no Close: its checkpoint would fail the same way
}

// After a full disk, a database whose derived index cannot be saved still
// opens, serves from memory and says why (it failed with "saving rebuilt
// indexes: no space left", so even COUNT was impossible).
func TestOpenOnAFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.mmdb")
	db, err := Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(Modality{Name: "image", Dim: 32, Metric: L2}))
	items := make([]Item, 3000)
	for i := range items {
		v := make([]float32, 32)
		for j := range v {
			v[j] = float32((i*31+j*7)%97) / 97
		}
		items[i] = Item{ID: fmt.Sprintf("i%04d", i), Vectors: map[string][]float32{"image": v}}
	}
	require.NoError(t, db.Put(ctx, items...))
	require.NoError(t, db.Close())
	// Drop the saved graph, so the next Open rebuilds it and must save it,
	// and compact the file, so that the save cannot reuse the graph's
	// pages: it must write past the pages in use, where the child's limit
	// is.
	b, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, b.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("index/image")) }))
	compact := filepath.Join(t.TempDir(), "compact.mmdb")
	dst, err := bolt.Open(compact, 0o600, &bolt.Options{PageSize: b.Info().PageSize})
	require.NoError(t, err)
	require.NoError(t, bolt.Compact(dst, b, 0))
	var inUse int64
	require.NoError(t, dst.View(func(tx *bolt.Tx) error { inUse = tx.Size(); return nil }))
	require.NoError(t, dst.Close())
	require.NoError(t, b.Close())
	require.NoError(t, os.Rename(compact, path))

	cmd := exec.Command(os.Args[0], "-test.run=^TestFullFileChild$")
	cmd.Env = append(os.Environ(), fullEnv+"="+path, fmt.Sprintf("%s=%d", fullLimitEnv, inUse))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "count 3000 hits 1")
	assert.Contains(t, string(out), "warning rebuilt indexes could not be saved")
	assert.True(t, strings.Contains(string(out), "file too large") || strings.Contains(string(out), "no space"), "%s", out)
}
