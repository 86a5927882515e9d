// Package mmdb is an embedded vector database for cross-modal search.
//
// An Item has one string ID, optional attributes, and at most one embedding
// per modality (text, image, audio, ...). The database is a single bbolt
// file; each modality keeps an in-memory index built from the stored
// vectors. Search ranks one modality's vectors (the Target) with a probe
// vector of another modality: text-to-image, image-to-audio.
//
//	db, err := mmdb.Open("media.mmdb", nil)
//	if err != nil { ... }
//	defer db.Close()
//	db.DefineModality(mmdb.Modality{Name: "image", Dim: 512, Metric: mmdb.Cosine, Space: "clip"})
//	db.DefineModality(mmdb.Modality{Name: "text", Dim: 512, Metric: mmdb.Cosine, Space: "clip"})
//	db.Put(ctx, mmdb.Item{ID: "dog-1", Vectors: map[string][]float32{"image": img, "text": txt}})
//	hits, err := db.Search(ctx, mmdb.Query{Target: "image",
//		Probes: []mmdb.Probe{{Modality: "text", Vector: q}}, K: 10})
//
// Modalities from different encoders do not share a space: a probe reaches
// a target directly only when both declare the same Space (and dimension
// and metric). Otherwise the planner projects it through a stored
// Alignment, or pivots through items that carry both modalities; with
// neither, Search fails with ErrNoRoute, naming what is missing. Align
// learns and stores an alignment from the items that carry both (package
// align); Calibrate adds query-time corrections (centring, hubness).
// Filters, fusion of several probes and EXPLAIN are described on Query and
// Plan. Package encoder turns WAV audio, images and remote models' text
// into vectors.
//
// Errors wrap the sentinel values below; test them with errors.Is. A DB is
// safe for concurrent use: any number of readers, with writes serialised.
package mmdb
