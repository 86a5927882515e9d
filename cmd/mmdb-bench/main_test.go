package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/internal/bench"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func benchRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		// A tiny run of the benchmark so its harness cannot rot.
		{"smoke", []string{"--data", "tiny", "--ef", "32", "--filter-ef", "32", "--threads", "1,2", "--quiet"}, 0, "| tiny | hnsw | 32 | 100% |", ""},
		{"coder baseline", []string{"--data", "tiny", "--engines", "coder", "--ef", "32", "--filters", "", "--threads", "1", "--quiet"}, 0, "| tiny | coder | 32 | 100% |", ""},
		{"json", []string{"--data", "tiny", "--engines", "flat", "--filters", "10", "--threads", "1", "--quiet", "--json"}, 0, `"engine": "flat"`, ""},
		{"help", []string{"--help"}, 0, "--peers", ""},
		{"bad ef", []string{"--ef", "x"}, 2, "", "not a positive integer"},
		{"bad int flag", []string{"--m", "x"}, 2, "", `invalid argument "x"`},
		{"unknown flag", []string{"--nope"}, 2, "", "unknown flag: --nope"},
		{"unknown dataset", []string{"--data", "nope"}, 2, "", `unknown dataset "nope"`},
		{"unknown engine", []string{"--data", "tiny", "--engines", "nope", "--quiet"}, 1, "", `unknown engine "nope"`},
		{"peers take mmdb's graphs only", []string{"--peers", "--engines", "hnsw,flat", "--data", "tiny"}, 2, "", `with --peers, --engines takes hnsw and hnsw-f32, not "flat"`},
		{"an engine twice", []string{"--peers", "--engines", "hnsw,hnsw", "--data", "tiny"}, 2, "", "--engines names hnsw twice"},
		{"unknown peer", []string{"--peers", "--with", "annoy", "--data", "tiny"}, 2, "", `unknown peer "annoy"`},
		{"bad filter", []string{"--filters", "0", "--data", "tiny"}, 2, "", `filter "0" is not a percentage`},
		// 100% would land in the unfiltered rows; 33% and 34% are both every third ID.
		{"unfiltered filter", []string{"--filters", "100", "--data", "tiny"}, 2, "", `filter "100" is not a percentage in (0, 50]`},
		{"same allow-list twice", []string{"--filters", "33,34", "--data", "tiny"}, 2, "", "the same allow-list twice (every 3-th ID)"},
		{"Float32Walk scans through its own index", []string{"--data", "tiny", "--engines", "hnsw-f32", "--ef", "16", "--filter-ef", "16", "--filters", "10", "--threads", "1", "--quiet"}, 0, "| tiny | hnsw-f32-scan | exact | 10% | 1.000 |", ""},
		{"filtered rows", []string{"--data", "tiny", "--engines", "hnsw", "--ef", "16", "--filter-ef", "16", "--filters", "10", "--threads", "1", "--quiet"}, 0, "| tiny | hnsw-scan | exact | 10% | 1.000 |", ""},
		// The subcommand of old: a usage error that says what to do.
		{"argument", []string{"bench", "--data", "tiny"}, 2, "", "flags only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := benchRun(tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", errs)
			assert.Contains(t, out, tc.out)
			assert.Contains(t, errs, tc.err)
			if code != 0 {
				assert.True(t, strings.HasPrefix(errs, "mmdb-bench: "), "%q", errs)
			}
		})
	}
}

