package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/internal/nodetest"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// qdrantClient is the official client the test drives the server with
// (1.19.0 asks for Node 22 and works on Node 20 with
// checkCompatibility: false).
const qdrantClient = "@qdrant/js-client-rest@1.19.0"

// testPoint is one point of the shared data, as the client sends it and
// as the reference database stores it.
type testPoint struct {
	id    string
	image []float32
	text  []float32 // nil for some points: they lack the modality
	attrs map[string]any
}

func (p testPoint) qdrant() map[string]any {
	vec := map[string]any{"image": p.image}
	if p.text != nil {
		vec["text"] = p.text
	}
	return map[string]any{"id": outID(p.id), "vector": vec, "payload": p.attrs}
}

func (p testPoint) item() mmdb.Item {
	vec := map[string][]float32{"image": p.image}
	if p.text != nil {
		vec["text"] = p.text
	}
	return mmdb.Item{ID: p.id, Vectors: vec, Attrs: p.attrs}
}

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// testPoints makes n points: numeric IDs, and UUIDs for every 50th;
// image vectors (cosine) on all, text vectors (Euclid) on three in four;
// a color, a year, a non-integral price, and tags on some.
func testPoints(n int) []testPoint {
	r := rand.New(rand.NewPCG(7, 11))
	colors := []string{"red", "green", "blue", "black", "white"}
	pts := make([]testPoint, n)
	for i := range pts {
		id := fmt.Sprint(i)
		if i%50 == 7 {
			id = fmt.Sprintf("6f1c2d3e-4a5b-4c6d-8e7f-%012d", i)
		}
		p := testPoint{id: id, image: randVec(r, 16), attrs: map[string]any{
			"color": colors[r.IntN(len(colors))], "year": int64(1990 + r.IntN(31)), "price": float64(r.IntN(200)) + 0.5}}
		if i%4 != 0 {
			p.text = randVec(r, 12)
		}
		if i%3 == 0 {
			p.attrs["tags"] = []string{[]string{"x", "y", "z"}[i%9/3], "w"}
		}
		pts[i] = p
	}
	return pts
}

// clientStep is one call the client makes, and how its answer is checked
// against the reference database (in order: the reference replays the
// deletes when it reaches them).
type clientStep struct {
	Op         string `json:"op"`
	Collection string `json:"collection"`
	Args       any    `json:"args,omitempty"`
	check      func(t *testing.T, ref *mmdb.DB, ans clientAnswer)
}

