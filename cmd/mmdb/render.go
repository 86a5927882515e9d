package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

func validMode(m string) bool { return m == "table" || m == "json" || m == "csv" }

type renderOptions struct {
	mode    string // table, json or csv
	vectors bool   // print vectors in full rather than as "[512 floats]"
}

// maxCell is the widest a table cell gets before it is cut with "...".
const maxCell = 40

// hitRow is a search hit with its item's attributes, for display.
type hitRow struct {
	Rank     int            `json:"rank"`
	ID       string         `json:"id"`
	Score    float32        `json:"score"`
	Distance *float32       `json:"distance,omitempty"`
	Attrs    map[string]any `json:"attrs,omitempty"`
}

// render prints a statement's result: plans first, then the hits, item,
// count or report.
func render(w io.Writer, res *mmdb.Result, o renderOptions) error {
	if o.mode == "json" {
		return renderJSON(w, res)
	}
	for _, p := range res.Plans {
		fmt.Fprint(w, p.String())
	}
	switch {
	case res.Report != nil:
		fmt.Fprint(w, res.Report.String())
	case res.Calibration != nil:
		fmt.Fprint(w, calibrationText(res.Calibration.Probe, res.Calibration.Target, res.Calibration))
	case res.Kind == query.StmtDrop && res.Count == 0:
		fmt.Fprintln(w, "nothing to drop")
	case res.Kind == query.StmtDrop:
		fmt.Fprintln(w, "dropped")
	case res.Item != nil && len(res.Items) > 1:
		for _, it := range res.Items {
			if err := renderItem(w, it, o); err != nil {
				return err
			}
		}
	case res.Item != nil:
		return renderItem(w, *res.Item, o)
	case res.Kind == query.StmtSearch && len(res.Plans) > 0 && len(res.Plans[0].Steps) == 0:
		// EXPLAIN without ANALYZE: a plan, nothing ran.
	case res.Kind == query.StmtSearch:
		return renderHits(w, hitRows(res.Hits), o)
	case res.Kind == query.StmtCount && len(res.Plans) == 0:
		fmt.Fprintln(w, res.Count)
	case res.Kind == query.StmtDelete:
		fmt.Fprintf(w, "deleted %d\n", res.Count)
	}
	return nil
}

func hitRows(hits []mmdb.Hit) []hitRow {
	rows := make([]hitRow, len(hits))
	for i, h := range hits {
		rows[i] = hitRow{Rank: i + 1, ID: h.ID, Score: h.Score}
		if !h.Fused { // a fused rank has no distance
			d := h.Distance
			rows[i].Distance = &d
		}
		rows[i].Attrs = h.Attrs
	}
	return rows
}

func renderJSON(w io.Writer, res *mmdb.Result) error {
	out := map[string]any{"kind": res.Kind}
	if len(res.Plans) > 0 {
		out["plans"] = res.Plans // objects: the route, strategy and steps of each
	}
	switch {
	case res.Report != nil:
		out["report"] = res.Report
	case res.Calibration != nil:
		out["calibration"] = res.Calibration
	case res.Item != nil && len(res.Items) > 1:
		items := make([]any, len(res.Items))
		for i, it := range res.Items {
			items[i] = itemJSON(it)
		}
		out["items"] = items
	case res.Item != nil:
		out["item"] = itemJSON(*res.Item)
	case res.Kind == query.StmtSearch:
		out["hits"] = hitRows(res.Hits)
	default:
		out["count"] = res.Count
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// itemJSON is an item as JSON prints it: vectors as arrays, whatever
// .vectors says (it shortens tables), and no null for an empty map.
func itemJSON(it mmdb.Item) map[string]any {
	vecs := map[string][]float32{}
	for k, v := range it.Vectors {
		vecs[k] = v
	}
	attrs := it.Attrs
	if attrs == nil {
		attrs = map[string]any{}
	}
	return map[string]any{"id": it.ID, "attrs": attrs, "vectors": vecs}
}

func attrColumns(rows []hitRow) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		for k := range r.Attrs {
			seen[k] = true
		}
	}
	cols := make([]string, 0, len(seen))
	for k := range seen {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	return cols
}

func cell(v any, ok bool) string {
	if !ok {
		return ""
	}
	var s string
	switch x := v.(type) {
	case []string:
		s = "[" + strings.Join(x, ", ") + "]"
	case float64:
		s = fmt.Sprintf("%g", x)
	default:
		s = fmt.Sprint(x)
	}
	s = strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell-3]) + "..."
	}
	return s
}

