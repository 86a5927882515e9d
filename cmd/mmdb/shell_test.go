package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// mmdbRun runs the command line with stdin and returns the exit code,
// stdout and stderr.
func mmdbRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// checkGolden compares got with testdata/NAME.golden, or rewrites the file
// with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run 'go test ./cmd/mmdb -run Shell -update' to create it")
	assert.Equal(t, string(want), got, "differs from %s (rerun with -update if the change is intended)", path)
}

// sizeRE matches the file size in .stats output, which depends on the
// storage engine's page allocation.
var sizeRE = regexp.MustCompile(`\d+\.\d MiB`)

// normalise makes an output independent of the temporary directory and the
// file size.
func normalise(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "$DIR")
	return sizeRE.ReplaceAllString(s, "#.# MiB")
}

const kinds = "cat dog bird"

// writeItems writes the test corpus: twelve items with every kind of
// attribute, 4-d text and image vectors in one space ("clip", cosine) and
// 3-d audio vectors in another ("clap", L2) on nine of them.
func writeItems(t *testing.T, path string) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range 12 {
		kind := strings.Fields(kinds)[i%3]
		tags := []string{kind, "animal"}
		if i%4 == 0 {
			tags = append(tags, "cute")
		}
		text := []float32{0, 0, 0, 0.1 * float32(i+1)}
		text[i%3] = 1
		image := []float32{0, 0, 0, 0.1*float32(i+1) + 0.05}
		image[i%3] = 0.9
		vecs := map[string][]float32{"text": text, "image": image}
		if i%4 != 3 {
			vecs["audio"] = []float32{float32(i % 3), float32(i) / 4, 0.5}
		}
		require.NoError(t, enc.Encode(map[string]any{
			"id":      fmt.Sprintf("%s-%02d", kind, i),
			"attrs":   map[string]any{"kind": kind, "year": 2010 + i, "rating": float64(i) + 0.5, "hd": i%2 == 0, "tags": tags},
			"vectors": vecs,
		}))
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

const setupScript = `.define text 4 cosine clip
.define image 4 cosine clip
.define audio 3 l2 clap
.import $DIR/items.jsonl
`

// buildDB makes the test database through the shell and returns the
// directory and the database's path.
func buildDB(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	writeItems(t, filepath.Join(dir, "items.jsonl"))
	db := filepath.Join(dir, "t.mmdb")
	code, out, errs := mmdbRun(t, strings.ReplaceAll(setupScript, "$DIR", dir), "shell", db)
	require.Equal(t, 0, code, errs)
	require.Equal(t, dir+"/items.jsonl: imported 12 items\n", out)
	return dir, db
}

// shellScript is the golden session: every statement kind, every output
// mode, dot-commands, comments, multi-line statements.
const shellScript = setupScript + `.schema
.stats
.help
COUNT;
COUNT WHERE kind = 'cat';
COUNT WHERE year BETWEEN 2012 AND 2017 AND hd = true;
COUNT WHERE tags IN ('cute') OR rating > 10.2;
GET 'dog-01';
SEARCH image NEAR text OF 'cat-00' LIMIT 3;
SEARCH image NEAR text [0, 1, 0, 0.5] WHERE NOT kind = 'dog' LIMIT 3 EXACT;
SEARCH image, text NEAR text OF 'bird-02' LIMIT 4;
SEARCH audio NEAR audio [1, 0.3, 0.5] LIMIT 3;
.mode csv
SEARCH image NEAR text OF 'dog-04' WHERE hd = true LIMIT 3;
SEARCH audio NEAR audio [0, 0.5, 0.5] LIMIT 3;
COUNT;
.mode json
GET 'bird-02';
COUNT WHERE kind = 'bird';
.mode table
EXPLAIN SEARCH image NEAR text OF 'cat-00' WHERE year >= 2013 LIMIT 3;
SEARCH image
  NEAR text OF 'dog-04'   -- a comment inside a statement; with a ';' in it
  WHERE tags = 'dog'
  LIMIT 2
;
COUNT WHERE kind = 'dog'; COUNT WHERE kind = 'bird';
-- a comment line
COUNT WHERE kind = 'it''s; quoted';
COUNT; -- a trailing comment
DELETE 'cat-00', 'cat-03', 'cat-00';
COUNT;
COUNT WHERE kind = 'cat';
GET 'dog-07';
.vectors on
GET 'dog-07';
.mode json
GET 'dog-07';
.vectors off
.mode table
GET 'dog-07';
COUNT WHERE kind = 'bird'`

func TestShellGolden(t *testing.T) {
	dir := t.TempDir()
	writeItems(t, filepath.Join(dir, "items.jsonl"))
	code, out, errs := mmdbRun(t, strings.ReplaceAll(shellScript, "$DIR", dir), "shell", filepath.Join(dir, "t.mmdb"))
	assert.Equal(t, 0, code, errs)
	assert.Empty(t, errs)
	checkGolden(t, "shell_session", normalise(out, dir))
}

// The same session through 'mmdb DB', the root command with a database
// argument, with the shell's flags.
func TestShellRootOpensShell(t *testing.T) {
	_, db := buildDB(t)
	script := "COUNT;\nGET 'cat-03';\nSEARCH image NEAR text OF 'cat-00' LIMIT 3;\nCOUNT WHERE kind = 'dog'"
	for _, flags := range [][]string{nil, {"--mode", "csv"}, {"--mode", "json"}} {
		t.Run(fmt.Sprint(flags), func(t *testing.T) {
			code1, out1, err1 := mmdbRun(t, script, append(append([]string{"shell"}, flags...), db)...)
			require.Equal(t, 0, code1, err1)
			code2, out2, err2 := mmdbRun(t, script, append(flags, db)...)
			require.Equal(t, 0, code2, err2)
			assert.Equal(t, out1, out2)
			assert.Contains(t, out1, "cat-03")
		})
	}
	// --continue works on the root too.
	code, out, errs := mmdbRun(t, "GET 'nope';\nCOUNT;\n", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "12\n", out)
	assert.Contains(t, errs, "not found")

	code, _, errs = mmdbRun(t, "COUNT;", "--mode", "xml", db)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "--mode must be table, json or csv")
	code, _, _ = mmdbRun(t, "COUNT;", "shell", "--mode", "xml", db)
	assert.Equal(t, 2, code)
}

