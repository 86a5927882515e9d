package mmdb

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSearchMaxK: one exact search for MaxK hits over 80,000 items
// (LIMIT 1000000000 took 2.4 s on 80k items before K was bounded; it is
// now refused at once).
func BenchmarkSearchMaxK(b *testing.B) {
	db, _ := openTest(b, Modality{Name: "a", Dim: 8, Metric: L2})
	r := rand.New(rand.NewPCG(1, 1))
	for s := 0; s < 80000; s += 10000 {
		items := make([]Item, 10000)
		for i := range items {
			items[i] = Item{ID: fmt.Sprintf("x%d", s+i), Vectors: map[string][]float32{"a": randVec(r, 8)}}
		}
		if err := db.Put(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{Target: "a", K: MaxK, Exact: true, Probes: []Probe{{Modality: "a", Vector: randVec(r, 8)}}}
	for b.Loop() {
		hits, err := db.Search(ctx, q)
		if err != nil || len(hits) != MaxK {
			b.Fatal(err, len(hits))
		}
	}
}

// BenchmarkPutMaxAttrs: one item with MaxAttrs attribute names (100,000
// names held the write lock 18.6-34.5 s before the cap; they are now
// refused at once).
func BenchmarkPutMaxAttrs(b *testing.B) {
	db, _ := openTest(b, Modality{Name: "a", Dim: 8, Metric: L2})
	attrs := make(map[string]any, MaxAttrs)
	for i := range MaxAttrs {
		attrs[fmt.Sprintf("attr%04d", i)] = i
	}
	n := 0
	for b.Loop() {
		n++
		if err := db.Put(ctx, Item{ID: fmt.Sprint(n), Attrs: attrs}); err != nil {
			b.Fatal(err)
		}
	}
}
