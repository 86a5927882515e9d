package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rows(engine string, points ...[3]float64) []Row { // ef, recall, q/s
	var out []Row
	for _, p := range points {
		out = append(out, Row{Dataset: "d", Engine: engine, Ef: int(p[0]), Allowed: 1, Recall: p[1], QPS: p[2]})
	}
	return out
}

func TestQPSAtRecall(t *testing.T) {
	curve := rows("hnsw", [3]float64{10, 0.90, 1000}, [3]float64{20, 0.96, 800}, [3]float64{40, 0.995, 500})
	tests := []struct {
		name   string
		rows   []Row
		target float64
		want   float64 // NaN: outside the sweep
		note   string
	}{
		{"interpolated", curve, 0.95, 1000 + (0.05/0.06)*(800-1000), ""},
		{"between the last two", curve, 0.99, 800 + (0.03/0.035)*(500-800), ""},
		{"on a point", curve, 0.96, 800, ""},
		{"unsorted input is sorted by ef", []Row{curve[2], curve[0], curve[1]}, 0.95, 1000 + (0.05/0.06)*(800-1000), ""},
		// The old rule returned the first point's q/s here.
		{"the smallest ef already reaches it", curve, 0.85, math.NaN(), "reaches 0.85 at its smallest ef (10): the sweep starts too high"},
		{"no ef reaches it", curve, 0.999, math.NaN(), "does not reach 1.00 (0.995 at ef 40)"},
		{"not run", nil, 0.95, math.NaN(), "not run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, note := QPSAtRecall(tc.rows, tc.target)
			if math.IsNaN(tc.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				assert.Contains(t, note, tc.note)
				return
			}
			assert.InDelta(t, tc.want, got, 1e-9)
			assert.Empty(t, note)
		})
	}
}