func TestShellTimer(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, ".timer on\nCOUNT;\nGET 'cat-03';\n.timer off\nCOUNT WHERE kind = 'cat';\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Regexp(t, `^12\nRun Time: [0-9.]+(ns|µs|ms|s)\nid\s+cat-03\n(.*\n)+Run Time: [0-9.]+(ns|µs|ms|s)\n4\n$`, out)
	assert.Equal(t, 2, strings.Count(out, "Run Time:"))

	code, _, errs = mmdbRun(t, ".timer maybe\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, ".timer wants on or off")
}

// .explain on runs SEARCH as EXPLAIN ANALYZE: the plan with timings, then
// the hits.
func TestShellExplainOn(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, ".explain on\nSEARCH image NEAR text OF 'cat-00' LIMIT 2;\nCOUNT;\n.explain off\nSEARCH image NEAR text OF 'cat-00' LIMIT 2;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	first, second, ok := strings.Cut(out, "12\n")
	require.True(t, ok, out)
	assert.Contains(t, first, "SEARCH image NEAR text OF 'cat-00' LIMIT 2\n")
	assert.Contains(t, first, "probe text (item cat-00")
	assert.Regexp(t, `\d+(\.\d+)?(ns|µs|ms|s)`, first, "ANALYZE timings")
	assert.Contains(t, first, "1     cat-00")
	assert.Contains(t, first, "(2 hits)")
	assert.NotContains(t, second, "probe text")
	assert.Regexp(t, `^rank\s+id\s+score`, second)
}

func TestShellQuitAndLastStatement(t *testing.T) {
	_, db := buildDB(t)
	for _, q := range []string{".quit", ".exit", "  .quit  "} {
		code, out, errs := mmdbRun(t, "COUNT;\n"+q+"\nCOUNT WHERE kind = 'cat';\n", "shell", db)
		assert.Equal(t, 0, code, errs)
		assert.Equal(t, "12\n", out, q)
	}
	// A last statement without ';' runs at the end of the input; a last
	// comment does nothing.
	code, out, errs := mmdbRun(t, "COUNT;\nCOUNT WHERE kind = 'cat'\n", "shell", db)
	assert.Equal(t, 0, code, errs)
	assert.Equal(t, "12\n4\n", out)
	code, out, errs = mmdbRun(t, "COUNT;\n-- the end\n", "shell", db)
	assert.Equal(t, 0, code, errs)
	assert.Equal(t, "12\n", out)
	code, out, _ = mmdbRun(t, "", "shell", db)
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
}

// A shell on a missing file creates the database.
func TestShellCreatesDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "new.mmdb")
	code, out, errs := mmdbRun(t, ".define v 2 dot\n.schema\nCOUNT;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, ".define v 2 dot v\n0\n", out)
	_, err := os.Stat(db)
	assert.NoError(t, err)
}

func TestShellDotCommandErrors(t *testing.T) {
	_, db := buildDB(t)
	tests := []struct{ line, msg string }{
		{".define x", ".define NAME DIM METRIC [SPACE [maxsim|maxpair]]"},
		{".define x 4 cosine clip maxsim extra", ".define NAME DIM METRIC [SPACE [maxsim|maxpair]]"},
		{".define x 4 cosine clip extra", "unknown multi-vector scoring \"extra\" (want single, maxsim or maxpair)"},
		{".define x four cosine", `dimension "four" is not a number`},
		{".define x 4 manhattan", `unknown metric "manhattan" (want cosine, dot or l2)`},
		{".define text 8 cosine clip", "already defined differently"},
		{".define 9x 4 l2", "invalid modality definition"},
		{".mode xml", ".mode wants table, json or csv"},
		{".mode", ".mode wants table, json or csv"},
		{".vectors", ".vectors wants on or off"},
		{".explain yes", ".explain wants on or off"},
		{".import", ".import FILE [MODALITY [IDS]]"},
		{".import $DIR/nope.jsonl", "no such file"},
		{".export", ".export FILE"},
		{".snapshot", ".snapshot FILE"},
		{".read", ".read FILE"},
		{".read $DIR/nope.sql", "no such file"},
	}
	dir := filepath.Dir(db)
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			code, out, errs := mmdbRun(t, strings.ReplaceAll(tc.line, "$DIR", dir)+"\nCOUNT;\n", "shell", db)
			assert.Equal(t, 1, code, errs)
			assert.Empty(t, out, "the script stops at the failed dot-command")
			assert.Contains(t, errs, "Error: ")
			assert.Contains(t, errs, tc.msg)
		})
	}
}

