package mmdb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"github.com/mmdb-go/mmdb/query"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The file-damage suite: a small real database (and a snapshot of it) is
// damaged many ways (cut short at every page boundary and between, single
// bits flipped, whole pages zeroed) and every damaged copy is opened,
// checked, counted, searched, iterated and closed IN A CHILD PROCESS, so
// that a fatal fault (SIGBUS, SIGSEGV, out of memory, a panic in another
// goroutine) fails the test instead of killing it. Each child runs a list
// of files and reports BEGIN and END for each, so the file that killed a
// child is known. Every step must end normally: with success or with an
// error (Open's wrapping ErrCorrupt, ErrNotDatabase or ErrVersion).
//
// -damage.full damages every 64th byte offset and flips 4,000 bits.

var damageFull = flag.Bool("damage.full", false, "run the file-damage suite at every offset (slow)")

const (
	damageEnv     = "MMDB_DAMAGE_LIST" // the child: a file listing damaged files
	damagePerFile = 20 * time.Second   // a child's time per file before it counts as hung
)

var damageMods = []Modality{
	{Name: "image", Dim: 8, Metric: Cosine, Space: "clip"},
	{Name: "audio", Dim: 4, Metric: L2, Space: "mfcc"},
}

// buildDamageBase writes the database the damage suite starts from, and a
// snapshot of it, and returns both paths.
func buildDamageBase(t *testing.T, dir string) (string, string) {
	path := filepath.Join(dir, "base.mmdb")
	db, err := Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	for _, m := range damageMods {
		require.NoError(t, db.DefineModality(m))
	}
	r := rand.New(rand.NewPCG(7, 7))
	var items []Item
	for i := range 200 {
		it := Item{
			ID:      fmt.Sprintf("item-%03d", i),
			Attrs:   map[string]any{"year": 2000 + i%20, "kind": fmt.Sprint("k", i%7), "tags": []string{"t", fmt.Sprint(i % 3)}, "ok": i%2 == 0},
			Vectors: map[string][]float32{"image": randVec(r, 8)},
		}
		if i%3 != 0 {
			it.Vectors["audio"] = randVec(r, 4)
		}
		items = append(items, it)
	}
	for i := 0; i < len(items); i += 50 {
		require.NoError(t, db.Put(ctx, items[i:i+50]...))
	}
	require.NoError(t, db.Delete(ctx, "item-005", "item-006"))
	require.NoError(t, db.Close())
	db, err = Open(path, nil)
	require.NoError(t, err)
	snap := filepath.Join(dir, "snap.mmdb")
	require.NoError(t, db.Snapshot(ctx, snap))
	require.NoError(t, db.Close())
	return path, snap
}

// damagedCopies writes the damaged copies of base into dir and returns
// their paths.
func damagedCopies(t *testing.T, base, dir string, full bool) []string {
	data, err := os.ReadFile(base)
	require.NoError(t, err)
	// The page size, from the first meta page (after its 16-byte page
	// header: magic, version, page size).
	require.Greater(t, len(data), 28)
	ps := int(binary.LittleEndian.Uint32(data[24:28]))
	require.True(t, ps >= 1024 && ps&(ps-1) == 0, "page size %d", ps)
	name := strings.TrimSuffix(filepath.Base(base), ".mmdb")
	var paths []string
	write := func(kind string, at int, b []byte) {
		p := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.mmdb", name, kind, at))
		require.NoError(t, os.WriteFile(p, b, 0o600))
		paths = append(paths, p)
	}
	// Truncations: every page boundary and a few cuts between; every 64th
	// byte with -damage.full.
	step := ps
	if full {
		step = 64
	}
	for at := 0; at < len(data); at += step {
		write("cut", at, data[:at])
	}
	for _, at := range []int{1, 15, 100, 8191, 8192 + 100, 3*ps + ps/2, 6*ps + 80, len(data)/2 + 1000, len(data) - 1} {
		if at > 0 && at < len(data) {
			write("cut", at, data[:at])
		}
	}
	// Single bit flips at offsets from a fixed seed, plus one in each of
	// the meta pages' fields.
	flips := 100
	if full {
		flips = 4000
	}
	r := rand.New(rand.NewPCG(42, uint64(len(data))))
	offsets := []int{16 + 8, 16 + 16, 16 + 32, 16 + 40, ps + 16 + 16, ps + 16 + 40}
	for range flips {
		offsets = append(offsets, r.IntN(len(data)))
	}
	for _, at := range offsets {
		b := bytes.Clone(data)
		b[at] ^= 1 << r.IntN(8)
		write("flip", at, b)
	}
	// Every page zeroed in turn.
	for at := 0; at+ps <= len(data); at += ps {
		b := bytes.Clone(data)
		clear(b[at : at+ps])
		write("zero", at/ps, b)
	}
	return paths
}