// Ratios are taken within each round, then summarised: a peer whose
// speed drifts between rounds moves the ratios of those rounds only, and
// a round where the target lies outside a sweep has no ratio (null in
// JSON) and says why, with no NaN anywhere.
func TestPairedRatios(t *testing.T) {
	round := func(mmdbQPS, peerQPS, peerLow float64) Report {
		var r Report
		r.Rows = append(r.Rows, rows("hnsw", [3]float64{10, 0.90, 2 * mmdbQPS}, [3]float64{20, 1.0, mmdbQPS})...)
		r.Rows = append(r.Rows, rows("hnswlib", [3]float64{10, peerLow, 2 * peerQPS}, [3]float64{20, 1.0, peerQPS})...)
		r.Builds = []Build{
			{Dataset: "d", Engine: "hnsw", Threads: 1, InsertsPerCPUSec: 100, InsertsPerSec: 90},
			{Dataset: "d", Engine: "hnswlib", Threads: 1, InsertsPerCPUSec: 50, InsertsPerSec: 90},
			{Dataset: "d", Engine: "hnsw", Threads: 2, InsertsPerCPUSec: 100, InsertsPerSec: 150},
			{Dataset: "d", Engine: "hnswlib", Threads: 2, InsertsPerCPUSec: 100, InsertsPerSec: 100},
		}
		return r
	}
	// Same shape of curve for both engines: the ratio at any recall is
	// the ratio of the q/s; round 3's peer already reaches 0.95 at ef 10.
	rounds := []Report{round(1000, 1000, 0.90), round(1000, 500, 0.90), round(1000, 800, 0.96)}
	ratios, builds := PairedRatios(rounds, []string{"hnswlib"}, map[string]int{"d": 1000})
	require.Len(t, ratios, 2)
	r95 := ratios[0]
	assert.Equal(t, 0.95, r95.Recall)
	require.Len(t, r95.Rounds, 3)
	assert.InDelta(t, 1.0, *r95.Rounds[0], 1e-9)
	assert.InDelta(t, 2.0, *r95.Rounds[1], 1e-9)
	assert.Nil(t, r95.Rounds[2])
	assert.InDelta(t, 1.5, *r95.QPSRatio, 1e-9) // median of 1 and 2
	assert.InDelta(t, 1.0, *r95.Min, 1e-9)
	assert.InDelta(t, 2.0, *r95.Max, 1e-9)
	assert.Contains(t, r95.Note, "hnswlib reaches 0.95 at its smallest ef (10)")
	r99 := ratios[1]
	// Round 3 at 0.99: mmdb 2000 + 0.9 (1000 - 2000) = 1100 against the
	// peer's 1600 + 0.75 (800 - 1600) = 1000: the rounds are 1, 2, 1.1.
	assert.InDelta(t, 1.1, *r99.Rounds[2], 1e-9)
	assert.InDelta(t, 1.1, *r99.QPSRatio, 1e-9)
	assert.Empty(t, r99.Note)

	require.Len(t, builds, 2)
	assert.Equal(t, 1, builds[0].Threads)
	assert.InDelta(t, 2.0, *builds[0].Ratio, 1e-9, "one thread: per CPU second")
	assert.InDelta(t, 1.5, *builds[1].Ratio, 1e-9, "two threads: per wall second")

	b, err := json.Marshal(struct {
		Ratios []Ratio      `json:"ratios"`
		Builds []BuildRatio `json:"build_ratios"`
	}{ratios, builds})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"rounds":[1,2,null]`)
	assert.Contains(t, string(b), `"qps_ratio":1.5`)

	md := RatiosMarkdown(ratios, builds)
	assert.Contains(t, md, "| d | hnsw | hnswlib | 100% | 0.95 | 1.50 | 1.00-2.00 | 1.00 2.00 - |")
}

// With both of mmdb's engines in the rounds, each is compared with the
// peer on its own curve and its own builds, and says which it is.
func TestPairedRatiosPerEngine(t *testing.T) {
	var r Report
	r.Rows = append(r.Rows, rows("hnsw", [3]float64{10, 0.90, 3000}, [3]float64{20, 1.0, 1500})...)
	r.Rows = append(r.Rows, rows("hnsw-f32", [3]float64{10, 0.90, 2000}, [3]float64{20, 1.0, 1000})...)
	r.Rows = append(r.Rows, rows("hnswlib", [3]float64{10, 0.90, 1000}, [3]float64{20, 1.0, 500})...)
	r.Builds = []Build{
		{Dataset: "d", Engine: "hnsw", Threads: 1, InsertsPerCPUSec: 300},
		{Dataset: "d", Engine: "hnsw-f32", Threads: 1, InsertsPerCPUSec: 150},
		{Dataset: "d", Engine: "hnswlib", Threads: 1, InsertsPerCPUSec: 100},
	}
	ratios, builds := PairedRatios([]Report{r, r}, []string{"hnswlib"}, map[string]int{"d": 1000})
	require.Len(t, ratios, 4)
	got := map[string]float64{}
	for _, q := range ratios {
		require.NotNil(t, q.QPSRatio, "%s at %.2f: %s", q.Engine, q.Recall, q.Note)
		got[fmt.Sprintf("%s %.2f", q.Engine, q.Recall)] = *q.QPSRatio
	}
	assert.InDeltaMapValues(t, map[string]float64{"hnsw 0.95": 3, "hnsw 0.99": 3, "hnsw-f32 0.95": 2, "hnsw-f32 0.99": 2}, got, 1e-9)
	require.Len(t, builds, 2)
	assert.Equal(t, "hnsw", builds[0].Engine)
	assert.InDelta(t, 3.0, *builds[0].Ratio, 1e-9)
	assert.Equal(t, "hnsw-f32", builds[1].Engine)
	assert.InDelta(t, 1.5, *builds[1].Ratio, 1e-9)
	assert.Contains(t, RatiosMarkdown(ratios, builds), "| d | hnsw-f32 | hnswlib | 1 | 1.50 |")
}

// The JSON of a report never fails on a figure that was not measured.
func TestReportJSONWithoutMeasuredFigures(t *testing.T) {
	rss := 123.0
	rep := Report{Builds: []Build{{Dataset: "d", Engine: "hnswlib", Threads: 1, RSSPerVector: &rss}, {Dataset: "d", Engine: "hnsw", Threads: 2}}}
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"rss_bytes_per_vector":123`)
	assert.NotContains(t, string(b), "heap_bytes_per_vector")
	med := Medians([]Report{rep, rep})
	_, err = json.Marshal(med)
	require.NoError(t, err)
	require.NotNil(t, med.Builds[0].RSSPerVector)
	assert.Nil(t, med.Builds[1].RSSPerVector)
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine()
	m.Finish()
	assert.Positive(t, m.Cores)
	if m.CPU == "" {
		t.Skip("no /proc/cpuinfo here")
	}
	if runtime.GOARCH == "amd64" {
		assert.Contains(t, m.Flags, "sse4_2", "every x86-64 CPU mmdb runs on has it")
	}
	assert.Contains(t, m.String(), m.CPU)
}

