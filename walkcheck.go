package mmdb

import (
	"fmt"
	"time"

	"github.com/mmdb-go/mmdb/hnsw"
)

// Checking filtered walks. A graph walk with an allow-list reaches the
// allowed vectors through the links of all the others; where the filter
// keeps vectors away from the query (the items of other clusters), it
// can miss the closest of them. The walk counts the candidates it took
// and the allowed among them (hnsw.WalkStats): candidates are taken by
// distance alone, so the allowed share among them is near the filter's
// share of the index when the filter ignores where vectors lie, and
// below ConfidentShare of it when it does not.

// rewalkWidth is how many times wider than the first a walk's second
// beam is. On BenchmarkFilteredPlanner's set, the walks that were not
// confident at ef 16 and 64 with filters keeping whole clusters went from
// recall@10 0.80-0.94 to 0.98-1.00 at 8x (0.94-0.99 at 4x).
const rewalkWidth = 8

// rescanPerCandidate: a walk that is not confident is done again as an
// exact scan rather than a wider walk when the filter keeps at most this
// many vectors for each candidate the first walk took: where the two
// cost about the same. BenchmarkRecheckCost measured the wider walk's
// CPU time per first candidate over the scan's per allowed vector at
// 15-37 with filters that keep whole clusters (the walks that are not
// confident), 58-60 with filters that ignore them.
const rescanPerCandidate = 25

// walkChecked searches the target index with opts. A filtered walk whose
// statistics say its filter misled it (hnsw.WalkStats.Confident) is done
// again, once: as an exact scan when the filter keeps few vectors for
// what the walk cost (rescanPerCandidate), else as a walk rewalkWidth
// times as wide. One that found fewer hits than depth when the filter
// keeps more is scanned. They are counted in Plan.Rescans and
// Plan.Rewalks; steps, if non-nil, receives the second search's time.
func (p *planned) walkChecked(vec []float32, depth int, opts hnsw.SearchOptions, steps *[]Step) []hnsw.Result {
	if opts.Exact || p.allow == nil {
		return p.tidx.Search(vec, depth, opts)
	}
	var ws hnsw.WalkStats
	opts.Walk = &ws
	res := p.tidx.Search(vec, depth, opts)
	if ws.Candidates == 0 { // an engine that does not walk, or does not count
		return res
	}
	share := float64(p.plan.FilterMatches) / float64(max(1, p.plan.Candidates))
	short := len(res) < min(depth, p.plan.FilterMatches)
	if ws.Confident(share) && !short {
		return res
	}
	start := time.Now()
	opts.Walk = nil
	what := "rescan exactly"
	if short || p.plan.FilterMatches <= rescanPerCandidate*ws.Candidates {
		opts.Exact = true
		p.plan.Rescans++
	} else {
		opts.Ef = rewalkWidth * max(opts.Ef, depth)
		p.plan.Rewalks++
		what = fmt.Sprintf("walk again at ef %d", opts.Ef)
	}
	res = p.tidx.Search(vec, depth, opts)
	if steps != nil {
		*steps = append(*steps, Step{Name: fmt.Sprintf("%s (the walk found %d allowed in %d candidates, %.2g%% against %.2g%% of the index)",
			what, ws.Accepted, ws.Candidates, 100*float64(ws.Accepted)/float64(ws.Candidates), 100*share), Took: time.Since(start), Rows: len(res)})
	}
	return res
}
