package mmdb

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// surfaceDB holds 400 items: image and text in one space (the direct
// route), audio in another reached by a stored map from text (aligned)
// and by pivoting from image (pivot); random vectors, so no ties.
func surfaceDB(t *testing.T) (*DB, []Item) {
	t.Helper()
	db, _ := openTest(t, Modality{Name: "image", Dim: 8, Metric: Cosine, Space: "clip"}, Modality{Name: "text", Dim: 8, Metric: Cosine, Space: "clip"},
		Modality{Name: "audio", Dim: 6, Metric: Cosine, Space: "clap"})
	r := rand.New(rand.NewPCG(3, 4))
	vec := func(d int) []float32 {
		v := make([]float32, d)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	items := make([]Item, 400)
	for i := range items {
		img := vec(8)
		txt := make([]float32, 8)
		for j := range txt {
			txt[j] = img[j] + 0.5*float32(r.NormFloat64())
		}
		items[i] = Item{ID: fmt.Sprintf("it-%03d", i), Attrs: map[string]any{"year": 2000 + i%20},
			Vectors: map[string][]float32{"image": img, "text": txt, "audio": append(img[:3:3], vec(3)...)}}
	}
	require.NoError(t, db.Put(ctx, items...))
	w := make([][]float32, 6)
	for i := range w {
		w[i] = vec(8)
	}
	require.NoError(t, db.SetAlignment(Alignment{From: "text", To: "audio", W: w, Method: "test"}))
	return db, items
}

// bruteDirect ranks every item's target vector by cosine to probe, best
// first, keeping those keep allows.
func bruteDirect(items []Item, target string, probe []float32, keep func(Item) bool) []Hit {
	var out []Hit
	p := normalised(probe)
	for _, it := range items {
		if keep != nil && !keep(it) {
			continue
		}
		s := kernel.DotProduct(p, normalised(it.Vectors[target]))
		out = append(out, Hit{ID: it.ID, Score: s, Distance: 1 - s})
	}
	slices.SortFunc(out, func(a, b Hit) int { return cmp.Compare(b.Score, a.Score) })
	return out
}

func normalised(v []float32) []float32 {
	m, _ := (Modality{Name: "x", Dim: len(v), Metric: Cosine}).Prepare(v)
	return m
}

func ids(hs []Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// Offsets, exclusions and score bounds give what a brute-force ranking
// gives, on the direct, aligned and pivot routes and with fusion: pages
// of an exact search concatenate to the whole ranking, excluded items are
// gone and nothing else is, and bounds cut the ranking where it crosses
// them.
func TestOffsetExcludeBoundsAgainstBruteForce(t *testing.T) {
	db, items := surfaceDB(t)
	byID := map[string]Item{}
	for _, it := range items {
		byID[it.ID] = it
	}
	recent := query.MustParse("year >= 2010")
	isRecent := func(it Item) bool { return it.Attrs["year"].(int) >= 2010 }

	routes := []struct {
		name   string
		q      Query
		direct func(keep func(Item) bool) []Hit // an independent brute force, where one is simple
	}{
		{"direct", Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "it-007"}}},
			func(keep func(Item) bool) []Hit {
				return bruteDirect(items, "image", byID["it-007"].Vectors["text"], keep)
			}},
		{"aligned", Query{Target: "audio", Probes: []Probe{{Modality: "text", ItemID: "it-011"}}}, nil},
		{"pivot", Query{Target: "audio", Probes: []Probe{{Modality: "image", ItemID: "it-013"}}}, nil},
		{"rrf", Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "it-007"}, {Modality: "text", ItemID: "it-021"}}}, nil},
		{"early", Query{Target: "image", Fuse: fusion.Early, Probes: []Probe{{Modality: "text", ItemID: "it-007"}, {Modality: "text", ItemID: "it-021"}}}, nil},
	}
	for _, rt := range routes {
		for _, filtered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s filtered=%v", rt.name, filtered), func(t *testing.T) {
				base := rt.q
				base.Exact, base.K = true, 100
				var keep func(Item) bool
				if filtered {
					base.Filter, keep = recent, isRecent
				}
				all, err := db.Search(ctx, base)
				require.NoError(t, err)
				require.Len(t, all, 100)
				if rt.direct != nil {
					want := rt.direct(keep)[:100]
					assert.Equal(t, ids(want), ids(all), "the exact search is the brute force")
					for i := range want {
						assert.InDelta(t, want[i].Score, all[i].Score, 1e-5)
					}
				}
				// Pages of 7 concatenate to the ranking (refused for RRF,
				// whose lists would be of another depth on each page).
				var paged []Hit
				for off := 0; off < 98; off += 7 {
					q := base
					q.K, q.Offset = 7, off
					page, err := db.Search(ctx, q)
					if rt.name == "rrf" && off > 0 {
						require.ErrorIs(t, err, ErrInvalidQuery)
						assert.Contains(t, err.Error(), "OFFSET into a rrf-fused ranking")
						break
					}
					require.NoError(t, err)
					paged = append(paged, page...)
				}
				if rt.name != "rrf" {
					assert.Equal(t, ids(all[:98]), ids(paged))
				}

				// Excluded IDs are gone, nothing else.
				q := base
				q.K = 20
				q.Exclude = []string{all[0].ID, all[3].ID, all[4].ID, "no-such-item"}
				got, err := db.Search(ctx, q)
				require.NoError(t, err)
				var want []string
				for _, h := range all {
					if !slices.Contains(q.Exclude, h.ID) && len(want) < 20 {
						want = append(want, h.ID)
					}
				}
				if rt.name == "rrf" {
					// RRF ranks by position in each list: an excluded item
					// moves the others up, and the fused order changes.
					assert.Len(t, got, 20)
					for _, x := range q.Exclude {
						assert.NotContains(t, ids(got), x)
					}
				} else {
					assert.Equal(t, want, ids(got))
				}

				// Bounds cut the ranking where it crosses them.
				bound := all[9].Score
				q = base
				q.MinScore = &bound
				got, err = db.Search(ctx, q)
				if rt.name == "rrf" {
					require.ErrorIs(t, err, ErrInvalidQuery)
					assert.Contains(t, err.Error(), "fused score")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, ids(all[:10]), ids(got))
				dist := all[14].Distance
				q = base
				q.MaxDistance, q.Offset, q.K = &dist, 5, 50
				got, err = db.Search(ctx, q)
				require.NoError(t, err)
				assert.Equal(t, ids(all[5:15]), ids(got))
			})
		}
	}
}