// A dot-command that does not exist, or an .import the command line would
// call a usage error, fails the script like any other error: exit code 1,
// later statements not run.
func TestShellDotCommandExitCode(t *testing.T) {
	dir, db := buildDB(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "items.txt"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "v.npy"), []byte("x"), 0o644))
	tests := []struct{ line, msg string }{
		{".frobnicate now", "unknown command .frobnicate (.help lists them)"},
		{".import " + dir + "/items.txt", "unknown format"},
		{".import " + dir + "/v.npy", "an .npy file needs --modality"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			code, out, errs := mmdbRun(t, "COUNT;\n"+tc.line+"\nCOUNT WHERE kind = 'cat';\n", "shell", db)
			assert.Equal(t, "12\n", out)
			assert.Contains(t, errs, "Error: ")
			assert.Contains(t, errs, tc.msg)
			if code == 2 {
				t.Fatal(`fixed bug came back: cmd/mmdb/shell.go:71 runShell returns the script's first error as it is, and run (main.go:132-136) classifies it like a command-line error: a shell error wrapping errUsage (.import of an unknown format, an .npy without a modality) or starting "unknown command" (an unknown dot-command, matched by isCobraUsage at main.go:148) exits 2 (usage) instead of 1 like every other failed script line`)
			}
			assert.Equal(t, 1, code)
		})
	}
}

// syntaxPos parses a statement the way the shell runs it and returns the
// syntax error's byte offset.
func syntaxPos(t *testing.T, stmt string) int {
	t.Helper()
	_, err := query.ParseStatement(stmt)
	var se *query.SyntaxError
	require.True(t, errors.As(err, &se), "%q: %v", stmt, err)
	return se.Pos
}

// caretBlock finds, in an error report, the statement line and the caret
// under it; it returns the shown line and the caret's column (both
// without the two-space indent).
func caretBlock(t *testing.T, errs string) (string, int) {
	t.Helper()
	lines := strings.Split(errs, "\n")
	for i, l := range lines {
		if i > 0 && regexp.MustCompile(`^ *\^$`).MatchString(l) {
			require.True(t, strings.HasPrefix(lines[i-1], "  "), "statement line %q", lines[i-1])
			return lines[i-1][2:], len(l) - 3
		}
	}
	t.Fatalf("no caret in %q", errs)
	return "", 0
}

func TestShellSyntaxErrorCaret(t *testing.T) {
	_, db := buildDB(t)
	tests := []struct {
		name, stmt string
		input      string // stdin when not stmt + ";"
		skip       string
	}{
		{name: "trailing junk", stmt: "GET 'cat-03' junk"},
		{name: "unknown statement", stmt: "SEARC image NEAR text OF 'cat-03'"},
		{name: "missing NEAR", stmt: "SEARCH image text OF 'cat-03'"},
		{name: "LIMIT 0", stmt: "SEARCH image NEAR text OF 'cat-03' LIMIT 0"},
		{name: "LIMIT twice", stmt: "SEARCH image NEAR text OF 'cat-03' LIMIT 2 LIMIT 3"},
		{name: "bad FUSE", stmt: "SEARCH image NEAR text OF 'a', image OF 'b' FUSE max"},
		{name: "vector without ]", stmt: "SEARCH image NEAR text [1, 2 3]"},
		{name: "filter without value", stmt: "COUNT WHERE year >="},
		{name: "bang", stmt: "COUNT WHERE year ! 3"},
		{name: "bad character", stmt: "COUNT WHERE year @ 3"},
		{name: "unterminated quote", stmt: "GET 'cat-03;", input: "GET 'cat-03;\n"},
		{name: "ALIGN without TO", stmt: "ALIGN image audio"},
		{name: "second line", stmt: "SEARCH image\n  NEAR text OF 'cat-03'\n  LIMIT -2"},
		{name: "third of four lines", stmt: "SEARCH image\nNEAR text OF 'cat-03'\n    WHERE year >> 3\nLIMIT 2"},
		{name: "after a comment line", stmt: "-- find cats\nCOUNT WHERE kind = = 'cat'"},
		{name: "second statement on a line", stmt: "COUNT WHERE kind IN 'cat'", input: "COUNT;  COUNT WHERE kind IN 'cat';\n"},
		{name: "non-ASCII before the error", stmt: "GET 'chat-été' junk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.input
			if input == "" {
				input = tc.stmt + ";\n"
			}
			pos := syntaxPos(t, tc.stmt)
			code, out, errs := mmdbRun(t, input, "shell", db)
			assert.Equal(t, 1, code)
			if tc.input == "" {
				assert.Empty(t, out)
			}
			assert.Contains(t, errs, fmt.Sprintf("invalid query: syntax error at column %d: ", pos+1))
			start := strings.LastIndex(tc.stmt[:pos], "\n") + 1
			end := strings.IndexByte(tc.stmt[start:], '\n')
			if end < 0 {
				end = len(tc.stmt)
			} else {
				end += start
			}
			shown, col := caretBlock(t, errs)
			assert.Equal(t, tc.stmt[start:end], shown, "the line holding the error")
			assert.Equal(t, utf8.RuneCountInString(tc.stmt[start:pos]), col, "caret under the offending token:\n%s", errs)
		})
	}
}

