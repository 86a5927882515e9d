// Package hnsw holds mmdb's nearest-neighbour indexes, one per modality,
// behind a single Index interface.
//
// Engines:
//   - HNSW: our own hierarchical navigable small world graph (Malkov &
//     Yashunin, 2018), the default. Flat arrays, heuristic neighbour
//     selection, allow-list search, tombstone deletes with re-linking and
//     compaction, reachability checks that re-link any node no search
//     could reach, concurrent searches and inserts, checksummed save/load.
//   - Flat: an exact scan over vectors kept contiguous in memory. The
//     reference every other engine's recall is measured against, and the
//     right choice for small or heavily filtered sets.
//
// Every engine keys vectors by the database's dense internal uint32 IDs,
// ranks by the distance of its modality.Metric (smaller is closer; cosine
// vectors arrive already normalised), accepts a roaring bitmap as an
// allow-list, and serialises itself to a versioned, checksummed binary
// form whose loader rejects damaged input with ErrFormat. All engines are
// safe for concurrent use; AddParallel builds on every core.
package hnsw
