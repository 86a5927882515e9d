package mmdb

import (
	"context"
	"fmt"
	"time"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/query"
)

// DefaultK is the number of hits Search returns when Query.K is zero.
const DefaultK = 10

// Query asks for the items whose Target vectors are nearest to the probes.
type Query struct {
	// Target is the modality to rank: "image" finds images.
	Target string
	// Targets, when set, ranks items by several modalities at once (one
	// search each, fused by RRF over items: an item ranks high when any of
	// its modalities matches); Target is then ignored.
	Targets []string
	// Probes are what to search with. Several probes, of any modalities,
	// are fused into one ranking (see Fuse).
	Probes []Probe
	// K is the number of hits to return; zero means DefaultK, at most
	// MaxK.
	K int
	// Exact forces a brute-force scan instead of the HNSW index: 100%
	// recall, cost linear in the number of target vectors.
	Exact bool
	// Ef is the beam width of the HNSW search: higher means better recall
	// and slower queries. Zero uses Options.Index.EfSearch (default 64).
	// Ignored by exact scans.
	Ef int
	// Filter restricts the hits to items whose attributes match: an
	// expression built with the query package (query.Ge("year", 2010)) or
	// parsed from the filter syntax (query.MustParse("year >= 2010 AND
	// tags = 'dog'"), or query.Parse for text from users); nil for none.
	Filter query.Expr
	// Fuse names how several probes' rankings are merged: fusion.RRF (the
	// default), fusion.Weighted, fusion.DBSF, or fusion.Early (one search
	// with the weighted sum of the probe vectors; every probe must reach
	// the target's space directly or through an alignment).
	Fuse fusion.Method
	// NoCorrections skips the query-time corrections stored by Calibrate
	// (mean centring, hubness). With a hubness correction, Hit.Score is
	// the corrected score and Hit.Distance is derived from it (under L2 it
	// can then be negative): they rank, they no longer measure.
	NoCorrections bool
	// NoAttrs leaves Hit.Attrs nil: a search then reads no item records.
	NoAttrs bool
	// Offset skips the first Offset hits: page n of K hits is Offset
	// n*K. A page costs what a search for Offset+K hits costs (as in
	// Qdrant; a page that deep in most of the candidates scans them), and
	// Offset is at most MaxOffset; pages of an exact search
	// (Exact, or a plan that scans) never repeat or miss a hit, ties
	// included; pages walked in the graph are approximate like any graph
	// search (its beam is widened to twice the page's end). Refused
	// for rankings fused by RRF, weighted or DBSF fusion (and over several
	// targets): their lists' depth would change with the page.
	Offset int
	// MinScore, if set, keeps only hits scoring at least this, and
	// MaxDistance only those at most this far: a similarity in the
	// target's space on every route (direct, aligned, pivot). Refused for
	// fused rankings (several probes or targets, but early fusion) and
	// under a stored hubness correction (scores then rank, they no longer
	// measure; set NoCorrections).
	MinScore, MaxDistance *float32
	// Exclude lists item IDs never returned (unknown IDs exclude
	// nothing). The items of probes given by ItemID in the target's own
	// modality are excluded too (each would match itself first, as
	// Qdrant's recommend leaves its examples out), unless KeepProbeItems;
	// a probe item of another modality stays (its own image is the right
	// answer for its caption).
	Exclude        []string
	KeepProbeItems bool
	// GroupBy, if set, keeps at most GroupSize (default 1) hits per value
	// of that attribute, best first: the best image of each label. Items
	// without the attribute are left out; an item with a list of values
	// counts in each, and is kept while any of them has room (as Qdrant's
	// groups). The search goes deeper until K hits are found or the
	// candidates run out.
	GroupBy   string
	GroupSize int
}

// Probe is one query vector: given directly, taken from a stored item, or
// made from raw content by the modality's encoder (see Modality.Encoder).
// Set exactly one of Vector, ItemID, File, Data and Text.
type Probe struct {
	// Modality is the probe vector's modality ("text").
	Modality string
	// Vector is the probe itself.
	Vector []float32
	// ItemID names a stored item whose Modality vector is the probe.
	ItemID string
	// File is the path of a media file (WAV, PNG, JPEG) to encode, read
	// with encoder.ReadFile.
	File string
	// Data is a media file's bytes to encode.
	Data []byte
	// Text is a sentence to encode, for a modality whose encoder takes
	// text.
	Text string
	// Weight scales this probe's contribution when several are fused;
	// zero means 1, and at most MaxProbeWeight.
	Weight float32
}

// MaxK bounds Query.K (and LIMIT), as Milvus bounds topK: a search's
// cost grows with K, and a list longer than this is a scan, which Items
// does better.
const MaxK = 16384

