package query_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Attribute names that need every kind of rendering: plain, with the
// characters an identifier may continue with, keywords in any case, and
// names that must be quoted (spaces, quotes, a leading digit, non-ASCII).
var rtAttrs = []string{
	"a", "year", "_x", "a.b", "a-b", "a--b", "x1", "E", "e1",
	"and", "Where", "not", "limit", "TRUE",
	"with space", `quo"te`, `""`, "1st", "ünï", "a;b", "tag's",
}

var rtInts = []int64{0, 1, -1, 7, -42, 1 << 53, -(1 << 53), math.MaxInt64, math.MinInt64}

var rtFloats = []float64{
	0, math.Copysign(0, -1), 0.5, -2.5, 100, -3, 0.1, 1e21, -1e21, 123456789,
	1e-300, 5e-324, -5e-324, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64 * 3,
}

var rtStrings = []string{
	"", "x", "it's", "''", `a"b`, "--not a comment", "ünïcode", "NOT", "(x)", "a AND b",
	"line\nbreak", "tab\there", "; DROP", "'", `\`,
}

func rtValue(r *rand.Rand) any {
	switch r.IntN(7) {
	case 0:
		return rtInts[r.IntN(len(rtInts))]
	case 1:
		return r.Int64N(2001) - 1000
	case 2:
		return rtFloats[r.IntN(len(rtFloats))]
	case 3:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	case 4:
		return rtStrings[r.IntN(len(rtStrings))]
	case 5:
		return string(rune('a'+r.IntN(26))) + strings.Repeat("'", r.IntN(3))
	}
	return r.IntN(2) == 0
}

// rtFilter is a random filter over rtAttrs with every node kind; And and Or
// have two to four terms.
func rtFilter(r *rand.Rand, depth int) query.Expr {
	if depth > 0 && r.IntN(2) == 0 {
		switch r.IntN(3) {
		case 0, 1:
			terms := make([]query.Expr, 2+r.IntN(3))
			for i := range terms {
				terms[i] = rtFilter(r, depth-1)
			}
			if r.IntN(2) == 0 {
				return query.And(terms...)
			}
			return query.Or(terms...)
		default:
			return query.Not(rtFilter(r, depth-1))
		}
	}
	attr := rtAttrs[r.IntN(len(rtAttrs))]
	switch r.IntN(6) {
	case 0:
		vs := make([]any, 1+r.IntN(4))
		for i := range vs {
			vs[i] = rtValue(r)
		}
		return query.In(attr, vs...)
	case 1:
		return query.Range(attr, rtValue(r), rtValue(r))
	case 2:
		return query.Has(attr)
	}
	return query.Cmp{Attr: attr, Op: query.Op(r.IntN(6)), Value: rtValue(r)}
}

// rtAttrMap is a random item over rtAttrs, its values drawn from the
// literal pools (so comparisons often hit), some as string lists.
func rtAttrMap(r *rand.Rand) map[string]any {
	m := map[string]any{}
	for _, a := range rtAttrs {
		switch r.IntN(4) {
		case 0: // missing
		case 1:
			list := make([]string, r.IntN(3))
			for i := range list {
				list[i] = rtStrings[r.IntN(len(rtStrings))]
			}
			m[a] = list
		default:
			m[a] = rtValue(r)
		}
	}
	return m
}

// TestFilterRoundTripRandom: for random filters, ParseFilter(e.String())
// is e again (node for node, and rendering the same text), and both match
// the same random items.
func TestFilterRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 8))
	items := make([]map[string]any, 40)
	for i := range items {
		items[i] = rtAttrMap(r)
	}
	for range 400 {
		e := rtFilter(r, 4)
		text := e.String()
		got, err := query.ParseFilter(text)
		require.NoError(t, err, text)
		require.Equal(t, e, got, text)
		require.Equal(t, text, got.String(), "rendering is stable")
		require.NoError(t, query.Validate(got), text)
		for _, it := range items {
			require.Equal(t, query.Match(e, it), query.Match(got, it), "%s on %v", text, it)
		}
	}
}

// TestFilterRoundTripCases: hand-written filters with every operator, IN
// lists, BETWEEN, EXISTS, NOT, nesting, quoted names and quoted strings:
// each parses to the expression given, renders to text that parses back
// to it, and the text written by hand and the rendering match alike.
func TestFilterRoundTripCases(t *testing.T) {
	tests := []struct {
		in   string
		want query.Expr
	}{
		{"a = 1", query.Eq("a", 1)},
		{"a != 1", query.Ne("a", 1)},
		{"a <> 1", query.Ne("a", 1)},
		{"a < -1", query.Lt("a", -1)},
		{"a <= 1.5", query.Le("a", 1.5)},
		{"a > 'x'", query.Gt("a", "x")},
		{"a >= FALSE", query.Ge("a", false)},
		{"a=1", query.Eq("a", 1)},
		{"a = -0.0", query.Eq("a", math.Copysign(0, -1))},
		{"a = 1e-300", query.Eq("a", 1e-300)},
		{"a = 5e-324", query.Eq("a", 5e-324)},
		{"a = 1.7976931348623157e308", query.Eq("a", math.MaxFloat64)},
		{"a = -9223372036854775808", query.Eq("a", int64(math.MinInt64))},
		{"a = 9223372036854775807", query.Eq("a", int64(math.MaxInt64))},
		{"a = 9223372036854775808", query.Eq("a", 9223372036854775808.0)}, // past int64: a float
		{"a = 2.0", query.Eq("a", 2.0)},
		{"a = 1E3", query.Eq("a", 1000.0)},
		{"a IN (1)", query.In("a", 1)},
		{"a IN (1, 2.5, 'x', TRUE, -3)", query.In("a", 1, 2.5, "x", true, -3)},
		{"a BETWEEN -1 AND 1", query.Range("a", -1, 1)},
		{"a BETWEEN 'a' AND 'b''c'", query.Range("a", "a", "b'c")},
		{"EXISTS a", query.Has("a")},
		{"a EXISTS", query.Has("a")},
		{"NOT a = 1", query.Not(query.Eq("a", 1))},
		{"NOT NOT EXISTS a", query.Not(query.Not(query.Has("a")))},
		{"a = 1 AND b = 2 AND c = 3", query.And(query.Eq("a", 1), query.Eq("b", 2), query.Eq("c", 3))},
		{"a = 1 OR b = 2 OR c = 3", query.Or(query.Eq("a", 1), query.Eq("b", 2), query.Eq("c", 3))},
		{"(a = 1 OR b = 2) AND (c = 3 OR NOT (d = 4 AND e = 5))",
			query.And(query.Or(query.Eq("a", 1), query.Eq("b", 2)), query.Or(query.Eq("c", 3), query.Not(query.And(query.Eq("d", 4), query.Eq("e", 5)))))},
		{"((((a = 1))))", query.Eq("a", 1)},
		{"(a = 1 AND b = 2) AND c = 3", query.And(query.And(query.Eq("a", 1), query.Eq("b", 2)), query.Eq("c", 3))},
		{`"and" = 1`, query.Eq("and", 1)},
		{`"with space" IN ('x')`, query.In("with space", "x")},
		{`"quo""te" = 'it''s'`, query.Eq(`quo"te`, "it's")},
		{`EXISTS "NOT"`, query.Has("NOT")},
		{`"1st" BETWEEN 1 AND 2`, query.Range("1st", 1, 2)},
		{`"" = 1`, query.Eq("", 1)},
		{"ünï = 'ü'", query.Eq("ünï", "ü")},
		{"a.b-c_d = ''", query.Eq("a.b-c_d", "")},
		{"a--b = 1", query.Eq("a--b", 1)},
		{"a = '--x' -- a real comment", query.Eq("a", "--x")},
		{"a = 'line\nbreak'", query.Eq("a", "line\nbreak")},
		{"a = ''''", query.Eq("a", "'")},
		{"a = '\"'", query.Eq("a", `"`)},
		{"not a = 1 and b in (1) or c between 1 and 2", query.Or(query.And(query.Not(query.Eq("a", 1)), query.In("b", 1)), query.Range("c", 1, 2))},
	}
	r := rand.New(rand.NewPCG(2, 3))
	items := make([]map[string]any, 60)
	for i := range items {
		items[i] = rtAttrMap(r)
		// Values the cases compare with, so that both outcomes occur.
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			switch r.IntN(4) {
			case 0:
				items[i][k] = r.Int64N(6) - 1
			case 1:
				items[i][k] = []string{"x", "b'c"}[r.IntN(2)]
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := query.ParseFilter(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want.String(), got.String(), "the same text: -0 stays -0, floats stay floats")
			again, err := query.ParseFilter(got.String())
			require.NoError(t, err, got.String())
			assert.Equal(t, got, again, got.String())
			for _, it := range items {
				assert.Equal(t, query.Match(got, it), query.Match(again, it), "%s on %v", got, it)
			}
		})
	}
}

