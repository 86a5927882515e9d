package mmdb

import (
	"cmp"
	"context"
	"math"
	"slices"

	"github.com/mmdb-go/mmdb/fusion"
)

// bestScore ranks every candidate by its best example, as Qdrant's
// recommend best_score: sigmoid(best similarity to a positive probe) when
// it beats the best to a negative one, else -sigmoid(that best negative
// similarity), so every candidate nearer a positive ranks above every one
// nearer a negative, whatever the metric's scale (sigmoid(x) = (x/(1+|x|)
// + 1)/2, bounded, monotone). Weights count by their sign only.
func (db *DB) bestScore(ctx context.Context, p *planned) ([]fusion.Ranked, error) {
	cands := p.allow
	if cands == nil {
		cands = db.items.With(db.st.Load().byName[p.tm.Name])
	}
	depth := max(p.plan.Depth, 1)
	var out []fusion.Ranked
	keep := func() { // the best depth so far, best first
		slices.SortFunc(out, func(a, b fusion.Ranked) int {
			if c := cmp.Compare(b.Score, a.Score); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		out = out[:min(len(out), depth)]
	}
	it := cands.Iterator()
	for n := 0; it.HasNext(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id := it.Next()
		v, ok := p.tidx.Vector(id)
		if !ok {
			continue
		}
		pos, neg := math.Inf(-1), math.Inf(-1)
		for i, pr := range p.probes {
			s, _ := p.tm.Metric.Score(p.tm.Metric.Distance(pr.vec, v))
			if p.plan.Probes[i].Weight < 0 {
				neg = max(neg, float64(s))
			} else {
				pos = max(pos, float64(s))
			}
		}
		score := sigmoid(pos)
		if neg > pos {
			score = -sigmoid(neg)
		}
		if out = append(out, fusion.Ranked{ID: id, Score: score}); len(out) >= 2*depth+1024 {
			keep()
		}
	}
	keep()
	return out, nil
}

// sigmoid maps a score into (0, 1), keeping its order (Qdrant's fast
// sigmoid).
func sigmoid(x float64) float64 {
	if math.IsInf(x, -1) {
		return 0
	}
	return (x/(1+math.Abs(x)) + 1) / 2
}
