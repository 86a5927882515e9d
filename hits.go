package mmdb

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
)

// hits maps internal IDs to external ones and scores to Hits. For fused
// lists the score is the fusion score and Distance its negation (Fused
// says so): no metric distance describes a fused rank.
func (db *DB) hits(p *planned, list []fusion.Ranked, k int, fused bool) ([]Hit, error) {
	if p.groupBy != "" {
		return db.groupedHits(p, list, k, fused)
	}
	skip := p.plan.Offset
	out := make([]Hit, 0, min(k, len(list)))
	var iids []uint32 // for the attributes
	if !p.noAttrs {
		iids = make([]uint32, 0, cap(out))
	}
	db.items.EachName(list, func(r fusion.Ranked, name string) bool {
		if name == "" {
			return true // mid-write: the item's vectors are leaving the index
		}
		h, in := p.hit(name, r, fused)
		if !in {
			return false // the list is best first: the rest are out of bounds too
		}
		if skip > 0 {
			skip--
			return true
		}
		out = append(out, h)
		if iids != nil {
			iids = append(iids, r.ID)
		}
		return len(out) < k
	})
	if p.noAttrs || len(out) == 0 {
		return out, nil
	}
	err := db.store.View(func(tx *storage.Tx) error {
		for i, id := range iids {
			r, ok, err := tx.Record(id)
			if err != nil {
				return err
			}
			if ok && r.ID == out[i].ID { // else deleted or replaced since: no attributes
				out[i].Attrs = r.Attrs
			}
		}
		return nil
	})
	return out, err
}

// hit makes the Hit of item name ranked r, and says whether it is within
// the query's score bounds.
func (p *planned) hit(name string, r fusion.Ranked, fused bool) (Hit, bool) {
	h := Hit{ID: name, Score: float32(r.Score), Fused: fused}
	if fused {
		h.Distance = 0 - h.Score
	} else {
		h.Distance = distanceOf(p.tm.Metric, h.Score)
	}
	in := (p.minScore == nil || h.Score >= *p.minScore) && (p.maxDistance == nil || h.Distance <= *p.maxDistance)
	return h, in
}

// groupedHits is hits with at most p.groupSize hits per value of the
// attribute p.groupBy: items without it are left out, and an item with a
// list of values counts in each (kept while any of them has room), as
// Qdrant's groups do.
func (db *DB) groupedHits(p *planned, list []fusion.Ranked, k int, fused bool) ([]Hit, error) {
	names := db.items.Names(list, len(list))
	skip := p.plan.Offset
	count := map[string]int{}
	var out []Hit
	err := db.store.View(func(tx *storage.Tx) error {
		for i, r := range list {
			if names[i] == "" {
				continue
			}
			h, in := p.hit(names[i], r, fused)
			if !in {
				p.exhausted = true // the rest are out of bounds: deeper finds nothing
				return nil
			}
			rec, ok, err := tx.Record(r.ID)
			if err != nil {
				return err
			}
			if !ok || rec.ID != h.ID {
				continue
			}
			keys := groupKeys(rec.Attrs[p.groupBy])
			room := false
			for _, key := range keys {
				room = room || count[key] < p.groupSize
			}
			if !room {
				continue
			}
			for _, key := range keys {
				count[key]++
			}
			if skip > 0 {
				skip--
				continue
			}
			if !p.noAttrs {
				h.Attrs = rec.Attrs
			}
			if out = append(out, h); len(out) == k {
				return nil
			}
		}
		p.exhausted = !fused && len(list) < p.plan.Depth // the search had no more to give
		return nil
	})
	return out, err
}

// groupKeys are the groups an attribute value puts an item in: one per
// distinct element of a list, none for a missing attribute. Numbers group
// by value, as filters compare them (2010 and 2010.0, 0 and -0 are one).
func groupKeys(v any) []string {
	switch x := query.Normalize(v).(type) {
	case nil:
		return nil
	case []string:
		out := make([]string, 0, len(x))
		for _, s := range x {
			if k := "s" + s; !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
		return out
	case string:
		return []string{"s" + x}
	case int64:
		return []string{"n" + strconv.FormatFloat(float64(x)+0, 'g', -1, 64)}
	case float64:
		return []string{"n" + strconv.FormatFloat(x+0, 'g', -1, 64)}
	case bool:
		return []string{"b" + strconv.FormatBool(x)}
	}
	return []string{fmt.Sprintf("%T:%v", v, v)}
}

// distanceOf inverts Metric.Score.
func distanceOf(m modality.Metric, score float32) float32 {
	switch m {
	case modality.L2, modality.Dot:
		return 0 - score // not -score: an exact match is 0, not -0
	}
	return 1 - score
}

// dehub applies the hubness correction to a list fetched three times as
// deep as needed (so that targets the correction lifts are in it): each
// score loses Alpha times the target's hubness, and the best depth are
// kept.
func dehub(list []fusion.Ranked, c *Calibration, depth int) []fusion.Ranked {
	for i := range list {
		list[i].Score -= float64(c.penalty(list[i].ID))
	}
	slices.SortStableFunc(list, func(a, b fusion.Ranked) int { return cmp.Compare(b.Score, a.Score) })
	return list[:min(depth, len(list))]
}

// dehubs says whether the probe's list is hubness-corrected: its
// calibration (set only off the pivot route) has a correction.
func (pr plannedProbe) dehubs() bool { return pr.calib != nil && pr.calib.Alpha > 0 }