// TestFilterRoundTripDegenerate: a one-term AND or OR renders as its term
// in parentheses and parses back as the term itself: not the same node,
// but it matches the same items.
func TestFilterRoundTripDegenerate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	items := make([]map[string]any, 200)
	for i := range items {
		items[i] = rtAttrMap(r)
	}
	for _, e := range []query.Expr{
		query.And(query.Eq("a", 1)),
		query.Or(query.Has("year")),
		query.Not(query.And(query.Lt("a", 3))),
		query.And(query.Or(query.In("x1", "x", 7))),
	} {
		got, err := query.ParseFilter(e.String())
		require.NoError(t, err, e.String())
		for _, it := range items {
			require.Equal(t, query.Match(e, it), query.Match(got, it), "%s on %v", e, it)
		}
	}
}

// TestFilterRoundTripEdges: what Validate accepts parses back from its
// String (Expr.String's promise); what would not is refused by Validate.
// Empty ANDs and ORs printed as "" and 60 nested NOTs printed deeper than
// the parser takes, while Validate accepted both.
func TestFilterRoundTripEdges(t *testing.T) {
	deepNot := func(n int) query.Expr {
		e := query.Eq("a", 1)
		for range n {
			e = query.Not(e)
		}
		return e
	}
	for _, e := range []query.Expr{query.And(), query.Or(), query.Not(query.And()), query.And(query.Eq("a", 1), query.Or()), deepNot(60)} {
		assert.ErrorIs(t, query.Validate(e), query.ErrSyntax, "%#v", e)
	}
	require.NoError(t, query.Validate(deepNot(50)))
	got, err := query.ParseFilter(deepNot(50).String())
	require.NoError(t, err)
	assert.Equal(t, deepNot(50), got)
}

