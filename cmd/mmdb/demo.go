package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/query"
	"github.com/spf13/cobra"
)

var concepts = []string{"dog", "cat", "car", "beach", "pizza", "guitar", "mountain", "bicycle", "clock", "tree", "boat", "bird"}

// synthCorpus makes items whose image and text vectors come from one shared
// latent per concept (as a CLIP-like encoder pair would give, with a
// modality gap between them), and whose audio vectors live in a space of
// their own.
func synthCorpus(n int, seed uint64) []mmdb.Item {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const dim, adim = 64, 24
	gauss := func(d int, s float64) []float32 {
		v := make([]float32, d)
		for i := range v {
			v[i] = float32(r.NormFloat64() * s)
		}
		return v
	}
	centres := make([][]float32, len(concepts))
	sounds := make([][]float32, len(concepts))
	for k := range concepts {
		centres[k] = gauss(dim, 1)
		sounds[k] = gauss(adim, 1)
	}
	// How an item's own character (what tells one dog from another) shows
	// in its sound: a fixed linear view of it, which a map can learn and
	// pivoting through other items cannot recover.
	voice := make([][]float32, adim)
	for j := range voice {
		voice[j] = gauss(dim, 1/math.Sqrt(dim))
	}
	gapImg, gapTxt := gauss(dim, 0.35), gauss(dim, 0.35)
	items := make([]mmdb.Item, n)
	for i := range items {
		k := i % len(concepts)
		latent := centres[k]
		own := gauss(dim, 0.45) // what makes this item itself
		img, txt := make([]float32, dim), make([]float32, dim)
		ni, nt := gauss(dim, 0.35), gauss(dim, 0.35)
		for j := range dim {
			img[j] = latent[j] + own[j] + ni[j] + gapImg[j]
			txt[j] = latent[j] + own[j] + nt[j] + gapTxt[j]
		}
		it := mmdb.Item{
			ID:      fmt.Sprintf("%s-%04d", concepts[k], i),
			Attrs:   map[string]any{"concept": concepts[k], "year": 2000 + i%25},
			Vectors: map[string][]float32{"image": img, "text": txt},
		}
		if (i/len(concepts))%3 == 0 { // a third of each concept's items also have a sound
			a := gauss(adim, 0.3)
			for j := range a {
				for d, v := range voice[j] {
					a[j] += 1.5 * v * own[d]
				}
				a[j] += sounds[k][j]
			}
			it.Vectors["audio"] = a
		}
		items[i] = it
	}
	return items
}

func demoCmd() *cobra.Command {
	c := newCmd("demo", "build a synthetic multimodal database and run cross-modal searches",
		"Builds a database from a synthetic corpus (image and text in one space, audio in another),\n"+
			"then runs text-to-image, pivot and aligned text-to-audio, and filtered fused searches with their plans.",
		"mmdb demo --items 3000 --dir /tmp/demo\n  mmdb demo --data ../shared/data", 0)
	dir := c.Flags().String("dir", "", "where to create demo.mmdb (default: a temporary directory, removed afterwards)")
	n := c.Flags().Int("items", 3000, "number of synthetic items")
	data := c.Flags().String("data", "", "use the real data in this folder (../shared/data) instead of the synthetic corpus")
	asJSON := c.Flags().Bool("json", false, "print a summary of the tour's figures as JSON instead of the tour (synthetic corpus)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *dir != "" {
			if err := os.MkdirAll(*dir, 0o755); err != nil {
				return err
			}
		}
		if *asJSON && *data != "" {
			return fmt.Errorf("%w: --json summarises the synthetic demo; the tour of --data prints text", errUsage)
		}
		if *asJSON {
			sum, err := runDemoSummary(c.Context(), io.Discard, *dir, *n)
			if err != nil {
				return err
			}
			return report(c.OutOrStdout(), true, sum, "")
		}
		if *data != "" {
			d := *dir
			if d == "" {
				tmp, err := os.MkdirTemp("", "mmdb-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				d = tmp
			}
			return runRealDemo(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), *data, d)
		}
		return runDemo(c.Context(), c.OutOrStdout(), *dir, *n)
	}
	return c
}