// TestDamage runs the suite. Each failure names the damaged copy (kept in
// the test's temporary directory with -test.v and a failure).
func TestDamage(t *testing.T) {
	if testing.Short() {
		t.Skip("the damage suite runs child processes")
	}
	dir := t.TempDir()
	base, snap := buildDamageBase(t, dir)
	var files []string
	for _, b := range []string{base, snap} {
		files = append(files, damagedCopies(t, b, dir, *damageFull)...)
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	results := runDamageChildren(t, exe, dir, files)
	opened, refused := 0, 0
	for _, f := range files {
		res, ok := results[f]
		if !assert.True(t, ok, "%s: no result", filepath.Base(f)) {
			continue
		}
		switch {
		case strings.HasPrefix(res, "ok"):
			opened++
		case strings.HasPrefix(res, "refused"):
			refused++
		default:
			t.Errorf("%s: %s", filepath.Base(f), res)
		}
	}
	t.Logf("%d damaged files: %d opened (read-write and read-only), %d refused", len(files), opened, refused)
	assert.Positive(t, refused)
	assert.Positive(t, opened)
}

// runDamageChildren runs the children over files, a list per child, two
// children at a time, restarting after a child that died; it returns each
// file's result line, or the way its child died.
func runDamageChildren(t *testing.T, exe, dir string, files []string) map[string]string {
	results := map[string]string{}
	const perChild = 60
	type job struct{ files []string }
	var jobs []job
	for i := 0; i < len(files); i += perChild {
		jobs = append(jobs, job{files[i:min(i+perChild, len(files))]})
	}
	type done struct {
		res  map[string]string
		rest []string // files not reached because the child died
	}
	ch := make(chan done)
	run := func(n int, list []string) {
		listPath := filepath.Join(dir, fmt.Sprintf("list-%d-%d", n, len(list)))
		if err := os.WriteFile(listPath, []byte(strings.Join(list, "\n")), 0o600); err != nil {
			ch <- done{res: map[string]string{list[0]: "BAD: " + err.Error()}, rest: list[1:]}
			return
		}
		c, cancel := context.WithTimeout(context.Background(), damagePerFile+time.Duration(len(list))*time.Second)
		defer cancel()
		cmd := exec.CommandContext(c, exe, "-test.run=^TestDamageChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), damageEnv+"="+listPath)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, _ := cmd.Output()
		res := map[string]string{}
		current := ""
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f, ok := strings.CutPrefix(line, "BEGIN "); ok {
				current = f
			} else if rest, ok := strings.CutPrefix(line, "END "); ok {
				res[current] = rest
				current = ""
			}
		}
		if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
			why := "child died"
			if c.Err() != nil {
				why = "child hung (killed after the timeout)"
			}
			trace := stderr.String() + string(out)
			if i := strings.Index(trace, "goroutine "); i >= 0 {
				trace = trace[:min(len(trace), i+1500)]
			}
			var rest []string
			for i, f := range list {
				if _, ok := res[f]; ok {
					continue
				}
				if f == current || current == "" && i == len(res) {
					res[f] = fmt.Sprintf("BAD: %s on this file: %s", why, lastLines(trace, 25))
					rest = list[i+1:]
					break
				}
			}
			ch <- done{res, rest}
			return
		}
		ch <- done{res: res}
	}
	pending, n := len(jobs), 0
	next := func() {
		if len(jobs) > 0 {
			j := jobs[0]
			jobs = jobs[1:]
			n++
			go run(n, j.files)
		}
	}
	next()
	next()
	for pending > 0 {
		d := <-ch
		pending--
		for f, r := range d.res {
			results[f] = r
		}
		if len(d.rest) > 0 {
			jobs = append(jobs, job{d.rest})
			pending++
		}
		next()
	}
	return results
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestDamageChild is the child's body: it runs only when the parent sets
// MMDB_DAMAGE_LIST.
func TestDamageChild(t *testing.T) {
	list := os.Getenv(damageEnv)
	if list == "" {
		t.Skip("the child process of TestDamage")
	}
	b, err := os.ReadFile(list)
	require.NoError(t, err)
	for _, f := range strings.Split(string(b), "\n") {
		fmt.Printf("BEGIN %s\n", f)
		fmt.Printf("END %s\n", exerciseDamaged(f))
	}
}

// exerciseDamaged opens a damaged file read-only, then read-write, and
// uses whatever opens. It returns "ok ...", "refused ..." or "BAD ...".
func exerciseDamaged(path string) string {
	var out []string
	result := "refused"
	for _, ro := range []bool{true, false} {
		db, err := Open(path, &Options{ReadOnly: ro, Timeout: time.Second})
		if err != nil {
			// An empty file reads as no database at all.
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotDatabase) && !errors.Is(err, ErrVersion) && !errors.Is(err, os.ErrNotExist) {
				return fmt.Sprintf("BAD: Open(readonly=%v) error wraps no sentinel: %v", ro, err)
			}
			out = append(out, fmt.Sprintf("readonly=%v: %v", ro, err))
			continue
		}
		result = "ok"
		_, _ = db.Check(ctx)
		_ = db.Count()
		_, _ = db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0, 0, 0, 0, 1}}}, K: 5})
		_, _ = db.Search(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "audio", Vector: []float32{1, 2, 3, 4}}}, K: 5, Filter: query.MustParse("year >= 2010"), Exact: true})
		for _, err := range db.Items(ctx) {
			if err != nil {
				break
			}
		}
		if err := db.Close(); err != nil {
			out = append(out, fmt.Sprintf("close: %v", err))
		}
	}
	return result + " " + strings.Join(out, "; ")
}