// A probe item in the target's own modality is left out (it would match
// itself first); KeepProbeItems keeps it; an item's own image stays for
// its caption.
func TestProbeItemsExcluded(t *testing.T) {
	db, _ := surfaceDB(t)
	q := Query{Target: "image", K: 3, Exact: true, Probes: []Probe{{Modality: "image", ItemID: "it-005"}}}
	hits, err := db.Search(ctx, q)
	require.NoError(t, err)
	assert.NotContains(t, ids(hits), "it-005")
	q.KeepProbeItems = true
	hits, err = db.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, "it-005", hits[0].ID)
	assert.InDelta(t, 1, hits[0].Score, 1e-6)
	cross, err := db.Search(ctx, Query{Target: "image", K: 400, Probes: []Probe{{Modality: "text", ItemID: "it-005"}}})
	require.NoError(t, err)
	assert.Contains(t, ids(cross), "it-005")

	plan, err := db.Explain(ctx, Query{Target: "image", K: 3, Offset: 6, Exclude: []string{"it-001"}, Probes: []Probe{{Modality: "image", ItemID: "it-005"}}})
	require.NoError(t, err)
	assert.Contains(t, plan.String(), "SEARCH image NEAR image OF 'it-005' LIMIT 3 OFFSET 6 EXCLUDE 'it-001'\n")
	assert.Contains(t, plan.String(), "exclude: 2 items (listed, or the probes' own) -> 398 candidates")
}