// demoSummary is what `mmdb demo --json` prints: the figures of the tour.
type demoSummary struct {
	Path         string              `json:"path"`
	Items        int                 `json:"items"`
	Evaluations  []mmdb.EvalReport   `json:"evaluations"`
	Alignments   []*align.Report     `json:"alignments"`
	Searches     map[string][]string `json:"searches"` // hit IDs, best first
	SnapshotSame bool                `json:"snapshot_same_hits"`
}

func hitIDs(hits []mmdb.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

func runDemo(ctx context.Context, stdout io.Writer, dirFlag string, nItems int) error {
	_, err := runDemoSummary(ctx, stdout, dirFlag, nItems)
	return err
}

func runDemoSummary(ctx context.Context, stdout io.Writer, dirFlag string, nItems int) (sum demoSummary, err error) {
	sum.Searches = map[string][]string{}
	dir, n := &dirFlag, &nItems
	if *n < len(concepts) {
		return sum, fmt.Errorf("%w: -items must be at least %d", errUsage, len(concepts))
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "mmdb-demo-")
		if err != nil {
			return sum, err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	path := filepath.Join(*dir, "demo.mmdb")
	os.Remove(path)
	db, err := mmdb.Open(path, nil)
	if err != nil {
		return sum, err
	}
	defer db.Close()

	for _, m := range []mmdb.Modality{
		{Name: "image", Dim: 64, Metric: mmdb.Cosine, Space: "synthetic-clip"},
		{Name: "text", Dim: 64, Metric: mmdb.Cosine, Space: "synthetic-clip"},
		{Name: "audio", Dim: 24, Metric: mmdb.Cosine, Space: "synthetic-mfcc"},
	} {
		if err := db.DefineModality(m); err != nil {
			return sum, err
		}
	}
	items := synthCorpus(*n, 42)
	if err := db.Put(ctx, items...); err != nil {
		return sum, err
	}
	fi, _ := os.Stat(path)
	fmt.Fprintf(stdout, "Built %s: %d items, %.1f MiB\n\n", path, db.Count(), float64(fi.Size())/(1<<20))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "modality\tdim\tmetric\tspace")
	for _, m := range db.Modalities() {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\n", m.Name, m.Dim, m.Metric, m.Space)
	}
	tw.Flush()

	probe := items[1] // a "cat"
	fmt.Fprintf(stdout, "\nText-to-image: the 8 images nearest to the text of %q\n", probe.ID)
	hits, err := db.Search(ctx, mmdb.Query{Target: "image", Probes: []mmdb.Probe{{Modality: "text", ItemID: probe.ID}}, K: 8})
	if err != nil {
		return sum, err
	}
	sum.Searches["text-to-image"] = hitIDs(hits)
	if err := printHits(ctx, db, stdout, hits); err != nil {
		return sum, err
	}

	fmt.Fprintln(stdout, "\nSelf-evaluation: each item's text looks for its own image among all images")
	for _, pair := range [][2]string{{"text", "image"}, {"image", "text"}} {
		rep, err := db.Evaluate(ctx, pair[0], pair[1], nil)
		if err != nil {
			return sum, err
		}
		fmt.Fprintln(stdout, " ", rep)
		sum.Evaluations = append(sum.Evaluations, rep)
	}

	fmt.Fprintln(stdout, "\nText-to-audio: audio comes from another encoder, so the planner pivots through items that have both:")
	aq := mmdb.Query{Target: "audio", Probes: []mmdb.Probe{{Modality: "text", ItemID: probe.ID}}, K: 5}
	plan, err := db.Explain(ctx, aq)
	if err != nil {
		return sum, err
	}
	fmt.Fprint(stdout, indent(plan.String()))
	hits, err = db.Search(ctx, aq)
	if err != nil {
		return sum, err
	}
	if err := printHits(ctx, db, stdout, hits); err != nil {
		return sum, err
	}

	fmt.Fprintln(stdout, "\nAlign: learn text -> audio from the items that carry both; each method is cross-fitted, and the best is kept if it beats the pivot")
	rep, err := db.Align(ctx, "text", "audio", nil)
	if err != nil {
		return sum, err
	}
	sum.Alignments = append(sum.Alignments, rep)
	fmt.Fprint(stdout, indent(rep.String()))
	plan, err = db.Explain(ctx, aq)
	if err != nil {
		return sum, err
	}
	fmt.Fprint(stdout, indent(plan.String()))
	hits, err = db.Search(ctx, aq)
	if err != nil {
		return sum, err
	}
	if err := printHits(ctx, db, stdout, hits); err != nil {
		return sum, err
	}

	fmt.Fprintln(stdout, "\nFiltered and fused: images near the text of a cat AND the image of a dog, years 2010-2014")
	fq := mmdb.Query{Target: "image", K: 5, Filter: query.MustParse("year BETWEEN 2010 AND 2014"),
		Probes: []mmdb.Probe{{Modality: "text", ItemID: probe.ID}, {Modality: "image", ItemID: items[0].ID}}}
	plan, err = db.Explain(ctx, fq)
	if err != nil {
		return sum, err
	}
	fmt.Fprint(stdout, indent(plan.String()))
	hits, err = db.Search(ctx, fq)
	if err != nil {
		return sum, err
	}
	sum.Searches["fused-filtered"] = hitIDs(hits)
	if err := printHits(ctx, db, stdout, hits); err != nil {
		return sum, err
	}

	fmt.Fprintln(stdout, "\nImage-to-audio through the statement language, after ALIGN image TO audio:")
	res, err := db.Query(ctx, "ALIGN image TO audio USING cca")
	if err != nil {
		return sum, err
	}
	sum.Alignments = append(sum.Alignments, res.Report)
	fmt.Fprint(stdout, indent(res.String()))
	stmt := fmt.Sprintf("SEARCH audio NEAR image OF '%s' LIMIT 5", items[2].ID)
	fmt.Fprintf(stdout, "  %s\n", stmt)
	res, err = db.Query(ctx, stmt)
	if err != nil {
		return sum, err
	}
	sum.Searches["image-to-audio"] = hitIDs(res.Hits)
	if err := printHits(ctx, db, stdout, res.Hits); err != nil {
		return sum, err
	}

	fmt.Fprintln(stdout, "\nSearch with raw media: pictures and recordings in folders, imported through the built-in encoders")
	if err := mediaTour(ctx, stdout, *dir, &sum); err != nil {
		return sum, err
	}

	snap := filepath.Join(*dir, "demo-snapshot.mmdb")
	os.Remove(snap)
	if err := db.Snapshot(ctx, snap); err != nil {
		return sum, err
	}
	again, err := mmdb.Open(snap, &mmdb.Options{ReadOnly: true})
	if err != nil {
		return sum, err
	}
	defer again.Close()
	res2, err := again.Query(ctx, stmt)
	if err != nil {
		return sum, err
	}
	how := "loaded"
	for _, r := range again.OpenReport() {
		if r.Action != "loaded" {
			how = r.Action
		}
	}
	sum.Path, sum.Items = path, db.Count()
	same := len(res2.Hits) == len(res.Hits)
	for i := range res2.Hits {
		same = same && res2.Hits[i].ID == res.Hits[i].ID
	}
	sum.SnapshotSame = same
	fmt.Fprintf(stdout, "\nSnapshot written to %s and reopened (indexes %s from its checkpoints): %d items, the same search gives the same hits: %v\n",
		snap, how, again.Count(), same)
	return sum, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func printHits(ctx context.Context, db *mmdb.DB, w io.Writer, hits []mmdb.Hit) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  rank\tid\tconcept\tyear\tscore")
	for i, h := range hits {
		it, err := db.Get(ctx, h.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %d\t%s\t%v\t%v\t%.3f\n", i+1, h.ID, it.Attrs["concept"], it.Attrs["year"], h.Score)
	}
	return tw.Flush()
}