// fullCell formats an attribute value whole (for CSV): lists as JSON
// arrays, so that elements with spaces or commas stay distinct.
func fullCell(v any) string {
	switch x := v.(type) {
	case []string:
		b, _ := json.Marshal(x)
		return string(b)
	case float64:
		return fmt.Sprintf("%g", x)
	}
	return fmt.Sprint(v)
}

func renderHits(w io.Writer, rows []hitRow, o renderOptions) error {
	cols := attrColumns(rows)
	header := []string{"rank", "id", "score", "distance"}
	for _, c := range cols {
		if slices.Contains(header[:4], c) {
			c = "attrs." + c // an attribute named like a fixed column
		}
		header = append(header, c)
	}
	var lines [][]string
	for _, r := range rows {
		d := ""
		if r.Distance != nil {
			d = fmt.Sprintf("%.4f", *r.Distance)
		}
		line := []string{fmt.Sprint(r.Rank), cell(r.ID, true), fmt.Sprintf("%.4f", r.Score), d}
		for _, c := range cols {
			v, ok := r.Attrs[c]
			switch {
			case o.mode == "csv" && ok:
				line = append(line, fullCell(v))
			default:
				line = append(line, cell(v, ok))
			}
		}
		lines = append(lines, line)
	}
	if o.mode == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write(header)
		_ = cw.WriteAll(lines)
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 1 {
		fmt.Fprintln(w, "(1 hit)")
	} else {
		fmt.Fprintf(w, "(%d hits)\n", len(rows))
	}
	return nil
}

func renderItem(w io.Writer, it mmdb.Item, o renderOptions) error {
	keys := make([]string, 0, len(it.Attrs))
	for k := range it.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mods := make([]string, 0, len(it.Vectors))
	for k := range it.Vectors {
		mods = append(mods, k)
	}
	slices.Sort(mods)
	if o.mode == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"field", "value"})
		_ = cw.Write([]string{"id", it.ID})
		for _, k := range keys {
			_ = cw.Write([]string{k, fullCell(it.Attrs[k])})
		}
		for _, m := range mods {
			_ = cw.Write([]string{m, vectorText(it.Vectors[m], o.vectors)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", it.ID)
	for _, k := range keys {
		v := it.Attrs[k]
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(v, true))
	}
	for _, m := range mods {
		fmt.Fprintf(tw, "%s\t%s\n", m, vectorText(it.Vectors[m], o.vectors))
	}
	return tw.Flush()
}

func vectorText(v []float32, full bool) string {
	if !full {
		return fmt.Sprintf("[%d floats]", len(v))
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%g", x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// withCaret adds the statement and a caret under the error's position to
// a syntax error.
func withCaret(err error, stmt string) error {
	var se *query.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	// Show the line holding the position.
	start := strings.LastIndex(stmt[:min(se.Pos, len(stmt))], "\n") + 1
	end := strings.Index(stmt[start:], "\n")
	if end < 0 {
		end = len(stmt)
	} else {
		end += start
	}
	// The caret goes under the character at Pos: count characters, not
	// bytes, and keep tabs so that the columns line up.
	var pad strings.Builder
	for _, r := range stmt[start:min(se.Pos, end)] {
		if r == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteRune(' ')
		}
	}
	return fmt.Errorf("%w\n  %s\n  %s^", err, stmt[start:end], pad.String())
}
