// Package embedtest is a stand-in for an OpenAI-compatible /v1/embeddings
// server, for tests: it embeds each input with a function the test gives,
// records what it was sent, and can fail its first requests.
package embedtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is the stand-in; URL is its root.
type Server struct {
	*httptest.Server
	// FailFirst is how many requests to answer 503 before embedding.
	FailFirst int32

	embed    func(model string, input any) []float32
	requests atomic.Int32
	mu       sync.Mutex
	inputs   [][]any
	auth     []string
}

// New starts a server whose model embeds input (a string, or an
// {"image": data-URL} object) as embed says; it stops when t ends.
func New(t testing.TB, embed func(model string, input any) []float32) *Server {
	s := &Server{embed: embed}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	if r.URL.Path != "/v1/embeddings" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Model string `json:"model"`
		Input []any  `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.inputs = append(s.inputs, req.Input)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	if n <= s.FailFirst {
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	type datum struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	var out struct {
		Data []datum `json:"data"`
	}
	for i, x := range req.Input {
		out.Data = append(out.Data, datum{i, s.embed(req.Model, x)})
	}
	json.NewEncoder(w).Encode(out)
}

// Requests is the number of requests received.
func (s *Server) Requests() int32 { return s.requests.Load() }

// Request returns the inputs and the Authorization header of request i
// (0 is the first).
func (s *Server) Request(i int) ([]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inputs[i], s.auth[i]
}
