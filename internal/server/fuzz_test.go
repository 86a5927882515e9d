package server

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mmdb-go/mmdb/query"
)

// FuzzTranslateFilter: any bytes either translate to a valid expression
// or fail as a bad request; nothing panics or nests without bound.
func FuzzTranslateFilter(f *testing.F) {
	for _, s := range []string{
		`{"must": [{"key": "a", "match": {"value": 1}}]}`,
		`{"should": [{}, {"key": "t", "match": {"any": ["x", 2, true]}}], "must_not": {"is_empty": {"key": "q"}}}`,
		`{"must": {"key": "r", "range": {"gt": 1.5, "lte": 1e300}}}`,
		`{"must": [{"must": [{"must_not": [{"key": "a", "match": {"except": []}}]}]}]}`,
		`{"must": [{"key": "a", "is_null": true}]}`,
		`{"min_should": null, "must": null}`,
		deepFilter(40),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := translateFilter(json.RawMessage(b))
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%q: error %v is not a bad request", b, err)
			}
			return
		}
		if e != nil {
			if err := query.Validate(e); err != nil {
				t.Fatalf("%q: translated to an invalid %v: %v", b, e, err)
			}
		}
	})
}

// FuzzRequests sends arbitrary bodies to the endpoints that read them: the
// answer is a success or a 4xx error, never a 500 or a panic.
func FuzzRequests(f *testing.F) {
	seeds := []struct {
		method, path, body string
	}{
		{"PUT", "/collections/c/points", `{"points": [{"id": 1, "vector": {"image": [1, 0, 0, 0], "set": [[1, 0]]}, "payload": {"a": "b", "n": 2}}]}`},
		{"PUT", "/collections/c/points", `{"batch": {"ids": [2, "x"], "vectors": {"image": [[0, 1, 0, 0], null]}, "payloads": [{"l": ["a"]}, null]}}`},
		{"POST", "/collections/c/points/query", `{"query": [1, 0, 0, 0], "using": "image", "filter": {"must": {"key": "n", "range": {"gte": 1}}}, "with_payload": true, "with_vector": true}`},
		{"POST", "/collections/c/points/query", `{"query": {"recommend": {"positive": [1], "negative": ["x"], "strategy": "best_score"}}, "using": "image", "score_threshold": 0.1}`},
		{"POST", "/collections/c/points/query", `{"query": [[1, 0]], "using": "set", "params": {"hnsw_ef": 5, "exact": false}, "offset": 3, "limit": 2}`},
		{"POST", "/collections/c/points/search", `{"vector": {"name": "image", "vector": [1, 1, 1, 1]}, "with_payload": {"exclude": ["a"]}}`},
		{"POST", "/collections/c/points/recommend", `{"positive": [1], "using": "image"}`},
		{"POST", "/collections/c/points/scroll", `{"limit": 1, "offset": 1, "filter": {"should": [{"key": "a", "match": {"value": "b"}}]}}`},
		{"POST", "/collections/c/points/count", `{"filter": {"must_not": [{"is_empty": {"key": "a"}}]}}`},
		{"POST", "/collections/c/points", `{"ids": [1, "x", 3], "with_vector": ["set"]}`},
		{"POST", "/collections/c/points/delete", `{"points": [3, 4]}`},
		{"POST", "/query", `{"statement": "SEARCH image NEAR image OF '1' LIMIT 2"}`},
		{"PUT", "/collections/d", `{"vectors": {"v": {"size": 3, "distance": "Dot"}}}`},
		{"POST", "/collections/c/points/payload", `{"payload": {"a": "c"}, "filter": {"must": {"key": "a", "match": {"value": "b"}}}}`},
		{"PUT", "/collections/c/points/payload", `{"payload": {"z": 1}, "points": [1]}`},
		{"POST", "/collections/c/points/payload/delete", `{"keys": ["a"], "points": [1]}`},
		{"POST", "/collections/c/points/payload/clear", `{"points": [1]}`},
		{"PUT", "/collections/c/points/vectors", `{"points": [{"id": 1, "vector": {"image": [0, 0, 1, 0]}}]}`},
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s.body))
	}
	_, h := newFolder(f, Config{MaxBatch: 50})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		s := seeds[int(which)%len(seeds)]
		code, env := call(t, h, s.method, s.path, string(body))
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %v", s.method, s.path, body, code, env)
		}
	})
}