// Statements: OFFSET, EXCLUDE, SCORE >= and DISTANCE <= in any order,
// hits with their attributes, several IDs in one GET, and the bounds'
// errors.
func TestSurfaceStatements(t *testing.T) {
	db, _ := surfaceDB(t)
	all, err := db.Query(ctx, "SEARCH image NEAR text OF 'it-007' WHERE year >= 2005 LIMIT 12 EXACT")
	require.NoError(t, err)
	require.Len(t, all.Hits, 12)
	assert.Equal(t, map[string]any{"year": all.Hits[0].Attrs["year"]}, all.Hits[0].Attrs)
	assert.GreaterOrEqual(t, all.Hits[0].Attrs["year"], int64(2005))
	s := all.Hits[5].Score
	res, err := db.Query(ctx, fmt.Sprintf("SEARCH image NEAR text OF 'it-007' EXACT OFFSET 2 SCORE >= %v WHERE year >= 2005 EXCLUDE '%s' LIMIT 12", s, all.Hits[3].ID))
	require.NoError(t, err)
	assert.Equal(t, []string{all.Hits[2].ID, all.Hits[4].ID, all.Hits[5].ID}, ids(res.Hits))

	noAttrs, err := db.Search(ctx, Query{Target: "image", K: 2, NoAttrs: true, Probes: []Probe{{Modality: "text", ItemID: "it-007"}}})
	require.NoError(t, err)
	assert.Nil(t, noAttrs[0].Attrs)

	got, err := db.Query(ctx, "GET 'it-003', 'it-001'")
	require.NoError(t, err)
	require.Len(t, got.Items, 2)
	assert.Equal(t, "it-003", got.Items[0].ID)
	assert.Equal(t, "it-001", got.Items[1].ID)
	assert.Equal(t, 2, got.Count)
	_, err = db.Query(ctx, "GET 'it-003', 'nope'")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), `"nope"`)

	for stmt, msg := range map[string]string{
		"SEARCH image NEAR text OF 'it-001', text OF 'it-002' SCORE >= 0.5": "fused score",
		"SEARCH image, audio NEAR text OF 'it-001' DISTANCE <= 0.5":         "several targets",
		"SEARCH image NEAR text OF 'it-001' LIMIT 10 OFFSET 2000000":        "MaxOffset",
		"SEARCH image NEAR text OF 'it-001' SCORE > 0.5":                    "SCORE >= <number>",
		"SEARCH image NEAR text OF 'it-001' OFFSET -1":                      "a whole number of hits to skip",
		"SEARCH image NEAR text OF 'it-001' WHERE distance < 0.5":           "use SCORE >= x or DISTANCE <= x",
		"SEARCH image NEAR text OF 'it-001' OFFSET 1 OFFSET 2":              "OFFSET given twice",
	} {
		_, err := db.Query(ctx, stmt)
		require.Error(t, err, stmt)
		assert.Contains(t, err.Error(), msg, stmt)
	}
}

// Scroll pages through every item once, in insertion order, resuming
// from a cursor's text form; items deleted before the scan reaches them
// are not seen, items added during it are.
func TestScroll(t *testing.T) {
	db, items := surfaceDB(t)
	var seen []string
	var c Cursor
	for pages := 0; ; pages++ {
		page, next, err := db.Scroll(ctx, c, 64)
		require.NoError(t, err)
		seen = append(seen, ids(hitsOf(page))...)
		if pages == 1 {
			require.NoError(t, db.Delete(ctx, "it-399", "it-200"))
			require.NoError(t, db.Put(ctx, Item{ID: "late", Vectors: map[string][]float32{"image": {1, 0, 0, 0, 0, 0, 0, 0}}}))
		}
		if next == (Cursor{}) {
			break
		}
		c, err = ParseCursor(next.String()) // as if from another process
		require.NoError(t, err)
	}
	var want []string
	for _, it := range items {
		if it.ID != "it-399" && it.ID != "it-200" {
			want = append(want, it.ID)
		}
	}
	assert.Equal(t, append(want, "late"), seen)
	c, err := db.CursorAfter("it-397")
	require.NoError(t, err)
	rest, _, err := db.Scroll(ctx, c, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"it-398", "late"}, ids(hitsOf(rest)), "after it-397: it-398 (it-399 was deleted), then the late one")
	_, err = db.CursorAfter("it-399")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = ParseCursor("x12")
	require.ErrorIs(t, err, ErrInvalidQuery)
	_, _, err = db.Scroll(ctx, Cursor{}, 0)
	require.ErrorIs(t, err, ErrInvalidQuery)
}

func hitsOf(items []Item) []Hit {
	out := make([]Hit, len(items))
	for i, it := range items {
		out[i] = Hit{ID: it.ID}
	}
	return out
}

// DELETE WHERE deletes exactly the items the filter matches (counted
// against COUNT WHERE), and refuses an unknown attribute.
func TestDeleteWhere(t *testing.T) {
	db, _ := surfaceDB(t)
	before, err := db.Query(ctx, "COUNT WHERE year < 2003")
	require.NoError(t, err)
	require.Equal(t, 60, before.Count)
	res, err := db.Query(ctx, "DELETE WHERE year < 2003")
	require.NoError(t, err)
	assert.Equal(t, 60, res.Count)
	after, err := db.Query(ctx, "COUNT")
	require.NoError(t, err)
	assert.Equal(t, 340, after.Count)
	_, err = db.Get(ctx, "it-001")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = db.Query(ctx, "DELETE WHERE yeer < 2003")
	require.ErrorIs(t, err, ErrUnknownAttribute)
	_, err = db.DeleteWhere(ctx, nil)
	require.ErrorIs(t, err, ErrInvalidQuery)
	hits, err := db.Search(ctx, Query{Target: "image", K: 400, Exact: true, Probes: []Probe{{Modality: "text", ItemID: "it-105"}}})
	require.NoError(t, err)
	assert.Len(t, hits, 340, "the indexes lost the deleted items too")
}

