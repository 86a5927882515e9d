package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// call sends one request to h and returns the status and the decoded
// envelope.
func call(t testing.TB, h http.Handler, method, path, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var env map[string]any
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env), "%s", w.Body)
	}
	return w.Code, env
}

// errMsg is an error envelope's message.
func errMsg(env map[string]any) string {
	st, _ := env["status"].(map[string]any)
	s, _ := st["error"].(string)
	return s
}

// newFolder serves an empty folder with collection "c": vectors "image"
// (4-d cosine) and "set" (2-d, multi-vector).
func newFolder(t testing.TB, cfg Config) (*Server, http.Handler) {
	t.Helper()
	s, err := Open(t.TempDir(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	h := s.Handler()
	code, env := call(t, h, "PUT", "/collections/c", `{"vectors": {"image": {"size": 4, "distance": "Cosine"},
		"set": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}}`, "api-key", cfg.APIKey)
	require.Equal(t, 200, code, "%v", env)
	return s, h
}

func TestUpsertRefusals(t *testing.T) {
	_, h := newFolder(t, Config{MaxBatch: 3})
	cases := []struct {
		name, body, msg string
	}{
		{"wrong dimension", `{"points": [{"id": 1, "vector": {"image": [1, 2, 3]}}]}`, `"1"`},
		{"null in vector", `{"points": [{"id": 2, "vector": {"image": [1, null, 3, 4]}}]}`, "point 2, vector \"image\""},
		{"string in vector", `{"points": [{"id": 2, "vector": {"image": [1, "2", 3, 4]}}]}`, "point 2"},
		{"float32 overflow", `{"points": [{"id": 2, "vector": {"image": [1, 1e39, 3, 4]}}]}`, "point 2"},
		{"zero cosine vector", `{"points": [{"id": 2, "vector": {"image": [0, 0, 0, 0]}}]}`, "image"},
		{"unknown vector", `{"points": [{"id": 3, "vector": {"audio": [1, 2]}}]}`, `no vector named "audio"`},
		{"unnamed with two vectors", `{"points": [{"id": 3, "vector": [1, 2, 3, 4]}]}`, "name the one meant"},
		{"negative id", `{"points": [{"id": -1, "vector": {"image": [1, 2, 3, 4]}}]}`, "unsigned integer"},
		{"float id", `{"points": [{"id": 1.5, "vector": {"image": [1, 2, 3, 4]}}]}`, "unsigned integer"},
		{"missing id", `{"points": [{"vector": {"image": [1, 2, 3, 4]}}]}`, "missing"},
		{"nested payload", `{"points": [{"id": 4, "vector": {"image": [1, 2, 3, 4]}, "payload": {"meta": {"a": 1}}}]}`, `point 4: payload key "meta"`},
		{"null payload value", `{"points": [{"id": 4, "vector": {"image": [1, 2, 3, 4]}, "payload": {"a": null}}]}`, `payload key "a": null`},
		{"numbers list payload", `{"points": [{"id": 4, "vector": {"image": [1, 2, 3, 4]}, "payload": {"a": [1, 2]}}]}`, `payload key "a"`},
		{"ragged set", `{"points": [{"id": 5, "vector": {"set": [[1, 2], [1, 2, 3, 4]]}}]}`, "vector 1 of the set has 4 values, want 2"},
		{"flat set", `{"points": [{"id": 5, "vector": {"set": [1, 2]}}]}`, "list of lists"},
		{"set for a single vector", `{"points": [{"id": 5, "vector": {"image": [[1, 2, 3, 4]]}}]}`, "holds one vector"},
		{"batch over the limit", `{"points": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]}`, "at most 3"},
		{"misspelt member", `{"pionts": []}`, `unknown field "pionts"`},
		{"both forms", `{"points": [], "batch": {"ids": [], "vectors": {}}}`, "not both"},
		{"batch vectors short", `{"batch": {"ids": [1, 2], "vectors": {"image": [[1, 2, 3, 4]]}}}`, "one per id"},
		{"trailing data", `{"points": []} {}`, "after top-level value"},
		{"repeated member", `{"points": [{"id": 8, "vector": {"image": [1, 2, 3, 4]}}], "points": []}`, `"points"`},
		{"member in another case", `{"Points": [{"id": 8, "vector": {"image": [1, 2, 3, 4]}}]}`, `unknown field "Points"`},
		{"repeated payload key", `{"points": [{"id": 8, "vector": {"image": [1, 2, 3, 4]}, "payload": {"a": 1, "a": 2}}]}`, `"a"`},
		{"integer in a string", `{"points": [{"id": "5", "vector": {"image": [1, 2, 3, 4]}}]}`, "give it as a number"},
		{"lone surrogate", `{"points": [{"id": "k\ud800", "vector": {"image": [1, 2, 3, 4]}}]}`, "surrogate"},
		{"integer beyond int64", `{"points": [{"id": 9, "vector": {"image": [1, 2, 3, 4]}, "payload": {"big": 18446744073709551615}}]}`, "beyond int64"},
		{"repeated key", `{"points": [{"id": 6, "vector": {"image": [1, 2, 3, 4], "image": [1, 2, 3, 4]}}]}`, "image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, env := call(t, h, "PUT", "/collections/c/points", c.body)
			assert.Equal(t, 400, code)
			assert.Contains(t, errMsg(env), c.msg)
		})
	}
	code, env := call(t, h, "POST", "/collections/c/points/count", `{}`)
	require.Equal(t, 200, code)
	assert.Equal(t, 0.0, env["result"].(map[string]any)["count"], "no refused batch wrote anything")
}

func TestUpsertForms(t *testing.T) {
	s, h := newFolder(t, Config{})
	code, env := call(t, h, "PUT", "/collections/c/points?wait=true", `{"batch": {"ids": [1, "a-b"],
		"vectors": {"image": [[1, 0, 0, 0], [0, 1, 0, 0]], "set": [[[1, 0], [0, 1]], null]},
		"payloads": [{"k": 1, "f": 1.5, "s": "x", "b": true, "l": ["p", "q"]}, null]}}`)
	require.Equal(t, 200, code, "%v", env)
	db, _ := s.DB("c")
	it, err := db.Get(context.Background(), "1")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": int64(1), "f": 1.5, "s": "x", "b": true, "l": []string{"p", "q"}}, it.Attrs)
	assert.Equal(t, []float32{1, 0, 0, 1}, it.Vectors["set"])
	it, err = db.Get(context.Background(), "a-b")
	require.NoError(t, err)
	assert.Empty(t, it.Attrs)
	assert.NotContains(t, it.Vectors, "set")

	// A multi-vector probe against the set modality (MaxSim).
	code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": [[0, 1]], "using": "set", "with_vector": ["set"]}`)
	require.Equal(t, 200, code, "%v", env)
	pts := env["result"].(map[string]any)["points"].([]any)
	require.Len(t, pts, 1)
	assert.Equal(t, map[string]any{"set": []any{[]any{1.0, 0.0}, []any{0.0, 1.0}}}, pts[0].(map[string]any)["vector"])

	// The older search endpoint, by named vector.
	code, env = call(t, h, "POST", "/collections/c/points/search", `{"vector": {"name": "image", "vector": [0, 1, 0, 0]}, "limit": 1, "with_payload": ["zzz"]}`)
	require.Equal(t, 200, code, "%v", env)
	pts = env["result"].([]any)
	require.Len(t, pts, 1)
	assert.Equal(t, "a-b", pts[0].(map[string]any)["id"])
	assert.Equal(t, map[string]any{}, pts[0].(map[string]any)["payload"])
}

func TestAPIKey(t *testing.T) {
	_, h := newFolder(t, Config{APIKey: "sesame"})
	code, env := call(t, h, "GET", "/collections", "")
	assert.Equal(t, 401, code)
	assert.Contains(t, errMsg(env), "api-key")
	code, _ = call(t, h, "GET", "/collections", "", "api-key", "wrong")
	assert.Equal(t, 401, code)
	code, _ = call(t, h, "GET", "/collections", "", "api-key", "sesame")
	assert.Equal(t, 200, code)
	code, _ = call(t, h, "GET", "/collections", "", "Authorization", "Bearer sesame")
	assert.Equal(t, 200, code)
	code, _ = call(t, h, "GET", "/collections/c/snapshots/x.snapshot", "")
	assert.Equal(t, 401, code, "downloads need the key too")
	code, _ = call(t, h, "GET", "/healthz", "")
	assert.Equal(t, 200, code, "health checks do not")
}

func TestLimitsAndRoutes(t *testing.T) {
	_, h := newFolder(t, Config{MaxBody: 1 << 10})
	big := fmt.Sprintf(`{"points": [{"id": 1, "payload": {"s": %q}}]}`, strings.Repeat("x", 2<<10))
	code, env := call(t, h, "PUT", "/collections/c/points", big)
	assert.Equal(t, 413, code, "%v", env)
	code, env = call(t, h, "POST", "/collections/c/points/discover", `{}`)
	assert.Equal(t, 404, code)
	assert.Contains(t, errMsg(env), "not an endpoint")
	code, env = call(t, h, "POST", "/collections/nope/points/query", `{"query": [1, 0, 0, 0]}`)
	assert.Equal(t, 404, code)
	assert.Contains(t, errMsg(env), "nope")
	code, env = call(t, h, "POST", "/collections/c/points/query?timeout=abc", `{}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), "timeout")
	code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": {"discover": {}}, "using": "image"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), `"discover" is not supported`)
	code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "prefetch": {"query": [1, 0, 0, 0]}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), "prefetch")
	code, env = call(t, h, "PUT", "/collections/c", `{"vectors": {"size": 4, "distance": "Cosine"}}`)
	assert.Equal(t, 409, code)
	assert.Contains(t, errMsg(env), "already exists")
	code, env = call(t, h, "PUT", "/collections/bad.name", `{"vectors": {"size": 4, "distance": "Cosine"}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), "collection name")
	code, env = call(t, h, "PUT", "/collections/m", `{"vectors": {"size": 4, "distance": "Manhattan"}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), "Manhattan")
	code, env = call(t, h, "POST", "/collections/c/points/delete", `{"filter": {}}`)
	assert.Equal(t, 400, code, "an empty filter must not delete everything")
	assert.Contains(t, errMsg(env), "every point")
}

func TestCollectionsLifecycle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Config{})
	require.NoError(t, err)
	h := s.Handler()
	code, env := call(t, h, "PUT", "/collections/one", `{"vectors": {"size": 3, "distance": "Euclid"}}`)
	require.Equal(t, 200, code, "%v", env)
	// One unnamed vector: requests reach it without naming it.
	code, env = call(t, h, "PUT", "/collections/one/points", `{"points": [{"id": 9, "vector": [1, 2, 3], "payload": {"a": "b"}}, {"id": 10, "vector": [0, 0, 0]}]}`)
	require.Equal(t, 200, code, "%v", env)
	code, env = call(t, h, "POST", "/collections/one/points/query", `{"query": [1, 2, 2], "limit": 1}`)
	require.Equal(t, 200, code, "%v", env)
	p := env["result"].(map[string]any)["points"].([]any)[0].(map[string]any)
	assert.Equal(t, 9.0, p["id"])
	assert.Equal(t, 1.0, p["score"], "Euclid scores are distances, as Qdrant's")
	code, env = call(t, h, "GET", "/collections/one/points/9", "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"id": 9.0, "payload": map[string]any{"a": "b"}, "vector": []any{1.0, 2.0, 3.0}}, env["result"],
		"one unnamed vector: the point carries the vector itself, as in Qdrant")
	code, env = call(t, h, "GET", "/collections/one", "")
	require.Equal(t, 200, code)
	params := env["result"].(map[string]any)["config"].(map[string]any)["params"].(map[string]any)
	assert.Equal(t, map[string]any{"size": 3.0, "distance": "Euclid", "on_disk": false}, params["vectors"])
	code, env = call(t, h, "POST", "/query", `{"statement": "EXPLAIN SEARCH vector NEAR vector OF '9' LIMIT 1"}`)
	require.Equal(t, 200, code, "%v", env)
	assert.Contains(t, env["result"].(map[string]any)["text"], "direct")
	code, env = call(t, h, "POST", "/collections/one/query", `{"statement": "COUNT WHERE a = 'b'"}`)
	require.Equal(t, 200, code, "%v", env)
	assert.Equal(t, 1.0, env["result"].(map[string]any)["count"])
	code, env = call(t, h, "POST", "/query", `{"statement": "SEARCH vector NEAR vector FILE '/etc/passwd'"}`)
	assert.Equal(t, 400, code, "no file probes over the network: %v", env)
	require.NoError(t, s.Close())

	// Reopened, the folder serves what was made.
	s, err = Open(dir, Config{})
	require.NoError(t, err)
	h = s.Handler()
	assert.Equal(t, []string{"one"}, s.Collections())
	code, env = call(t, h, "DELETE", "/collections/one", "")
	require.Equal(t, 200, code, "%v", env)
	assert.Equal(t, true, env["result"])
	_, err = os.Stat(filepath.Join(dir, "one.mmdb"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	code, env = call(t, h, "DELETE", "/collections/one", "")
	require.Equal(t, 200, code)
	assert.Equal(t, false, env["result"])
	require.NoError(t, s.Close())

	// Serving one file: it is the collection, and is neither made nor deleted.
	f := filepath.Join(dir, "solo.mmdb")
	db, err := mmdb.Open(f, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	s, err = Open(f, Config{})
	require.NoError(t, err)
	defer s.Close()
	h = s.Handler()
	assert.Equal(t, []string{"solo"}, s.Collections())
	code, _ = call(t, h, "DELETE", "/collections/solo", "")
	assert.Equal(t, 403, code)
	code, _ = call(t, h, "PUT", "/collections/other", `{"vectors": {"size": 3, "distance": "Dot"}}`)
	assert.Equal(t, 403, code)
}

func TestSnapshotDownload(t *testing.T) {
	s, h := newFolder(t, Config{})
	code, env := call(t, h, "PUT", "/collections/c/points", `{"points": [{"id": 1, "vector": {"image": [1, 0, 0, 0]}, "payload": {"n": 1}}]}`)
	require.Equal(t, 200, code, "%v", env)
	code, env = call(t, h, "POST", "/collections/c/snapshots", "")
	require.Equal(t, 200, code, "%v", env)
	name := env["result"].(map[string]any)["name"].(string)
	req := httptest.NewRequest("GET", "/collections/c/snapshots/"+name, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 200, w.Code)
	dst := filepath.Join(t.TempDir(), "copy.snapshot")
	require.NoError(t, os.WriteFile(dst, w.Body.Bytes(), 0o644))
	restored := filepath.Join(t.TempDir(), "restored.mmdb")
	require.NoError(t, mmdb.Restore(dst, restored, nil), "the download is a snapshot mmdb restore takes")
	db, err := mmdb.Open(restored, nil)
	require.NoError(t, err)
	it, err := db.Get(context.Background(), "1")
	require.NoError(t, err)
	assert.Equal(t, int64(1), it.Attrs["n"])
	require.NoError(t, db.Close())
	for _, bad := range []string{"..%2F..%2Fc.mmdb", "x.snapshot", "..snapshot"} {
		code, _ = call(t, h, "GET", "/collections/c/snapshots/"+bad, "")
		assert.Contains(t, []int{400, 404}, code, bad)
	}
	code, _ = call(t, h, "DELETE", "/collections/c/snapshots/"+name, "")
	assert.Equal(t, 200, code)
	code, env = call(t, h, "GET", "/collections/c/snapshots", "")
	require.Equal(t, 200, code)
	assert.Empty(t, env["result"])
	_ = s
}

// TestConcurrentClients runs writers, searchers, scrolls and deletes at
// once (run under -race in CI): every answer is a success, and the final
// state holds every acknowledged write not deleted.
func TestConcurrentClients(t *testing.T) {
	s, h := newFolder(t, Config{})
	hs := httptest.NewServer(h)
	defer hs.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	post := func(method, path, body string) error {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hs.Client().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return nil
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := w*1000 + i
				body := fmt.Sprintf(`{"points": [{"id": %d, "vector": {"image": [%d, 1, 0, 1]}, "payload": {"w": %d}}]}`, id, i+1, w)
				if err := post("PUT", "/collections/c/points", body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				for _, req := range [][2]string{
					{"/collections/c/points/query", `{"query": [1, 1, 0, 0], "using": "image", "filter": {"must": {"key": "w", "range": {"gte": 1}}}}`},
					{"/collections/c/points/scroll", `{"limit": 7}`},
					{"/collections/c/points/count", `{}`},
				} {
					if err := post("POST", req[0], req[1]); err != nil && !strings.Contains(err.Error(), "no such attribute") {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 10 {
			if err := post("POST", "/collections/c/points/delete", fmt.Sprintf(`{"points": [%d]}`, 3000+i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db, _ := s.DB("c")
	n := db.Count()
	assert.GreaterOrEqual(t, n, 90)
	assert.LessOrEqual(t, n, 100)
	for w := range 3 {
		for i := range 25 {
			_, err := db.Get(context.Background(), fmt.Sprint(w*1000+i))
			assert.NoError(t, err)
		}
	}
}

// From the review of the server: what Qdrant clients rely on.
func TestQdrantSemantics(t *testing.T) {
	s, h := newFolder(t, Config{})
	code, env := call(t, h, "PUT", "/collections/c/points", `{"points": [
		{"id": 1, "vector": {"image": [1, 0, 0, 0], "set": [[1, 0], [0, 2]]}, "payload": {"n": 1, "f": 2.0}},
		{"id": "550E8400-E29B-41D4-A716-446655440000", "vector": {"image": [0, 1, 0, 0]}}]}`)
	require.Equal(t, 200, code, "%v", env)

	t.Run("a filter on a key no point has", func(t *testing.T) {
		code, env := call(t, h, "POST", "/collections/c/points/count", `{"filter": {"must_not": [{"key": "deleted", "match": {"value": true}}]}}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Equal(t, 2.0, env["result"].(map[string]any)["count"], "must_not of an unknown key keeps every point")
		code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "filter": {"must": [{"key": "deleted", "match": {"value": true}}]}}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Empty(t, env["result"].(map[string]any)["points"])
		code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "filter": {"must_not": [{"key": "deleted", "match": {"value": true}}]}}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Len(t, env["result"].(map[string]any)["points"], 2)
	})
	t.Run("hyphenated UUIDs in any case are one point", func(t *testing.T) {
		for _, id := range []string{"550e8400-e29b-41d4-a716-446655440000", "550E8400-e29b-41D4-a716-446655440000"} {
			code, env := call(t, h, "POST", "/collections/c/points", `{"ids": ["`+id+`"]}`)
			require.Equal(t, 200, code, "%v", env)
			require.Len(t, env["result"], 1, id)
			assert.Equal(t, "550e8400-e29b-41d4-a716-446655440000", env["result"].([]any)[0].(map[string]any)["id"])
		}
	})
	t.Run("every ID shown can be given back", func(t *testing.T) {
		// Stored through the Go API: a hash as an ID, a zero-padded
		// number, a name.
		ids := []string{"d41d8cd98f00b204e9800998ecf8427e", "007", "cat-0001"}
		db, _ := s.DB("c")
		for _, id := range ids {
			require.NoError(t, db.Put(context.Background(), mmdb.Item{ID: id, Vectors: map[string][]float32{"image": {0, 0, 0, 1}}}))
		}
		for _, id := range ids {
			code, env := call(t, h, "POST", "/collections/c/points", `{"ids": ["`+id+`"]}`)
			require.Equal(t, 200, code, "%v", env)
			require.Len(t, env["result"], 1, id)
			assert.Equal(t, id, env["result"].([]any)[0].(map[string]any)["id"])
			code, env = call(t, h, "GET", "/collections/c/points/"+id, "")
			require.Equal(t, 200, code, "%v", env)
			assert.Equal(t, id, env["result"].(map[string]any)["id"])
			require.NoError(t, db.Delete(context.Background(), id))
		}
	})
	t.Run("a float keeps its point", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/collections/c/points/1", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Contains(t, w.Body.String(), `"f":2.0`)
		assert.Contains(t, w.Body.String(), `"n":1`)
	})
	t.Run("max_sim scores sum over the query's vectors", func(t *testing.T) {
		code, env := call(t, h, "POST", "/collections/c/points/query", `{"query": [[1, 0], [0, 1]], "using": "set"}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Equal(t, 3.0, env["result"].(map[string]any)["points"].([]any)[0].(map[string]any)["score"])
		code, env = call(t, h, "POST", "/collections/c/points/query", `{"query": [[1, 0], [0, 1]], "using": "set", "score_threshold": 3.5}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Empty(t, env["result"].(map[string]any)["points"], "the threshold is on Qdrant's scale")
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct{ method, path, body, msg string }{
			{"POST", "/collections/c/points/count", `{"filter": {"must": []}, "Filter": null}`, `unknown field "Filter"`},
			{"POST", "/collections/c/points/count", `{"filter": {"must": [], "must": [{"key": "n", "match": {"value": 1}}]}}`, `"must"`},
			{"POST", "/collections/c/points/query?timeout=99999999999999999", `{"query": [1, 0, 0, 0], "using": "image"}`, "timeout"},
			{"POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "params": {"hnsw_ef": -5}}`, "hnsw_ef"},
			{"POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "filter": {"must": [{"key": "n", "match": {"value": 18446744073709551616}}]}}`, "beyond int64"},
		} {
			code, env := call(t, h, c.method, c.path, c.body)
			assert.Equal(t, 400, code, c.body)
			assert.Contains(t, errMsg(env), c.msg)
		}
		_, err := translateFilter([]byte(deepFilter(150)))
		require.Error(t, err)
		assert.Less(t, len(err.Error()), 200, "a deep filter's error is named once: %s", err)
	})
	t.Run("what a web page could send", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/collections/c/points/delete", strings.NewReader(`{"points": [1]}`))
		req.Header.Set("Content-Type", "text/plain")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, 415, w.Code)
		req = httptest.NewRequest("POST", "/collections/c/snapshots", nil)
		req.Header.Set("Origin", "http://evil.example")
		w = httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, 403, w.Code)
		db, _ := s.DB("c")
		assert.Equal(t, 2, db.Count(), "nothing was deleted")
	})
}

