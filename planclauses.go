package mmdb

import (
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/query"
)

// planNegatives checks the probes of negative weight, examples to move
// away from (Qdrant's recommend, average-vector strategy): they need a
// positive probe beside them and one search with 2 x mean(positive) -
// mean(negative) (early fusion, the default when there are negatives).
func planNegatives(p *planned, q Query) error {
	pos := 0
	for _, pp := range p.plan.Probes {
		if pp.Weight < 0 {
			p.negatives = true
		} else {
			pos++
		}
	}
	switch {
	case !p.negatives:
		return nil
	case pos == 0:
		return fmt.Errorf("%w: every probe has a negative weight: give at least one example to move towards", ErrInvalidQuery)
	case q.Fuse != "" && q.Fuse != fusion.Early && q.Fuse != fusion.BestScore:
		return fmt.Errorf("%w: negative weights (examples to move away from) need FUSE early (one search with 2 x mean(positive) - mean(negative)) or FUSE best_score (each candidate by its best positive and negative example); %s fusion ranks lists, and a negative list has no rank to subtract", ErrInvalidQuery, q.Fuse)
	}
	return nil
}

// planBounds checks that the query's score bounds apply to what the plan
// ranks by, and records them.
func planBounds(p *planned, q Query) error {
	if q.MinScore == nil && q.MaxDistance == nil {
		return nil
	}
	if p.plan.Fusion != "" && p.plan.Fusion != fusion.Early {
		return fmt.Errorf("%w: SCORE and DISTANCE bound similarities, and %s fusion ranks by a fused score that is none: use one probe or FUSE early", ErrInvalidQuery, p.plan.Fusion)
	}
	for _, pr := range p.probes {
		if pr.dehubs() {
			return fmt.Errorf("%w: SCORE and DISTANCE bound similarities, and the hubness correction stored for %s -> %s changes the scores: set NoCorrections to bound raw similarities", ErrInvalidQuery, pr.pm.Name, p.tm.Name)
		}
	}
	p.minScore, p.maxDistance = q.MinScore, q.MaxDistance
	return nil
}

// planGroups records Query.GroupBy, refusing an attribute no item has (it
// would silently return nothing), and starts the search deep enough to
// fill a few groups.
func (db *DB) planGroups(p *planned, q Query) error {
	if q.GroupBy == "" {
		if q.GroupSize != 0 {
			return fmt.Errorf("%w: GroupSize without GroupBy", ErrInvalidQuery)
		}
		return nil
	}
	if q.GroupSize < 0 || q.GroupSize > MaxK {
		return fmt.Errorf("%w: group size %d outside 1..%d", ErrInvalidQuery, q.GroupSize, MaxK)
	}
	// Items without the attribute are in no group: leave them out of the
	// search itself, so deepening never wades through them.
	has, err := db.evalFilter(query.Exists{Attr: q.GroupBy}, db.items.LiveClone())
	if err != nil {
		return fmt.Errorf("GROUP BY: %w", err)
	}
	if has.IsEmpty() {
		return fmt.Errorf("GROUP BY: %w: no item has %q", ErrUnknownAttribute, q.GroupBy)
	}
	if p.allow == nil {
		p.allow = db.items.With(db.st.Load().byName[p.tm.Name])
	}
	p.allow.And(has)
	p.plan.FilterMatches = int(p.allow.GetCardinality())
	p.groupBy, p.groupSize = q.GroupBy, max(q.GroupSize, 1)
	p.plan.GroupBy, p.plan.GroupSize = p.groupBy, p.groupSize
	p.plan.Depth = max(p.plan.Depth, 4*(p.plan.K+p.plan.Offset))
	return nil
}

// planOffset refuses an offset into a fused ranking: how deep each list
// goes depends on the page, so pages of one fused ranking would repeat or
// miss items.
func planOffset(p *planned) error {
	if p.plan.Offset > 0 && p.plan.Fusion != "" && p.plan.Fusion != fusion.Early && p.plan.Fusion != fusion.BestScore {
		return fmt.Errorf("%w: OFFSET into a %s-fused ranking: each page would fuse lists of another depth, and pages would repeat or miss items; ask for more hits (LIMIT), or page a single probe or FUSE early", ErrInvalidQuery, p.plan.Fusion)
	}
	return nil
}

// excluded is the set of internal IDs q leaves out: Exclude, and the
// items of probes given by ItemID in the target's modality unless
// KeepProbeItems; nil when there are none.
func (db *DB) excluded(q Query) (*roaring.Bitmap, error) {
	ids := slices.Clone(q.Exclude)
	if !q.KeepProbeItems {
		for _, pr := range q.Probes {
			if pr.ItemID != "" && pr.Modality == q.Target {
				ids = append(ids, pr.ItemID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := roaring.New()
	err := db.store.View(func(tx *storage.Tx) error {
		for _, id := range ids {
			if iid, ok := tx.LookupID(id); ok {
				out.Add(iid)
			}
		}
		return nil
	})
	return out, err
}

// planFusion sets how several probes' lists merge, and how deep each is.
func planFusion(p *planned, q Query) error {
	if err := multiFusion(p, q); err != nil {
		return err
	}
	if err := planNegatives(p, q); err != nil {
		return err
	}
	if len(q.Probes) > 1 {
		p.plan.Fusion = q.Fuse
		if p.plan.Fusion == "" {
			p.plan.Fusion = fusion.RRF
			if p.negatives {
				p.plan.Fusion = fusion.Early
			}
		}
		if p.plan.Fusion == fusion.Early || p.plan.Fusion == fusion.BestScore {
			for _, pp := range p.plan.Probes {
				if pp.Route == RoutePivot {
					return fmt.Errorf("%w: %s fusion needs every probe in the target's space (directly or aligned); %s is not", ErrInvalidQuery, p.plan.Fusion, pp.Modality)
				}
			}
		}
	}
	if q.Fuse == fusion.BestScore && len(q.Probes) == 1 {
		p.plan.Fusion = fusion.BestScore // one example: its similarity, by a scan
	}
	if p.plan.Fusion == fusion.BestScore {
		for i, pp := range p.plan.Probes {
			switch {
			case pp.Route == RoutePivot:
				return fmt.Errorf("%w: best_score fusion needs every probe in the target's space (directly or aligned); %s is not", ErrInvalidQuery, pp.Modality)
			case p.probes[i].dehubs():
				return fmt.Errorf("%w: best_score compares raw similarities, and the hubness correction stored for %s -> %s would not apply: set NoCorrections, or use another fusion", ErrInvalidQuery, pp.Modality, p.tm.Name)
			case len(p.probes[i].vec) != p.tm.Dim:
				return fmt.Errorf("%w: best_score: probe %s has %d values, target %s %d", ErrInvalidQuery, pp.Modality, len(p.probes[i].vec), p.tm.Name, p.tm.Dim)
			}
		}
	}
	p.plan.Depth = p.plan.K + p.plan.Offset
	if p.plan.Fusion != "" && p.plan.Fusion != fusion.Early || anyPivot(p.plan.Probes) {
		p.plan.Depth = max(4*p.plan.Depth, 40) // deep enough for fusion to matter
	}
	return nil
}
