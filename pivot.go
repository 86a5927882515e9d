package mmdb

import (
	"fmt"

	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/modality"
)

// pivotVector carries a pivot probe into the target's space: the
// softmax-weighted mean (align.PivotWeights, temperature
// align.PivotTemperature) of the target vectors of its align.PivotItems
// nearest items among those that carry both modalities, prepared as a
// target query (normalised under Cosine). Align scores the same soft
// pivot beside its learners. Its hits then carry real similarities in the
// target's space, as on every other route. nil when no neighbour has a
// target vector.
func (db *DB) pivotVector(p *planned, pr plannedProbe) ([]float32, error) {
	opts := hnsw.SearchOptions{Ef: hnsw.DefaultEfSearch, Allow: pr.shared}
	if n := int(pr.shared.GetCardinality()); p.exactAll || n <= db.exactCutoff(hnsw.DefaultEfSearch, pr.pidx.Len(), pr.pidx) {
		opts.Exact = true
	}
	near := pr.pidx.Search(pr.vec, align.PivotItems, opts)
	var dists []float32
	var tvs [][]float32
	for _, n := range near {
		tv, ok := p.tidx.Vector(n.ID)
		if !ok {
			continue // this neighbour's target vector is leaving
		}
		d := n.Dist
		if pr.pm.Metric == modality.Dot { // weigh by cosine, as align does
			pv, ok := pr.pidx.Vector(n.ID)
			if !ok {
				continue
			}
			d = align.CosineDistance(pr.vec, pv)
		}
		dists, tvs = append(dists, d), append(tvs, tv)
	}
	if len(tvs) == 0 {
		return nil, nil
	}
	weigh := pr.pm.Metric
	if weigh == modality.Dot {
		weigh = modality.Cosine
	}
	w := align.PivotWeights(align.Similarity(weigh, dists), align.PivotTemperature)
	out := make([]float32, p.tm.Dim)
	for k, tv := range tvs {
		for j, v := range tv {
			out[j] += float32(w[k]) * v
		}
	}
	v, err := p.tm.Prepare(out)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s probe carried through its nearest items: %w", ErrInvalidQuery, pr.pm.Name, err)
	}
	return v, nil
}
