package hnsw

import (
	"errors"
	"io"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
)

// Result is one neighbour: an internal ID and its distance to the query
// under the index's metric (smaller is closer).
type Result struct {
	ID   uint32
	Dist float32
}

// SearchOptions tune one search.
type SearchOptions struct {
	// Ef is the beam width of a graph search; zero uses the index default.
	// Ignored by exact engines.
	Ef int
	// Allow, when non-nil, restricts results to the IDs it holds.
	Allow *roaring.Bitmap
	// Filter, when non-nil, restricts results to the IDs it returns true
	// for (with Allow, to those both allow), as hnswlib's filter functor
	// and FAISS's IDSelector do: a graph walk asks it about the nodes that
	// would enter its results, a scan about every vector. It must be safe
	// for concurrent use and must not call the index. A Multi index asks
	// it about every set's ID once a search. A walk goes on until it has
	// found ef accepted nodes, so a function that accepts almost nothing
	// walks most of the graph (an exact search is the cheaper way then).
	Filter func(id uint32) bool
	// Exact asks for a brute-force scan over the index's own vectors:
	// 100% recall, cost linear in the index size.
	Exact bool
}

// Index is a nearest-neighbour index over the vectors of one modality.
// Implementations are safe for concurrent use.
type Index interface {
	// Add inserts vec under id, replacing any vector id already had. vec
	// must have the index's dimension; the index keeps its own copy.
	Add(id uint32, vec []float32) error
	// Delete removes id and reports whether it was present.
	Delete(id uint32) bool
	// Search returns up to k nearest neighbours of q, closest first.
	Search(q []float32, k int, opts SearchOptions) []Result
	// Vector returns a copy of id's vector.
	Vector(id uint32) ([]float32, bool)
	// Len is the number of live vectors.
	Len() int
	// Dim is the vector dimension.
	Dim() int
	// Metric is the distance the index ranks by.
	Metric() modality.Metric
	// Save writes the index in its binary format.
	Save(w io.Writer) error
	// Load replaces the index's contents with what Save wrote. Damaged or
	// truncated input gives an error wrapping ErrFormat, never a panic.
	Load(r io.Reader) error
	// Unreachable returns the IDs of live vectors that no search can
	// reach: empty for a healthy index. Engines that cannot check their
	// structure return nil.
	Unreachable() []uint32
}

// Recentrer is an Index whose byte codes are quantized around a centre
// that can go stale as the data drifts: Recentre moves it to the data's
// mean when it has, re-encoding every node (HNSW.Recentre), and reports
// whether it did. The database calls it when it checkpoints.
type Recentrer interface {
	Index
	Recentre() bool
}

// LinkSaver is an Index that a store keeping the vectors itself can save
// without them: SaveLinks writes everything but the vectors (and what is
// computed from them), and LoadLinks reads that back, taking each node's
// vector from the store. A database file then holds each vector once.
type LinkSaver interface {
	Index
	// SaveLinks writes the index without its vectors.
	SaveLinks(w io.Writer) error
	// LoadLinks replaces the index's contents with what SaveLinks (or
	// Save) wrote. For a node whose vector is not in the file, vec is
	// called with its ID and room for the vector, and reports whether
	// it filled it. The IDs of live nodes vec had no vector for are
	// returned: the caller must account for each (a later change that
	// deleted or replaced it), or not use the index. Damaged input gives
	// an error wrapping ErrFormat, and so does a vector that is not
	// finite.
	LoadLinks(r io.Reader, vec func(id uint32, dst []float32) bool) (missing []uint32, err error)
}

var (
	// ErrFormat: serialised index data is damaged, truncated or of another
	// engine or version.
	ErrFormat = errors.New("hnsw: bad index data")
	// ErrDimension: a vector's length differs from the index's dimension.
	ErrDimension = errors.New("hnsw: wrong dimension")
)