func TestPayloadByFilter(t *testing.T) {
	s, h := newFolder(t, Config{MaxBatch: 2})
	var pts []string
	for i := range 5 {
		pts = append(pts, fmt.Sprintf(`{"id": %d, "vector": {"image": [1, %d, 0, 0]}, "payload": {"g": %d, "keep": "k"}}`, i, i, i%2))
	}
	code, env := call(t, h, "PUT", "/collections/c/points", `{"batch": {"ids": [], "vectors": {}}}`)
	require.Equal(t, 200, code, "%v", env)
	for _, p := range pts {
		code, env = call(t, h, "PUT", "/collections/c/points", `{"points": [`+p+`]}`)
		require.Equal(t, 200, code, "%v", env)
	}
	// Three points match, more than one batch of MaxBatch 2.
	code, env = call(t, h, "POST", "/collections/c/points/payload", `{"payload": {"flag": true}, "filter": {"must": {"key": "g", "match": {"value": 0}}}}`)
	require.Equal(t, 200, code, "%v", env)
	db, _ := s.DB("c")
	n, err := db.CountWhere(context.Background(), query.MustParse("flag = TRUE AND keep = 'k'"))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	code, env = call(t, h, "POST", "/collections/c/points/payload/clear", `{"filter": {"must": {"key": "g", "match": {"value": 1}}}}`)
	require.Equal(t, 200, code, "%v", env)
	n, err = db.CountWhere(context.Background(), query.Has("keep"))
	require.NoError(t, err)
	assert.Equal(t, 3, n, "the two g = 1 points lost their payload")
	it, err := db.Get(context.Background(), "1")
	require.NoError(t, err)
	assert.Empty(t, it.Attrs)
	assert.Equal(t, unit([]float32{1, 1, 0, 0}), it.Vectors["image"], "their vectors are kept")

	for _, c := range []struct{ method, path, body string }{
		{"POST", "/collections/c/points/payload", `{"payload": {"a": 1}, "filter": {}}`},
		{"POST", "/collections/c/points/payload", `{"payload": {"a": 1}, "points": [1], "filter": {"must": {"key": "g", "match": {"value": 1}}}}`},
		{"POST", "/collections/c/points/payload", `{"payload": {"a": 1}, "points": [1], "key": "nested"}`},
		{"POST", "/collections/c/points/payload", `{"points": [1]}`},
		{"POST", "/collections/c/points/payload/delete", `{"points": [1]}`},
		{"PUT", "/collections/c/points/vectors", `{"points": [{"id": 1}]}`},
	} {
		code, env := call(t, h, c.method, c.path, c.body)
		assert.Equal(t, 400, code, "%s: %v", c.body, env)
	}
	code, env = call(t, h, "PUT", "/collections/c/points/vectors", `{"points": [{"id": 99, "vector": {"image": [1, 0, 0, 0]}}]}`)
	assert.Equal(t, 404, code, "%v", env)
	_, err = db.Get(context.Background(), "99")
	assert.ErrorIs(t, err, mmdb.ErrNotFound, "updating a point not stored stores nothing")
}