// groupBrute keeps at most per hits for each value of attr along a full
// ranking, as GROUP BY must.
func groupBrute(all []Hit, attr string, per, k int) []string {
	count := map[any]int{}
	var out []string
	for _, h := range all {
		v, ok := h.Attrs[attr]
		if !ok || count[v] >= per {
			continue
		}
		count[v]++
		if out = append(out, h.ID); len(out) == k {
			break
		}
	}
	return out
}

// GROUP BY keeps at most PER hits for each value, best first, equal to
// the brute force on every route; items without the attribute are left
// out; the search goes deeper until the page is full.
func TestGroupBy(t *testing.T) {
	db, _ := surfaceDB(t)
	require.NoError(t, db.Put(ctx, Item{ID: "no-year", Vectors: map[string][]float32{"image": {1, 1, 1, 1, 1, 1, 1, 1}, "audio": {1, 1, 1, 1, 1, 1}}}))
	for _, q := range []Query{
		{Target: "image", Probes: []Probe{{Modality: "text", Vector: []float32{1, 1, 1, 1, 1, 1, 1, 1}}}},
		{Target: "audio", Probes: []Probe{{Modality: "text", ItemID: "it-011"}}},
		{Target: "audio", Probes: []Probe{{Modality: "image", ItemID: "it-013"}}},
		{Target: "image", Fuse: fusion.Early, Probes: []Probe{{Modality: "text", ItemID: "it-007"}, {Modality: "image", ItemID: "it-021"}}},
	} {
		base := q
		base.Exact, base.K = true, 401
		all, err := db.Search(ctx, base)
		require.NoError(t, err)
		for _, per := range []int{1, 2, 7} {
			g := q
			g.K, g.GroupBy, g.GroupSize = 15, "year", per
			got, err := db.Search(ctx, g)
			require.NoError(t, err)
			want := groupBrute(all, "year", per, 15)
			assert.Equal(t, want, ids(got), "per %d, %v", per, q.Probes)
			assert.NotContains(t, ids(got), "no-year")
		}
	}
	// 20 years x 2: the 41st hit does not exist, and the search said so
	// after going to the bottom of the candidates.
	plan, hits, err := db.ExplainAnalyze(ctx, Query{Target: "image", K: 41, GroupBy: "year", GroupSize: 2, Probes: []Probe{{Modality: "text", ItemID: "it-001"}}})
	require.NoError(t, err)
	assert.Len(t, hits, 40)
	assert.Contains(t, plan.String(), "group by year: at most 2 hits per value")

	res, err := db.Query(ctx, "SEARCH image NEAR text OF 'it-001' GROUP BY year PER 3 LIMIT 9")
	require.NoError(t, err)
	years := map[any]int{}
	for _, h := range res.Hits {
		years[h.Attrs["year"]]++
	}
	require.Len(t, res.Hits, 9)
	for y, n := range years {
		assert.LessOrEqual(t, n, 3, "year %v", y)
	}
	_, err = db.Query(ctx, "SEARCH image NEAR text OF 'it-001' GROUP BY label")
	require.ErrorIs(t, err, ErrUnknownAttribute)

	// A list value counts in each of its groups.
	db2, _ := openTest(t, imgMod)
	require.NoError(t, db2.Put(ctx,
		Item{ID: "a", Attrs: map[string]any{"tags": []string{"dog", "cat"}}, Vectors: map[string][]float32{"image": {1, 0, 0, 0}}},
		Item{ID: "b", Attrs: map[string]any{"tags": []string{"dog"}}, Vectors: map[string][]float32{"image": {0.9, 0.1, 0, 0}}},
		Item{ID: "c", Attrs: map[string]any{"tags": []string{"cat"}}, Vectors: map[string][]float32{"image": {0.8, 0.2, 0, 0}}},
		Item{ID: "d", Attrs: map[string]any{"tags": []string{"bird", "dog"}}, Vectors: map[string][]float32{"image": {0.7, 0.3, 0, 0}}}))
	got, err := db2.Search(ctx, Query{Target: "image", GroupBy: "tags", Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "d"}, ids(got), "a fills dog and cat; b and c find no room; d has room in bird")
}

