package mmdb

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The crash test: a child process writes batches and prints "ack N" after
// each Put returns; the parent kills it with SIGKILL at a random moment,
// reopens the database and checks that every acknowledged batch is there
// bit for bit, findable through the index, and that Check passes. The
// child checkpoints often, so kills land mid-checkpoint too. Items carry
// a multi-vector modality too (sets of 1 to 4 vectors).
//
// MMDB_CRASH_ITERS sets the number of kills (default 50).

const (
	crashEnvPath  = "MMDB_CRASH_CHILD"
	crashEnvStart = "MMDB_CRASH_START"
	crashBatch    = 10
)

var crashMods = []Modality{
	{Name: "image", Dim: 16, Metric: Cosine, Space: "s"},
	{Name: "audio", Dim: 4, Metric: L2, Space: "a"},
	{Name: "frames", Dim: 4, Metric: Cosine, Space: "f", Multi: MaxSim},
}

// crashSet is the set of item i of batch b: 1 to 4 vectors of 4-d.
func crashSet(batch, i, version int) []float32 {
	return crashVec(batch, i, version, 4*(1+(batch+i+version)%4))
}

func crashVec(batch, i, version, dim int) []float32 {
	r := rand.New(rand.NewPCG(uint64(batch)<<20|uint64(i)<<4|uint64(version), uint64(dim)))
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(r.NormFloat64())
	}
	return v
}

func crashID(batch, i int) string { return fmt.Sprintf("b%06d-%d", batch, i) }

// crashItems is batch b: ten new items, and an update of item 0 of batch
// b-1 (version 2 of its vectors).
func crashItems(b int) []Item {
	items := make([]Item, 0, crashBatch+1)
	for i := range crashBatch {
		items = append(items, Item{ID: crashID(b, i), Attrs: map[string]any{"batch": b},
			Vectors: map[string][]float32{"image": crashVec(b, i, 1, 16), "audio": crashVec(b, i, 1, 4), "frames": crashSet(b, i, 1)}})
	}
	if b > 0 {
		items = append(items, Item{ID: crashID(b-1, 0), Attrs: map[string]any{"batch": b - 1, "v": 2},
			Vectors: map[string][]float32{"image": crashVec(b-1, 0, 2, 16), "audio": crashVec(b-1, 0, 2, 4), "frames": crashSet(b-1, 0, 2)}})
	}
	return items
}

// TestCrashChild is the child process's body; it runs only when the
// parent sets MMDB_CRASH_CHILD.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("the child process of TestCrashRecovery")
	}
	start, _ := strconv.Atoi(os.Getenv(crashEnvStart))
	db, err := Open(path, &Options{CheckpointEvery: 150})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	for _, m := range crashMods {
		if err := db.DefineModality(m); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
	}
	for b := start; ; b++ {
		// Odd batches go through Merge: the update of the previous
		// batch's item 0 gives both vectors, so the result is the same as
		// Put's, and the merge path is killed mid-write too.
		write := db.Put
		if b%2 == 1 {
			write = db.Merge
		}
		if err := write(ctx, crashItems(b)...); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Printf("ack %d\n", b)
	}
}

func TestCrashRecovery(t *testing.T) {
	if raceEnabled {
		t.Skip("the crash test runs without the race detector")
	}
	iters := 50
	if s := os.Getenv("MMDB_CRASH_ITERS"); s != "" {
		iters, _ = strconv.Atoi(s)
	}
	path := filepath.Join(t.TempDir(), "crash.mmdb")
	r := rand.New(rand.NewPCG(42, 42))
	acked := -1 // highest acknowledged batch
	next := 0   // first batch the next child writes
	kills, withAcks, replays := 0, 0, 0
	for it := range iters {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvStart+"="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		var mu sync.Mutex
		childAck, childErr := acked, ""
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				mu.Lock()
				if n, ok := strings.CutPrefix(line, "ack "); ok {
					childAck, _ = strconv.Atoi(n)
				} else if strings.HasPrefix(line, "ERR") {
					childErr = line
				}
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(40+r.IntN(260)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		cmd.Wait()
		<-done
		kills++
		mu.Lock()
		require.Empty(t, childErr, "iteration %d", it)
		if childAck > acked {
			withAcks++
		}
		acked = childAck
		mu.Unlock()

		db, err := Open(path, nil)
		require.NoError(t, err, "iteration %d: reopen after SIGKILL", it)
		for _, rep := range db.OpenReport() {
			// A checkpoint is written in one bbolt transaction: a kill can
			// leave it old, never half-written.
			if rep.Action != "loaded" {
				require.Equal(t, "no checkpoint", rep.Reason, "iteration %d", it)
			}
			if rep.Replayed > 0 {
				replays++
			}
		}
		// Every acknowledged batch is there, bit for bit.
		img, aud, frames := crashMods[0], crashMods[1], crashMods[2]
		for b := 0; b <= acked; b++ {
			for i := range crashBatch {
				got, err := db.Get(ctx, crashID(b, i))
				require.NoError(t, err, "iteration %d: acknowledged item %s", it, crashID(b, i))
				versions := []int{1}
				if i == 0 && b == acked {
					versions = []int{1, 2} // batch b+1 may have committed unacknowledged
				} else if i == 0 {
					versions = []int{2}
				}
				match := false
				for _, v := range versions {
					wi, _ := img.Prepare(crashVec(b, i, v, 16))
					wa, _ := aud.Prepare(crashVec(b, i, v, 4))
					wf, _ := frames.Prepare(crashSet(b, i, v))
					match = match || (bitsEqual(wi, got.Vectors["image"]) && bitsEqual(wa, got.Vectors["audio"]) && bitsEqual(wf, got.Vectors["frames"]))
				}
				require.True(t, match, "iteration %d: %s differs from what was acknowledged", it, crashID(b, i))
			}
		}
		// Findable through the index: the latest batches and a sample.
		for _, b := range []int{acked, acked - 1, r.IntN(acked + 2)} {
			if b < 0 || b > acked {
				continue
			}
			for i := 1; i < crashBatch; i++ {
				v, _ := img.Prepare(crashVec(b, i, 1, 16))
				hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: v}}, K: 1})
				require.NoError(t, err)
				require.Len(t, hits, 1)
				require.Equal(t, crashID(b, i), hits[0].ID, "iteration %d", it)
				set, _ := frames.Prepare(crashSet(b, i, 1))
				hits, err = db.Search(ctx, Query{Target: "frames", Probes: []Probe{{Modality: "frames", Vector: set}}, K: 1})
				require.NoError(t, err)
				require.Len(t, hits, 1)
				require.Equal(t, crashID(b, i), hits[0].ID, "iteration %d: a set finds its own item", it)
			}
		}
		chk, err := db.Check(ctx)
		require.NoError(t, err)
		require.True(t, chk.OK(), "iteration %d: %v", it, chk.Problems)
		// The next child starts past anything committed, acknowledged or not.
		next = acked + 1
		for {
			if _, err := db.Get(ctx, crashID(next, 0)); err != nil {
				break
			}
			next++
		}
		require.NoError(t, db.Close())
	}
	t.Logf("%d kills, %d after new acknowledgements, %d index loads replayed the log; %d batches acknowledged", kills, withAcks, replays, acked+1)
	require.Greater(t, withAcks, iters/2, "most children must get to write before the kill")
	require.Greater(t, replays, iters/2, "most reopens must replay changes past a checkpoint")
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
