package mmdb

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
)

// evalInput is what Evaluate reads from one state: the route, the
// indexes, the calibration and the live items.
type evalInput struct {
	probe, target string
	pm, tm        Modality
	pidx, tidx    hnsw.Index
	route         Route
	align         *Alignment      // the aligned route's map
	calib         *Calibration    // nil: none, or not applied
	exclude       *roaring.Bitmap // items kept out of queries and targets
	live          []uint32
}

// evalInputs resolves the route and copies the live item IDs; the vectors
// are copied later (the indexes are safe for concurrent use).
func (db *DB) evalInputs(probe, target string, noCorrections bool) (*evalInput, error) {
	pr, err := db.pair(probe, target)
	if err != nil {
		return nil, err
	}
	s, pm, tm := pr.s, pr.pm, pr.tm
	if err := refuseMulti("Evaluate", pm, tm); err != nil {
		return nil, err
	}
	in := &evalInput{probe: pm.Name, target: tm.Name, pm: pm, tm: tm, pidx: pr.pidx, tidx: pr.tidx}
	in.route, in.align, _ = s.route(pm, tm)
	if c := s.calibs[[2]string{pm.Name, tm.Name}]; c != nil && in.route != RoutePivot && !noCorrections {
		in.calib, in.exclude = c, c.bank
	}
	in.live = db.items.LiveIDs()
	return in, nil
}

// evalSet is Evaluate's queries and targets: the target vectors laid end
// to end with their items beside them, and per query its probe vector
// (as stored), item, the row of its own target and, when it was
// cross-fitted, the map fitted without it.
type evalSet struct {
	tvecs    []float32
	tids     []uint32
	qvecs    [][]float32
	qids     []uint32
	own      []int
	qmaps    []*Alignment // nil, or per query (nil: the stored map)
	heldOut  string
	inSample bool
	// label, and each query's and target row's class (-1: none); nil
	// without a label.
	label      string
	qlab, tlab []int
}

// relevantCounts gives, per query, how many targets answer it: its own,
// or those of its label.
func (s *evalSet) relevantCounts() []int {
	out := make([]int, len(s.qids))
	per := map[int]int{}
	for _, l := range s.tlab {
		per[l]++
	}
	for i := range out {
		out[i] = 1
		if s.qlab != nil {
			out[i] = per[s.qlab[i]]
		}
	}
	return out
}

// gather copies the vectors: every live item with a target vector is a
// target (bank items excepted: their probe vectors judged the hubness),
// and those with a probe vector too are queries.
func (in *evalInput) gather() (*evalSet, error) {
	s := &evalSet{}
	for _, id := range in.live {
		if in.exclude != nil && in.exclude.Contains(id) {
			continue // its probe vector is in a calibration's bank: not a fair test
		}
		tv, ok := in.tidx.Vector(id)
		if !ok {
			continue
		}
		s.tvecs = append(s.tvecs, tv...)
		if pv, ok := in.pidx.Vector(id); ok {
			s.qvecs = append(s.qvecs, pv)
			s.qids = append(s.qids, id)
			s.own = append(s.own, len(s.tids))
		}
		s.tids = append(s.tids, id)
	}
	if len(s.qvecs) == 0 {
		return nil, fmt.Errorf("%w: no item carries both %s and %s", ErrInvalidQuery, in.probe, in.target)
	}
	return s, nil
}

// keep keeps the queries i for which f(i) holds, in order.
func (s *evalSet) keep(f func(i int) bool) {
	n := 0
	for i := range s.qvecs {
		if f(i) {
			s.qvecs[n], s.qids[n], s.own[n] = s.qvecs[i], s.qids[i], s.own[i]
			if s.qmaps != nil {
				s.qmaps[n] = s.qmaps[i]
			}
			if s.qlab != nil {
				s.qlab[n] = s.qlab[i]
			}
			n++
		}
	}
	s.qvecs, s.qids, s.own = s.qvecs[:n], s.qids[:n], s.own[:n]
	if s.qmaps != nil {
		s.qmaps = s.qmaps[:n]
	}
	if s.qlab != nil {
		s.qlab = s.qlab[:n]
	}
}

// sample keeps at most maxQ queries, evenly spaced (deterministic).
func (s *evalSet) sample(maxQ int) {
	n := len(s.qvecs)
	if n <= maxQ {
		return
	}
	picked := make(map[int]bool, maxQ)
	for i := range maxQ {
		picked[i*n/maxQ] = true
	}
	s.keep(func(i int) bool { return picked[i] })
}