// Negative weights are examples to move away from (Qdrant's recommend,
// average vector): one search with 2 x mean(positive) - mean(negative),
// equal to the brute force; refused with list fusion and without a
// positive example.
func TestNegativeExamples(t *testing.T) {
	db, items := surfaceDB(t)
	byID := map[string]Item{}
	for _, it := range items {
		byID[it.ID] = it
	}
	p1, p2, n1 := normalised(byID["it-007"].Vectors["text"]), normalised(byID["it-030"].Vectors["text"]), normalised(byID["it-021"].Vectors["text"])
	q := make([]float32, 8)
	for j := range q {
		// weights 1 and 3 on the positives, 2 on the negative
		q[j] = 2*(1*p1[j]+3*p2[j])/4 - n1[j]
	}
	want := bruteDirect(items, "image", q, nil)[:20]
	res, err := db.Query(ctx, "SEARCH image NEAR text OF 'it-007', text OF 'it-030' WEIGHT 3, text OF 'it-021' WEIGHT -2 LIMIT 20 EXACT")
	require.NoError(t, err)
	assert.Equal(t, ids(want), ids(res.Hits))
	for i := range want {
		assert.InDelta(t, want[i].Score, res.Hits[i].Score, 1e-5)
	}
	ex, err := db.Query(ctx, "EXPLAIN SEARCH image NEAR text OF 'it-007', text OF 'it-021' WEIGHT -1")
	require.NoError(t, err)
	assert.Contains(t, ex.String(), "weight -1")
	assert.Contains(t, ex.String(), "fusion: early")

	for stmt, msg := range map[string]string{
		"SEARCH image NEAR text OF 'it-007', text OF 'it-021' WEIGHT -1 FUSE rrf": "need FUSE early (one search with 2 x mean(positive) - mean(negative)) or FUSE best_score",
		"SEARCH image NEAR text OF 'it-021' WEIGHT -1":                            "give at least one example to move towards",
		"SEARCH audio NEAR image OF 'it-007', image OF 'it-021' WEIGHT -1":        "early fusion needs every probe in the target's space",
	} {
		_, err := db.Query(ctx, stmt)
		require.ErrorIs(t, err, ErrInvalidQuery, stmt)
		assert.Contains(t, err.Error(), msg, stmt)
	}
}

// CALIBRATE and DROP as statements: what they store, what they remove.
func TestCalibrateAndDropStatements(t *testing.T) {
	db, _ := surfaceDB(t)
	res, err := db.Query(ctx, "CALIBRATE text TO image CENTRE FORCE")
	require.NoError(t, err)
	require.NotNil(t, res.Calibration)
	assert.NotEmpty(t, res.Calibration.Measured)
	st, err := db.Stats()
	require.NoError(t, err)
	assert.Len(t, st.Calibrations, 1)
	_, err = db.Query(ctx, "CALIBRATE text TO image")
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "say what to measure")

	res, err = db.Query(ctx, "DROP CALIBRATION text TO image")
	require.NoError(t, err)
	assert.Equal(t, 1, res.Count)
	res, err = db.Query(ctx, "DROP CALIBRATION text TO image")
	require.NoError(t, err)
	assert.Equal(t, 0, res.Count, "nothing left to drop")

	plan, err := db.Explain(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "text", ItemID: "it-001"}}})
	require.NoError(t, err)
	assert.Equal(t, RouteAligned, plan.Probes[0].Route)
	res, err = db.Query(ctx, "DROP ALIGNMENT text TO audio")
	require.NoError(t, err)
	assert.Equal(t, 1, res.Count)
	plan, err = db.Explain(ctx, Query{Target: "audio", Probes: []Probe{{Modality: "text", ItemID: "it-001"}}})
	require.NoError(t, err)
	assert.Equal(t, RoutePivot, plan.Probes[0].Route, "without the map, the pivot")
	_, err = db.Query(ctx, "DROP TABLE audio")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ALIGNMENT, CALIBRATION or MODALITY after DROP")
}