func TestShellScriptStopsAtFirstError(t *testing.T) {
	_, db := buildDB(t)
	script := "COUNT;\nGET 'cat-03' junk;\nCOUNT WHERE kind = 'cat';\nDELETE 'cat-03';\n"

	code, out, errs := mmdbRun(t, script, "shell", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "12\n", out, "nothing after the error runs")
	assert.Contains(t, errs, "syntax error at column 14")
	code, out, _ = mmdbRun(t, "COUNT;\n", "shell", db)
	require.Equal(t, 0, code)
	assert.Equal(t, "12\n", out, "the DELETE after the error did not run")

	// Runtime errors stop it too.
	code, out, errs = mmdbRun(t, "GET 'nope';\nCOUNT;\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "not found")

	// --continue: later statements run, the exit code is still 1.
	code, out, errs = mmdbRun(t, script+"COUNT;\n", "shell", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "12\n4\ndeleted 1\n11\n", out)
	assert.Contains(t, errs, "syntax error at column 14")
	assert.Equal(t, 1, strings.Count(errs, "Error:"), "each failure is reported once: %s", errs)

	// A DELETE naming an unknown item deletes nothing.
	code, out, errs = mmdbRun(t, "DELETE 'cat-06', 'nope';\nCOUNT;\n", "shell", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "11\n", out)
	assert.Contains(t, errs, `delete: item "nope": not found`)

	// Two errors under --continue are both reported.
	code, out, errs = mmdbRun(t, "GET 'nope';\n.mode xml\nCOUNT;\n", "shell", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "11\n", out)
	assert.Contains(t, errs, `"nope"`)
	assert.Contains(t, errs, ".mode wants")
}

// Each failed statement should be reported once.
func TestShellErrorReportedOnce(t *testing.T) {
	_, db := buildDB(t)
	_, _, errs := mmdbRun(t, "GET 'x' junk;\n", "shell", db)
	assert.Equal(t, 1, strings.Count(errs, "expected end of statement"), errs)
}

// A comment line, or a comment after the last statement of a line, must
// not swallow a dot-command on the next line.
func TestShellCommentBeforeDotCommand(t *testing.T) {
	_, db := buildDB(t)
	for _, script := range []string{"-- header\n.mode csv\nGET 'cat-03';\n", "COUNT; -- note\n.mode csv\nGET 'cat-03';\n"} {
		code, out, errs := mmdbRun(t, script, "shell", db)
		assert.Equal(t, 0, code, errs)
		assert.Contains(t, out, "field,value\nid,cat-03\n")
	}
}

func TestShellRead(t *testing.T) {
	dir, db := buildDB(t)
	good := filepath.Join(dir, "good.sql")
	require.NoError(t, os.WriteFile(good, []byte("-- a script\nCOUNT WHERE kind = 'cat';\n.mode csv\nSEARCH image NEAR text OF 'cat-00'\n  LIMIT 1;\n"), 0o644))
	bad := filepath.Join(dir, "bad.sql")
	require.NoError(t, os.WriteFile(bad, []byte("COUNT WHERE kind = 'cat';\nGET 'cat-03' junk;\nCOUNT WHERE year >= 2020;\n"), 0o644))
	nested := filepath.Join(dir, "nested.sql")
	require.NoError(t, os.WriteFile(nested, []byte("COUNT WHERE kind = 'dog';\n.read "+bad+"\nCOUNT WHERE kind = 'bird';\n"), 0o644))
	self := filepath.Join(dir, "self.sql")
	require.NoError(t, os.WriteFile(self, []byte(".read "+self+"\n"), 0o644))

	code, out, errs := mmdbRun(t, ".read "+good+"\nCOUNT;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "4\nrank,id,score,distance,hd,kind,rating,tags,year\n1,cat-00,0.9979,0.0021,true,cat,0.5,\"[\"\"cat\"\",\"\"animal\"\",\"\"cute\"\"]\",2010\n12\n", out,
		"the file's statements run, and its .mode stays in force")

	// A file stops at its first error; the script stops with it.
	code, out, errs = mmdbRun(t, ".read "+bad+"\nCOUNT;\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "4\n", out)
	assert.Contains(t, errs, bad+": ")
	assert.Contains(t, errs, "syntax error at column 14")

	// With --continue the file still stops at its first error, the
	// script goes on.
	code, out, _ = mmdbRun(t, ".read "+bad+"\nCOUNT;\n", "shell", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "4\n12\n", out)

	// A nested .read's error stops the outer file too.
	code, out, _ = mmdbRun(t, ".read "+nested+"\nCOUNT;\n", "shell", "--continue", db)
	assert.Equal(t, 1, code)
	assert.Equal(t, "4\n4\n12\n", out)

	code, _, errs = mmdbRun(t, ".read "+self+"\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, ".read: nested too deep")
}

func TestShellImportBadLine(t *testing.T) {
	dir, db := buildDB(t)
	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(`{"id":"new-1","vectors":{"audio":[1,2,3]}}`+"\n\n"+`{"id":"new-2","attrs":{"k":[1]}}`+"\n"), 0o644))
	code, out, errs := mmdbRun(t, ".import "+bad+"\nCOUNT;\n", "shell", db)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "Error: line 1: transfer: bad record: "+bad+":3: attribute \"k\": lists must hold strings only")

	// Nothing of the failed batch was stored.
	code, out, errs = mmdbRun(t, "COUNT;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "12\n", out)

	// The import command reports the same, and --skip-bad stores the good
	// line.
	code, _, errs = mmdbRun(t, "", "import", db, bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, bad+":3:")
	code, out, errs = mmdbRun(t, "", "import", "--skip-bad", db, bad)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, bad+": imported 1 items, skipped 1 records\n   transfer: bad record: "+bad+":3: attribute \"k\": lists must hold strings only, element 0 is json.Number\n", out)
}