// TestDamageCLI runs the mmdb command's check, stats and query on a few
// damaged files: each must exit 0 or 1 with a message, never with a Go
// panic or fatal error.
func TestDamageCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the mmdb command")
	}
	dir := t.TempDir()
	base, _ := buildDamageBase(t, dir)
	bin := filepath.Join(dir, "mmdb")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mmdb")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build the mmdb command: %v\n%s", err, out)
	}
	data, err := os.ReadFile(base)
	require.NoError(t, err)
	cases := map[string][]byte{
		"cut-8192":  data[:8192],
		"cut-half":  data[:len(data)/2],
		"flip-root": flipAt(data, 16+16),
		"sound":     data,
	}
	commands := [][]string{{"check"}, {"stats"}, {"query", "_", "COUNT"}}
	for at := 2 * 4096; at+4096 <= len(data); at += 4096 {
		b := bytes.Clone(data)
		clear(b[at : at+4096])
		cases[fmt.Sprintf("zero-page%d", at/4096)] = b
	}
	for name, b := range cases {
		p := filepath.Join(dir, name+".mmdb")
		for _, args := range commands {
			if strings.HasPrefix(name, "zero-page") && args[0] != "check" {
				continue // check reads every page; the others a few
			}
			t.Run(name+"/"+args[0], func(t *testing.T) {
				require.NoError(t, os.WriteFile(p, b, 0o600))
				a := append([]string(nil), args...)
				if len(a) > 1 {
					a[1] = p
				} else {
					a = append(a, p)
				}
				c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(c, bin, a...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := cmd.ProcessState.ExitCode()
				assert.NotContains(t, stderr.String(), "panic:")
				assert.NotContains(t, stderr.String(), "fatal error:")
				assert.NotContains(t, stderr.String(), "goroutine ")
				assert.Contains(t, []int{0, 1}, code, "exit code (%v): %s", err, stderr.String())
				if code != 0 {
					assert.NotEmpty(t, strings.TrimSpace(stderr.String()+stdout.String()), "an error exit says why")
				}
			})
		}
	}
}

func flipAt(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x10
	return c
}
