package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// served is a running `mmdb serve` process.
type served struct {
	cmd    *exec.Cmd
	url    string
	stdout *bufio.Reader
	stderr *strings.Builder
}

var servingOn = regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)`)

// startServe runs the built binary on dir, on a free loopback port, with
// any more flags given.
func startServe(t *testing.T, bin, dir string, flags ...string) *served {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", dir, "--addr", "127.0.0.1:0"}, flags...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	s := &served{cmd: cmd, stdout: bufio.NewReader(out), stderr: &strings.Builder{}}
	cmd.Stderr = s.stderr
	require.NoError(t, cmd.Start())
	line, err := s.stdout.ReadString('\n')
	require.NoError(t, err, "stderr: %s", s.stderr)
	m := servingOn.FindStringSubmatch(line)
	require.NotNil(t, m, "first line %q", line)
	s.url = m[1]
	return s
}

func (s *served) do(t *testing.T, method, path, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s %s: %s", method, path, b)
	return string(b)
}

func (s *served) upsert(t *testing.T, from, n int) {
	t.Helper()
	var pts []string
	for i := from; i < from+n; i++ {
		pts = append(pts, fmt.Sprintf(`{"id": %d, "vector": [%d, 1, 2], "payload": {"i": %d}}`, i, i+1, i))
	}
	s.do(t, "PUT", "/collections/items/points?wait=true", `{"points": [`+strings.Join(pts, ",")+`]}`)
}

// TestServeStopsCleanly: SIGTERM and SIGINT stop `mmdb serve` gracefully
// (exit 0, databases closed and checkpointed), and SIGKILL loses no
// acknowledged write: each time the reopened database holds every point
// the server acknowledged and checks clean. The last round serves with
// --low-memory, which the collection's info shows as Qdrant's on_disk.
func TestServeStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build mmdb")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mmdb")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "cols")
	require.NoError(t, os.Mkdir(dir, 0o755))
	acked := 0
	for round, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGINT} {
		low := sig == syscall.SIGINT
		var flags []string
		if low {
			flags = append(flags, "--low-memory")
		}
		s := startServe(t, bin, dir, flags...)
		if round == 0 {
			s.do(t, "PUT", "/collections/items", `{"vectors": {"size": 3, "distance": "Euclid"}}`)
		}
		for range 3 {
			s.upsert(t, acked, 40)
			acked += 40
		}
		var info struct {
			Result struct {
				Config struct {
					Params struct {
						Vectors struct {
							OnDisk bool `json:"on_disk"`
						} `json:"vectors"`
					} `json:"params"`
				} `json:"config"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(s.do(t, "GET", "/collections/items", "")), &info))
		assert.Equal(t, low, info.Result.Config.Params.Vectors.OnDisk, "round %d: on_disk", round)
		require.NoError(t, s.cmd.Process.Signal(sig))
		rest, _ := io.ReadAll(s.stdout)
		err := s.cmd.Wait()
		if sig == syscall.SIGKILL {
			require.Error(t, err)
		} else {
			require.NoError(t, err, "stderr: %s", s.stderr)
			assert.Contains(t, string(rest), "databases closed")
		}
		db, err := mmdb.Open(filepath.Join(dir, "items.mmdb"), nil)
		require.NoError(t, err, "round %d (%v)", round, sig)
		assert.Equal(t, acked, db.Count(), "every acknowledged point is there after %v", sig)
		rep, err := db.Check(context.Background())
		require.NoError(t, err)
		assert.True(t, rep.OK(), "%v: %+v", sig, rep)
		if sig != syscall.SIGKILL {
			for _, r := range db.OpenReport() {
				assert.Equal(t, "loaded", r.Action, "a graceful stop checkpoints: %+v", r)
				assert.Zero(t, r.Replayed, "a graceful stop checkpoints: %+v", r)
			}
		}
		require.NoError(t, db.Close())
	}
}
