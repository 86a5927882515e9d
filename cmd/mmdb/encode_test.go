package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// define, encode and import --refit: what they print, and their exit
// codes (0 ok, 1 error, 2 usage) on bad input.
func TestEncoderCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "m.mmdb")
	code, out, errs := mmdbRun(t, "", "define", db, "pic", "--encoder", "image")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, `defined pic: 136-d cosine in space "pic", encoder image(size=8 orientations=8 cell=4 stride=2) not fitted`)
	code, _, errs = mmdbRun(t, "", "define", db, "vec", "3", "l2")
	require.Equal(t, 0, code, errs)
	code, out, errs = mmdbRun(t, "", "define", db, "vec2", "3", "dot", "shared")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, `defined vec2: 3-d dot in space "shared", encoder none`)
	code, out, errs = mmdbRun(t, "", "define", "--json", db, "cap", "--encoder", "openai", "--url", "http://127.0.0.1:9", "--model", "m", "--dim", "4")
	require.Equal(t, 0, code, errs)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Equal(t, map[string]any{"kind": "openai", "remote": map[string]any{"url": "http://127.0.0.1:9", "model": "m", "input": "text"}}, m["encoder"])

	pics := filepath.Join(dir, "pics")
	require.NoError(t, os.MkdirAll(pics, 0o755))
	for i, b := range [][]byte{pngOf(t, 0), pngOf(t, 5), pngOf(t, 9)} {
		require.NoError(t, os.WriteFile(filepath.Join(pics, string(rune('a'+i))+".png"), b, 0o644))
	}
	code, _, errs = mmdbRun(t, "", "encode", db, "pic", filepath.Join(pics, "a.png"))
	assert.Equal(t, 1, code, "not fitted yet")
	assert.Contains(t, errs, "import some first")
	code, _, errs = mmdbRun(t, "", "import", db, pics, "--modality", "pic")
	require.Equal(t, 0, code, errs)
	code, out, errs = mmdbRun(t, "", "encode", db, "pic", filepath.Join(pics, "a.png"))
	require.Equal(t, 0, code, errs)
	var vec []float32
	require.NoError(t, json.Unmarshal([]byte(out), &vec))
	assert.Len(t, vec, 136)
	code, out, errs = mmdbRun(t, "", "import", "--refit", "--json", db, pics, "--modality", "pic")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, `"imported": 3`)
	code, out, errs = mmdbRun(t, "", "stats", db)
	require.Equal(t, 0, code, errs)
	assert.Regexp(t, `pic\s+136\s+cosine\s+pic\s+3\s+\d+ KiB\s+image\(size=8 orientations=8 cell=4 stride=2\) standardised`, out)

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown encoder", []string{"define", db, "x", "--encoder", "clap"}, 2, `--encoder "clap": want mfcc, image or openai`},
		{"server flags on a built-in", []string{"define", db, "x", "--encoder", "mfcc", "--url", "http://a"}, 2, "are for --encoder openai"},
		{"openai without a model", []string{"define", db, "x", "--encoder", "openai", "--url", "http://a", "--dim", "4"}, 2, "needs a model name"},
		{"no dimension", []string{"define", db, "x"}, 2, "dimension 0 out of range"},
		{"another encoder", []string{"define", db, "pic", "--encoder", "mfcc"}, 1, "made by image(size=8 orientations=8 cell=4 stride=2) standardised; asked for 96-d cosine in space \"pic\" made by mfcc"},
		{"bad input kind", []string{"define", db, "y", "--encoder", "openai", "--url", "http://a", "--model", "m", "--input", "audio", "--dim", "4"}, 2, `input is "text" or "image"`},
		{"input without openai", []string{"define", db, "y", "--encoder", "mfcc", "--input", "image"}, 2, "are for --encoder openai"},
		{"url without encoder", []string{"define", db, "y", "--dim", "4", "--url", "http://a"}, 2, "are for --encoder openai"},
		{"key variable not MMDB_", []string{"define", db, "y", "--encoder", "openai", "--url", "http://a", "--model", "m", "--dim", "4", "--key-env", "HOME"}, 2, "must be named MMDB_"},
		{"encode: no encoder", []string{"encode", db, "vec", "hello"}, 1, `modality "vec" has no encoder`},
		{"encode: no such modality", []string{"encode", db, "nope", "hello"}, 1, "unknown modality"},
		{"encode: missing file", []string{"encode", db, "pic", filepath.Join(dir, "gone.png")}, 2, "gone.png"},
		{"encode: missing database", []string{"encode", filepath.Join(dir, "none.mmdb"), "pic", "x"}, 1, "no such database"},
		{"refit of a file", []string{"import", "--refit", db, filepath.Join(dir, "x.jsonl")}, 2, "--refit is for folders of media"},
		{"folder into a modality without encoder", []string{"import", db, pics, "--modality", "vec"}, 1, `modality "vec" has no encoder`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := mmdbRun(t, "", tc.args...)
			assert.Equal(t, tc.code, code, errs)
			assert.Contains(t, errs, tc.err)
		})
	}
	// A define that fails leaves no new database behind.
	fresh := filepath.Join(dir, "fresh.mmdb")
	code, _, _ = mmdbRun(t, "", "define", fresh, "x")
	assert.Equal(t, 2, code)
	assert.NoFileExists(t, fresh)
}

