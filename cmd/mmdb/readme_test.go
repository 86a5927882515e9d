package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/embedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readme returns README.md's fenced blocks: the Go one and the others.
func readmeBlocks(t *testing.T) (goBlocks, others []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		if m[1] == "go" {
			goBlocks = append(goBlocks, m[2])
		} else {
			others = append(others, m[2])
		}
	}
	return goBlocks, others
}

// README's Go example is examples/quickstart as it stands, and it runs.
func TestReadmeGoExampleRuns(t *testing.T) {
	goBlocks, _ := readmeBlocks(t)
	require.Len(t, goBlocks, 1)
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "main.go"))
	require.NoError(t, err)
	require.Equal(t, string(src), goBlocks[0], "README.md's Go example differs from examples/quickstart/main.go")
	if testing.Short() {
		t.Skip("-short: not running the example")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/quickstart")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "item-007")
	assert.Contains(t, string(out), "text->image over 300 queries")
}

// shellWords splits a command line at spaces outside double quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// Every command of README's shell walkthrough runs as written (in a
// temporary folder instead of /tmp/demo), and so do the shell session's
// statements.
func TestReadmeShellWalkthroughRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the walkthrough builds the 3,000-item demo")
	}
	_, blocks := readmeBlocks(t)
	var walk string
	for _, b := range blocks {
		if strings.Contains(b, "$ go run ./cmd/mmdb demo --dir /tmp/demo") {
			walk = b
		}
	}
	require.NotEmpty(t, walk, "README.md has the shell walkthrough")
	dir := t.TempDir()
	var cmds [][]string
	var script strings.Builder
	for _, line := range strings.Split(walk, "\n") {
		line = strings.ReplaceAll(line, "/tmp/demo", dir)
		switch {
		case strings.HasPrefix(line, "$ go run ./cmd/mmdb "):
			cmds = append(cmds, shellWords(strings.TrimPrefix(line, "$ go run ./cmd/mmdb ")))
		case strings.HasPrefix(line, "mmdb> "):
			script.WriteString(strings.TrimPrefix(line, "mmdb> ") + "\n")
		case strings.HasPrefix(strings.TrimSpace(line), "...> "):
			script.WriteString(strings.TrimPrefix(strings.TrimSpace(line), "...> ") + "\n")
		case strings.TrimSpace(line) != "":
			t.Fatalf("a walkthrough line the test does not know how to run: %q", line)
		}
	}
	require.GreaterOrEqual(t, len(cmds), 5)
	for i, args := range cmds {
		stdin := ""
		if i == len(cmds)-1 {
			stdin = script.String() // the shell reads the session as a script
		}
		code, out, errs := mmdbRun(t, stdin, args...)
		require.Equal(t, 0, code, "mmdb %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, errs)
	}
	assert.FileExists(t, filepath.Join(dir, "items.parquet"))

	// The commands README names in passing parse as written.
	// (The benchmark's, `go run ./cmd/mmdb-bench ...`, are checked by
	// cmd/mmdb-bench's TestDocumentedCommandsParse.)
	for _, args := range [][]string{{"demo", "--help"}} {
		code, _, errs := mmdbRun(t, "", args...)
		assert.Equal(t, 0, code, "%v: %s", args, errs)
	}
}

// README's commands for an embeddings server run as written against a
// stand-in server (an in-process one that speaks /v1/embeddings and gives
// pictures and texts of the same subject the same vector): the folder
// import sends the pictures, the text probe finds the picture of a dog.
func TestReadmeEncoderServerBlockRuns(t *testing.T) {
	_, blocks := readmeBlocks(t)
	var block string
	for _, b := range blocks {
		if strings.Contains(b, "--encoder openai") {
			block = b
		}
	}
	require.NotEmpty(t, block, "README.md shows how to point a modality at an embeddings server")
	var pictures atomic.Int32
	srv := embedtest.New(t, func(model string, x any) []float32 {
		v := make([]float32, 512)
		switch s := fmt.Sprint(x); {
		case model != "openai/clip-vit-base-patch32":
			return nil
		case strings.Contains(s, "dog"): // the caption
			v[0] = 1
		case strings.Contains(s, "image"): // a picture: the dog is the first one sent
			v[min(int(pictures.Add(1))-1, 510)] = 1
		default:
			v[511] = 1
		}
		return v
	})
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	require.NoError(t, os.MkdirAll(photos, 0o755))
	for i, name := range []string{"a-dog", "b-car", "c-tree"} {
		img := image.NewGray(image.Rect(0, 0, 4, 4))
		img.Pix[i] = 255
		var b bytes.Buffer
		require.NoError(t, png.Encode(&b, img))
		require.NoError(t, os.WriteFile(filepath.Join(photos, name+".png"), b.Bytes(), 0o644))
	}
	var last string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		require.True(t, strings.HasPrefix(line, "$ go run ./cmd/mmdb "), line)
		line = strings.ReplaceAll(strings.ReplaceAll(line, "http://localhost:7997", srv.URL), "/tmp/clip", dir)
		args := shellWords(strings.TrimPrefix(line, "$ go run ./cmd/mmdb "))
		code, out, errs := mmdbRun(t, "", args...)
		require.Equal(t, 0, code, "mmdb %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, errs)
		last = out
	}
	assert.Regexp(t, `\n1\s+a-dog\s`, last, "the caption finds the picture of the dog")
}

