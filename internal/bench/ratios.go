package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb/hnsw"
)

// Targets are the recalls@10 at which q/s are compared.
var Targets = []float64{0.95, 0.99}

// MMDBEngines are the engines of mmdb the side-by-side benchmark can
// compare with the peers: the default graph (walking on byte codes), and
// the graph configured with hnsw.Config.Float32Walk (no codes: less
// memory, slower out of cache).
var MMDBEngines = []string{"hnsw", "hnsw-f32"}

// Ratio is mmdb's q/s over a peer's at one recall, in each paired round
// (both engines measured in the same round, one after the other) and the
// median and range over the rounds.
type Ratio struct {
	Dataset string `json:"dataset"`
	// Engine is the mmdb engine compared (one of MMDBEngines).
	Engine string `json:"engine"`
	Peer   string `json:"peer"`
	// Allowed is the share of vectors a filter allowed (1: none).
	Allowed float64 `json:"allowed"`
	Recall  float64 `json:"recall"`
	// QPSRatio is the median of the rounds' ratios; Min and Max their
	// range. Nil when no round gave one (see Note).
	QPSRatio *float64 `json:"qps_ratio"`
	Min      *float64 `json:"min"`
	Max      *float64 `json:"max"`
	// Rounds has one ratio per round, nil where the recall lay outside
	// either engine's sweep.
	Rounds []*float64 `json:"rounds"`
	// Strategies, for a filtered search, says per round which of mmdb's
	// strategies was the faster at the recall (graph or scan): the ratio
	// is mmdb's best. Planner is the one mmdb's planner takes
	// (hnsw.ExactCutoff) at the smallest ef of the graph's sweep in the
	// first round that reaches the recall (the ef a user would ask for),
	// or at the default ef when none does.
	Strategies []string `json:"mmdb_strategies,omitempty"`
	Planner    string   `json:"planner,omitempty"`
	// Note says why a round has no ratio.
	Note string `json:"note,omitempty"`
}

// BuildRatio is mmdb's insert rate over a peer's at one thread count,
// per round: per CPU second with one thread, per wall-clock second with
// more (what the threads buy).
type BuildRatio struct {
	Dataset string     `json:"dataset"`
	Engine  string     `json:"engine"`
	Peer    string     `json:"peer"`
	Threads int        `json:"threads"`
	Ratio   *float64   `json:"inserts_ratio"`
	Min     *float64   `json:"min"`
	Max     *float64   `json:"max"`
	Rounds  []*float64 `json:"rounds"`
}

// QPSAtRecall interpolates q/s at a recall along one engine's ef curve
// (its rows of one dataset): linearly between the last ef below the
// target and the first at or above it. When even the smallest ef reaches
// the target, or no ef does, the target lies outside the sweep: it
// returns NaN and says which.
func QPSAtRecall(rows []Row, target float64) (float64, string) {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b Row) int { return a.Ef - b.Ef })
	if len(rows) == 0 {
		return math.NaN(), "not run"
	}
	for i, r := range rows {
		if r.Recall >= target {
			if i == 0 {
				return math.NaN(), fmt.Sprintf("%s reaches %.2f at its smallest ef (%d): the sweep starts too high", r.Engine, target, r.Ef)
			}
			p := rows[i-1]
			t := (target - p.Recall) / (r.Recall - p.Recall)
			return p.QPS + t*(r.QPS-p.QPS), ""
		}
	}
	last := rows[len(rows)-1]
	return math.NaN(), fmt.Sprintf("%s does not reach %.2f (%.3f at ef %d)", last.Engine, target, last.Recall, last.Ef)
}

// curve returns one engine's rows of one dataset at one allowed share.
func curve(r Report, dataset, engine string, allowed float64) []Row {
	var out []Row
	for _, x := range r.Rows {
		if x.Dataset == dataset && x.Engine == engine && x.Allowed == allowed {
			out = append(out, x)
		}
	}
	return out
}

// mmdbAt is mmdb's q/s at a recall: along engine's graph sweep, or,
// filtered, the exact scan's through the same index when that is faster
// (its recall is 1); and which.
func mmdbAt(r Report, ds, engine string, allowed, target float64) (float64, string, string) {
	q, note := QPSAtRecall(curve(r, ds, engine, allowed), target)
	strategy := "graph"
	if math.IsNaN(q) {
		strategy = "-"
	}
	for _, s := range curve(r, ds, ScanEngineOf(engine), allowed) {
		if s.Recall >= target && (math.IsNaN(q) || s.QPS > q) {
			q, note, strategy = s.QPS, "", "scan"
		}
	}
	return q, strategy, note
}

// efFor is the ef a user would ask for to get target recall from mmdb's
// graph (engine) with a filter keeping allowed: the smallest of round r's
// sweep that reaches it, or hnsw.DefaultEfSearch when none does.
func efFor(r Report, ds, engine string, allowed, target float64) int {
	ef := 0
	for _, x := range curve(r, ds, engine, allowed) {
		if x.Recall >= target && (ef == 0 || x.Ef < ef) {
			ef = x.Ef
		}
	}
	if ef == 0 {
		return hnsw.DefaultEfSearch
	}
	return ef
}

// spread returns the median, minimum and maximum of the finite values,
// nil when there are none.
func spread(rounds []*float64) (med, lo, hi *float64) {
	var xs []float64
	for _, r := range rounds {
		if r != nil {
			xs = append(xs, *r)
		}
	}
	if len(xs) == 0 {
		return nil, nil, nil
	}
	m, a, b := median(xs), slices.Min(xs), slices.Max(xs)
	return &m, &a, &b
}