// LIKE 'prefix%' matches what strings.HasPrefix says, on strings and on
// lists, through the postings (COUNT, DELETE) and inside a search; other
// wildcards are refused, not taken literally.
func TestLikePrefix(t *testing.T) {
	db, _ := openTest(t, imgMod)
	names := []string{"apple", "apricot", "ap", "a", "banana", "ap%x", "Apple", "äpfel", "ap_y", "apz\xff"}
	var items []Item
	for i, n := range names {
		if !utf8.ValidString(n) {
			continue
		}
		items = append(items, Item{ID: fmt.Sprint(i), Attrs: map[string]any{"name": n, "tags": []string{"x" + n, n}},
			Vectors: map[string][]float32{"image": {1, float32(i), 0, 0}}})
	}
	require.NoError(t, db.Put(ctx, items...))
	for _, f := range []string{"name LIKE 'ap%'", "name LIKE 'a%'", "name LIKE '%'", "name LIKE 'ap\\%%'", "name LIKE 'ap\\_%'",
		"tags LIKE 'xap%'", "name LIKE 'apple'", "NOT name LIKE 'ap%'", "name LIKE 'äp%'", "name LIKE 'zz%'"} {
		e, err := query.ParseFilter(f)
		require.NoError(t, err, f)
		want := 0
		for _, it := range items {
			if query.Match(e, it.Attrs) {
				want++
			}
		}
		res, err := db.Query(ctx, "COUNT WHERE "+f)
		require.NoError(t, err, f)
		assert.Equal(t, want, res.Count, f)
		hits, err := db.Search(ctx, Query{Target: "image", K: 20, Filter: e, Probes: []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}})
		require.NoError(t, err)
		assert.Len(t, hits, want, f)
		again, err := query.ParseFilter(e.String())
		require.NoError(t, err, e.String())
		assert.Equal(t, e.String(), again.String())
	}
	n, err := query.ParseFilter("name LIKE 'ap%'")
	require.NoError(t, err)
	assert.Equal(t, query.StartsWith("name", "ap"), n)
	for _, bad := range []string{"name LIKE '%pp%'", "name LIKE 'a_ple'", "name LIKE 3"} {
		_, err := query.ParseFilter(bad)
		require.ErrorIs(t, err, query.ErrSyntax, bad)
	}
}

// Ranked pages over 100k items, to the last one: each hit exactly once,
// the ranking continued page to page, with a filter too; deep pages scan.
func TestOffsetPagesOver100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: stores 100,000 items")
	}
	db, err := Open(filepath.Join(t.TempDir(), "p.mmdb"), &Options{NoSync: true, Index: hnsw.Config{M: 8, EfConstruction: 16}})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(Modality{Name: "v", Dim: 4, Metric: L2}))
	r := rand.New(rand.NewPCG(5, 6))
	items := make([]Item, 100_000)
	for i := range items {
		items[i] = Item{ID: fmt.Sprintf("p%06d", i), Attrs: map[string]any{"odd": i%2 == 1},
			Vectors: map[string][]float32{"v": {r.Float32(), r.Float32(), r.Float32(), r.Float32()}}}
	}
	require.NoError(t, db.Put(ctx, items...))
	for _, f := range []query.Expr{nil, query.Eq("odd", true)} {
		seen := map[string]bool{}
		var last float32 = -1
		const page = 10_000
		for off := 0; ; off += page {
			hits, err := db.Search(ctx, Query{Target: "v", K: page, Offset: off, Filter: f, NoAttrs: true,
				Probes: []Probe{{Modality: "v", Vector: []float32{0.5, 0.5, 0.5, 0.5}}}})
			require.NoError(t, err)
			for _, h := range hits {
				require.False(t, seen[h.ID], "hit %s on two pages", h.ID)
				seen[h.ID] = true
				require.GreaterOrEqual(t, h.Distance, last, "pages continue the ranking")
				last = h.Distance
			}
			if len(hits) < page {
				break
			}
		}
		want := 100_000
		if f != nil {
			want = 50_000
		}
		assert.Len(t, seen, want, "every item once")
	}
}

// Tied hits page once each: exact pages over 60 identical vectors return
// all 60, none twice (the top-k heap orders equal distances by ID).
func TestOffsetPagesWithTies(t *testing.T) {
	db, _ := openTest(t, imgMod)
	var items []Item
	for i := range 60 {
		items = append(items, Item{ID: fmt.Sprintf("t%02d", i), Attrs: map[string]any{"g": i % 3}, Vectors: map[string][]float32{"image": {1, 2, 3, 4}}})
	}
	require.NoError(t, db.Put(ctx, items...))
	for _, grouped := range []bool{false, true} {
		seen := map[string]bool{}
		for off := 0; off < 60; off += 10 {
			q := Query{Target: "image", K: 10, Offset: off, Exact: true, Probes: []Probe{{Modality: "image", Vector: []float32{1, 2, 3, 4}}}}
			if grouped {
				q.GroupBy, q.GroupSize, q.K, q.Offset = "g", 20, 10, off
			}
			hits, err := db.Search(ctx, q)
			require.NoError(t, err)
			require.Len(t, hits, 10)
			for _, h := range hits {
				require.False(t, seen[h.ID], "%s on two pages (grouped %v)", h.ID, grouped)
				seen[h.ID] = true
			}
		}
		assert.Len(t, seen, 60)
	}
}