// unit scales v to unit length (cosine vectors are stored normalised).
func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / math.Sqrt(n))
	}
	return out
}

func TestQueryBatch(t *testing.T) {
	_, h := newFolder(t, Config{})
	code, env := call(t, h, "PUT", "/collections/c/points", `{"points": [{"id": 1, "vector": {"image": [1, 0, 0, 0]}}, {"id": 2, "vector": {"image": [0, 1, 0, 0]}}]}`)
	require.Equal(t, 200, code, "%v", env)
	code, env = call(t, h, "POST", "/collections/c/points/query/batch", `{"searches": [
		{"query": [1, 0, 0, 0], "using": "image", "limit": 1},
		{"query": [0, 1, 0, 0], "using": "image", "limit": 1}]}`)
	require.Equal(t, 200, code, "%v", env)
	res := env["result"].([]any)
	require.Len(t, res, 2)
	assert.Equal(t, 1.0, res[0].(map[string]any)["points"].([]any)[0].(map[string]any)["id"])
	assert.Equal(t, 2.0, res[1].(map[string]any)["points"].([]any)[0].(map[string]any)["id"])
	code, env = call(t, h, "POST", "/collections/c/points/query/batch", `{"searches": [{"query": [1, 0, 0, 0], "using": "image"}, {"query": [1, 0], "using": "image"}]}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, errMsg(env), "searches[1]")
}

// Groups against a brute-force model: rank every point by the exact
// score, gather by value in order of each group's best point, keep the
// first limit groups and each one's best group_size points.
func TestQueryGroups(t *testing.T) {
	s, h := newFolder(t, Config{})
	db, _ := s.DB("c")
	r := rand.New(rand.NewPCG(9, 9))
	var items []mmdb.Item
	for i := range 300 {
		attrs := map[string]any{"g": int64(r.IntN(20))}
		if i%3 == 0 {
			attrs["tags"] = []string{fmt.Sprint("t", i%5), fmt.Sprint("t", i%7)}
		}
		items = append(items, mmdb.Item{ID: fmt.Sprint(i), Attrs: attrs, Vectors: map[string][]float32{"image": randVec(r, 4)}})
	}
	require.NoError(t, db.Put(context.Background(), items...))
	probe := randVec(r, 4)
	all, err := db.Search(context.Background(), mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: probe}}, K: 300, Exact: true})
	require.NoError(t, err)
	for _, c := range []struct {
		key         string
		limit, size int
	}{{"g", 4, 3}, {"g", 20, 20}, {"tags", 3, 2}, {"g", 1, 1}} {
		t.Run(fmt.Sprintf("%s-%dx%d", c.key, c.limit, c.size), func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"query": probe, "using": "image", "group_by": c.key, "limit": c.limit, "group_size": c.size, "params": map[string]any{"exact": true}})
			code, env := call(t, h, "POST", "/collections/c/points/query/groups", string(body))
			require.Equal(t, 200, code, "%v", env)
			var want []map[string]any
			index := map[string]int{}
			for _, hit := range all {
				for _, v := range groupValues(hit.Attrs[c.key]) {
					k := fmt.Sprint(v)
					gi, ok := index[k]
					if !ok {
						if len(want) == c.limit {
							continue
						}
						gi = len(want)
						index[k] = gi
						want = append(want, map[string]any{"id": jsonValue(t, v), "hits": []any{}})
					}
					if hs := want[gi]["hits"].([]any); len(hs) < c.size {
						want[gi]["hits"] = append(hs, jsonValue(t, map[string]any{"id": outID(hit.ID), "version": 0, "score": hit.Score}))
					}
				}
			}
			b, _ := json.Marshal(env["result"].(map[string]any)["groups"])
			var got []map[string]any
			require.NoError(t, decodeNumbers(b, &got))
			require.NotEmpty(t, want)
			assert.Equal(t, want, got)
		})
	}
}

// From the review of the payload, batch and groups endpoints.
func TestPayloadBatchGroupsReview(t *testing.T) {
	s, h := newFolder(t, Config{MaxBatch: 100})
	db, _ := s.DB("c")
	ctx := context.Background()
	var items []mmdb.Item
	for i := range 40 {
		items = append(items, mmdb.Item{ID: fmt.Sprint(i), Attrs: map[string]any{"sel": i < 30, "i": int64(i)},
			Vectors: map[string][]float32{"image": {1, float32(i), 0, 1}}})
	}
	require.NoError(t, db.Put(ctx, items...))

	t.Run("overwrites are each whole", func(t *testing.T) {
		for round := range 30 {
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, env := call(t, h, "PUT", "/collections/c/points/payload", fmt.Sprintf(`{"payload": {"w%d": %d}, "points": [1]}`, w, round))
					assert.Equal(t, 200, code, "%v", env)
				}()
			}
			wg.Wait()
			it, err := db.Get(ctx, "1")
			require.NoError(t, err)
			require.Len(t, it.Attrs, 1, "round %d: %v: one overwrite's payload, not both", round, it.Attrs)
		}
	})
	t.Run("by filter while points are deleted", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 20; i < 30; i++ {
				_ = db.Delete(ctx, fmt.Sprint(i))
			}
		}()
		for range 5 {
			code, env := call(t, h, "POST", "/collections/c/points/payload", `{"payload": {"tag": "x"}, "filter": {"must": {"key": "sel", "match": {"value": true}}}}`)
			assert.Contains(t, []int{200, 409}, code, "%v", env)
		}
		<-done
	})
	t.Run("an update by filter is one write", func(t *testing.T) {
		big := map[string]any{"sel": true}
		for i := range mmdb.MaxAttrs - 1 {
			big[fmt.Sprintf("a%04d", i)] = int64(i)
		}
		require.NoError(t, db.Put(ctx, mmdb.Item{ID: "full", Attrs: big, Vectors: map[string][]float32{"image": {1, 1, 1, 1}}}))
		code, env := call(t, h, "POST", "/collections/c/points/payload", `{"payload": {"new": 1, "new2": 2}, "filter": {"must": {"key": "sel", "match": {"value": true}}}}`)
		assert.Equal(t, 400, code, "%v", env)
		n, err := db.CountWhere(ctx, query.Has("new"))
		require.NoError(t, err)
		assert.Zero(t, n, "a refused update by filter changes no point")
		require.NoError(t, db.Delete(ctx, "full"))
	})
	for _, c := range []struct{ method, path, body, msg string }{
		{"POST", "/collections/c/points/payload/clear", `{"points": [2], "keys": ["zz"]}`, `unknown field "keys"`},
		{"POST", "/collections/c/points/payload", `{"payload": {"a": {"b": 1}}, "filter": {"must": {"key": "i", "match": {"value": 12345}}}}`, `the request: payload key "a"`},
		{"POST", "/collections/c/points/query/groups", `{"query": [1, 0, 0, 0], "using": "image", "group_by": "i", "limit": 4611686018427387905, "group_size": 4}`, "at most 16384 hits"},
		{"POST", "/collections/c/points/query/batch", `{"searches": [{"query": [1, 0, 0, 0], "using": "image", "limit": 16000}, {"query": [1, 0, 0, 0], "using": "image", "limit": 1000}]}`, "split the batch"},
	} {
		code, env := call(t, h, c.method, c.path, c.body)
		assert.Equal(t, 400, code, c.body)
		assert.Contains(t, errMsg(env), c.msg, c.body)
	}
	code, env := call(t, h, "POST", "/collections/c/points/payload/delete", `{"keys": [], "points": [2]}`)
	assert.Equal(t, 200, code, "no keys: nothing to do: %v", env)

	t.Run("groups", func(t *testing.T) {
		require.NoError(t, db.Put(ctx,
			mmdb.Item{ID: "ga", Attrs: map[string]any{"g": "a"}, Vectors: map[string][]float32{"image": {0, 0, 1, 0}}},
			mmdb.Item{ID: "gaa", Attrs: map[string]any{"g": []string{"a", "a"}}, Vectors: map[string][]float32{"image": {0, 0.1, 1, 0}}},
			mmdb.Item{ID: "gf", Attrs: map[string]any{"h": 1.0}, Vectors: map[string][]float32{"image": {0, 0, 1, 0.01}}},
			mmdb.Item{ID: "gi", Attrs: map[string]any{"h": int64(1)}, Vectors: map[string][]float32{"image": {0, 0, 1, 0.5}}}))
		code, env := call(t, h, "POST", "/collections/c/points/query/groups", `{"query": [0, 0, 1, 0], "using": "image", "group_by": "g", "group_size": 3}`)
		require.Equal(t, 200, code, "%v", env)
		groups := env["result"].(map[string]any)["groups"].([]any)
		require.Len(t, groups, 1)
		assert.Len(t, groups[0].(map[string]any)["hits"], 2, "gaa once in group a")
		code, env = call(t, h, "POST", "/collections/c/points/query/groups", `{"query": [0, 0, 1, 0], "using": "image", "group_by": "h", "group_size": 1}`)
		require.Equal(t, 200, code, "%v", env)
		groups = env["result"].(map[string]any)["groups"].([]any)
		require.Len(t, groups, 1, "the float 1.0 makes no group, and takes nothing from the integer 1's")
		assert.Equal(t, "gi", groups[0].(map[string]any)["hits"].([]any)[0].(map[string]any)["id"])
		code, env = call(t, h, "POST", "/collections/c/points/query/groups", `{"query": [0, 0, 1, 0], "using": "image", "group_by": "nobody"}`)
		require.Equal(t, 200, code, "%v", env)
		assert.Empty(t, env["result"].(map[string]any)["groups"])
	})
}

func TestVersionAnswer(t *testing.T) {
	_, h := newFolder(t, Config{})
	code, env := call(t, h, "GET", "/", "")
	require.Equal(t, 200, code)
	assert.Equal(t, Version, env["version"])
	assert.NotContains(t, env, "result", "the version answer has no envelope, as Qdrant's")
}