// MaxOffset bounds Query.Offset (and OFFSET): a page costs a search for
// Offset+K hits, and deeper than this a Scroll reads the set better.
const MaxOffset = 1 << 20

// MaxProbeWeight bounds Probe.Weight: weighted sums of scores and vectors
// must stay finite.
const MaxProbeWeight = 1e6

// Hit is one search result.
type Hit struct {
	// ID is the item's external ID.
	ID string `json:"id"`
	// Score: higher is better. Cosine similarity, dot product, or the
	// negated Euclidean distance, by the target's metric.
	Score float32 `json:"score"`
	// Distance: lower is better. 1 - cosine, -dot, or Euclidean distance.
	Distance float32 `json:"distance"`
	// Attrs are the item's attributes (nil with Query.NoAttrs, or for an
	// item deleted since it was found).
	Attrs map[string]any `json:"attrs"`
	// Fused is set when the hit's rank fuses several rankings (several
	// probes, or several targets): Score is then the fusion score
	// (RRF, weighted or DBSF, as the plan says), not a similarity, and
	// Distance is its negation. Neither is NaN or Inf.
	Fused bool `json:"fused"`
}

// route resolves how probes of modality pm reach target tm: through
// a stored alignment when there is one (between modalities that share a
// space there is one only when Align was forced), else directly when they
// share a space, else by pivoting; direct says why the direct route does
// not apply. Search, Explain, Evaluate and Calibrate all route through it.
func (s *state) route(pm, tm Modality) (route Route, a *Alignment, direct error) {
	direct = directRoute(pm, tm)
	if a = s.aligns[[2]string{pm.Name, tm.Name}]; a != nil {
		return RouteAligned, a, direct
	}
	if direct == nil {
		return RouteDirect, nil, nil
	}
	return RoutePivot, nil, direct
}

// directRoute reports whether probe vectors of p can search t's index as
// they are, and if not, exactly why.
func directRoute(p, t Modality) error {
	switch {
	case p.SpaceName() != t.SpaceName():
		return fmt.Errorf("%w: %s is in space %q, %s in space %q; vectors from different encoders are not comparable (align them, or search through items that carry both)",
			ErrNoRoute, p.Name, p.SpaceName(), t.Name, t.SpaceName())
	case p.Dim != t.Dim:
		return fmt.Errorf("%w: %s and %s share space %q but have dimensions %d and %d", ErrNoRoute, p.Name, t.Name, p.SpaceName(), p.Dim, t.Dim)
	case p.Metric != t.Metric:
		return fmt.Errorf("%w: %s and %s share space %q but use metrics %v and %v", ErrNoRoute, p.Name, t.Name, p.SpaceName(), p.Metric, t.Metric)
	}
	return nil
}

// probeVector resolves a probe to a validated, normalised vector; for
// raw content it also returns the encoder and the time it took.
func (db *DB) probeVector(ctx context.Context, p Probe) ([]float32, encoded, error) {
	s, err := db.state()
	if err != nil {
		return nil, encoded{}, err
	}
	m, _, err := s.modality(p.Modality)
	if err != nil {
		return nil, encoded{}, fmt.Errorf("probe: %w", err)
	}
	set := 0
	for _, given := range []bool{p.Vector != nil, p.ItemID != "", p.File != "", p.Data != nil, p.Text != ""} {
		if given {
			set++
		}
	}
	switch {
	case set > 1:
		return nil, encoded{}, fmt.Errorf("%w: probe of modality %q sets more than one of Vector, ItemID, File, Data and Text", ErrInvalidQuery, p.Modality)
	case set == 0:
		return nil, encoded{}, fmt.Errorf("%w: probe of modality %q sets none of Vector, ItemID, File, Data and Text", ErrInvalidQuery, p.Modality)
	case p.Vector != nil:
		v, err := m.Prepare(p.Vector)
		if err != nil {
			return nil, encoded{}, fmt.Errorf("probe of modality %q: %w", p.Modality, err)
		}
		return v, encoded{}, nil
	case p.ItemID == "":
		return db.encodeProbe(ctx, m, p)
	}
	var v []float32
	err = db.store.View(func(tx *storage.Tx) error {
		iid, ok := tx.LookupID(p.ItemID)
		if !ok {
			return fmt.Errorf("probe item %q: %w", p.ItemID, ErrNotFound)
		}
		if v, ok = tx.Vector(p.Modality, iid); !ok {
			return fmt.Errorf("probe item %q has no %s vector: %w", p.ItemID, p.Modality, ErrNotFound)
		}
		return nil
	})
	return v, encoded{}, err
}

// encoded says how a probe was made from raw content: the encoder, and
// the time it took.
type encoded struct {
	how  string
	took time.Duration
	spec *encoder.Spec // the modality's encoder that made it, as stored
}