// No command waits forever on a file another process is writing: each
// fails within the lock timeout with a clear message. Commands that only
// read share the file with other readers.
func TestCommandsDoNotWaitForeverOnALockedFile(t *testing.T) {
	_, path := buildDB(t)
	writer, err := mmdb.Open(path, nil)
	require.NoError(t, err)
	for _, args := range [][]string{
		{"query", path, "COUNT"}, {"snapshot", path, filepath.Join(t.TempDir(), "s.mmdb")}, {"import", path, filepath.Join(t.TempDir(), "none.jsonl")},
	} {
		start := time.Now()
		code, _, errs := mmdbRun(t, "", args...)
		assert.Equal(t, 1, code, "%v", args)
		assert.Contains(t, errs, "locked", "%v", args)
		assert.Less(t, time.Since(start), mmdb.DefaultTimeout+2*time.Second, "%v", args)
	}
	require.NoError(t, writer.Close())

	reader, err := mmdb.Open(path, &mmdb.Options{ReadOnly: true})
	require.NoError(t, err)
	defer reader.Close()
	for _, args := range [][]string{{"stats", path}, {"check", path}, {"query", path, "COUNT"}} {
		code, _, errs := mmdbRun(t, "", args...)
		assert.Equal(t, 0, code, "%v: %s", args, errs)
	}
}

// BenchmarkScriptOpenQuote: a piped script of 20,000 lines inside an
// unterminated quote (19.9 s before the splitter scanned each byte once).
func BenchmarkScriptOpenQuote(b *testing.B) {
	lines := "SEARCH image NEAR text OF 'open\n" + strings.Repeat("more text; inside the quote\n", 20000)
	for b.Loop() {
		var sp splitter
		for _, l := range strings.SplitAfter(lines, "\n") {
			sp.write(l)
		}
	}
}

// export refuses to write over a database file: the one it exports (by
// any spelling of its path) or another (it turned them into JSONL, exit 0).
func TestExportRefusesDatabaseFiles(t *testing.T) {
	dir, path := buildDB(t)
	other := filepath.Join(dir, "other.mmdb")
	code, _, errs := mmdbRun(t, "", "snapshot", path, other)
	require.Equal(t, 0, code, errs)
	for _, out := range []string{path, filepath.Join(dir, ".", "t.mmdb"), other} {
		code, _, errs := mmdbRun(t, "", "export", path, out)
		assert.Equal(t, 2, code, out)
		assert.Contains(t, errs, "choose another path", out)
	}
	code, out, errs := mmdbRun(t, ".export "+path+"\nCOUNT;\n", "shell", path)
	assert.Equal(t, 1, code, errs)
	assert.Contains(t, errs, "is the database being exported")
	assert.Empty(t, out, "the script stops at the error")
	code, out, errs = mmdbRun(t, "", "query", path, "COUNT")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "12\n", out)
}