// --- statements ------------------------------------------------------------

// TestParseStatementClauses: every clause of every statement kind, in
// the forms the grammar allows (case, quoting, order, trailing ';').
func TestParseStatementClauses(t *testing.T) {
	text := func(id string) query.StmtProbe { return query.StmtProbe{Modality: "text", ItemID: id} }
	tests := []struct {
		in   string
		want *query.Statement
	}{
		// SEARCH: targets, probes by ID and by vector, weights.
		{"SEARCH image NEAR text OF 'a'", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}}},
		{"search image near text of 'a';", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}}},
		{"SEARCH image, audio, text NEAR text OF 'it''s'", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image", "audio", "text"}, Probes: []query.StmtProbe{text("it's")}}},
		{`SEARCH "limit" NEAR "where" OF 'a'`, &query.Statement{Kind: query.StmtSearch, Targets: []string{"limit"}, Probes: []query.StmtProbe{{Modality: "where", ItemID: "a"}}}},
		{"SEARCH image NEAR audio [1, -2.5, 3e-2, 0]", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"},
			Probes: []query.StmtProbe{{Modality: "audio", Vector: []float32{1, -2.5, 0.03, 0}}}}},
		{"SEARCH tokens NEAR tokens [[1, 2], [3, 4], [5, 6]]", &query.Statement{Kind: query.StmtSearch, Targets: []string{"tokens"},
			Probes: []query.StmtProbe{{Modality: "tokens", Vector: []float32{1, 2, 3, 4, 5, 6}, SetDim: 2}}}},
		{"SEARCH tokens NEAR tokens [[1]] WEIGHT 2", &query.Statement{Kind: query.StmtSearch, Targets: []string{"tokens"},
			Probes: []query.StmtProbe{{Modality: "tokens", Vector: []float32{1}, SetDim: 1, Weight: 2}}}},
		{"SEARCH image NEAR audio [7]", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{{Modality: "audio", Vector: []float32{7}}}}},
		{"SEARCH image NEAR text OF 'a' WEIGHT 0.25, audio [1, 2] WEIGHT 2, text OF 'b'", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"},
			Probes: []query.StmtProbe{{Modality: "text", ItemID: "a", Weight: 0.25}, {Modality: "audio", Vector: []float32{1, 2}, Weight: 2}, text("b")}}},
		// SEARCH options, alone and in any order.
		{"SEARCH image NEAR text OF 'a' FUSE RRF", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Fuse: "rrf"}},
		{"SEARCH image NEAR text OF 'a' FUSE weighted", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Fuse: "weighted"}},
		{"SEARCH image NEAR text OF 'a' FUSE dbsf", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Fuse: "dbsf"}},
		{"SEARCH image NEAR text OF 'a' FUSE Early", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Fuse: "early"}},
		{"SEARCH image NEAR text OF 'a' WHERE a = 1 OR NOT b = 2", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")},
			Filter: query.Or(query.Eq("a", 1), query.Not(query.Eq("b", 2)))}},
		{"SEARCH image NEAR text OF 'a' LIMIT 7", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Limit: 7}},
		{"SEARCH image NEAR text OF 'a' EF 300", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Ef: 300}},
		{"SEARCH image NEAR text OF 'a' EXACT", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}, Exact: true}},
		{"SEARCH image NEAR text OF 'a' EXACT EF 9 LIMIT 3 WHERE x BETWEEN 1 AND 2 FUSE early;", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"},
			Probes: []query.StmtProbe{text("a")}, Exact: true, Ef: 9, Limit: 3, Filter: query.Range("x", 1, 2), Fuse: "early"}},
		{"SEARCH image NEAR text OF 'a' WHERE x IN ('LIMIT', 2) LIMIT 2", &query.Statement{Kind: query.StmtSearch, Targets: []string{"image"},
			Probes: []query.StmtProbe{text("a")}, Filter: query.In("x", "LIMIT", 2), Limit: 2}},
		// EXPLAIN and EXPLAIN ANALYZE wrap any statement.
		{"EXPLAIN SEARCH image NEAR text OF 'a'", &query.Statement{Kind: query.StmtSearch, Explain: true, Targets: []string{"image"}, Probes: []query.StmtProbe{text("a")}}},
		{"explain analyze COUNT WHERE EXISTS a", &query.Statement{Kind: query.StmtCount, Explain: true, Analyze: true, Filter: query.Has("a")}},
		// GET, DELETE, COUNT, ALIGN.
		{"GET 'x'", &query.Statement{Kind: query.StmtGet, IDs: []string{"x"}}},
		{"GET ''''", &query.Statement{Kind: query.StmtGet, IDs: []string{"'"}}},
		{"DELETE 'x'", &query.Statement{Kind: query.StmtDelete, IDs: []string{"x"}}},
		{"DELETE 'x', 'y', 'z';", &query.Statement{Kind: query.StmtDelete, IDs: []string{"x", "y", "z"}}},
		{"COUNT;", &query.Statement{Kind: query.StmtCount}},
		{"COUNT WHERE (a = 1 OR b = 2) AND c != 'x'", &query.Statement{Kind: query.StmtCount,
			Filter: query.And(query.Or(query.Eq("a", 1), query.Eq("b", 2)), query.Ne("c", "x"))}},
		{"ALIGN a TO b", &query.Statement{Kind: query.StmtAlign, From: "a", To: "b"}},
		{"ALIGN a TO b USING ridge", &query.Statement{Kind: query.StmtAlign, From: "a", To: "b", Method: "ridge"}},
		{"ALIGN a TO b FORCE", &query.Statement{Kind: query.StmtAlign, From: "a", To: "b", Force: true}},
		{"ALIGN a TO b USING cca BY digit FORCE", &query.Statement{Kind: query.StmtAlign, From: "a", To: "b", Method: "cca", Label: "digit", Force: true}},
		{"ALIGN a TO b by by", &query.Statement{Kind: query.StmtAlign, From: "a", To: "b", Label: "by"}},
		{`align "to" to "using" using infonce force;`, &query.Statement{Kind: query.StmtAlign, From: "to", To: "using", Method: "infonce", Force: true}},
		{"-- a comment\nGET 'x' -- and another", &query.Statement{Kind: query.StmtGet, IDs: []string{"x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := query.ParseStatement(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestParseStatementRejects: clauses out of place, repeated or malformed.
func TestParseStatementRejects(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"SEARCH image NEAR text OF 'a' LIMIT 1 LIMIT 2", "LIMIT given twice"},
		{"SEARCH image NEAR text OF 'a' EXACT EXACT", "EXACT given twice"},
		{"SEARCH image NEAR text OF 'a' WHERE a = 1 WHERE b = 2", "WHERE given twice"},
		{"SEARCH image NEAR text OF 'a' FUSE rrf FUSE dbsf", "FUSE given twice"},
		{"SEARCH image NEAR text OF 'a' EF -3", "positive integer"},
		{"SEARCH image NEAR text OF 'a' LIMIT 1.5", "positive integer"},
		{"SEARCH image NEAR text OF 'a' WEIGHT", "a weight"},
		{"SEARCH image NEAR text []", "a number"},
		{"SEARCH t NEAR t [[1, 2], [3]]", "vector 1 of the set has 1 values, the first 2"},
		{"SEARCH t NEAR t [[1, 2], 3]", "the next vector of the set"},
		{"SEARCH t NEAR t [[1, 2]", "',' or ']'"},
		{"SEARCH t NEAR t [[]]", "a number"},
		{"SEARCH NEAR text OF 'a'", "a target modality"},
		{"SEARCH image NEAR OF 'a'", "a probe modality"},
		{"SEARCH image NEAR text OF a", "an item ID in quotes"},
		{"SEARCH image NEAR text OF 'a' WHERE a = 1e999", "bad number"},
		{"SEARCH image NEAR text OF 'a' WHERE a = 1 ORDER BY a", "end of statement"},
		{"EXPLAIN EXPLAIN COUNT", "SEARCH, GET, DELETE, COUNT, ALIGN, CALIBRATE, DROP or EXPLAIN"},
		{"ANALYZE COUNT", "SEARCH, GET, DELETE, COUNT, ALIGN, CALIBRATE, DROP or EXPLAIN"},
		{"DELETE", "an item ID in quotes"},
		{"DELETE 'a',", "an item ID in quotes"},
		{"COUNT WHERE a = 1;;", "end of statement"},
		{"COUNT WHERE \"\" = 1", "empty attribute name"},
		{"ALIGN a TO b USING", "a method"},
		{"GET 'a'; GET 'b'", "end of statement"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := query.ParseStatement(tc.in)
			require.ErrorIs(t, err, query.ErrSyntax)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

// rtName is a random modality name and its text, quoted at random (and
// always when it is a keyword or not an identifier).
func rtName(r *rand.Rand) (name, text string) {
	names := []string{"image", "text", "audio", "v_2", "limit", "Near", "with space"}
	n := names[r.IntN(len(names))]
	if n == "limit" || n == "Near" || n == "with space" || r.IntN(3) == 0 {
		return n, `"` + n + `"`
	}
	return n, n
}

func rtID(r *rand.Rand) (id, text string) {
	id = rtStrings[r.IntN(len(rtStrings))] + strconv.Itoa(r.IntN(100))
	return id, "'" + strings.ReplaceAll(id, "'", "''") + "'"
}

func rtFloat32(r *rand.Rand) (float32, string) {
	f := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(12)-6)))
	if r.IntN(8) == 0 {
		f = float32(r.IntN(5))
	}
	return f, strconv.FormatFloat(float64(f), 'g', -1, 32)
}

// rtStatement renders a random statement of any kind, its SEARCH options
// in random order, and returns it with the statement it must parse to.
func rtStatement(r *rand.Rand) (string, *query.Statement) {
	st := &query.Statement{}
	var b strings.Builder
	if r.IntN(3) == 0 {
		st.Explain = true
		b.WriteString("EXPLAIN ")
		if r.IntN(2) == 0 {
			st.Analyze = true
			b.WriteString("ANALYZE ")
		}
	}
	filter := func() {
		st.Filter = rtValidFilter(r)
		b.WriteString(" WHERE " + st.Filter.String())
	}
	switch r.IntN(5) {
	case 0:
		st.Kind = query.StmtSearch
		b.WriteString("SEARCH ")
		for i := range 1 + r.IntN(3) {
			n, text := rtName(r)
			if i > 0 {
				b.WriteString(", ")
			}
			st.Targets = append(st.Targets, n)
			b.WriteString(text)
		}
		b.WriteString(" NEAR ")
		for i := range 1 + r.IntN(3) {
			if i > 0 {
				b.WriteString(", ")
			}
			var p query.StmtProbe
			var text string
			p.Modality, text = rtName(r)
			b.WriteString(text)
			if r.IntN(2) == 0 {
				p.ItemID, text = rtID(r)
				b.WriteString(" OF " + text)
			} else {
				b.WriteString(" [")
				for j := range 1 + r.IntN(4) {
					f, text := rtFloat32(r)
					if j > 0 {
						b.WriteString(", ")
					}
					p.Vector = append(p.Vector, f)
					b.WriteString(text)
				}
				b.WriteString("]")
			}
			if r.IntN(2) == 0 {
				w, text := rtFloat32(r)
				p.Weight = w
				b.WriteString(" WEIGHT " + text)
			}
			st.Probes = append(st.Probes, p)
		}
		for _, k := range r.Perm(5) {
			if r.IntN(2) == 0 {
				continue
			}
			switch k {
			case 0:
				switch r.IntN(4) { // untyped constants: Fuse's type may change
				case 0:
					st.Fuse = "rrf"
				case 1:
					st.Fuse = "weighted"
				case 2:
					st.Fuse = "dbsf"
				default:
					st.Fuse = "early"
				}
				b.WriteString(" FUSE " + strings.ToUpper(string(st.Fuse)))
			case 1:
				filter()
			case 2:
				st.Limit = 1 + r.IntN(1000)
				b.WriteString(" LIMIT " + strconv.Itoa(st.Limit))
			case 3:
				st.Ef = 1 + r.IntN(1000)
				b.WriteString(" EF " + strconv.Itoa(st.Ef))
			case 4:
				st.Exact = true
				b.WriteString(" EXACT")
			}
		}
	case 1:
		st.Kind = query.StmtGet
		id, text := rtID(r)
		st.IDs = []string{id}
		b.WriteString("GET " + text)
	case 2:
		st.Kind = query.StmtDelete
		b.WriteString("DELETE ")
		for i := range 1 + r.IntN(4) {
			id, text := rtID(r)
			if i > 0 {
				b.WriteString(", ")
			}
			st.IDs = append(st.IDs, id)
			b.WriteString(text)
		}
	case 3:
		st.Kind = query.StmtCount
		b.WriteString("COUNT")
		if r.IntN(3) > 0 {
			filter()
		}
	default:
		st.Kind = query.StmtAlign
		var from, to string
		st.From, from = rtName(r)
		st.To, to = rtName(r)
		b.WriteString("ALIGN " + from + " TO " + to)
		if r.IntN(2) == 0 {
			st.Method = []string{"auto", "ridge", "procrustes", "cca", "infonce"}[r.IntN(5)]
			b.WriteString(" USING " + st.Method)
		}
		if r.IntN(2) == 0 {
			var label string
			st.Label, label = rtName(r)
			b.WriteString(" BY " + label)
		}
		if r.IntN(2) == 0 {
			st.Force = true
			b.WriteString(" FORCE")
		}
	}
	if r.IntN(2) == 0 {
		b.WriteString(";")
	}
	return b.String(), st
}

// rtValidFilter is a random filter that Validate accepts (no empty
// attribute name).
func rtValidFilter(r *rand.Rand) query.Expr {
	for {
		if e := rtFilter(r, 3); query.Validate(e) == nil {
			return e
		}
	}
}

// TestStatementRoundTripRandom: Statement has no String method, so the test
// renders random statements of every kind itself (SEARCH options in any
// order, names quoted or not, filters from rtFilter) and checks that
// ParseStatement gives back exactly the statement rendered.
func TestStatementRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 4))
	kinds := map[string]int{}
	for range 300 {
		text, want := rtStatement(r)
		got, err := query.ParseStatement(text)
		require.NoError(t, err, text)
		require.Equal(t, want, got, text)
		kinds[got.Kind]++
	}
	for _, k := range []string{query.StmtSearch, query.StmtGet, query.StmtDelete, query.StmtCount, query.StmtAlign} {
		assert.Positive(t, kinds[k], k)
	}
}
