package mmdb

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/fusion"
)

// Route is how probes of one modality reach the target's.
type Route string

// The routes, in the order the planner tries them (see state.route).
const (
	// RouteAligned: projected into the target's space by a stored
	// Alignment.
	RouteAligned Route = "aligned"
	// RouteDirect: the same space; the probe searches the target's index
	// as it is.
	RouteDirect Route = "direct"
	// RoutePivot: through the items that carry both modalities.
	RoutePivot Route = "pivot"
)

// Strategy is how a plan searches the target's vectors.
type Strategy string

// The strategies.
const (
	// StrategyExact scans the candidates.
	StrategyExact Strategy = "exact"
	// StrategyHNSW walks the graph, with the filter as an allow-list.
	StrategyHNSW Strategy = "hnsw"
	// StrategyPostings answers COUNT from the attribute postings alone.
	StrategyPostings Strategy = "postings"
)

// Plan is how a query will run (Explain) or ran (ExplainAnalyze).
type Plan struct {
	// Target is the modality ranked.
	Target string
	// K is the number of hits asked for, after skipping Offset.
	K, Offset int
	// Excluded is the number of target vectors left out by Query.Exclude
	// and the probes' own items.
	Excluded int
	// GroupBy and GroupSize: at most GroupSize hits per value of the
	// attribute GroupBy ("" for none).
	GroupBy   string
	GroupSize int
	// Filter is the filter as parsed ("" for none), FilterMatches the
	// number of target vectors it keeps, out of Candidates.
	Filter        string
	FilterMatches int
	Candidates    int
	// Strategy is StrategyExact (a scan of the candidates) or StrategyHNSW
	// (the graph, with the filter as an allow-list), with Ef for the graph
	// and Why; StrategyPostings for COUNT.
	Strategy Strategy
	Ef       int
	Why      string
	// Probes has one entry per probe: its route and why.
	Probes []ProbePlan
	// Fusion is how several probes' lists are merged ("" for one probe),
	// and Depth how many hits each list contributes.
	Fusion fusion.Method
	Depth  int
	// Steps are the timed steps of ExplainAnalyze (empty for Explain).
	Steps []Step
	// Recall is ExplainAnalyze's recall@K of this very query against the
	// same query run with exact scans (1 when it ran exactly); 0 for
	// Explain.
	Recall float64
}

// ProbePlan is the route of one probe.
type ProbePlan struct {
	Modality string
	Source   string // "vector" or the item ID it came from
	Route    Route
	Weight   float32
	Why      string
	// Encoder names the encoder that made the probe from raw content
	// (empty for vectors and items); EncodeTook is the time it took.
	Encoder    string
	EncodeTook time.Duration
	spec       *encoder.Spec // the encoder as stored when it encoded
}

// quoteShort quotes a text probe for a plan, cut to 40 characters.
func quoteShort(t string) string {
	if r := []rune(t); len(r) > 40 {
		t = string(r[:40]) + "..."
	}
	return strconv.Quote(t)
}

// Step is one timed part of an executed plan.
type Step struct {
	Name string
	Took time.Duration
	Rows int
}

// String renders the plan as an indented tree, the form EXPLAIN prints.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Strategy == StrategyPostings { // COUNT
		fmt.Fprintf(&b, "COUNT\n  filter: %s -> %d of %d items\n  strategy: postings (%s)\n", p.Filter, p.FilterMatches, p.Candidates, p.Why)
		return b.String()
	}
	fmt.Fprintf(&b, "SEARCH %s LIMIT %d", p.Target, p.K)
	if p.Offset > 0 {
		fmt.Fprintf(&b, " OFFSET %d", p.Offset)
	}
	b.WriteString("\n")
	if p.Filter != "" {
		fmt.Fprintf(&b, "  filter: %s -> %d of %d %s vectors\n", p.Filter, p.FilterMatches+p.Excluded, p.Candidates, p.Target)
	}
	if p.GroupBy != "" {
		fmt.Fprintf(&b, "  group by %s: at most %d hits per value, searching %d deep (deeper while groups leave the page short)\n", p.GroupBy, p.GroupSize, p.Depth)
	}
	if p.Excluded > 0 {
		fmt.Fprintf(&b, "  exclude: %d items (listed, or the probes' own) -> %d candidates\n", p.Excluded, p.FilterMatches)
	}
	fmt.Fprintf(&b, "  strategy: %s", p.Strategy)
	if p.Strategy == StrategyHNSW {
		fmt.Fprintf(&b, " ef=%d", p.Ef)
	}
	fmt.Fprintf(&b, " (%s)\n", p.Why)
	if p.Fusion != "" {
		fmt.Fprintf(&b, "  fusion: %s over %d lists of up to %d\n", p.Fusion, len(p.Probes), p.Depth)
	}
	for _, pr := range p.Probes {
		fmt.Fprintf(&b, "  probe %s (%s, weight %g): %s route, %s\n", pr.Modality, pr.Source, pr.Weight, pr.Route, pr.Why)
		if pr.Encoder != "" {
			fmt.Fprintf(&b, "    encode: %s, %s\n", pr.Encoder, pr.EncodeTook.Round(time.Microsecond))
		}
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  step %-28s %10s  %d rows\n", s.Name, s.Took.Round(time.Microsecond), s.Rows)
	}
	if len(p.Steps) > 0 {
		fmt.Fprintf(&b, "  recall@%d against exact: %.3f\n", p.K, p.Recall)
	}
	return b.String()
}
