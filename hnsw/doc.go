// Package hnsw holds mmdb's approximate nearest-neighbour indexes, one per
// modality, behind a single Index interface.
//
// Engines:
//   - Flat: an exact scan over vectors kept contiguous in memory. The
//     reference every other engine's recall is measured against, and the
//     right choice for small or heavily filtered sets.
//
// Every engine keys vectors by the database's dense internal uint32 IDs,
// ranks by the distance of its modality.Metric (smaller is closer; cosine
// vectors arrive already normalised), accepts a roaring bitmap as an
// allow-list, and serialises itself to a versioned, checksummed binary
// form. All engines are safe for concurrent use.
package hnsw
