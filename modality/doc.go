// Package modality describes the kinds of embedding an mmdb database holds
// and the arithmetic on them.
//
// A Modality is a named slot on every item ("text", "image", "audio") with
// a fixed dimension, a distance metric and the embedding Space it lives in.
// Two modalities in one Space (CLIP text and CLIP image, say) can be
// compared directly; modalities in different spaces need an alignment or a
// pivot through shared items, which the query planner provides.
//
// The package also holds the distance kernels (Dot, L2Sq) used by every
// index and exact scan, and the validation every vector passes on its way
// into the database: right dimension, finite values, and a non-zero norm
// under Cosine. Cosine vectors are normalised once on the way in, so a
// cosine comparison at query time is a plain dot product.
package modality