// itemsOf reads every item of a database, by ID.
func itemsOf(t *testing.T, path string) map[string]mmdb.Item {
	t.Helper()
	db, err := mmdb.Open(path, &mmdb.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	out := map[string]mmdb.Item{}
	for it, err := range db.Items(context.Background()) {
		require.NoError(t, err)
		out[it.ID] = it
	}
	return out
}

// requireSameItems compares two databases' items; cosine vectors may move
// by an ulp when normalised again on import.
func requireSameItems(t *testing.T, want, got map[string]mmdb.Item) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for id, w := range want {
		g, ok := got[id]
		require.True(t, ok, id)
		assert.Equal(t, w.Attrs, g.Attrs, id)
		require.Equal(t, len(w.Vectors), len(g.Vectors), id)
		for m, wv := range w.Vectors {
			require.Len(t, g.Vectors[m], len(wv), "%s %s", id, m)
			for i := range wv {
				assert.InDelta(t, wv[i], g.Vectors[m][i], 1e-6, "%s %s[%d]", id, m, i)
			}
		}
	}
}

func TestShellExportImportRoundTrip(t *testing.T) {
	dir, db := buildDB(t)
	out1 := filepath.Join(dir, "out.jsonl")
	code, out, errs := mmdbRun(t, "DELETE 'bird-05';\n.export "+out1+"\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "deleted 1\nexported 11 items to "+out1+"\n", out)
	schema, err := os.ReadFile(out1 + ".schema.json")
	require.NoError(t, err)
	assert.Contains(t, string(schema), `"space": "clap"`)
	_, err = os.Stat(out1 + ".tmp")
	assert.True(t, os.IsNotExist(err), "no temporary file left")

	// Import into a new database: the schema file defines the modalities.
	db2 := filepath.Join(dir, "copy.mmdb")
	code, out, errs = mmdbRun(t, ".import "+out1+"\n.schema\n", "shell", db2)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, out1+": imported 11 items\n.define text 4 cosine clip\n.define image 4 cosine clip\n.define audio 3 l2 clap\n-- attributes: hd, kind, rating, tags, year\n", out)
	requireSameItems(t, itemsOf(t, db), itemsOf(t, db2))

	// The same through the export and import commands.
	out2 := filepath.Join(dir, "out2.jsonl")
	code, out, errs = mmdbRun(t, "", "export", db2, out2)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "exported 11 items to "+out2+"\n", out)
	db3 := filepath.Join(dir, "copy3.mmdb")
	code, out, errs = mmdbRun(t, "", "import", "--batch", "4", db3, out2)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, out2+": imported 11 items\n", out)
	requireSameItems(t, itemsOf(t, db), itemsOf(t, db3))

	// export - writes the JSONL to stdout.
	code, out, errs = mmdbRun(t, "", "export", db, "-")
	require.Equal(t, 0, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Len(t, lines, 11)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		assert.ElementsMatch(t, []string{"id", "attrs", "vectors"}, keys(rec))
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestShellSnapshot(t *testing.T) {
	dir, db := buildDB(t)
	snap := filepath.Join(dir, "snap.mmdb")
	code, out, errs := mmdbRun(t, ".snapshot "+snap+"\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "snapshot written to "+snap+"\n", out)
	code, out, errs = mmdbRun(t, "", "check", snap)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "12 items")
}

// Every subcommand's --json output is JSON with the documented keys.
func TestJSONOutputs(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := mmdbRun(t, "", "demo", "--json", "--items", "300", "--dir", dir)
	require.Equal(t, 0, code, errs)
	var demo map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &demo), out)
	assert.Equal(t, []string{"alignments", "evaluations", "items", "path", "searches", "snapshot_same_hits"}, keys(demo))
	db := filepath.Join(dir, "demo.mmdb")
	assert.Equal(t, db, demo["path"])
	jsonl := filepath.Join(dir, "export.jsonl")

	tests := []struct {
		name string
		args []string
		keys []string // of the object, or of each element of an array
		list bool
	}{
		{"query search", []string{"query", "--json", db, "SEARCH image NEAR text OF 'cat-0001' LIMIT 3"}, []string{"hits", "kind"}, false},
		{"query get", []string{"query", "--json", db, "GET 'cat-0001'"}, []string{"item", "kind"}, false},
		{"query count", []string{"query", "--mode", "json", db, "COUNT WHERE year >= 2010"}, []string{"count", "kind"}, false},
		{"query explain", []string{"query", "--json", db, "EXPLAIN SEARCH image NEAR text OF 'cat-0001'"}, []string{"hits", "kind", "plans"}, false},
		{"stats", []string{"stats", "--json", db}, []string{"alignments", "attributes", "calibrations", "file_size", "items", "modalities", "path"}, false},
		{"check", []string{"check", "--json", db}, []string{"items", "problems", "vectors"}, false},
		{"snapshot", []string{"snapshot", "--json", db, filepath.Join(dir, "snap.mmdb")}, []string{"items", "snapshot"}, false},
		{"restore", []string{"restore", "--json", filepath.Join(dir, "snap.mmdb"), filepath.Join(dir, "restored.mmdb")}, []string{"from", "restored"}, false},
		{"align", []string{"align", "--json", "--method", "ridge", db, "image", "audio"}, []string{"chance", "chosen", "folds", "gallery", "pairs", "reference", "scores", "why"}, false},
		{"eval", []string{"eval", "--json", db, "text", "image"}, []string{"chance_mrr", "chance_recall", "corrections", "median_rank", "mrr", "n", "probe", "recall", "route", "target", "targets"}, false},
		{"export", []string{"export", "--json", db, jsonl}, []string{"exported", "file"}, false},
		{"import", []string{"import", "--json", filepath.Join(dir, "new.mmdb"), jsonl}, []string{"file", "imported", "skipped"}, true},
		{"version", []string{"version", "--json"}, []string{"version"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := mmdbRun(t, "", tc.args...)
			require.Equal(t, 0, code, errs)
			if tc.list {
				var v []map[string]any
				require.NoError(t, json.Unmarshal([]byte(out), &v), out)
				require.NotEmpty(t, v)
				for _, e := range v {
					assert.Equal(t, tc.keys, keys(e))
				}
				return
			}
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
			assert.Equal(t, tc.keys, keys(v))
		})
	}

	// A few values, to be sure the keys hold what they say.
	_, out, _ = mmdbRun(t, "", "query", "--json", db, "SEARCH image NEAR text OF 'cat-0001' LIMIT 3")
	var res struct {
		Kind string
		Hits []hitRow
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, "SEARCH", res.Kind)
	require.Len(t, res.Hits, 3)
	assert.Equal(t, hitRow{Rank: 1, ID: "cat-0001"}, hitRow{Rank: res.Hits[0].Rank, ID: res.Hits[0].ID})
	assert.NotNil(t, res.Hits[0].Distance)
	assert.Contains(t, res.Hits[0].Attrs, "concept")

	_, out, _ = mmdbRun(t, "", "stats", "--json", db)
	var st mmdb.Stats
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, 300, st.Items)
	assert.Equal(t, db, st.Path)
	require.Len(t, st.Modalities, 3)
	assert.Equal(t, mmdb.Cosine, st.Modalities[0].Metric)

	_, out, _ = mmdbRun(t, "", "import", "--json", filepath.Join(dir, "new2.mmdb"), jsonl)
	var reps []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &reps))
	assert.Equal(t, map[string]any{"file": jsonl, "imported": float64(300), "skipped": float64(0)}, reps[0])
}