// finite returns &x, or nil when x is NaN or infinite.
func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// PairedRatios computes, from the reports of paired rounds (each round
// holding mmdb's and the peers' runs), the q/s of each of mmdb's engines
// that ran (MMDBEngines) over each peer's at every target recall,
// unfiltered and at every filter's allowed share, and its insert rate over
// each peer's. sizes gives each dataset's vector count, for the planner's
// choice on filtered searches.
func PairedRatios(rounds []Report, peers []string, sizes map[string]int) ([]Ratio, []BuildRatio) {
	type key struct {
		ds, engine string
		allowed    float64
	}
	var keys []key
	type dsEngine struct{ ds, engine string }
	var datasets []dsEngine
	for _, r := range rounds {
		for _, x := range r.Rows {
			if !slices.Contains(MMDBEngines, x.Engine) {
				continue
			}
			if k := (key{x.Dataset, x.Engine, x.Allowed}); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
			if d := (dsEngine{x.Dataset, x.Engine}); !slices.Contains(datasets, d) {
				datasets = append(datasets, d)
			}
		}
	}
	var ratios []Ratio
	for _, k := range keys {
		for _, peer := range peers {
			for _, target := range Targets {
				q := Ratio{Dataset: k.ds, Engine: k.engine, Peer: peer, Allowed: k.allowed, Recall: target}
				if k.allowed < 1 && len(rounds) > 0 {
					n := sizes[k.ds]
					q.Planner = "graph"
					if float64(n)*k.allowed <= float64(hnsw.ExactCutoff(efFor(rounds[0], k.ds, k.engine, k.allowed, target), n)) {
						q.Planner = "scan"
					}
				}
				var notes []string
				for _, r := range rounds {
					m, strategy, mn := mmdbAt(r, k.ds, k.engine, k.allowed, target)
					peerRows := curve(r, k.ds, peer, k.allowed)
					p, pn := QPSAtRecall(peerRows, target)
					if len(peerRows) == 0 && k.allowed < 1 {
						pn = peer + " did not filter"
					}
					for _, n := range []string{mn, pn} {
						if n != "" && !slices.Contains(notes, n) {
							notes = append(notes, n)
						}
					}
					q.Rounds = append(q.Rounds, finite(m/p))
					if k.allowed < 1 {
						q.Strategies = append(q.Strategies, strategy)
					}
				}
				q.QPSRatio, q.Min, q.Max = spread(q.Rounds)
				q.Note = strings.Join(notes, "; ")
				ratios = append(ratios, q)
			}
		}
	}
	var builds []BuildRatio
	for _, d := range datasets {
		for _, peer := range peers {
			builds = append(builds, buildRatios(rounds, d.ds, d.engine, peer)...)
		}
	}
	return ratios, builds
}

// buildRatios compares engine's insert rates with peer's per thread
// count, round by round.
func buildRatios(rounds []Report, ds, engine, peer string) []BuildRatio {
	var threads []int
	for _, r := range rounds {
		for _, b := range r.Builds {
			if b.Dataset == ds && b.Engine == engine && !slices.Contains(threads, b.Threads) {
				threads = append(threads, b.Threads)
			}
		}
	}
	var out []BuildRatio
	for _, th := range threads {
		br := BuildRatio{Dataset: ds, Engine: engine, Peer: peer, Threads: th}
		for _, r := range rounds {
			var m, p float64 = math.NaN(), math.NaN()
			for _, b := range r.Builds {
				if b.Dataset != ds || b.Threads != th {
					continue
				}
				rate := b.InsertsPerSec
				if th == 1 {
					rate = b.InsertsPerCPUSec
				}
				switch b.Engine {
				case engine:
					m = rate
				case peer:
					p = rate
				}
			}
			br.Rounds = append(br.Rounds, finite(m/p))
		}
		br.Ratio, br.Min, br.Max = spread(br.Rounds)
		out = append(out, br)
	}
	return out
}

// RatiosMarkdown renders the paired ratios as two tables.
func RatiosMarkdown(ratios []Ratio, builds []BuildRatio) string {
	var b strings.Builder
	b.WriteString("| dataset | mmdb engine | peer | allowed | recall@10 | mmdb/peer q/s per CPU-s: median | range | rounds | mmdb's faster strategy per round; the planner's | note |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range ratios {
		strategy := ""
		if r.Planner != "" {
			strategy = strings.Join(r.Strategies, " ") + "; " + r.Planner
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f%% | %.2f | %s | %s | %s | %s | %s |\n", r.Dataset, r.Engine, r.Peer, 100*r.Allowed, r.Recall, ratioText(r.QPSRatio), rangeText(r.Min, r.Max), roundsText(r.Rounds), strategy, r.Note)
	}
	b.WriteString("\n| dataset | mmdb engine | peer | build threads | mmdb/peer inserts (1 thread: per CPU-s; more: per wall s): median | range | rounds |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range builds {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", r.Dataset, r.Engine, r.Peer, r.Threads, ratioText(r.Ratio), rangeText(r.Min, r.Max), roundsText(r.Rounds))
	}
	return b.String()
}

func ratioText(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *x)
}

func rangeText(lo, hi *float64) string {
	if lo == nil || hi == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f-%.2f", *lo, *hi)
}

func roundsText(rs []*float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = ratioText(r)
	}
	return strings.Join(s, " ")
}