// GROUP BY finds a group however far its items are, skips items without
// the attribute in the search itself, groups numbers by value and a
// list's repeated values once; over several targets it is refused, and a
// probe item never finds itself through any target.
func TestGroupByFarGroupsAndKeys(t *testing.T) {
	db, _ := openTest(t, imgMod, txtMod)
	r := rand.New(rand.NewPCG(8, 9))
	var items []Item
	for i := range 3000 {
		v := []float32{1, 0.01 * r.Float32(), 0.01 * r.Float32(), 0}
		a := map[string]any{"kind": "common"}
		if i%300 == 0 {
			v, a = []float32{0, 0, 0.01 * r.Float32(), 1}, map[string]any{"kind": "rare", "only": "x"}
		}
		items = append(items, Item{ID: fmt.Sprintf("g%04d", i), Attrs: a, Vectors: map[string][]float32{"image": v, "text": v}})
	}
	require.NoError(t, db.Put(ctx, items...))
	probe := []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}
	hits, err := db.Search(ctx, Query{Target: "image", K: 2, GroupBy: "kind", Probes: probe})
	require.NoError(t, err)
	require.Len(t, hits, 2)
	assert.Equal(t, "rare", hits[1].Attrs["kind"], "the far group is found")
	hits, err = db.Search(ctx, Query{Target: "image", K: 20, GroupBy: "only", GroupSize: 20, Probes: probe})
	require.NoError(t, err)
	assert.Len(t, hits, 10, "the 10 items that have the attribute, however far")

	_, err = db.Search(ctx, Query{Targets: []string{"image", "text"}, GroupBy: "kind", Probes: probe})
	require.ErrorIs(t, err, ErrInvalidQuery)
	multi, err := db.Search(ctx, Query{Targets: []string{"image", "text"}, K: 5, Probes: []Probe{{Modality: "image", ItemID: "g0001"}}})
	require.NoError(t, err)
	assert.NotContains(t, ids(multi), "g0001")

	db2, _ := openTest(t, imgMod)
	require.NoError(t, db2.Put(ctx,
		Item{ID: "a", Attrs: map[string]any{"y": 2010, "tags": []string{"dog", "dog"}}, Vectors: map[string][]float32{"image": {1, 0, 0, 0}}},
		Item{ID: "b", Attrs: map[string]any{"y": 2010.0, "tags": []string{"dog"}}, Vectors: map[string][]float32{"image": {0.9, 0.1, 0, 0}}},
		Item{ID: "c", Attrs: map[string]any{"y": 2011, "tags": []string{"cat"}}, Vectors: map[string][]float32{"image": {0.8, 0.2, 0, 0}}}))
	p := []Probe{{Modality: "image", Vector: []float32{1, 0, 0, 0}}}
	got, err := db2.Search(ctx, Query{Target: "image", GroupBy: "y", Probes: p})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c"}, ids(got), "2010 and 2010.0 are one group")
	got, err = db2.Search(ctx, Query{Target: "image", GroupBy: "tags", GroupSize: 2, Probes: p})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, ids(got), "a's two dogs count once")
}

// Corrections that would overflow a score are refused: a tiny BETA (its
// hubness is log(n)/beta) or a penalty beyond float32.
func TestCalibrateRefusesOverflow(t *testing.T) {
	db, _ := surfaceDB(t)
	_, err := db.Query(ctx, "CALIBRATE text TO image BETA 1e-37 ALPHA 100 FORCE")
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "must be 0 (none) or between 0.001 and 1000")
	c := &Calibration{Alpha: 100, hub: map[uint32]float32{1: 1e30}}
	require.Error(t, c.validNumbers())
}

// KEEP PROBES keeps the probe item; the plan's header says so and parses
// back; DROP ALIGNMENT names an unknown modality.
func TestKeepProbesAndDropErrors(t *testing.T) {
	db, _ := surfaceDB(t)
	res, err := db.Query(ctx, "SEARCH image NEAR image OF 'it-005' LIMIT 1 KEEP PROBES EXACT")
	require.NoError(t, err)
	assert.Equal(t, "it-005", res.Hits[0].ID)
	ex, err := db.Query(ctx, "EXPLAIN SEARCH image NEAR image OF 'it-005' KEEP PROBES GROUP BY year")
	require.NoError(t, err)
	header, _, _ := strings.Cut(ex.Plans[0].String(), "\n")
	assert.Equal(t, "SEARCH image NEAR image OF 'it-005' LIMIT 10 KEEP PROBES GROUP BY year PER 1", header)
	_, err = query.ParseStatement(header)
	require.NoError(t, err)
	_, err = db.Query(ctx, "DROP ALIGNMENT foo TO audio")
	require.ErrorIs(t, err, ErrUnknownModality)
}