// eval --json of a pivot route between unrelated spaces: every number is
// finite. (The RRF pivot missed most targets, and the median was +Inf,
// which JSON cannot hold; the soft pivot ranks every target, so the
// median is a real rank. EvalReport.MedianBeyond still covers a pivot
// that loses its neighbours mid-write: TestEvalReportMedianBeyondIsFinite.)
func TestEvalJSONPivotMedian(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inf.mmdb")
	db, err := mmdb.Open(path, &mmdb.Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "text", Dim: 8, Metric: mmdb.Cosine, Space: "clip"}))
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "audio", Dim: 8, Metric: mmdb.Cosine, Space: "clap"}))
	r := rand.New(rand.NewPCG(1, 1))
	vec := func() []float32 {
		v := make([]float32, 8)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	items := make([]mmdb.Item, 400)
	for i := range items {
		items[i] = mmdb.Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"text": vec(), "audio": vec()}}
	}
	require.NoError(t, db.Put(context.Background(), items...))
	require.NoError(t, db.Close())

	code, out, errs := mmdbRun(t, "", "eval", path, "text", "audio")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "pivot route")
	code, out, errs = mmdbRun(t, "", "eval", "--json", path, "text", "audio")
	require.Equal(t, 0, code, errs)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.NotContains(t, v, "median_beyond")
	med := v["median_rank"].(float64)
	assert.True(t, med >= 1 && med <= v["targets"].(float64), "median rank %v", med)
	assert.Equal(t, "pivot", v["route"])
	for _, k := range []string{"mrr", "chance_mrr"} {
		f := v[k].(float64)
		assert.False(t, math.IsNaN(f) || math.IsInf(f, 0), k)
	}
}

func TestQueryCommand(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "", "query", db, "SEARCH image NEAR text OF 'cat-00' LIMIT 2")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "rank  id      score   distance  hd     kind  rating  tags                 year\n"+
		"1     cat-00  0.9979  0.0021    true   cat   0.5     [cat, animal, cute]  2010\n"+
		"2     cat-03  0.9345  0.0655    false  cat   3.5     [cat, animal]        2013\n"+
		"(2 hits)\n", out)

	code, out, errs = mmdbRun(t, "", "query", "--mode", "csv", db, "SEARCH image NEAR text OF 'cat-00' LIMIT 2")
	require.Equal(t, 0, code, errs)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"rank", "id", "score", "distance", "hd", "kind", "rating", "tags", "year"},
		{"1", "cat-00", "0.9979", "0.0021", "true", "cat", "0.5", `["cat","animal","cute"]`, "2010"},
		{"2", "cat-03", "0.9345", "0.0655", "false", "cat", "3.5", `["cat","animal"]`, "2013"},
	}, rows)

	code, out, errs = mmdbRun(t, "", "query", "--mode", "table", db, "GET 'bird-11'")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "id      bird-11\nhd      false\nkind    bird\nrating  11.5\ntags    [bird, animal]\nyear    2021\nimage   [4 floats]\ntext    [4 floats]\n", out)

	code, out, errs = mmdbRun(t, "", "query", "--mode", "csv", db, "COUNT WHERE hd = false")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "6\n", out)

	// A syntax error: exit 1, the message and the caret on stderr.
	stmt := "SEARCH image NEAR text OF 'cat-00' LIMT 2"
	code, out, errs = mmdbRun(t, "", "query", db, stmt)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	pos := syntaxPos(t, stmt)
	assert.Contains(t, errs, fmt.Sprintf("mmdb: invalid query: syntax error at column %d", pos+1))
	shown, col := caretBlock(t, errs)
	assert.Equal(t, stmt, shown)
	assert.Equal(t, pos, col)
	assert.Equal(t, "LIMT", stmt[col:col+4])

	// Other failures.
	code, _, errs = mmdbRun(t, "", "query", db, "GET 'nope'")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "not found")
	code, _, errs = mmdbRun(t, "", "query", "--mode", "xml", db, "COUNT")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "--mode must be")
	code, _, errs = mmdbRun(t, "", "query", db)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "want 2 arguments")
}