// pngOf is an 8x8 grey picture with one bright pixel at i.
func pngOf(t *testing.T, i int) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for j := range img.Pix {
		img.Pix[j] = uint8(20 * (j % 3))
	}
	img.Pix[i] = 255
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// The demo never removes a folder it did not make, and a --dir with a
// quote in it works (paths go into statements quoted).
func TestDemoMediaFolderIsItsOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "media"), 0o755))
	precious := filepath.Join(dir, "media", "precious.txt")
	require.NoError(t, os.WriteFile(precious, []byte("mine"), 0o644))
	code, _, errs := mmdbRun(t, "", "demo", "--items", "300", "--dir", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "exists and the demo did not make it")
	assert.FileExists(t, precious)
	require.NoError(t, os.Remove(precious))
	require.NoError(t, os.Remove(filepath.Join(dir, "media")))
	code, out, errs := mmdbRun(t, "", "demo", "--items", "300", "--dir", dir)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "probe-columns.png")
	code, _, errs = mmdbRun(t, "", "demo", "--items", "300", "--dir", dir)
	require.Equal(t, 0, code, "a second demo replaces its own folder: %s", errs)
}

// export to stdout puts the schema on stderr; import from stdin takes it
// with --schema; an export format mmdb does not write is refused; an ID in
// double quotes gets a hint.
func TestExportImportStreams(t *testing.T) {
	_, db := buildDB(t)
	dir := t.TempDir()
	code, out, errs := mmdbRun(t, "", "export", db, "-")
	require.Equal(t, 0, code, errs)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.json"), []byte(errs), 0o644))
	assert.Contains(t, errs, `"modalities"`)
	code, got, errs := mmdbRun(t, out, "import", "--json", "--schema", filepath.Join(dir, "s.json"), filepath.Join(dir, "n.mmdb"), "-")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, got, `"imported": 12`)
	code, _, errs = mmdbRun(t, "", "export", db, filepath.Join(dir, "x.csv"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, `unknown export format ".csv"`)
	assert.NoFileExists(t, filepath.Join(dir, "x.csv"))
	code, _, errs = mmdbRun(t, "", "query", db, `GET "cat-00"`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "texts and IDs take single quotes ('cat-00')")
}

// An NPY stack of shape (2, 500, 512) (coco500's CLIP photos and
// captions) imports one matrix at a time, defining each modality from the
// file; the two then evaluate at their published figure.
func TestImportNPYStackAndDefine(t *testing.T) {
	const file = "../../../shared/data/coco500-clip/features_clip.npy"
	if _, err := os.Stat(file); err != nil {
		t.Skipf("%s is absent (%v): this test needs the shared data folder beside the repository", file, err)
	}
	db := filepath.Join(t.TempDir(), "c.mmdb")
	code, _, errs := mmdbRun(t, "", "import", "--modality", "photo", "--define", db, file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "holds 2 matrices: give the index of one (0..1)")
	for i, m := range []string{"photo", "caption"} {
		code, out, errs := mmdbRun(t, "", "import", "--modality", m, "--define", "--space", "clip", "--index", fmt.Sprint(i), db, file)
		require.Equal(t, 0, code, errs)
		assert.Contains(t, out, "imported 500 items")
	}
	code, out, errs := mmdbRun(t, "", "eval", db, "caption", "photo")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "caption->photo over 500 queries x 500 targets: R@1 0.506")
}

// Every statement in mmdb query --help's examples parses.
func TestQueryHelpExamplesParse(t *testing.T) {
	ex := queryCmd().Example
	n := 0
	for _, line := range strings.Split(ex, "\n") {
		_, stmt, ok := strings.Cut(line, "media.mmdb ")
		if !ok {
			continue
		}
		stmt, err := strconv.Unquote(strings.TrimSpace(stmt))
		require.NoError(t, err, line)
		_, err = query.ParseStatement(stmt)
		require.NoError(t, err, stmt)
		n++
	}
	assert.GreaterOrEqual(t, n, 7)
}

// mmdb drop removes a modality from a closed file.
func TestDropCommand(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "", "drop", db, "audio")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "dropped modality audio\n", out)
	code, out, _ = mmdbRun(t, "", "stats", db)
	require.Equal(t, 0, code)
	assert.NotContains(t, out, "audio")
	code, _, errs = mmdbRun(t, "", "drop", db, "audio")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "unknown modality")
	code, _, errs = mmdbRun(t, "DROP MODALITY text;\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "close it and run mmdb drop DB text")
}
