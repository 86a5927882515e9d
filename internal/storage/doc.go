// Package storage is mmdb's on-disk layout: one bbolt file per database.
//
// bbolt is the source of truth. Every other structure (the in-memory
// indexes, caches) is derived from what this package stores and can be
// rebuilt from it.
//
// Buckets (see ARCHITECTURE.md for the whole design):
//
//	meta            "magic" -> "mmdb", "version" -> uint32, "nextid" -> uint32,
//	                "schema" -> msgpack []modality.Modality
//	ids             external ID -> internal ID (big-endian uint32)
//	items           internal ID -> msgpack Record {external ID, attributes}
//	vec/<modality>  internal ID -> the vector as raw little-endian float32
//
// Internal IDs are dense uint32s handed out in order and never reused, so
// big-endian keys keep every bucket in insertion order and the graph
// indexes and roaring bitmaps can use them directly.
//
// Vectors are stored without any per-vector framing: the length is fixed
// by the modality, and raw bytes load with no decoding beyond a byte-order
// read. Attributes are msgpack, restricted to a small set of types that
// filters can compare (see CanonicalAttrs).
package storage
