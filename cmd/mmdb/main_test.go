package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"no args", nil, 2, "", "Usage:"},
		{"help", []string{"--help"}, 0, "Available Commands:", ""},
		{"unknown", []string{"frobnicate", "x"}, 2, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "mmdb dev", ""},
		{"bad flag", []string{"demo", "--nope"}, 2, "", "unknown flag: --nope"},
		{"too few items", []string{"demo", "--items", "3"}, 2, "", "at least 12"},
		{"demo", []string{"demo", "--items", "600", "--dir", ""}, 0, "Text-to-image", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb)
			assert.Equal(t, tc.code, code, "stderr: %s", errb.String())
			assert.Contains(t, out.String(), tc.out)
			assert.Contains(t, errb.String(), tc.err)
		})
	}
}

// The demo's corpus shares a space between text and image: its
// self-evaluation must be far above chance, and text-to-audio must go
// through a pivot route (audio is in another space).
func TestDemoOutput(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--items", "1200", "--dir", t.TempDir()}, strings.NewReader(""), &out, &errb)
	assert.Equal(t, 0, code, errb.String())
	s := out.String()
	assert.Contains(t, s, "1200 items")
	assert.Contains(t, s, "text->image over 1000 queries x 1200 targets")
	assert.Contains(t, s, "pivot route")
	assert.Contains(t, s, "filter: year BETWEEN 2010 AND 2014")
	assert.Regexp(t, `1\s+cat-0001\s+cat`, s, "an item's own image ranks first for its text")
	assert.Contains(t, s, "aligned route")
	assert.Regexp(t, `SEARCH audio NEAR image OF 'car-0002' LIMIT 5\n.*\n\s+1\s+car-`, s, "image-to-audio finds a car sound first")
	assert.Contains(t, s, "the same search gives the same hits: true")
	// Raw media: a picture and a recording made afresh find their class.
	assert.Regexp(t, `SEARCH sound NEAR picture FILE '[^']+/probe-columns.png' LIMIT 5\nrank[^\n]*\n1\s+columns-`, s)
	assert.Regexp(t, `SEARCH picture NEAR sound FILE '[^']+/probe-chirp.wav' LIMIT 5\nrank[^\n]*\n1\s+ring-`, s)
	assert.Contains(t, s, "encode: mfcc(bands=40 coeffs=13 segments=8) standardised")
}

func TestSnapshotRestoreCheckCommands(t *testing.T) {
	dir := t.TempDir()
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, _, stderr := run1("demo", "--items", "300", "--dir", dir)
	assert.Equal(t, 0, code, stderr)
	db := dir + "/demo.mmdb"

	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"check ok", []string{"check", db}, 0, "300 items", ""},
		{"check json", []string{"check", "--json", db}, 0, `"problems": []`, ""},
		{"snapshot", []string{"snapshot", db, dir + "/snap.mmdb"}, 0, "written to", ""},
		{"check snapshot", []string{"check", dir + "/snap.mmdb"}, 0, ": ok", ""},
		{"restore", []string{"restore", dir + "/snap.mmdb", dir + "/restored.mmdb"}, 0, "restored", ""},
		{"restore refuses overwrite", []string{"restore", dir + "/snap.mmdb", dir + "/restored.mmdb"}, 1, "", "destination exists"},
		{"restore force", []string{"restore", "--force", "--json", dir + "/snap.mmdb", dir + "/restored.mmdb"}, 0, `"restored"`, ""},
		{"check restored", []string{"check", dir + "/restored.mmdb"}, 0, ": ok", ""},
		{"check missing file", []string{"check", dir + "/nope.mmdb"}, 1, "", "does not exist"},
		{"check usage", []string{"check"}, 2, "", "want 1 arguments"},
		{"snapshot into a directory", []string{"snapshot", db, dir}, 1, "", "is a directory"},
		{"align", []string{"align", "--method", "ridge", db, "image", "audio"}, 0, "chose ridge", ""},
		{"align json", []string{"align", "--json", "--method", "cca", db, "image", "audio"}, 0, `"chosen": "cca"`, ""},
		{"align bad method", []string{"align", "--method", "magic", db, "image", "audio"}, 2, "", "unknown method"},
		{"align unknown modality", []string{"align", db, "image", "smell"}, 1, "", "smell"},
		{"eval aligned", []string{"eval", db, "image", "audio"}, 0, "aligned route", ""},
		{"eval json", []string{"eval", "--json", db, "text", "image"}, 0, `"recall"`, ""},
		{"eval usage", []string{"eval", db, "text"}, 2, "", "want 3 arguments"},
		{"a mistyped path opens nothing", []string{dir + "/typo.mmdb"}, 1, "", "no such database"},
		{"query does not create", []string{"query", dir + "/typo.mmdb", "COUNT"}, 1, "", "no such database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run1(tc.args...)
			assert.Equal(t, tc.code, code, "stdout %s stderr %s", out, errs)
			assert.Contains(t, out, tc.out)
			assert.Contains(t, errs, tc.err)
			assert.NoFileExists(t, dir+"/typo.mmdb")
		})
	}
}