// Every command documents itself with an example.
func TestSubcommandHelp(t *testing.T) {
	names := []string{""}
	for _, c := range rootCmd().Commands() {
		if !c.Hidden { // the moved bench command only says where it went
			names = append(names, c.Name())
		}
	}
	assert.Subset(t, names, []string{"shell", "query", "import", "export", "stats", "demo", "snapshot", "restore", "check", "align", "eval", "version"})
	for _, name := range names {
		t.Run("help "+name, func(t *testing.T) {
			args := []string{"--help"}
			if name != "" {
				args = []string{name, "--help"}
			}
			code, out, errs := mmdbRun(t, "", args...)
			assert.Equal(t, 0, code, errs)
			assert.Regexp(t, `Examples?:`, out)
			assert.Contains(t, out, "mmdb "+name)
		})
	}
}

// The attribute columns of a hit table share the header with rank, id,
// score and distance: an attribute with one of those names makes the CSV
// header ambiguous.
func TestShellAttributeNamedLikeColumn(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.mmdb")
	f := filepath.Join(dir, "s.jsonl")
	require.NoError(t, os.WriteFile(f, []byte(`{"id":"a","attrs":{"score":5},"vectors":{"v":[1,0]}}`+"\n"), 0o644))
	code, out, errs := mmdbRun(t, ".define v 2 l2\n.import "+f+"\n.mode csv\nSEARCH v NEAR v [1, 0];\n", "shell", db)
	require.Equal(t, 0, code, errs)
	rows, err := csv.NewReader(strings.NewReader(strings.SplitN(out, "\n", 2)[1])).ReadAll()
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, h := range rows[0] {
		assert.False(t, seen[h], "header %q twice in %v", h, rows[0])
		seen[h] = true
	}
}

// EXPLAIN without ANALYZE does not run the search: it prints no empty hit
// table as if the search had found nothing.
func TestShellExplainNoEmptyHits(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "EXPLAIN SEARCH image NEAR text OF 'cat-00' LIMIT 3;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "SEARCH image NEAR text OF 'cat-00' LIMIT 3\n")
	assert.NotContains(t, out, "(0 hits)")
	assert.NotContains(t, out, "rank")
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		in    string
		stmts []string
		rest  string
	}{
		{"COUNT;", []string{"COUNT"}, ""},
		{"COUNT; GET 'a';\n", []string{"COUNT", "GET 'a'"}, "\n"},
		{"GET 'a;b'; COUNT", []string{"GET 'a;b'"}, " COUNT"},
		{`GET "x;'y"; `, []string{`GET "x;'y"`}, " "},
		{"GET 'it''s;'; COUNT;", []string{"GET 'it''s;'", "COUNT"}, ""},
		{"COUNT -- not here; \n WHERE a = 1;", []string{"COUNT -- not here; \n WHERE a = 1"}, ""},
		{"-- only a comment;\n;;  ;", nil, ""},
		{"SEARCH image\n NEAR text OF 'a'", nil, "SEARCH image\n NEAR text OF 'a'"},
		{"GET 'unterminated;", nil, "GET 'unterminated;"},
	}
	for _, tc := range tests {
		stmts, rest := splitStatements(tc.in)
		assert.Equal(t, tc.stmts, stmts, "%q", tc.in)
		assert.Equal(t, tc.rest, rest, "%q", tc.in)
	}
}

