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
// below hnsw.ConfidentShare of it when it does not.

// rewalkWidth is how many times wider than the first a walk's second
// beam is: a first fit, not tuned. On BenchmarkFilteredPlanner's set,
// with a filter keeping half the clusters, walking again 8x as wide took
// the planner's recall@10 from the first walk's 0.931 to 0.9725 at ef 16
// (48.5% of the walks done again) and from 0.975 to 0.987 at ef 64 (14%).
const rewalkWidth = 8

// rescanPerCandidate: a walk that is not confident is done again as an
// exact scan rather than a wider walk when the filter keeps at most this
// many vectors for each candidate the first walk took: where the two
// cost about the same. BenchmarkRecheckCost measured the wider walk's
// CPU time per first candidate over the scan's per allowed vector at
// 15-37 with filters that keep whole clusters (the walks that are not
// confident), 58-60 with filters that ignore them.
const rescanPerCandidate = 25

// stopExpected is the least number of allowed candidates a walk with a
// filter that ignores where vectors lie is expected to have taken before
// it may be stopped early (hnsw.WalkStats.Floor): 20, of which fewer than
// hnsw.StopShare's 7 happen by chance in under one walk in a thousand.
const stopExpected = 20

// walkChecked searches the target index with opts. A filtered walk whose
// statistics say its filter misled it (hnsw.WalkStats.Confident) is done
// again, once: as an exact scan when the filter keeps few vectors for
// what the walk cost (rescanPer), else as a walk rewalkWidth times as
// wide. A walk plainly misled (hnsw.StopShare) is stopped once it has
// taken as many candidates as make the scan the second search, and
// scanned. One that found fewer hits than depth when the filter keeps
// more is scanned. They are counted in Plan.Rescans and
// Plan.Rewalks; steps, if non-nil, receives the second search's time and
// why.
func (p *planned) walkChecked(vec []float32, depth int, opts hnsw.SearchOptions, steps *[]Step) []hnsw.Result {
	if opts.Exact || p.allow == nil {
		return p.first(vec, depth, opts, steps)
	}
	allowed := p.plan.FilterMatches
	share := float64(allowed) / float64(max(1, p.plan.Candidates))
	perCandidate := p.rescanPer()
	// The walk may stop once it has cost what the scan would, and at
	// least stopExpected allowed candidates are expected; the cap only
	// keeps the conversion in range (a share near 0 is scanned anyway).
	ws := hnsw.WalkStats{Share: share, Budget: max(1, allowed/perCandidate), Floor: int(min(stopExpected/share, 1<<30))}
	opts.Walk = &ws
	res := p.first(vec, depth, opts, steps)
	// A set index gives its share in vectors (hnsw.Multi).
	share = ws.Share
	if ws.Stopped { // its results are incomplete
		opts.Exact = true
		return p.again(vec, depth, opts, "rescan exactly, the walk stopped early: "+walkSaw(ws, share), steps)
	}
	if len(res) < min(depth, allowed) { // fewer than the filter keeps
		opts.Exact = true
		return p.again(vec, depth, opts, fmt.Sprintf("rescan exactly: the walk found %d of the %d asked", len(res), min(depth, allowed)), steps)
	}
	if ws.Candidates == 0 || ws.Confident(share) { // 0: an engine that does not count
		return res
	}
	if p.scanCost(vec, allowed, share) <= perCandidate*ws.Candidates {
		opts.Exact = true
		return p.again(vec, depth, opts, "rescan exactly: "+walkSaw(ws, share), steps)
	}
	opts.Ef = rewalkWidth * max(opts.Ef, depth)
	return p.again(vec, depth, opts, fmt.Sprintf("walk again at ef %d: %s", opts.Ef, walkSaw(ws, share)), steps)
}

// first runs a plan's search with opts: for a set index under ANALYZE
// (steps non-nil), with the steps of its two stages.
func (p *planned) first(vec []float32, depth int, opts hnsw.SearchOptions, steps *[]Step) []hnsw.Result {
	if mi, ok := p.tidx.(*hnsw.Multi); ok && steps != nil {
		res, st := mi.SearchStats(vec, depth, opts)
		lateSteps(steps, mi, st, len(res), opts.Exact)
		return res
	}
	return p.tidx.Search(vec, depth, opts)
}

// walkSaw says what a walk saw, for a step's name.
func walkSaw(ws hnsw.WalkStats, share float64) string {
	return fmt.Sprintf("the walk found %d allowed in %d candidates, %.1f%% against %.1f%% of the index",
		ws.Accepted, ws.Candidates, 100*float64(ws.Accepted)/float64(max(1, ws.Candidates)), 100*share)
}

// again runs a filtered search a second time, with opts (Exact: a scan,
// else a wider walk), counts it in the plan and records it in steps.
func (p *planned) again(vec []float32, depth int, opts hnsw.SearchOptions, why string, steps *[]Step) []hnsw.Result {
	start := time.Now()
	opts.Walk = nil
	if opts.Exact {
		p.plan.Rescans++
	} else {
		p.plan.Rewalks++
	}
	res := p.tidx.Search(vec, depth, opts)
	addStep(steps, why, start, len(res))
	return res
}

// scanCost is how many vectors an exact scan of allowed items scores: one
// each, or for a set index the allowed sets' vectors (share of its
// graph's, as its walk gave it) once for each of the query's vectors
// (whose walks' candidates hnsw.Multi sums).
func (p *planned) scanCost(vec []float32, allowed int, share float64) int {
	mi, ok := p.tidx.(*hnsw.Multi)
	if !ok {
		return allowed
	}
	nq := len(vec) / max(1, mi.Dim())
	return int(min(share*float64(mi.Vectors())*float64(nq), 1<<30))
}

// rescanPer is rescanPerCandidate for the target index: less for a graph
// that reads its vectors back from the file, whose scan costs more in the
// ratio of hnsw.ExactCostSourced to hnsw.ExactCost.
func (p *planned) rescanPer() int {
	if g, ok := p.tidx.(*hnsw.HNSW); ok && g.Config().Source != nil {
		return max(1, rescanPerCandidate*hnsw.ExactCostSourced/hnsw.ExactCost)
	}
	return rescanPerCandidate
}
