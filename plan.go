package mmdb

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/query"
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
	// Statement is the query as a statement (vectors shown by their
	// length), the header EXPLAIN prints.
	Statement string `json:"statement"`
	// Target is the modality ranked.
	Target string `json:"target"`
	// K is the number of hits asked for, after skipping Offset.
	K      int `json:"k"`
	Offset int `json:"offset"`
	// Excluded is the number of target vectors left out by Query.Exclude
	// and the probes' own items.
	Excluded int `json:"excluded"`
	// GroupBy and GroupSize: at most GroupSize hits per value of the
	// attribute GroupBy ("" for none).
	GroupBy   string `json:"group_by"`
	GroupSize int    `json:"group_size"`
	// Filter is the filter as parsed ("" for none), FilterMatches the
	// number of target vectors it keeps, out of Candidates.
	Filter        string `json:"filter"`
	FilterMatches int    `json:"filter_matches"`
	Candidates    int    `json:"candidates"`
	// Strategy is StrategyExact (a scan of the candidates) or StrategyHNSW
	// (the graph, with the filter as an allow-list), with Ef for the graph
	// and Why; StrategyPostings for COUNT.
	Strategy Strategy `json:"strategy"`
	Ef       int      `json:"ef"`
	Why      string   `json:"why"`
	// Probes has one entry per probe: its route and why.
	Probes []ProbePlan `json:"probes"`
	// Fusion is how several probes' lists are merged ("" for one probe),
	// and Depth how many hits each list contributes.
	Fusion fusion.Method `json:"fusion"`
	Depth  int           `json:"depth"`
	// Rescans and Rewalks count the filtered graph walks of an executed
	// plan that were done again, as exact scans or as walks 8 times as
	// wide: the walk's statistics said its filter keeps the allowed
	// vectors away from the query, where a walk misses the closest of
	// them (hnsw.WalkStats), or it found fewer hits than the filter keeps
	// (a scan). ExplainAnalyze's steps say why. 0 for Explain.
	Rescans int `json:"rescans"`
	Rewalks int `json:"rewalks"`
	// Steps are the timed steps of ExplainAnalyze (empty for Explain).
	Steps []Step `json:"steps"`
	// Recall is ExplainAnalyze's recall@K of this very query against the
	// same query run with exact scans (1 when it ran exactly); 0 for
	// Explain.
	Recall float64 `json:"recall"`
}

// ProbePlan is the route of one probe.
type ProbePlan struct {
	Modality string  `json:"modality"`
	Source   string  `json:"source"` // "vector", "item <id>", "file ...", "text ..."
	Route    Route   `json:"route"`
	Weight   float32 `json:"weight"`
	Why      string  `json:"why"`
	// Encoder names the encoder that made the probe from raw content
	// (empty for vectors and items); EncodeTook is the time it took.
	Encoder    string        `json:"encoder"`
	EncodeTook time.Duration `json:"encode_took"`
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
	Name string        `json:"name"`
	Took time.Duration `json:"took"`
	Rows int           `json:"rows"`
}

// String renders the plan as an indented tree, the form EXPLAIN prints.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Strategy == StrategyPostings { // COUNT
		fmt.Fprintf(&b, "COUNT\n  filter: %s -> %d of %d items\n  strategy: postings (%s)\n", p.Filter, p.FilterMatches, p.Candidates, p.Why)
		return b.String()
	}
	if p.Statement != "" {
		b.WriteString(p.Statement + "\n")
	} else {
		fmt.Fprintf(&b, "SEARCH %s LIMIT %d\n", p.Target, p.K)
	}
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
	if p.Rescans+p.Rewalks > 0 {
		fmt.Fprintf(&b, "  checked: %d filtered walk(s) done again as exact scans, %d as wider walks (the steps say why)\n", p.Rescans, p.Rewalks)
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  step %-28s %10s  %d rows\n", s.Name, s.Took.Round(time.Microsecond), s.Rows)
	}
	if len(p.Steps) > 0 {
		fmt.Fprintf(&b, "  recall@%d against exact: %.3f\n", p.K, p.Recall)
	}
	return b.String()
}

// statement writes q as the statement it is (for the plan's header):
// every clause it sets, vectors by their length.
func statement(q Query, k int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SEARCH %s NEAR ", q.Target)
	for i, pr := range q.Probes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pr.Modality + " ")
		switch {
		case pr.ItemID != "":
			b.WriteString("OF " + query.Quote(pr.ItemID))
		case pr.File != "":
			b.WriteString("FILE " + query.Quote(pr.File))
		case pr.Text != "":
			b.WriteString(query.Quote(pr.Text))
		case pr.Data != nil:
			fmt.Fprintf(&b, "[%d bytes]", len(pr.Data))
		default:
			fmt.Fprintf(&b, "[%d floats]", len(pr.Vector))
		}
		if pr.Weight != 0 && pr.Weight != 1 {
			fmt.Fprintf(&b, " WEIGHT %g", pr.Weight)
		}
	}
	if q.Fuse != "" {
		fmt.Fprintf(&b, " FUSE %s", q.Fuse)
	}
	if q.Filter != nil {
		fmt.Fprintf(&b, " WHERE %s", q.Filter)
	}
	fmt.Fprintf(&b, " LIMIT %d", k)
	if q.Offset > 0 {
		fmt.Fprintf(&b, " OFFSET %d", q.Offset)
	}
	if q.MinScore != nil {
		fmt.Fprintf(&b, " SCORE >= %g", *q.MinScore)
	}
	if q.MaxDistance != nil {
		fmt.Fprintf(&b, " DISTANCE <= %g", *q.MaxDistance)
	}
	if len(q.Exclude) > 0 {
		quoted := make([]string, len(q.Exclude))
		for i, id := range q.Exclude {
			quoted[i] = query.Quote(id)
		}
		fmt.Fprintf(&b, " EXCLUDE %s", strings.Join(quoted, ", "))
	}
	if q.KeepProbeItems {
		b.WriteString(" KEEP PROBES")
	}
	if q.GroupBy != "" {
		fmt.Fprintf(&b, " GROUP BY %s PER %d", query.Ident(q.GroupBy), max(q.GroupSize, 1))
	}
	if q.Ef > 0 {
		fmt.Fprintf(&b, " EF %d", q.Ef)
	}
	if q.Exact {
		b.WriteString(" EXACT")
	}
	return b.String()
}

// MarshalJSON leaves "recall" out of a plan that did not run (Explain):
// its zero is no measurement.
func (p Plan) MarshalJSON() ([]byte, error) {
	type plain Plan
	if len(p.Steps) > 0 {
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		plain
		Recall *float64 `json:"recall,omitempty"`
	}{plain: plain(p)})
}