func TestCompleter(t *testing.T) {
	_, path := buildDB(t)
	db, err := mmdb.Open(path, &mmdb.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	c := &completer{db: db}
	do := func(line string) []string {
		cands, _ := c.Do([]rune(line), len([]rune(line)))
		out := make([]string, len(cands))
		for i, r := range cands {
			out[i] = string(r)
		}
		sort.Strings(out)
		return out
	}
	assert.Equal(t, []string{"chema", "napshot", "tats"}, do(".s"))
	assert.Equal(t, []string{"ARCH"}, do("SE"))
	assert.Equal(t, []string{"arch"}, do("se"), "keywords follow the typed case")
	assert.Equal(t, []string{"age"}, do("SEARCH im"), "modality names")
	assert.Equal(t, []string{"ar"}, do("COUNT WHERE ye"), "attribute names")
	assert.Empty(t, do("COUNT "))
	assert.Empty(t, do("x.s"), "dot-commands only at the start")
}

// EXPLAIN COUNT describes the count, not a search of zero results over
// zero vectors.
func TestShellExplainCount(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "EXPLAIN COUNT WHERE kind = 'dog';\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.NotContains(t, out, "SEARCH")
	assert.NotContains(t, out, "of 0")
	assert.Contains(t, out, "4 of 12")
}

// A GET in CSV mode writes a string list like the table does, so that
// elements holding spaces stay apart.
func TestShellCSVItemList(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.mmdb")
	f := filepath.Join(dir, "s.jsonl")
	require.NoError(t, os.WriteFile(f, []byte(`{"id":"a","attrs":{"tags":["big dog","cat"]},"vectors":{"v":[1,0]}}`+"\n"), 0o644))
	code, out, errs := mmdbRun(t, ".define v 2 l2\n.import "+f+"\n.mode csv\nGET 'a';\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "tags,\"[\"\"big dog\"\",\"\"cat\"\"]\"\n")
}

// An exact match under L2 scores 0, not "-0.0000".
func TestShellL2ExactMatchScore(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "SEARCH audio NEAR audio [0, 0, 0.5] LIMIT 1;\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "cat-00  0.0000")
	assert.NotContains(t, out, "-0.0000")
}

// A script with thousands of lines inside an unterminated quote is cut in
// time linear in its length (the shell rescanned the whole buffer per
// line: 20,000 lines took 19.9 s). Sixteen times the lines must cost far
// less than the 256 times a quadratic scan would.
func TestSplitterIsLinear(t *testing.T) {
	first, line := "SEARCH image NEAR text OF 'an unterminated quote", "that goes on and on; and on"
	// The work is counted (bytes examined), not timed: a wall clock on a
	// shared machine measures the neighbours too.
	cost := func(n int) int {
		var sp splitter
		require.Empty(t, sp.write(first+"\n"))
		for range n {
			if len(sp.write(line+"\n")) > 0 {
				t.Fatal("a statement ended inside the quote")
			}
		}
		got := sp.write("';\n")
		require.Len(t, got, 1)
		require.True(t, got[0] == first+"\n"+strings.Repeat(line+"\n", n)+"'", "the statement is every line and the closing quote")
		return sp.scanned
	}
	small, large := cost(2000), cost(32000)
	t.Logf("2,000 lines: %d bytes examined, 32,000 lines: %d (ratio %.1f)", small, large, float64(large)/float64(small))
	assert.Less(t, float64(large)/float64(small), 17.0, "16x the lines: 16x the bytes, not 256x")
}

// eval --label counts a target of the query's class as a hit and reports
// precision by it; a label the items lack is an error naming one.
func TestEvalLabel(t *testing.T) {
	_, db := buildDB(t)
	code, out, errs := mmdbRun(t, "", "eval", "--label", "kind", db, "text", "image")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "a hit being a target of the query's kind")
	assert.Contains(t, out, "P@10")
	code, out, errs = mmdbRun(t, "", "eval", "--json", "--label", "kind", db, "text", "image")
	require.Equal(t, 0, code, errs)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "kind", v["label"])
	assert.Contains(t, v, "precision")
	code, _, errs = mmdbRun(t, "", "eval", "--label", "nope", db, "text", "image")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, `has no "nope" attribute`)
}

// mmdb calibrate measures, prints what it measured and keeps the best only
// when it gains; it says what to ask for; --remove removes.
func TestCalibrateCommand(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := mmdbRun(t, "", "demo", "--dir", dir)
	require.Equal(t, 0, code, errs)
	db := filepath.Join(dir, "demo.mmdb")
	code, out, errs := mmdbRun(t, "", "calibrate", "--auto", db, "text", "image")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "measured on the items outside a 1500-vector bank")
	assert.Contains(t, out, "inverted softmax")
	assert.Contains(t, out, "\nkept ")
	code, out, errs = mmdbRun(t, "", "eval", db, "text", "image")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "before:", "the kept corrections are applied")
	code, out, errs = mmdbRun(t, "", "calibrate", "--json", "--centre", "--force", db, "text", "image")
	require.Equal(t, 0, code, errs)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Len(t, v["measured"], 2)
	code, _, errs = mmdbRun(t, "", "calibrate", db, "text", "image")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "say what to measure")
	code, _, errs = mmdbRun(t, "", "calibrate", "--remove", db, "text", "image")
	require.Equal(t, 0, code, errs)
	code, out, _ = mmdbRun(t, "", "eval", db, "text", "image")
	require.Equal(t, 0, code)
	assert.NotContains(t, out, "before:")
}

// Found in the second review: demo --json with --data printed the text
// tour; the combination is a usage error.
func TestDemoJSONWithDataRefused(t *testing.T) {
	code, _, errs := mmdbRun(t, "", "demo", "--json", "--data", "../shared/data")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "--json summarises the synthetic demo")
}

// .define takes MULTI after SPACE, or in SPACE's place; .schema prints
// what was defined, sets marked.
func TestShellDefineSets(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.mmdb")
	code, out, errs := mmdbRun(t, ".define tok 3 cosine maxsim\n.define q 3 cosine tok\n.define r 3 cosine colb maxpair\n.schema\n", "shell", db)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, ".define tok 3 cosine tok maxsim\n.define q 3 cosine tok\n.define r 3 cosine colb maxpair\n", out)
}
