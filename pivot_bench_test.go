package mmdb

import (
	"fmt"
	"testing"
)

// BenchmarkPivotRouteCOCO prints what the pivot route scores on coco500
// when the two CLIP heads are declared in two spaces (so searches pivot),
// and from the random-encoder text, as BENCHMARKS.md's "The pivot route":
//
//	go test -run '^$' -bench PivotRouteCOCO -benchtime 1x .
//
// It uses only the public API, so it runs unchanged on older commits.
func BenchmarkPivotRouteCOCO(b *testing.B) {
	img, txt := loadCOCO(b, "features_clip.npy")
	_, rtxt := loadCOCO(b, "features_clip_random.npy")
	for range b.N {
		db, err := Open(b.TempDir()+"/p.mmdb", &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []Modality{{Name: "image", Dim: 512, Metric: Cosine, Space: "clip-image"},
			{Name: "text", Dim: 512, Metric: Cosine, Space: "clip-text"},
			{Name: "rtext", Dim: 512, Metric: Cosine, Space: "random"}} {
			if err := db.DefineModality(m); err != nil {
				b.Fatal(err)
			}
		}
		var items []Item
		for i := range img {
			items = append(items, Item{ID: fmt.Sprintf("coco-%03d", i),
				Vectors: map[string][]float32{"image": img[i], "text": txt[i], "rtext": rtxt[i]}})
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
		for _, p := range [][2]string{{"text", "image"}, {"image", "text"}, {"rtext", "image"}} {
			ev, err := db.Evaluate(ctx, p[0], p[1], nil)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("| %s->%s | %.3f | %.3f | %.3f | %.3f | %g |\n", p[0], p[1], ev.Recall[1], ev.Recall[5], ev.Recall[10], ev.MRR, ev.MedianRank)
		}
		db.Close()
	}
}