// A tiny run of the side-by-side benchmark (1k vectors, one ef), so the
// peer harness cannot rot. CI installs the peers; elsewhere the command
// installs them as root, and the test skips for other users without them.
func TestBenchPeersSmoke(t *testing.T) {
	if err := bench.EnsurePeers(context.Background(), io.Discard); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("hnswlib/FAISS not installed and not root: %v", err)
		}
		t.Fatal(err)
	}
	plots := t.TempDir()
	code, out, errs := benchRun("--peers", "--data", "tiny", "--ef", "10,12,16,24,32,64", "--filters", "10", "--filter-ef", "10,16,32", "--reps", "2", "--threads", "1", "--quiet", "--plot", plots)
	require.Equal(t, 0, code, errs)
	for _, want := range []string{"| tiny | hnsw | 32 | 100% |", "| tiny | hnswlib | 32 | 100% |", "| tiny | faiss | 32 | 100% |", "mmdb/peer q/s per CPU-s",
		"| tiny | hnsw | hnswlib | 100% | 0.95 |", "| tiny | hnsw | faiss | 100% | 0.99 |", "| tiny | hnsw | hnswlib | 1 |", "flags ",
		"| tiny | hnsw | 32 | 10% |", "| tiny | hnsw-scan | exact | 10% | 1.000 |", "| tiny | faiss | 32 | 10% |", "| tiny | hnsw | faiss | 10% | 0.95 |", "faiss: FAISS 1.7.3"} {
		assert.Contains(t, out, want)
	}
	assert.FileExists(t, filepath.Join(plots, "recall-qps-tiny.png"))
	// hnswlib 0.8.0 from npm has a filter functor; without npm, or when
	// the fetch fails, the bench says so and falls back to Debian's.
	if strings.Contains(errs, "hnswlib's filtered search is not measured") {
		t.Logf("no hnswlib 0.8.0: %s", errs)
		assert.Contains(t, out, "hnswlib: hnswlib 0.6.2")
	} else {
		assert.Contains(t, out, "| tiny | hnswlib | 32 | 10% |")
		assert.Contains(t, out, "hnswlib: hnswlib 0.8.0")
	}

	// --with picks the peers; --engines mmdb's graphs, each compared;
	// --json gives per-round ratios, with no NaN to stop the encoder (the
	// old report died at the end on one).
	code, out, errs = benchRun("--peers", "--with", "hnswlib", "--engines", "hnsw,hnsw-f32", "--data", "tiny", "--ef", "10,16,32", "--filters", "", "--reps", "2", "--threads", "1", "--quiet", "--json")
	require.Equal(t, 0, code, errs)
	var got struct {
		Machine struct {
			CPU string `json:"cpu"`
		} `json:"machine"`
		Rounds int `json:"rounds"`
		Ratios []struct {
			Dataset, Peer, Engine string
			Recall                float64
			QPSRatio              *float64   `json:"qps_ratio"`
			Rounds                []*float64 `json:"rounds"`
			Note                  string     `json:"note"`
		} `json:"ratios"`
		Rows []struct {
			Engine string `json:"engine"`
		} `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, 2, got.Rounds)
	require.Len(t, got.Ratios, 4) // each engine against hnswlib at 0.95 and 0.99
	engines := map[string]int{}
	for _, r := range got.Ratios {
		engines[r.Engine]++
		assert.Equal(t, "hnswlib", r.Peer)
		assert.Len(t, r.Rounds, 2)
		if r.QPSRatio == nil {
			assert.NotEmpty(t, r.Note, "a ratio missing without a reason")
		}
	}
	assert.Equal(t, map[string]int{"hnsw": 2, "hnsw-f32": 2}, engines)
	for _, r := range got.Rows {
		assert.NotEqual(t, "faiss", r.Engine)
	}
}

// docCommands returns the arguments of every `go run ./cmd/mmdb-bench`
// command line in the file: in an indented block, to the end of its line;
// in backticks, to the closing backtick, across a line break.
func docCommands(t *testing.T, file string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", file))
	require.NoError(t, err)
	const cmd = "go run ./cmd/mmdb-bench"
	s := string(b)
	var out [][]string
	for i := strings.Index(s, cmd); i >= 0; i = next(s, cmd, i) {
		rest := s[i+len(cmd):]
		end := strings.IndexByte(rest, '\n')
		if i > 0 && s[i-1] == '`' {
			end = strings.IndexByte(rest, '`')
		}
		require.GreaterOrEqual(t, end, 0, "%s: unterminated command at byte %d", file, i)
		out = append(out, strings.Fields(rest[:end]))
	}
	return out
}

func next(s, sub string, i int) int {
	j := strings.Index(s[i+1:], sub)
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// The commands the documents tell users to run parse as written (with
// --help, so nothing runs), and no document sends them to the bench
// subcommand mmdb no longer has.
func TestDocumentedCommandsParse(t *testing.T) {
	n := 0
	for _, file := range []string{"README.md", "BENCHMARKS.md", "ARCHITECTURE.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", file))
		require.NoError(t, err)
		assert.False(t, strings.Contains(string(b), "cmd/mmdb bench"), "%s tells users to run `go run ./cmd/mmdb bench`", file)
		for _, args := range docCommands(t, file) {
			code, _, errs := benchRun(append(args, "--help")...)
			assert.Equal(t, 0, code, "%s: mmdb-bench %s: %s", file, strings.Join(args, " "), errs)
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 4)
}
