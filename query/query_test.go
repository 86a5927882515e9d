package query

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want Expr
	}{
		{"year >= 2010", Ge("year", 2010)},
		{"tags = 'dog'", Eq("tags", "dog")},
		{"score < -0.5", Lt("score", -0.5)},
		{"ok = TRUE AND n != 3", And(Eq("ok", true), Ne("n", 3))},
		{"a = 1 OR b = 2 AND c = 3", Or(Eq("a", 1), And(Eq("b", 2), Eq("c", 3)))},
		{"NOT (a = 1 OR b = 2)", Not(Or(Eq("a", 1), Eq("b", 2)))},
		{"kind IN ('cat', 'dog')", In("kind", "cat", "dog")},
		{"x BETWEEN 1 AND 2.5", Range("x", 1, 2.5)},
		{"EXISTS caption", Has("caption")},
		{"caption EXISTS", Has("caption")},
		{"name = 'it''s'", Eq("name", "it's")},
		{`"and" = 1`, Eq("and", 1)},
		{"year <> 3", Ne("year", 3)},
		{"a = 1 -- a comment", Eq("a", 1)},
		{"big = 1e3", Eq("big", 1000.0)},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFilter(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			// String renders something that parses back to the same thing.
			again, err := ParseFilter(got.String())
			require.NoError(t, err, got.String())
			assert.Equal(t, got, again)
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		in, msg string
		col     int
	}{
		{"year >", "expected a value", 7},
		{"year 2010", "expected a comparison", 6},
		{"(a = 1", "expected ')'", 7},
		{"a = 1 b = 2", "expected AND, OR or end of filter", 7},
		{"a IN 1", "expected '(' after IN", 6},
		{"a BETWEEN 1 2", "expected AND in BETWEEN", 13},
		{"a = 'open", "unterminated", 5},
		{"a ! 1", "'!' must be followed by '='", 3},
		{"= 1", "expected an attribute name", 1},
		{"a = #", "unexpected character", 5},
		{"", "expected an attribute name", 1},
		{"a = 1e999", "bad number", 5},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseFilter(tc.in)
			require.ErrorIs(t, err, ErrSyntax)
			var se *SyntaxError
			require.True(t, errors.As(err, &se))
			assert.Contains(t, err.Error(), tc.msg)
			assert.Equal(t, tc.col, se.Pos+1, err.Error())
		})
	}
	_, err := ParseFilter(strings.Repeat("(", 500) + "a = 1" + strings.Repeat(")", 500))
	assert.ErrorIs(t, err, ErrSyntax, "nesting is bounded")
}

func TestValidate(t *testing.T) {
	assert.NoError(t, Validate(And(Eq("a", 1), In("b", "x", 2.5, true))))
	assert.ErrorIs(t, Validate(Eq("a", math.NaN())), ErrSyntax)
	assert.ErrorIs(t, Validate(Eq("", 1)), ErrSyntax)
	assert.ErrorIs(t, Validate(Eq("a", []int{1})), ErrSyntax)
	_, err := Parse("year >")
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 6, se.Pos)
	_, err = Parse("a = 1e999")
	assert.ErrorIs(t, err, ErrSyntax)
	assert.Equal(t, Ge("year", 2010), MustParse("year >= 2010"))
	assert.Panics(t, func() { MustParse("year >") })
}

func TestMatchSemantics(t *testing.T) {
	item := map[string]any{"year": int64(2014), "score": 0.5, "tags": []string{"dog", "park"}, "ok": true, "name": "rex"}
	tests := []struct {
		f    string
		want bool
	}{
		{"year = 2014", true},
		{"year = 2014.0", true}, // numbers compare by value
		{"year != 2014", false},
		{"year > 2013 AND year < 2015", true},
		{"score BETWEEN 0.5 AND 1", true},
		{"tags = 'dog'", true},   // any element
		{"tags != 'dog'", false}, // no element
		{"tags != 'cat'", true},  // no element equals cat
		{"tags IN ('cat', 'park')", true},
		{"missing = 1", false},  // a missing attribute matches nothing...
		{"missing != 1", false}, // ...not even !=
		{"NOT missing = 1", true},
		{"name = 1", false}, // kinds differ: not equal
		{"name != 1", true},
		{"name > 1", false},
		{"ok = TRUE", true},
		{"EXISTS tags AND NOT EXISTS missing", true},
	}
	for _, tc := range tests {
		e, err := ParseFilter(tc.f)
		require.NoError(t, err, tc.f)
		assert.Equal(t, tc.want, Match(e, item), tc.f)
	}
	// Plain Go values outside a database compare like stored ones.
	assert.True(t, Match(Eq("year", 2010), map[string]any{"year": 2010}))
	assert.False(t, Match(Ne("year", 218), map[string]any{"year": uint8(218)}), "a uint8 equals the same int64")
	assert.True(t, Match(Gt("big", 1), map[string]any{"big": uint64(1 << 63)}), "uint64 past MaxInt64 compares as a number")
	assert.True(t, Match(Eq("tags", "x"), map[string]any{"tags": []any{"x", "y"}}))
}

// FuzzParseFilter: any input parses or fails with a *SyntaxError; what
// parses renders to text that parses back to the same expression.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"year >= 2010 AND tags = 'dog'", "name LIKE 'a\\%b%' OR NOT name LIKE 'x'", "NOT (a IN (1, 2.5, 'x') OR b BETWEEN 1 AND 2)", "EXISTS c", `"we""ird" = FALSE`, "a = -1e-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilter(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		again, err := ParseFilter(e.String())
		if err != nil {
			t.Fatalf("%q rendered as %q, which does not parse: %v", s, e.String(), err)
		}
		if again.String() != e.String() {
			t.Fatalf("round trip changed %q into %q", e.String(), again.String())
		}
	})
}