// The demo on the real data: CLIP text-to-image reaches its exact figures,
// and a drawing of a 3 finds recordings of "three" by a speaker the
// alignment never heard.
func TestDemoRealData(t *testing.T) {
	const data = "../../../shared/data"
	if _, err := os.Stat(data + "/fsdd/recordings"); err != nil {
		t.Skipf("real data %s is absent (%v): this test needs the shared data folder beside the repository", data, err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--data", data, "--dir", t.TempDir()}, strings.NewReader(""), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	s := out.String()
	assert.Contains(t, s, "caption->photo over 500 queries x 500 targets: R@1 0.506")
	assert.Regexp(t, `\n1\s+3_theo_\d+\s`, s, "the first recording found for a drawing of a 3 is a three by theo")
	assert.Contains(t, s, "ALIGN drawing TO speech BY digit")
	// The pairs are by digit: whether a map beats the pivot through them
	// is measured (here the pivot wins); either way the search says how.
	assert.Regexp(t, `probe drawing \(item digit-\d+, weight 1\): (aligned|pivot) route`, s)
	assert.Contains(t, s, "reopened: 5289 items", "7 digits and a recording are held out as raw probes")
	// A PNG file and a WAV file, never stored, are encoded at query time
	// with the stored standardisations.
	assert.Regexp(t, `SEARCH speech NEAR drawing FILE '[^']+/digit-(\d)\.png' WHERE speaker = 'theo' LIMIT 5\n`, s)
	m := regexp.MustCompile(`SEARCH speech NEAR drawing FILE '[^']+/digit-(\d)\.png' WHERE speaker = 'theo' LIMIT 5\nrank[^\n]*\n1\s+(\d)_theo_`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	assert.Equal(t, m[1], m[2], "the first recording found for the picture is of its digit")
	assert.Contains(t, s, "encode: image(size=8 orientations=8 cell=4 stride=2) standardised")
	assert.Regexp(t, `SEARCH drawing NEAR speech FILE '[^']+/7_theo_\d+\.wav' LIMIT 5\nrank[^\n]*\n1\s+\S+\s+[\d.]+\s+[\d.]+\s+7\s`, s, "a drawing of a 7 first for theo saying 7")
}

// Script errors name the line the failing statement ends on.
func TestShellScriptErrorLine(t *testing.T) {
	var out, errb bytes.Buffer
	db := t.TempDir() + "/s.mmdb"
	code := run(context.Background(), []string{"shell", db}, strings.NewReader("COUNT;\n\nGET\n  'nope';\nCOUNT;\n"), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Equal(t, "0\n", out.String(), "stops at the failing statement")
	assert.Contains(t, errb.String(), "Error: line 4: ")
	assert.Contains(t, errb.String(), "not found")
}

// --low-memory (query, shell) answers as the default does: the same hits
// with the same scores, read back from the file.
func TestLowMemoryFlag(t *testing.T) {
	dir := t.TempDir()
	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, _, stderr := run1("", "demo", "--items", "300", "--dir", dir)
	require.Equal(t, 0, code, stderr)
	db := dir + "/demo.mmdb"
	id := synthCorpus(300, 42)[1].ID
	for _, stmt := range []string{
		fmt.Sprintf("SEARCH image NEAR text OF '%s' LIMIT 8", id),
		fmt.Sprintf("SEARCH audio NEAR image OF '%s' LIMIT 5", id),
		fmt.Sprintf("SEARCH image NEAR image OF '%s' WHERE concept = 'cat' LIMIT 3", id),
	} {
		code, def, stderr := run1("", "query", "--json", db, stmt)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, def, `"score"`)
		code, low, stderr := run1("", "query", "--json", "--low-memory", db, stmt)
		require.Equal(t, 0, code, stderr)
		assert.JSONEq(t, def, low, stmt)

		_, def, _ = run1(stmt+";", "shell", "--mode", "json", db)
		code, low, stderr = run1(stmt+";", "shell", "--mode", "json", "--low-memory", db)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, def, low, stmt)
	}
	// The flag reaches the database: its planner's exact cutoff is the
	// one for graphs that read their vectors from the file.
	// At ef 20 the two differ for 300 vectors (300 and 154).
	explain := fmt.Sprintf("EXPLAIN SEARCH image NEAR text OF '%s' EF 20 LIMIT 8", id)
	require.NotEqual(t, hnsw.ExactCutoff(20, 300), hnsw.ExactCutoffSourced(20, 300))
	for _, low := range []bool{false, true} {
		want := fmt.Sprintf("exact cutoff %d", hnsw.ExactCutoff(20, 300))
		args := []string{"query", db, explain}
		shellArgs := []string{"shell", db}
		if low {
			want = fmt.Sprintf("exact cutoff %d", hnsw.ExactCutoffSourced(20, 300))
			args = append(args, "--low-memory")
			shellArgs = append(shellArgs, "--low-memory")
		}
		code, out, stderr := run1("", args...)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, out, want, "query, low memory %v", low)
		code, out, stderr = run1(explain+";", shellArgs...)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, out, want, "shell, low memory %v", low)
	}
	// stats says where the vectors are, and what memory that saves.
	var st [2]mmdb.Stats
	for i, args := range [][]string{{"stats", "--json", db}, {"stats", "--json", "--low-memory", db}} {
		code, out, stderr := run1("", args...)
		require.Equal(t, 0, code, stderr)
		require.NoError(t, json.Unmarshal([]byte(out), &st[i]))
	}
	for i, m := range st[0].Modalities {
		low := st[1].Modalities[i]
		assert.True(t, m.VectorsInMemory, m.Name)
		assert.False(t, low.VectorsInMemory, m.Name)
		assert.LessOrEqual(t, low.IndexMemory, m.IndexMemory-int64(4*m.Dim*m.Vectors), "%s: the float32 vectors are out of memory", m.Name)
	}
	_, out, _ := run1("", "stats", "--low-memory", db)
	assert.Contains(t, out, "vectors in the file")
}