// Filtered, mmdb's figure is its faster strategy in each round (the graph
// interpolated, or the exact scan, whose recall is 1), and the planner's
// own choice is reported beside it; a peer that cannot filter gives no
// ratio and says so.
func TestPairedRatiosFiltered(t *testing.T) {
	const allowed = 0.01
	mk := func(scanQPS float64, peer bool) Report {
		var r Report
		for _, x := range rows("hnsw", [3]float64{10, 0.90, 1000}, [3]float64{20, 1.0, 600}) {
			x.Allowed = allowed
			r.Rows = append(r.Rows, x)
		}
		r.Rows = append(r.Rows, Row{Dataset: "d", Engine: ScanEngine, Allowed: allowed, Recall: 1, QPS: scanQPS})
		if peer {
			for _, x := range rows("hnswlib", [3]float64{10, 0.90, 500}, [3]float64{20, 1.0, 300}) {
				x.Allowed = allowed
				r.Rows = append(r.Rows, x)
			}
		}
		return r
	}
	// Graph at 0.95: 1000 + 0.5 (600 - 1000) = 800, the peer's 400.
	ratios, _ := PairedRatios([]Report{mk(500, true), mk(1200, true)}, []string{"hnswlib"}, map[string]int{"d": 100_000})
	require.Len(t, ratios, 2)
	r := ratios[0]
	assert.Equal(t, allowed, r.Allowed)
	assert.InDelta(t, 2.0, *r.Rounds[0], 1e-9) // graph 800 / 400
	assert.InDelta(t, 3.0, *r.Rounds[1], 1e-9) // scan 1200 / 400
	assert.Equal(t, []string{"graph", "scan"}, r.Strategies)
	// The planner is asked at ef 20, the smallest that reaches 0.95:
	// 1,000 allowed of 100,000 is under its cutoff there (8,000); 100,000
	// of 10 million is over it (80,000).
	assert.Equal(t, "scan", r.Planner)
	ratios, _ = PairedRatios([]Report{mk(500, true)}, []string{"hnswlib"}, map[string]int{"d": 10_000_000})
	assert.Equal(t, "graph", ratios[0].Planner)
	assert.Equal(t, 8000, hnsw.ExactCutoff(20, 100_000))

	ratios, _ = PairedRatios([]Report{mk(500, false)}, []string{"hnswlib"}, map[string]int{"d": 100_000})
	assert.Nil(t, ratios[0].QPSRatio)
	assert.Contains(t, ratios[0].Note, "hnswlib did not filter")
}

// A filter that allows fewer vectors than k has shorter truth rows:
// recall counts against what exists (an exact scan finds all of it), and
// the filtered rows never share the unfiltered rows' share.
func TestFilteredRecallWithFewerThanK(t *testing.T) {
	d := Synthetic("tiny", 1000, 20, 16, 5, 3)
	cfg := Config{Engines: []string{"hnsw"}, Efs: []int{16}, Threads: []int{1}, K: 10, Filters: []int{200}} // 5 allowed
	rep, err := Run(t.Context(), d, cfg)
	require.NoError(t, err)
	var scan, graph, bitmap, unfiltered int
	for _, r := range rep.Rows {
		switch {
		case r.Engine == ScanEngine:
			scan++
			assert.Equal(t, 1.0, r.Recall, "the exact scan finds every allowed vector")
			assert.Equal(t, 1/200.0, r.Allowed)
		case r.Allowed == 1:
			unfiltered++
		case r.Engine == BitmapEngine:
			bitmap++
			assert.LessOrEqual(t, r.Recall, 1.0)
		default:
			graph++
			assert.LessOrEqual(t, r.Recall, 1.0)
		}
	}
	assert.Equal(t, 1, scan)
	assert.Equal(t, 1, graph, "the walk given a filter function")
	assert.Equal(t, 1, bitmap, "the walk given a bitmap")
	assert.Equal(t, 1, unfiltered)
}

// Filtered, each engine's figure is the faster of its own walk and its own
// scan: Float32Walk's ratio never borrows the default index's scan.
func TestPairedRatiosFilteredPerEngine(t *testing.T) {
	const allowed = 0.1
	var r Report
	add := func(engine string, pts ...[3]float64) {
		for _, x := range rows(engine, pts...) {
			x.Allowed = allowed
			r.Rows = append(r.Rows, x)
		}
	}
	add("hnsw", [3]float64{10, 0.90, 1000}, [3]float64{20, 1.0, 600})
	add("hnsw-f32", [3]float64{10, 0.90, 500}, [3]float64{20, 1.0, 300})
	add("hnswlib", [3]float64{10, 0.90, 500}, [3]float64{20, 1.0, 300})
	r.Rows = append(r.Rows,
		Row{Dataset: "d", Engine: ScanEngineOf("hnsw"), Allowed: allowed, Recall: 1, QPS: 2000},
		Row{Dataset: "d", Engine: ScanEngineOf("hnsw-f32"), Allowed: allowed, Recall: 1, QPS: 200},
		Row{Dataset: "d", Engine: BitmapEngine, Allowed: allowed, Recall: 1, QPS: 9000})
	ratios, _ := PairedRatios([]Report{r}, []string{"hnswlib"}, map[string]int{"d": 100_000})
	got := map[string]string{}
	for _, q := range ratios {
		if q.Recall == 0.95 {
			require.NotNil(t, q.QPSRatio, q.Engine)
			got[q.Engine] = fmt.Sprintf("%.2f %v", *q.QPSRatio, q.Strategies)
		}
	}
	// At 0.95: the default's scan (2000) beats its walk (800), over the
	// peer's 400; Float32Walk's walk (400) beats its own scan (200).
	assert.Equal(t, map[string]string{"hnsw": "5.00 [scan]", "hnsw-f32": "1.00 [graph]"}, got)
	assert.Equal(t, "hnsw-f32-scan", ScanEngineOf("hnsw-f32"))
}
