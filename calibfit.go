package mmdb

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
)

// calibFitter fits calibrations on one bank: the bank's probe vectors in
// the target's space, their mean, and per target its highest similarities
// to the bank (kmax of them, best first), found once for the bank as it is
// and once centred, and shared by every candidate.
type calibFitter struct {
	in     *calibInputs
	bank   *roaring.Bitmap
	ids    []uint32
	vecs   [][]float32
	centre []float32
	kmax   int
	sims   map[bool][][]float32 // centred? -> per in.targetIDs
}

// build fits the calibration co asks for.
func (f *calibFitter) build(ctx context.Context, co CalibrateOptions, progress func(string, int, int)) (*Calibration, error) {
	in := f.in
	c := &Calibration{Probe: in.pm.Name, Target: in.tm.Name, Alpha: co.Alpha, K: co.K, Beta: co.Beta, bank: f.bank, hub: map[uint32]float32{}}
	if co.Centre {
		c.Centre = f.centre
	}
	if co.Alpha == 0 {
		return c, nil
	}
	sims, err := f.topSims(ctx, co.Centre, progress)
	if err != nil {
		return nil, err
	}
	var sum float64
	for i, id := range in.targetIDs {
		s := sims[i][:min(co.K, len(sims[i]))]
		if len(s) == 0 {
			continue // the vector left meanwhile
		}
		h := hubness(s, co.Beta)
		c.hub[id] = h
		sum += float64(h)
	}
	if len(c.hub) > 0 {
		c.MeanHub = float32(sum / float64(len(c.hub)))
	}
	return c, nil
}

// hubness is the mean of a target's highest similarities to the bank, or
// with beta > 0 their log-sum-exp at inverse temperature beta, over beta
// (the inverted softmax's normaliser, in the units of a similarity).
func hubness(sims []float32, beta float64) float32 {
	if beta == 0 {
		var s float64
		for _, x := range sims {
			s += float64(x)
		}
		return float32(s / float64(len(sims)))
	}
	top := float64(sims[0]) // best first
	var s float64
	for _, x := range sims {
		s += math.Exp(beta * (float64(x) - top))
	}
	return float32(top + math.Log(s)/beta)
}

// topSims returns, per target, its kmax highest similarities to the bank
// (centred or not), best first, searching an index of the bank: exact, or
// a graph when an exact scan of every target would take minutes.
func (f *calibFitter) topSims(ctx context.Context, centred bool, progress func(string, int, int)) ([][]float32, error) {
	if s, ok := f.sims[centred]; ok {
		return s, nil
	}
	in := f.in
	var bank hnsw.Index = hnsw.NewFlat(in.tm.Dim, in.tm.Metric)
	if len(f.ids)*len(in.targetIDs) > 50_000_000 {
		bank = hnsw.NewHNSW(in.tm.Dim, in.tm.Metric, hnsw.Config{})
	}
	vecs := f.vecs
	if centred {
		cal := &Calibration{Centre: f.centre}
		vecs = make([][]float32, len(f.vecs))
		for i, v := range f.vecs {
			var err error
			if vecs[i], err = cal.centre(in.tm, v); err != nil {
				return nil, fmt.Errorf("bank vector of item %d: %w", f.ids[i], err)
			}
		}
	}
	if err := hnsw.AddParallel(ctx, bank, f.ids, vecs, 0, nil); err != nil {
		return nil, err
	}
	out := make([][]float32, len(in.targetIDs))
	var mu sync.Mutex
	done := 0
	err := parallel(ctx, len(in.targetIDs), func(i int) error {
		v, ok := in.tidx.Vector(in.targetIDs[i])
		if !ok {
			return nil // the vector left meanwhile: no hubness
		}
		res := bank.Search(v, f.kmax, hnsw.SearchOptions{Ef: max(64, 2*f.kmax)})
		s := make([]float32, len(res))
		for k, r := range res {
			s[k], _ = in.tm.Metric.Score(r.Dist)
		}
		out[i] = s
		if progress != nil && i%1024 == 0 {
			mu.Lock()
			done += 1024
			progress("calibrate "+in.pm.Name+"->"+in.tm.Name, min(done, len(in.targetIDs)), len(in.targetIDs))
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.sims[centred] = out
	return out, nil
}

// measureCalibrations ranks the query items outside the bank against the
// targets outside it, as Evaluate does (holding out what an alignment was
// fitted on, or cross-fitting it), without corrections and then with each
// candidate, and scores each ranking.
func (db *DB) measureCalibrations(ctx context.Context, in *calibInputs, bank *roaring.Bitmap, cands []*Calibration) ([]CalibrationScore, error) {
	ein, err := db.evalInputs(in.pm.Name, in.tm.Name, true)
	if err != nil {
		return nil, err
	}
	if ein.align != in.align {
		return nil, fmt.Errorf("%w: the %s->%s alignment was replaced while calibrating; calibrate again", ErrChanged, in.pm.Name, in.tm.Name)
	}
	ein.exclude = bank
	set, err := ein.gather()
	if err == nil {
		// On the aligned route, hold out what the map was fitted on too,
		// as Evaluate does: the figures are then held out from both.
		err = db.holdOut(ctx, ein, set, false)
	}
	if err != nil {
		return nil, fmt.Errorf("measuring on the items outside the bank: %w", err)
	}
	set.sample(DefaultEvalQueries)
	if len(set.qids) < calibFolds {
		return nil, fmt.Errorf("%w: %d query items outside the bank; measuring the corrections needs at least %d (a smaller Bank leaves more)", ErrInvalidQuery, len(set.qids), calibFolds)
	}
	scores := make([]CalibrationScore, 0, len(cands)+1)
	for _, c := range append([]*Calibration{nil}, cands...) {
		ranks, _, err := db.exactRanks(ctx, ein, set, c, 0)
		if err != nil {
			return nil, err
		}
		s := CalibrationScore{Corrections: "none", FoldMRR: make([]float64, calibFolds)}
		if c != nil {
			s.Corrections = c.describe()
		}
		per := make([]int, calibFolds)
		for q, r := range ranks {
			f := q % calibFolds
			per[f]++
			if r <= 1 {
				s.R1++
			}
			if r <= 10 {
				s.R10++
			}
			s.MRR += 1 / float64(r)
			s.FoldMRR[f] += 1 / float64(r)
		}
		n := float64(len(ranks))
		s.R1, s.R10, s.MRR = s.R1/n, s.R10/n, s.MRR/n
		for f := range s.FoldMRR {
			s.FoldMRR[f] /= float64(per[f])
		}
		scores = append(scores, s)
	}
	return scores, nil
}

// calibFolds is the number of folds of the queries a calibration's gain
// is judged over.
const calibFolds = 5
