package mmdb

import (
	"fmt"
	"math"
	"strconv"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/align"
)

// planProbes resolves the target and each probe's route on one state,
// and returns, when q has a filter, copies of the target's candidates and
// of the live items for it (an unfiltered search does not pay two
// copies).
func (db *DB) planProbes(q Query, k int, vecs [][]float32, explain bool) (p *planned, candidates, universe *roaring.Bitmap, err error) {
	s, err := db.state()
	if err != nil {
		return nil, nil, nil, err
	}
	tm, tidx, err := s.modality(q.Target)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("target: %w", err)
	}
	ti := s.byName[q.Target]
	n := 0
	if q.Filter != nil {
		candidates, universe = db.items.WithAndLive(ti)
		n = int(candidates.GetCardinality())
	} else {
		n = db.items.WithCount(ti)
	}
	p = &planned{tm: tm, tidx: tidx, exactAll: q.Exact, noAttrs: q.NoAttrs, explain: explain}
	p.planBuf = Plan{Target: q.Target, K: k, Candidates: n}
	p.plan = &p.planBuf
	if len(q.Probes) == 1 {
		p.plan.Probes, p.probes = p.probeBuf[:0], p.pprobeBuf[:0]
	}
	for i, pr := range q.Probes {
		pp, planned, err := db.planProbe(s, i, pr, vecs[i], tm, q.NoCorrections, explain)
		if err != nil {
			return nil, nil, nil, err
		}
		p.plan.Probes = append(p.plan.Probes, pp)
		p.probes = append(p.probes, planned)
	}
	return p, candidates, universe, nil
}

// planProbe routes probe i (vector vec) to target tm on state s:
// projected through an alignment, centred by a calibration, or set up to
// pivot. The prose (Source, Why) is written only when explaining.
func (db *DB) planProbe(s *state, i int, pr Probe, vec []float32, tm Modality, noCorrections, explain bool) (ProbePlan, plannedProbe, error) {
	pm, pidx, err := s.modality(pr.Modality)
	if err != nil {
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe: %w", err)
	}
	w := pr.Weight
	if w == 0 {
		w = 1
	}
	if !(math.Abs(float64(w)) <= MaxProbeWeight) { // also false for NaN
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("%w: probe %d (%s) weight %v must be a number of size up to %g (negative for an example to move away from)", ErrInvalidQuery, i, pr.Modality, pr.Weight, float32(MaxProbeWeight))
	}
	pp := ProbePlan{Modality: pm.Name, Weight: w}
	if explain {
		pp.Source = probeSource(pr)
	}
	var shared *roaring.Bitmap
	route, a, direct := s.route(pm, tm)
	pp.Route = route
	if err := multiRoute(route, pm, tm); err != nil {
		return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe %d: %w", i, err)
	}
	switch route {
	case RouteAligned:
		pv, err := a.carry(tm, vec)
		if err != nil {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe projected by the %s->%s alignment: %w", pm.Name, tm.Name, err)
		}
		vec = pv
	case RoutePivot:
		shared = db.items.WithBoth(s.byName[pm.Name], s.byName[tm.Name])
		if shared.IsEmpty() {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("%w; no %s->%s alignment is stored, and no item carries both to pivot through", direct, pm.Name, tm.Name)
		}
	}
	if explain {
		pp.Why = routeWhy(route, pm, tm, a, shared)
		if tm.IsMulti() {
			pp.Why += lateWhy(tm, len(vec)/tm.Dim)
		}
	}
	var calib *Calibration
	if c := s.calibs[[2]string{pm.Name, tm.Name}]; c != nil && !noCorrections && route != RoutePivot && !pm.IsMulti() && !tm.IsMulti() {
		calib = c
		pv, err := c.centre(tm, vec)
		if err != nil {
			return ProbePlan{}, plannedProbe{}, fmt.Errorf("probe centred by the %s->%s calibration: %w", pm.Name, tm.Name, err)
		}
		vec = pv
		if explain {
			pp.Why += "; corrected: " + c.describe()
		}
	}
	return pp, plannedProbe{vec: vec, pidx: pidx, pm: pm, ext: pr.ItemID, shared: shared, calib: calib, align: a}, nil
}

// probeSource says what a probe was given as, for EXPLAIN.
func probeSource(pr Probe) string {
	switch {
	case pr.ItemID != "":
		return "item " + pr.ItemID
	case pr.File != "":
		return "file " + strconv.Quote(pr.File)
	case pr.Data != nil:
		return fmt.Sprintf("%d bytes", len(pr.Data))
	case pr.Text != "":
		return "text " + quoteShort(pr.Text)
	}
	return "vector"
}

// routeWhy says why a probe of pm takes its route to tm, for EXPLAIN.
func routeWhy(route Route, pm, tm Modality, a *Alignment, shared *roaring.Bitmap) string {
	switch route {
	case RouteDirect:
		return fmt.Sprintf("%s and %s share space %q", pm.Name, tm.Name, tm.SpaceName())
	case RouteAligned:
		why := fmt.Sprintf("spaces differ (%q, %q); projected by the stored %s->%s alignment", pm.SpaceName(), tm.SpaceName(), pm.Name, tm.Name)
		if pm.SpaceName() == tm.SpaceName() {
			why = fmt.Sprintf("projected by the %s->%s alignment stored with force, although both are in space %q", pm.Name, tm.Name, tm.SpaceName())
		}
		if a.Method != "" {
			why += " (" + a.Method + ")"
		}
		return why
	case RoutePivot:
		both := shared.GetCardinality()
		why := fmt.Sprintf("spaces differ (%q, %q); carried as the softmax-weighted mean of the %s vectors of its %d nearest %s items (T %g), of the %d that carry both", pm.SpaceName(), tm.SpaceName(), tm.Name, align.PivotItems, pm.Name, align.PivotTemperature, both)
		if both >= align.MinPairs*4 {
			why += fmt.Sprintf("; ALIGN %s TO %s can learn a map from them, and its report says whether it beats this pivot", pm.Name, tm.Name)
		}
		return why
	}
	return ""
}

func anyPivot(ps []ProbePlan) bool {
	for _, p := range ps {
		if p.Route == RoutePivot {
			return true
		}
	}
	return false
}
