// Command quickstart is README.md's Go example, as it stands there; a test
// checks that the two agree and runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mmdb-quickstart-")
	check(err)
	defer os.RemoveAll(dir)

	db, err := mmdb.Open(filepath.Join(dir, "media.mmdb"), nil) // created if missing
	check(err)
	defer db.Close()

	// Image and text vectors from one encoder share a space; audio has its own.
	check(db.DefineModality(mmdb.Modality{Name: "image", Dim: 8, Metric: mmdb.Cosine, Space: "clip"}))
	check(db.DefineModality(mmdb.Modality{Name: "text", Dim: 8, Metric: mmdb.Cosine, Space: "clip"}))
	check(db.DefineModality(mmdb.Modality{Name: "audio", Dim: 4, Metric: mmdb.L2, Space: "clap"}))

	// 300 items, each with an image, its caption's vector and a sound
	// (random stand-ins for an encoder's output).
	r := rand.New(rand.NewPCG(1, 2))
	items := make([]mmdb.Item, 300)
	for i := range items {
		img := randVec(r, 8)
		items[i] = mmdb.Item{
			ID:      fmt.Sprintf("item-%03d", i),
			Attrs:   map[string]any{"year": 2000 + i%25, "tags": []string{"animal"}},
			Vectors: map[string][]float32{"image": img, "text": noisy(r, img), "audio": img[:4]},
		}
	}
	check(db.Put(ctx, items...)) // one atomic batch: one bad item writes nothing

	// Relabel an item without resending its vectors (Put replaces whole).
	check(db.Merge(ctx, mmdb.Item{ID: "item-007", Attrs: map[string]any{"tags": []string{"dog"}}}))

	q := mmdb.Query{
		Target: "image",                                              // rank images
		Probes: []mmdb.Probe{{Modality: "text", ItemID: "item-007"}}, // with an item's text vector
		Filter: query.MustParse("year >= 2005 AND tags = 'dog'"),     // or query.Ge("year", 2005)
		K:      5,
	}
	hits, err := db.Search(ctx, q)
	check(err)
	for _, h := range hits {
		fmt.Printf("%s %.3f\n", h.ID, h.Score)
	}
	plan, err := db.Explain(ctx, q) // routes, filter cardinality, strategy, why
	check(err)
	fmt.Print(plan)

	// The same through the statement language.
	res, err := db.Query(ctx, "SEARCH image NEAR text OF 'item-012' WHERE year >= 2005 LIMIT 3")
	check(err)
	fmt.Print(res)

	// Audio from another encoder: learn a map from the items that carry both.
	rep, err := db.Align(ctx, "image", "audio", nil) // or "ALIGN image TO audio" in db.Query
	check(err)
	fmt.Print(rep) // every method cross-fitted beside the pivot and chance; the best is stored if it beats the pivot
	res, err = db.Query(ctx, "SEARCH audio NEAR image OF 'item-012' LIMIT 3")
	check(err)
	fmt.Print(res)

	// Query-time corrections (centring, hubness, inverted softmax), each
	// measured on items outside the bank; the best is stored only if it
	// beats none. Then how well each item's text finds its own image.
	c, err := db.Calibrate(ctx, "text", "image", &mmdb.CalibrateOptions{Auto: true})
	if !errors.Is(err, mmdb.ErrNoGain) {
		check(err)
	}
	fmt.Println(c.Why)
	ev, err := db.Evaluate(ctx, "text", "image", nil)
	check(err)
	fmt.Println(ev)

	// A consistent copy while writes go on; it opens without rebuilding indexes.
	check(db.Snapshot(ctx, filepath.Join(dir, "backup.mmdb")))
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func noisy(r *rand.Rand, v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x + 0.3*float32(r.NormFloat64())
	}
	return out
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
