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
	// Walk, when non-nil, receives what a filtered graph walk saw (an
	// allow-list or a filter, and no Exact); it is left zero otherwise,
	// and by engines that do not count.
	Walk *WalkStats
}

// WalkStats is what a filtered graph walk saw on its bottom layer: the
// live nodes it took as candidates, and how many of those the allow-list
// and filter accept. Candidates are taken by distance alone, so with a
// filter that ignores where vectors lie, Accepted/Candidates is near the
// share the filter allows of the index's live vectors; far below it, the
// allowed vectors lie away from the query, and the walk, which reaches
// them only through the links of the others, may have missed the closest
// of them (see Confident).
type WalkStats struct {
	// Share, Budget and Floor are set by the caller, to stop a walk that
	// is plainly misled once going on can only waste time (the database
	// sets Budget where the scan that will replace the walk is decided,
	// and Floor where enough allowed candidates are expected that a
	// filter ignoring where vectors lie is not stopped by chance): when
	// Share and Budget are positive, the walk stops once it has taken at
	// least Budget and Floor candidates while the allowed share among
	// them is below StopShare times Share (the filter's share of the
	// index), and sets Stopped. Its results are then incomplete.
	//
	// A set index (Multi) counts in vectors: given them in sets, it sets
	// Share to the share of its graph's vectors the filter allows (even
	// with no Budget), gives each of its walks (one a query vector, and
	// again for each widening) Budget grown by the allowed sets' mean
	// size and Floor by the ratio of the shares, and sums their counts;
	// Budget and Floor are left as given. A stopped walk stops the
	// search, which answers nothing.
	Share  float64
	Budget int
	Floor  int
	// Candidates, Accepted and Stopped are set by the walk.
	Candidates int
	Accepted   int
	Stopped    bool
}

// stopAt is how many candidates a walk takes before it may stop early:
// 0 (never) without a Share and a Budget.
func (w WalkStats) stopAt() int {
	if w.Share <= 0 || w.Budget <= 0 {
		return 0
	}
	return max(w.Budget, w.Floor)
}

// Confident reports whether a filtered walk that saw w can be trusted
// with a filter that allows share (0 to 1) of the live vectors: whether
// it ran to its end and found allowed nodes among its candidates at least
// ConfidentShare times as often as share. A walk that counted nothing (an
// engine that does not count, or no filter) is not confident.
//
// On 10,000 x 48 vectors in 10 clusters (TestWalkStatsConfidence), with
// filters that ignore the clusters (5% and 20% allowed) or keep the
// query's own, at least 95% of the walks were confident at ef 10 and 16:
// the first found 0.98-1.00 of the top 10, the second as many as an
// unfiltered walk (0.77-0.87). With filters that keep only the cluster
// farthest from the query's, none was, and they found 0.52-0.75 of it. A walk that is not
// confident should be answered another way (the database scans or walks
// wider).
func (w WalkStats) Confident(share float64) bool {
	if w.Candidates == 0 || w.Stopped {
		return false
	}
	return float64(w.Accepted) >= ConfidentShare*share*float64(w.Candidates)
}

// ConfidentShare is the least ratio of a filtered walk's allowed share
// among its candidates to the filter's share of the whole index at which
// the walk is trusted (WalkStats.Confident).
const ConfidentShare = 0.7

// StopShare is the ratio below which a walk with a Budget stops early: half
// ConfidentShare, so that a walk whose filter ignores where vectors lie,
// whose ratio only wanders around 1, is not stopped by chance.
const StopShare = ConfidentShare / 2

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
