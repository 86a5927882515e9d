package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb"
	"github.com/stretchr/testify/require"
)

var (
	loadTest  = flag.Bool("load", false, "run the HTTP load test (TestLoad)")
	loadItems = flag.Int("load.items", 20_000, "points in the load test's collection")
	loadTime  = flag.Duration("load.time", 5*time.Second, "how long each concurrency level runs")
)

// TestLoad measures search over HTTP on loopback: requests per second and
// latency percentiles at 1, 8 and 32 concurrent clients, each level
// bounded by -load.time and 200,000 requests, beside the same searches
// through the Go API in one goroutine. Clients and server share this
// process (and its cores). Run with
//
//	go test ./internal/server -run TestLoad -load -v
func TestLoad(t *testing.T) {
	if !*loadTest {
		t.Skip("the load test runs with -load (go test ./internal/server -run TestLoad -load -v)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const dim = 128
	db, err := mmdb.Open(filepath.Join(dir, "load.mmdb"), &mmdb.Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(mmdb.Modality{Name: "image", Dim: dim, Metric: mmdb.Cosine}))
	r := rand.New(rand.NewPCG(1, 1))
	colors := []string{"red", "green", "blue", "black"}
	for start := 0; start < *loadItems; start += 5000 {
		var items []mmdb.Item
		for i := start; i < min(start+5000, *loadItems); i++ {
			items = append(items, mmdb.Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"image": randVec(r, dim)},
				Attrs: map[string]any{"color": colors[i%4], "n": int64(i)}})
		}
		require.NoError(t, db.Put(ctx, items...))
	}
	require.NoError(t, db.Close())
	srv, err := Open(dir, Config{})
	require.NoError(t, err)
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	const nq = 512
	bodies := make([][]byte, nq)
	probes := make([][]float32, nq)
	for i := range bodies {
		probes[i] = randVec(r, dim)
		bodies[i], _ = json.Marshal(map[string]any{"query": probes[i], "using": "image", "limit": 10})
	}
	sdb, _ := srv.DB("load")
	start := time.Now()
	n := 0
	for ; time.Since(start) < *loadTime && n < 200_000; n++ {
		_, err := sdb.Search(ctx, mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: probes[n%nq]}}, K: 10, NoAttrs: true})
		require.NoError(t, err)
	}
	goAPI := float64(n) / time.Since(start).Seconds()

	var report strings.Builder
	fmt.Fprintf(&report, "%d x %d cosine points, k 10, GOMAXPROCS %d, %s\n", *loadItems, dim, runtime.GOMAXPROCS(0), loadAvg())
	fmt.Fprintf(&report, "Go API, one goroutine: %.0f searches/s\n", goAPI)
	fmt.Fprintf(&report, "| clients | requests | req/s | p50 ms | p99 ms | max ms |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	for _, clients := range []int{1, 8, 32} {
		lat, took := loadLevel(t, client, hs.URL+"/collections/load/points/query", bodies, clients)
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		fmt.Fprintf(&report, "| %d | %d | %.0f | %.2f | %.2f | %.2f |\n", clients, len(lat), float64(len(lat))/took.Seconds(), pct(0.5), pct(0.99), pct(1))
	}
	t.Log("\n" + report.String())
}

// loadLevel runs clients goroutines posting bodies until the time or count
// bound, and returns every request's latency and the level's duration.
func loadLevel(t *testing.T, client *http.Client, url string, bodies [][]byte, clients int) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	budget := 200_000 / clients
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for i := 0; i < budget && time.Since(start) < *loadTime; i++ {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[(c*7919+i)%len(bodies)]))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	return "load average " + strings.Join(f[:3], " ")
}

// BenchmarkQueryHandler is one query through the handler, without the
// network: what the server adds to a search (compare BenchmarkQueryGoAPI).
//
//	go test ./internal/server -run XXX -bench Query -benchmem
func BenchmarkQueryHandler(b *testing.B) {
	s, h := newFolder(b, Config{})
	db, _ := s.DB("c")
	fillBench(b, db)
	body := benchBody()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/collections/c/points/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Body.String())
		}
	}
}

// BenchmarkQueryGoAPI is the same search through the Go API.
func BenchmarkQueryGoAPI(b *testing.B) {
	s, _ := newFolder(b, Config{})
	db, _ := s.DB("c")
	fillBench(b, db)
	q := mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "image", Vector: []float32{1, 0.5, 0.25, 0.125}}}, K: 10, NoAttrs: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Search(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

func fillBench(b *testing.B, db *mmdb.DB) {
	r := rand.New(rand.NewPCG(1, 2))
	var items []mmdb.Item
	for i := range 20_000 {
		items = append(items, mmdb.Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"image": randVec(r, 4)}, Attrs: map[string]any{"n": int64(i)}})
	}
	require.NoError(b, db.Put(context.Background(), items...))
}

func benchBody() []byte {
	b, _ := json.Marshal(map[string]any{"query": []float32{1, 0.5, 0.25, 0.125}, "using": "image", "limit": 10})
	return b
}