// EXPLAIN's JSON has no recall (nothing was measured); ANALYZE's has it.
func TestPlanJSONRecall(t *testing.T) {
	db, _ := surfaceDB(t)
	q := Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: "it-001"}}}
	p, err := db.Explain(ctx, q)
	require.NoError(t, err)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"recall"`)
	assert.Contains(t, string(b), `"statement":"SEARCH image NEAR text OF 'it-001' LIMIT 10"`)
	p, _, err = db.ExplainAnalyze(ctx, q)
	require.NoError(t, err)
	b, err = json.Marshal(p)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"recall":1`)
}

// FUSE best_score ranks each candidate by its best positive example, or
// below all such by its best negative one (Qdrant's recommend
// best_score), equal to the brute force; it pages exactly.
func TestBestScore(t *testing.T) {
	db, items := surfaceDB(t)
	byID := map[string]Item{}
	for _, it := range items {
		byID[it.ID] = it
	}
	pos1, pos2, neg := normalised(byID["it-007"].Vectors["text"]), normalised(byID["it-030"].Vectors["text"]), normalised(byID["it-021"].Vectors["text"])
	type scored struct {
		id string
		s  float64
	}
	var want []scored
	for _, it := range items {
		if it.Attrs["year"].(int) < 2005 {
			continue
		}
		v := normalised(it.Vectors["image"])
		p := max(float64(kernel.DotProduct(pos1, v)), float64(kernel.DotProduct(pos2, v)))
		n := float64(kernel.DotProduct(neg, v))
		sig := func(x float64) float64 { return (x/(1+math.Abs(x)) + 1) / 2 } // an independent copy of the rule
		s := sig(p)
		if n > p {
			s = -sig(n)
		}
		want = append(want, scored{it.ID, s})
	}
	slices.SortFunc(want, func(a, b scored) int { return cmp.Compare(b.s, a.s) })
	stmt := "SEARCH image NEAR text OF 'it-007', text OF 'it-030', text OF 'it-021' WEIGHT -1 FUSE best_score WHERE year >= 2005 LIMIT 15"
	res, err := db.Query(ctx, stmt)
	require.NoError(t, err)
	require.Len(t, res.Hits, 15)
	for i, h := range res.Hits {
		assert.Equal(t, want[i].id, h.ID, "rank %d", i+1)
		assert.InDelta(t, want[i].s, h.Score, 1e-5)
	}
	page, err := db.Query(ctx, stmt+" OFFSET 15")
	require.NoError(t, err)
	assert.Equal(t, want[15].id, page.Hits[0].ID)
	ex, err := db.Query(ctx, "EXPLAIN ANALYZE "+stmt)
	require.NoError(t, err)
	assert.Contains(t, ex.String(), "best_score compares every candidate with every example")
	for _, stmt := range []string{"SEARCH audio NEAR image OF 'it-007', image OF 'it-021' WEIGHT -1 FUSE best_score",
		"SEARCH audio NEAR image OF 'it-007' FUSE best_score"} {
		_, err = db.Query(ctx, stmt)
		require.ErrorIs(t, err, ErrInvalidQuery, stmt)
		assert.Contains(t, err.Error(), "best_score fusion needs every probe in the target's space", stmt)
	}
	_, err = db.Query(ctx, "CALIBRATE text TO image ALPHA 0.5 FORCE")
	require.NoError(t, err)
	_, err = db.Query(ctx, stmt)
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "hubness correction")

	// Under L2 every score is <= 0: a candidate nearer the positive still
	// ranks above every one nearer the negative, and the nearer the
	// negative, the lower.
	l2, _ := openTest(t, Modality{Name: "v", Dim: 1, Metric: L2})
	var pts []Item
	for _, x := range []float32{-40, 10, 40, 60, 99, 100} {
		pts = append(pts, Item{ID: fmt.Sprint(x), Vectors: map[string][]float32{"v": {x}}})
	}
	require.NoError(t, l2.Put(ctx, pts...))
	hits, err := l2.Search(ctx, Query{Target: "v", Fuse: fusion.BestScore, Probes: []Probe{{Modality: "v", Vector: []float32{0}}, {Modality: "v", Vector: []float32{100}, Weight: -1}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"10", "-40", "40", "60", "99", "100"}, ids(hits))
	for _, h := range hits {
		assert.False(t, math.IsInf(float64(h.Score), 0) || math.Signbit(float64(h.Score)) && h.Score == 0, "score %v", h.Score)
	}
}