type clientAnswer struct {
	Op     string          `json:"op"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
	Status *int            `json:"status"`
	Data   json.RawMessage `json:"data"`
}

// TestQdrantClient drives `mmdb serve` with Qdrant's official JavaScript
// client (create a collection with named vectors, upsert 1,000 points in
// batches, query with `using` and filters, recommend, retrieve, scroll,
// count, delete, snapshot) and checks every answer against the same
// operations through mmdb's Go API on a reference database.
func TestQdrantClient(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the npm client round trip")
	}
	nodeDir := nodetest.Install(t, qdrantClient)
	folder := t.TempDir()
	srv, err := Open(folder, Config{})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer func() { hs.Close(); require.NoError(t, srv.Close()) }()

	ctx := context.Background()
	ref, err := mmdb.Open(filepath.Join(t.TempDir(), "ref.mmdb"), nil)
	require.NoError(t, err)
	defer ref.Close()
	require.NoError(t, ref.DefineModality(mmdb.Modality{Name: "image", Dim: 16, Metric: mmdb.Cosine}))
	require.NoError(t, ref.DefineModality(mmdb.Modality{Name: "text", Dim: 12, Metric: mmdb.L2}))
	pts := testPoints(1000)
	items := make([]mmdb.Item, len(pts))
	qpts := make([]any, len(pts))
	for i, p := range pts {
		items[i], qpts[i] = p.item(), p.qdrant()
	}
	require.NoError(t, ref.Put(ctx, items...))

	steps := clientSteps(pts)
	dir := t.TempDir()
	stepsFile, outFile := filepath.Join(dir, "steps.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(steps)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(stepsFile, b, 0o644))
	nodetest.Run(t, nodeDir, "testdata/qdrant_client.mjs", 5*time.Minute, hs.URL, stepsFile, outFile)
	out, err := os.ReadFile(outFile)
	require.NoError(t, err)
	var answers []clientAnswer
	require.NoError(t, json.Unmarshal(out, &answers))
	require.Len(t, answers, len(steps))
	for i, s := range steps {
		t.Run(fmt.Sprintf("%02d-%s", i, s.Op), func(t *testing.T) { s.check(t, ref, answers[i]) })
	}
}

// clientSteps are the calls, each with its check.
func clientSteps(pts []testPoint) []clientStep {
	qpts := make([]any, len(pts))
	for i, p := range pts {
		qpts[i] = p.qdrant()
	}
	r := rand.New(rand.NewPCG(3, 5))
	const col = "items"
	ok := func(t *testing.T, a clientAnswer) {
		t.Helper()
		require.Empty(t, a.Error, "the client threw: %s %s", a.Error, a.Data)
	}
	search := func(args map[string]any, q mmdb.Query, euclid bool) clientStep {
		return clientStep{Op: "query", Collection: col, Args: args, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
			ok(t, a)
			var got struct{ Points []map[string]any }
			require.NoError(t, decodeNumbers(a.Result, &got))
			want := expectedHits(t, ref, q, euclid, args["with_payload"] == true)
			require.NotEmpty(t, want, "a check that compares nothing proves nothing")
			assert.Equal(t, want, got.Points)
		}}
	}
	imageProbe, textProbe := randVec(r, 16), randVec(r, 12)
	colorRed := map[string]any{"must": []any{map[string]any{"key": "color", "match": map[string]any{"value": "red"}}}}
	mixed := map[string]any{
		"should":   []any{map[string]any{"key": "year", "range": map[string]any{"lt": 2000}}, map[string]any{"key": "tags", "match": map[string]any{"any": []any{"x"}}}},
		"must_not": map[string]any{"key": "color", "match": map[string]any{"value": "blue"}},
	}
	priceRange := map[string]any{"must": []any{map[string]any{"key": "price", "range": map[string]any{"gte": 10.5, "lt": 150}}}}
	minScore := float32(0.2)
	steps := []clientStep{
		{Op: "create", Collection: col, Args: map[string]any{"vectors": map[string]any{
			"image": map[string]any{"size": 16, "distance": "Cosine"}, "text": map[string]any{"size": 12, "distance": "Euclid"}}},
			check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) { ok(t, a); assert.Equal(t, "true", string(a.Result)) }},
		{Op: "upsert", Collection: col, Args: map[string]any{"points": qpts}, check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
			ok(t, a)
			assert.Contains(t, string(a.Result), `"status":"completed"`)
		}},
		{Op: "info", Collection: col, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
			ok(t, a)
			var info struct {
				PointsCount int `json:"points_count"`
				Config      struct {
					Params struct {
						Vectors map[string]struct {
							Size     int
							Distance string
						}
					}
				}
			}
			require.NoError(t, json.Unmarshal(a.Result, &info))
			assert.Equal(t, ref.Count(), info.PointsCount)
			assert.Equal(t, 16, info.Config.Params.Vectors["image"].Size)
			assert.Equal(t, "Euclid", info.Config.Params.Vectors["text"].Distance)
		}},
		{Op: "exists", Collection: col, check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
			ok(t, a)
			assert.JSONEq(t, `{"exists":true}`, string(a.Result))
		}},
		search(map[string]any{"query": imageProbe, "using": "image", "limit": 10, "with_payload": true},
			mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 10}, false),
		search(map[string]any{"query": textProbe, "using": "text", "filter": colorRed, "limit": 5, "with_payload": true},
			mmdb.Query{Target: "text", Probes: []mmdb.Probe{{Modality: "text", Vector: textProbe}}, K: 5, Filter: query.MustParse("color = 'red'")}, true),
		search(map[string]any{"query": map[string]any{"nearest": imageProbe}, "using": "image", "filter": mixed, "limit": 20, "offset": 5},
			mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 20, Offset: 5,
				Filter: query.MustParse("(year < 2000 OR tags = 'x') AND NOT color = 'blue'"), NoAttrs: true}, false),
		search(map[string]any{"query": imageProbe, "using": "image", "filter": priceRange, "score_threshold": minScore, "limit": 50, "with_payload": true},
			mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 50, MinScore: &minScore,
				Filter: query.MustParse("price >= 10.5 AND price < 150")}, false),
		search(map[string]any{"query": 17, "using": "image", "limit": 8},
			mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", ItemID: "17"}}, K: 8, NoAttrs: true}, false),
		search(map[string]any{"query": map[string]any{"recommend": map[string]any{"positive": []any{3, 5}, "negative": []any{pts[57].id}}}, "using": "image", "limit": 10},
			mmdb.Query{Target: "image", Fuse: fusion.Early, K: 10, NoAttrs: true, Probes: []mmdb.Probe{
				{Modality: "image", ItemID: "3", Weight: 1}, {Modality: "image", ItemID: "5", Weight: 1}, {Modality: "image", ItemID: pts[57].id, Weight: -1}}}, false),
		search(map[string]any{"query": map[string]any{"recommend": map[string]any{"positive": []any{10}, "negative": []any{11, 13}, "strategy": "best_score"}}, "using": "text", "limit": 7},
			mmdb.Query{Target: "text", Fuse: fusion.BestScore, K: 7, NoAttrs: true, Probes: []mmdb.Probe{
				{Modality: "text", ItemID: "10", Weight: 1}, {Modality: "text", ItemID: "11", Weight: -1}, {Modality: "text", ItemID: "13", Weight: -1}}}, true),
		{Op: "queryBatch", Collection: col, Args: map[string]any{"searches": []any{
			map[string]any{"query": imageProbe, "using": "image", "limit": 3},
			map[string]any{"query": textProbe, "using": "text", "limit": 2, "filter": colorRed},
		}}, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
			ok(t, a)
			var got []struct{ Points []map[string]any }
			require.NoError(t, decodeNumbers(a.Result, &got))
			require.Len(t, got, 2)
			assert.Equal(t, expectedHits(t, ref, mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 3, NoAttrs: true}, false, false), got[0].Points)
			assert.Equal(t, expectedHits(t, ref, mmdb.Query{Target: "text", Probes: []mmdb.Probe{{Modality: "text", Vector: textProbe}}, K: 2, NoAttrs: true,
				Filter: query.MustParse("color = 'red'")}, true, false), got[1].Points)
		}},
		{Op: "queryGroups", Collection: col, Args: map[string]any{"query": imageProbe, "using": "image", "group_by": "color", "limit": 3, "group_size": 2},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				var got struct{ Groups []map[string]any }
				require.NoError(t, decodeNumbers(a.Result, &got))
				// The model: every point ranked exactly, gathered by color in
				// order of each color's best point.
				all := expectedHits(t, ref, mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 1000, NoAttrs: true, Exact: true}, false, false)
				var want []map[string]any
				index := map[string]int{}
				for _, h := range all {
					id := h["id"]
					it, err := ref.Get(context.Background(), fmt.Sprint(id))
					require.NoError(t, err)
					color := it.Attrs["color"].(string)
					gi, seen := index[color]
					if !seen {
						if len(want) == 3 {
							continue
						}
						gi = len(want)
						index[color] = gi
						want = append(want, map[string]any{"id": color, "hits": []any{}})
					}
					if hs := want[gi]["hits"].([]any); len(hs) < 2 {
						want[gi]["hits"] = append(hs, map[string]any(h))
					}
				}
				assert.Equal(t, jsonValue(t, want), jsonValue(t, got.Groups))
			}},
		{Op: "createPayloadIndex", Collection: col, Args: map[string]any{"field_name": "color", "field_schema": "keyword"},
			check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
				ok(t, a)
				assert.Contains(t, string(a.Result), `"status":"completed"`)
			}},
		{Op: "retrieve", Collection: col, Args: map[string]any{"ids": []any{1, 2, pts[7].id, 999999}, "with_vector": []string{"text"}},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				var got []map[string]any
				require.NoError(t, decodeNumbers(a.Result, &got))
				var want []map[string]any
				for _, id := range []string{"1", "2", pts[7].id} {
					it, err := ref.Get(context.Background(), id)
					require.NoError(t, err)
					rec := map[string]any{"id": jsonID(id), "payload": jsonValue(t, it.Attrs)}
					if v, has := it.Vectors["text"]; has {
						rec["vector"] = jsonValue(t, map[string]any{"text": v})
					}
					want = append(want, rec)
				}
				assert.Equal(t, want, got, "point 999999 is not stored, and is left out")
			}},
		{Op: "count", Collection: col, Args: map[string]any{"filter": map[string]any{"must": map[string]any{"key": "year", "range": map[string]any{"gte": 2010}}}, "exact": true},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				n, err := ref.CountWhere(context.Background(), query.MustParse("year >= 2010"))
				require.NoError(t, err)
				require.Positive(t, n)
				assert.JSONEq(t, fmt.Sprintf(`{"count":%d}`, n), string(a.Result))
			}},
		scrollStep(col, map[string]any{"limit": 64, "filter": map[string]any{"must": map[string]any{"key": "color", "match": map[string]any{"any": []any{"green", "white"}}}}},
			"color IN ('green', 'white')"),
		{Op: "delete", Collection: col, Args: map[string]any{"points": []any{0, 1, 2, 3, 999999, pts[7].id}},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				require.NoError(t, ref.Delete(context.Background(), "0", "1", "2", "3", pts[7].id))
			}},
		{Op: "delete", Collection: col, Args: map[string]any{"filter": map[string]any{"must": map[string]any{"key": "color", "match": map[string]any{"value": "black"}}}},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				n, err := ref.DeleteWhere(context.Background(), query.MustParse("color = 'black'"))
				require.NoError(t, err)
				require.Positive(t, n)
			}},
		search(map[string]any{"query": imageProbe, "using": "image", "limit": 10, "with_payload": true},
			mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: imageProbe}}, K: 10}, false),
		{Op: "count", Collection: col, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
			ok(t, a)
			assert.JSONEq(t, fmt.Sprintf(`{"count":%d}`, ref.Count()), string(a.Result))
		}},
		scrollStep(col, map[string]any{"limit": 100}, ""),
		// Payload and vector updates, each replayed on the reference
		// with DB.Update, then checked by retrieving the points.
		updateStep("setPayload", col, map[string]any{"points": []any{10, 11}, "payload": map[string]any{"color": "teal", "extra": int64(7)}},
			[]mmdb.Item{{ID: "10", Attrs: map[string]any{"color": "teal", "extra": int64(7)}}, {ID: "11", Attrs: map[string]any{"color": "teal", "extra": int64(7)}}}),
		updateStep("deletePayload", col, map[string]any{"points": []any{10}, "keys": []string{"extra", "year"}},
			[]mmdb.Item{{ID: "10", Attrs: map[string]any{"extra": nil, "year": nil}}}),
		updateStep("overwritePayload", col, map[string]any{"points": []any{12}, "payload": map[string]any{"only": "this"}},
			[]mmdb.Item{{ID: "12", Attrs: map[string]any{"only": "this"}}}),
		updateStep("clearPayload", col, map[string]any{"points": []any{13}}, []mmdb.Item{{ID: "13", Attrs: map[string]any{}}}),
		updateStep("updateVectors", col, map[string]any{"points": []any{map[string]any{"id": 14, "vector": map[string]any{"text": textProbe}}}},
			[]mmdb.Item{{ID: "14", Vectors: map[string][]float32{"text": textProbe}}}),
		{Op: "retrieve", Collection: col, Args: map[string]any{"ids": []any{10, 11, 12, 13, 14}, "with_vector": true},
			check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
				ok(t, a)
				var got []map[string]any
				require.NoError(t, decodeNumbers(a.Result, &got))
				var want []map[string]any
				for _, id := range []string{"10", "11", "12", "13", "14"} {
					it, err := ref.Get(context.Background(), id)
					require.NoError(t, err)
					vec := map[string]any{}
					for k, v := range it.Vectors {
						vec[k] = v
					}
					attrs := it.Attrs
					if attrs == nil {
						attrs = map[string]any{} // a cleared payload is {}, as Qdrant's
					}
					want = append(want, map[string]any{"id": jsonID(id), "payload": jsonValue(t, attrs), "vector": jsonValue(t, vec)})
				}
				assert.Equal(t, want, got)
			}},
		{Op: "setPayload", Collection: col, Args: map[string]any{"points": []any{424242}, "payload": map[string]any{"a": "b"}},
			check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
				require.NotNil(t, a.Status)
				assert.Equal(t, 404, *a.Status, "setting the payload of a point not stored: %s", a.Data)
				assert.Contains(t, string(a.Data), "424242")
			}},
		// Refusals reach the client as errors that say what is wrong.
		{Op: "upsert", Collection: col, Args: map[string]any{"points": []any{map[string]any{"id": 5000, "vector": map[string]any{"image": make([]float32, 15)}}}},
			check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
				require.NotNil(t, a.Status)
				assert.Equal(t, 400, *a.Status)
				assert.Contains(t, string(a.Data), "5000")
				assert.Contains(t, string(a.Data), "image")
			}},
		{Op: "query", Collection: col, Args: map[string]any{"query": imageProbe, "using": "audio"},
			check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
				require.NotNil(t, a.Status)
				assert.Equal(t, 400, *a.Status)
				assert.Contains(t, string(a.Data), `no vector named \"audio\"`)
			}},
		{Op: "snapshot", Collection: col, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
			ok(t, a)
			var got struct {
				Made   snapshotDescription
				Listed []snapshotDescription
			}
			require.NoError(t, json.Unmarshal(a.Result, &got))
			require.Len(t, got.Listed, 1)
			assert.Equal(t, got.Made.Name, got.Listed[0].Name)
			assert.Positive(t, got.Made.Size)
		}},
		{Op: "list", check: func(t *testing.T, _ *mmdb.DB, a clientAnswer) {
			ok(t, a)
			assert.JSONEq(t, `{"collections":[{"name":"items"}]}`, string(a.Result))
		}},
	}
	return steps
}