func TestParseStatement(t *testing.T) {
	st, err := ParseStatement("EXPLAIN ANALYZE SEARCH image, audio NEAR text OF 'dog-1' WEIGHT 0.7, audio [0.5, -1, 2e-1] FUSE dbsf WHERE year >= 2010 AND tags = 'dog' LIMIT 5 EF 80 EXACT;")
	require.NoError(t, err)
	assert.Equal(t, &Statement{Kind: StmtSearch, Explain: true, Analyze: true, Targets: []string{"image", "audio"},
		Probes: []StmtProbe{{Modality: "text", ItemID: "dog-1", Weight: 0.7}, {Modality: "audio", Vector: []float32{0.5, -1, 0.2}}},
		Fuse:   "dbsf", Filter: And(Ge("year", 2010), Eq("tags", "dog")), Limit: 5, Ef: 80, Exact: true}, st)

	for in, want := range map[string]*Statement{
		"GET 'a'":                        {Kind: StmtGet, IDs: []string{"a"}},
		"delete 'a', 'b'":                {Kind: StmtDelete, IDs: []string{"a", "b"}},
		"COUNT":                          {Kind: StmtCount},
		"COUNT WHERE x = 1;":             {Kind: StmtCount, Filter: Eq("x", 1)},
		"ALIGN image TO audio":           {Kind: StmtAlign, From: "image", To: "audio"},
		"align text to image using CCA;": {Kind: StmtAlign, From: "text", To: "image", Method: "CCA"},
		"SEARCH audio NEAR image FILE 'digit 3.png' WEIGHT 2, text 'a brown dog' LIMIT 3": {Kind: StmtSearch, Targets: []string{"audio"},
			Probes: []StmtProbe{{Modality: "image", File: "digit 3.png", Weight: 2}, {Modality: "text", Text: "a brown dog"}}, Limit: 3},
		"DELETE WHERE x = 1":                               {Kind: StmtDelete, Filter: Eq("x", 1)},
		"CALIBRATE text TO image AUTO K 20 FORCE":          {Kind: StmtCalibrate, From: "text", To: "image", Auto: true, K: 20, Force: true},
		"calibrate text to image centre alpha 0.5 beta 20": {Kind: StmtCalibrate, From: "text", To: "image", Centre: true, Alpha: 0.5, Beta: 20},
		"DROP ALIGNMENT a TO b;":                           {Kind: StmtDrop, Drop: "ALIGNMENT", From: "a", To: "b"},
		"drop calibration a to b":                          {Kind: StmtDrop, Drop: "CALIBRATION", From: "a", To: "b"},
		"DROP MODALITY audio":                              {Kind: StmtDrop, Drop: "MODALITY", From: "audio"},
		"GET 'a', 'b'":                                     {Kind: StmtGet, IDs: []string{"a", "b"}},
		"SEARCH a NEAR b OF 'x' GROUP BY label PER 2 OFFSET 3 EXCLUDE 'y', 'z' DISTANCE <= 0.5 SCORE >= -1": {Kind: StmtSearch, Targets: []string{"a"},
			Probes: []StmtProbe{{Modality: "b", ItemID: "x"}}, GroupBy: "label", GroupSize: 2, Offset: 3, Exclude: []string{"y", "z"}, MaxDistance: ptr(0.5), MinScore: ptr(-1)},
		"SEARCH file NEAR file file 'x'": {Kind: StmtSearch, Targets: []string{"file"}, Probes: []StmtProbe{{Modality: "file", File: "x"}}},
	} {
		got, err := ParseStatement(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}

	for in, msg := range map[string]string{
		"SEARCH image text OF 'a'":               "expected NEAR",
		"SEARCH image NEAR text 3":               "OF '<id>', a vector [ ... ], FILE '<path>' or a text",
		"SEARCH image NEAR text FILE 3":          "a file path in quotes",
		"SEARCH image NEAR text FILE ''":         "names no file",
		"SEARCH image NEAR text ''":              "empty text probe",
		"SEARCH image NEAR text OF 'a' LIMIT 0":  "positive integer",
		"SEARCH image NEAR text OF 'a' FUSE max": "rrf, weighted, dbsf, early or best_score",
		"SEARCH image NEAR text [1, 2":           "',' or ']'",
		"GET a":                                  "an item ID in quotes",
		"DROP TABLE items":                       "ALIGNMENT, CALIBRATION or MODALITY after DROP",
		"COUNT WHERE":                            "expected an attribute name",
		"ALIGN image audio":                      "expected TO",
		"ALIGN image TO":                         "the modality to align to",
		"ALIGN image TO audio USING":             "a method",
		"GET 'a' 'b'":                            "end of statement",
	} {
		_, err := ParseStatement(in)
		require.ErrorIs(t, err, ErrSyntax, in)
		assert.Contains(t, err.Error(), msg, in)
	}
}

func FuzzParseStatement(f *testing.F) {
	for _, s := range []string{"SEARCH image NEAR text OF 'a' WHERE y > 1 LIMIT 3", "EXPLAIN SEARCH a, b NEAR c [1, 2] WEIGHT 2 FUSE early", "SEARCH t NEAR t [[1, 2], [3, 4]] LIMIT 2", "DELETE 'x', 'y'", "COUNT WHERE NOT EXISTS z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatement(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a SyntaxError: %v", err)
			}
			return
		}
		if st.Kind == "" {
			t.Fatal("parsed statement without a kind")
		}
	})
}

func ptr(x float64) *float64 { return &x }