// A statement over many lines costs time linear in its length (every line
// copied the whole unfinished statement: an IN list over 10,000 lines took
// 22 s), and a statement past query.MaxStatementLen is refused.
func TestShellLongStatements(t *testing.T) {
	_, path := buildDB(t)
	db, err := mmdb.Open(path, nil)
	require.NoError(t, err)
	defer db.Close()
	feed := func(lines int) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			var out, errb strings.Builder
			sh := &shell{db: db, out: &out, err: &errb}
			script := "COUNT WHERE year IN (2010" + strings.Repeat(",\n 2011", lines) + ");\n"
			start := time.Now()
			require.NoError(t, sh.script(context.Background(), strings.NewReader(script), "t"), errb.String())
			best = min(best, time.Since(start))
			require.Equal(t, "2\n", out.String())
		}
		return best
	}
	small, large := feed(1000), feed(16000)
	t.Logf("1,000 lines %v, 16,000 lines %v (ratio %.1f)", small, large, float64(large)/float64(small))
	assert.Less(t, float64(large)/float64(small), 64.0)

	var out, errb strings.Builder
	sh := &shell{db: db, out: &out, err: &errb}
	err = sh.script(context.Background(), strings.NewReader("COUNT WHERE year IN (1"+strings.Repeat(",\n1", 400000)+");\n"), "t")
	require.Error(t, err)
	assert.Contains(t, errb.String(), "a statement longer than 1048576 bytes")
}

// .read of something that is no readable script says why (it exited 1
// and printed nothing).
func TestShellReadReportsItsError(t *testing.T) {
	dir, path := buildDB(t)
	code, _, errs := mmdbRun(t, ".read "+dir+"\n", "shell", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "is a directory")
}

// The old `mmdb bench` says where the benchmarks went.
func TestBenchMovedSaysWhere(t *testing.T) {
	code, _, errs := mmdbRun(t, "", "bench", "--peers")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "go run ./cmd/mmdb-bench")
}

// README's "moving to a cluster" commands run as written: both exports,
// then mmdb serve with curl's query against it (on a free port).
func TestReadmeClusterBlockRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the demo")
	}
	_, blocks := readmeBlocks(t)
	var block string
	for _, b := range blocks {
		if strings.Contains(b, "export --for lancedb") {
			block = b
		}
	}
	require.NotEmpty(t, block, "README.md has the cluster block")
	dir := t.TempDir()
	code, out, errs := mmdbRun(t, "", "demo", "--items", "300", "--dir", dir)
	require.Equal(t, 0, code, "%s %s", out, errs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan int, 1)
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		line = strings.ReplaceAll(strings.ReplaceAll(line, "/tmp/demo", dir), "127.0.0.1:6333", addr)
		switch {
		case strings.HasPrefix(line, "$ go run ./cmd/mmdb serve "):
			args := shellWords(strings.TrimPrefix(line, "$ go run ./cmd/mmdb "))
			go func() {
				var o, e bytes.Buffer
				served <- run(ctx, args, strings.NewReader(""), &o, &e)
			}()
			require.Eventually(t, func() bool {
				resp, err := http.Get("http://" + addr + "/healthz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			}, 20*time.Second, 50*time.Millisecond, "mmdb serve answers")
		case strings.HasPrefix(line, "$ go run ./cmd/mmdb "):
			args := shellWords(strings.TrimPrefix(line, "$ go run ./cmd/mmdb "))
			code, out, errs := mmdbRun(t, "", args...)
			require.Equal(t, 0, code, "mmdb %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, errs)
			assert.Contains(t, out, "image.parquet")
		case strings.HasPrefix(line, "$ curl "):
			if _, err := exec.LookPath("curl"); err != nil {
				t.Skip("curl is not installed: the README's curl line cannot run as written")
			}
			b, err := exec.Command("sh", "-c", strings.TrimPrefix(line, "$ ")).CombinedOutput() // as a shell runs it
			require.NoError(t, err, "%s", b)
			var env struct {
				Result struct{ Points []map[string]any }
				Status string
			}
			require.NoError(t, json.Unmarshal(b, &env), "%s", b)
			assert.Equal(t, "ok", env.Status)
			assert.Len(t, env.Result.Points, 3, "%s", b)
		case strings.TrimSpace(line) != "":
			t.Fatalf("a line the test does not know how to run: %q", line)
		default:
			continue
		}
		ran++
	}
	require.Equal(t, 4, ran)
	cancel()
	select {
	case code := <-served:
		assert.Equal(t, 0, code, "mmdb serve stops cleanly when cancelled")
	case <-time.After(30 * time.Second):
		t.Fatal("mmdb serve did not stop")
	}
	for _, f := range []string{"lancedb/image.parquet", "milvus/image.parquet", "milvus/image.collection.json"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
}