// updateStep makes a payload or vector update through the client, and the
// same change on the reference through DB.Update (replacing the whole
// payload where the client overwrites or clears it).
func updateStep(op, col string, args map[string]any, change []mmdb.Item) clientStep {
	return clientStep{Op: op, Collection: col, Args: args, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
		require.Empty(t, a.Error, "%s %s", a.Error, a.Data)
		ctx := context.Background()
		if op == "overwritePayload" || op == "clearPayload" {
			for i, it := range change {
				old, err := ref.Get(ctx, it.ID)
				require.NoError(t, err)
				for k := range old.Attrs {
					if _, keep := it.Attrs[k]; !keep {
						change[i].Attrs[k] = nil
					}
				}
			}
		}
		require.NoError(t, ref.Update(ctx, change...))
	}}
}

// scrollStep scrolls every page with a filter (mmdb's form of it in
// where) and checks the IDs against the reference's items in insertion
// order.
func scrollStep(col string, args map[string]any, where string) clientStep {
	return clientStep{Op: "scroll", Collection: col, Args: args, check: func(t *testing.T, ref *mmdb.DB, a clientAnswer) {
		require.Empty(t, a.Error)
		var got struct {
			IDs   []any
			Pages int
		}
		require.NoError(t, decodeNumbers(a.Result, &got))
		var f query.Expr
		if where != "" {
			f = query.MustParse(where)
		}
		want := []any{}
		for it, err := range ref.Items(context.Background()) {
			require.NoError(t, err)
			if f == nil || query.Match(f, it.Attrs) {
				want = append(want, jsonID(it.ID))
			}
		}
		require.NotEmpty(t, want)
		assert.Equal(t, want, got.IDs)
		limit := args["limit"].(int)
		assert.Equal(t, (len(want)+limit-1)/limit, got.Pages, "pages of %d", limit)
	}}
}

// expectedHits is the Go API's answer to q as the client should see it:
// id, version, score (the distance under Euclid), and the payload.
func expectedHits(t *testing.T, ref *mmdb.DB, q mmdb.Query, euclid, payload bool) []map[string]any {
	t.Helper()
	hits, err := ref.Search(context.Background(), q)
	require.NoError(t, err)
	out := []map[string]any{}
	for _, h := range hits {
		score := h.Score
		if euclid && !h.Fused {
			score = h.Distance
		}
		m := map[string]any{"id": jsonID(h.ID), "version": json.Number("0"), "score": jsonValue(t, score)}
		if payload {
			m["payload"] = jsonValue(t, h.Attrs)
		}
		out = append(out, m)
	}
	return out
}

// jsonValue is v as it reads back from JSON with json.Number numbers.
func jsonValue(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, decodeNumbers(b, &out))
	return out
}

func jsonID(id string) any {
	if n, ok := outID(id).(uint64); ok {
		return json.Number(fmt.Sprint(n))
	}
	return id
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
