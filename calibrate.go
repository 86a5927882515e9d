package mmdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/hnsw"
)

// CalibrateOptions choose the query-time corrections Calibrate sets up.
// The zero value (or nil) removes any stored calibration.
type CalibrateOptions struct {
	// Centre subtracts the mean probe vector of the bank (in the target's
	// space) from every query: the "modality gap" between two encoders'
	// outputs.
	Centre bool
	// Alpha turns on the hubness correction: a target's score becomes its
	// similarity minus Alpha times its hubness, the mean of its K highest
	// similarities to a bank of stored probe vectors. Targets that are
	// near every query (hubs) lose rank to the ones near this query.
	// 0.5-0.75 worked on coco500 (../shared/notes); 0 is off.
	Alpha float64
	// Beta makes the hubness the inverted softmax's (QB-Norm's): the
	// log-sum-exp of the K highest bank similarities at inverse
	// temperature Beta, divided by Beta; Alpha is then 1 unless set. 0 is
	// the mean.
	Beta float64
	// K is the number of bank neighbours looked at; default 10.
	K int
	// Bank is the number of probe vectors sampled for the bank; default
	// half of the items that carry the probe modality, at most 10,000.
	Bank int
	// Seed picks the bank.
	Seed uint64
	// Auto measures no correction, centring, the hubness correction
	// (alpha 0.25, 0.5, 0.75) and the inverted softmax (beta 10, 20, 50),
	// each with and without centring, and keeps the best; Centre, Alpha
	// and Beta are then ignored.
	Auto bool
	// StoreAny stores the corrections even when they measured no better
	// than none.
	StoreAny bool
}

// Calibrate sets up query-time corrections for searches from probe to
// target, which must reach it directly or through a stored alignment
// (storing a new alignment drops the calibration made for the old one):
// mean centring, the hubness correction and the inverted softmax (see
// CalibrateOptions). All three are fitted on a bank of probe items and
// measured on the query items outside it (each ranking every target
// outside it), beside no correction at all: R@1, R@10, MRR and the MRR of
// 5 folds of the queries, in the returned Calibration's Measured. The
// corrections are stored only when their MRR beats no correction by more
// than the fold-to-fold spread of the gain; otherwise nothing is stored
// (a calibration stored before stays), and the error wraps ErrNoGain
// with the measurements. StoreAny stores them anyway.
//
// Search applies a stored calibration unless Query.NoCorrections is set;
// Evaluate reports the figures with and without it on items outside the
// bank. Calibrate again after large changes to the target modality: the
// hubness of items stored later is the mean.
func (db *DB) Calibrate(ctx context.Context, probe, target string, o *CalibrateOptions) (_ *Calibration, err error) {
	defer db.readBackCheck(db.readBack.Load(), &err)
	var opts CalibrateOptions
	if o != nil {
		opts = *o
	}
	ctx, done := db.measuring(ctx)
	defer done()
	if err := opts.check(); err != nil {
		return nil, fmt.Errorf("mmdb: calibrate: %w", err)
	}
	in, err := db.calibrationInputs(probe, target)
	if err != nil {
		return nil, fmt.Errorf("mmdb: calibrate: %w", err)
	}
	cands := opts.candidates()
	if len(cands) == 0 {
		c := &Calibration{Probe: in.pm.Name, Target: in.tm.Name, bank: roaring.New(), hub: map[uint32]float32{}}
		return nil, db.storeCalibration(c, true, nil)
	}
	f, err := in.sampleBank(opts)
	if err != nil {
		return nil, fmt.Errorf("mmdb: calibrate: %w", err)
	}
	built := make([]*Calibration, len(cands))
	for i, co := range cands {
		if built[i], err = f.build(ctx, co, db.opts.Progress); err != nil {
			return nil, fmt.Errorf("mmdb: calibrate: %w", db.closedErr(err))
		}
	}
	scores, err := db.measureCalibrations(ctx, in, f.bank, built)
	if err != nil {
		return nil, fmt.Errorf("mmdb: calibrate: %w", db.closedErr(err))
	}
	best, keep, why := decideCalibration(scores, opts.StoreAny)
	c := built[best]
	c.Measured, c.Why = scores, why.Error()
	if !keep {
		return c.clone(), fmt.Errorf("mmdb: calibrate %s->%s: nothing stored: %w", in.pm.Name, in.tm.Name, why)
	}
	if err := db.storeCalibration(c, false, in.align); err != nil {
		return nil, err
	}
	return c.clone(), nil
}

// check validates the options and fills in K.
func (o *CalibrateOptions) check() error {
	if !(o.Alpha >= 0 && o.Alpha <= MaxAlpha) { // also true for NaN
		return fmt.Errorf("%w: alpha %g must be between 0 and %g", ErrInvalidQuery, o.Alpha, float64(MaxAlpha))
	}
	if !(o.Beta == 0 || o.Beta >= MinBeta && o.Beta <= MaxBeta) {
		return fmt.Errorf("%w: beta %g must be 0 (none) or between %g and %g", ErrInvalidQuery, o.Beta, float64(MinBeta), float64(MaxBeta))
	}
	if o.K <= 0 {
		o.K = 10
	}
	if o.Beta > 0 && o.Alpha == 0 {
		o.Alpha = 1
	}
	return nil
}

// candidates lists the corrections to fit and measure: the one asked for,
// or with Auto the grid; none when nothing is asked.
func (o CalibrateOptions) candidates() []CalibrateOptions {
	if !o.Auto {
		if !o.Centre && o.Alpha == 0 {
			return nil
		}
		return []CalibrateOptions{o}
	}
	var out []CalibrateOptions
	for _, centre := range []bool{false, true} {
		one := CalibrateOptions{Centre: centre, K: o.K}
		if centre {
			out = append(out, one)
		}
		for _, a := range []float64{0.25, 0.5, 0.75} {
			one.Alpha, one.Beta = a, 0
			out = append(out, one)
		}
		for _, b := range []float64{10, 20, 50} {
			one.Alpha, one.Beta = 1, b
			out = append(out, one)
		}
	}
	return out
}

// decideCalibration picks the candidate (index into scores[1:], whose
// scores[0] is no correction) with the best MRR and says whether to keep
// it. The gain is judged without the optimism of picking the best of
// several on the same queries: each fold's figure comes from the
// candidate that did best on the other folds, and the candidate is kept
// when that gain over no correction exceeds its fold-to-fold spread (or
// with storeAny). why says why; when not kept it wraps ErrNoGain.
func decideCalibration(scores []CalibrationScore, storeAny bool) (best int, keep bool, why error) {
	best = 1
	for i := 2; i < len(scores); i++ {
		if scores[i].MRR > scores[best].MRR {
			best = i
		}
	}
	none, b := scores[0], scores[best]
	picked := make([]float64, len(none.FoldMRR))
	for f := range picked {
		pick, top := 1, math.Inf(-1)
		for i := 1; i < len(scores); i++ {
			var rest float64
			for g, v := range scores[i].FoldMRR {
				if g != f {
					rest += v
				}
			}
			if rest > top {
				pick, top = i, rest
			}
		}
		picked[f] = scores[pick].FoldMRR[f]
	}
	mean, sd := align.PairedGain(picked, none.FoldMRR)
	msg := fmt.Sprintf("%s: MRR %.3f against %.3f without corrections; the gain, each fold judged by the correction chosen on the others, %+.3f ±%.3f over %d folds of the queries outside the bank", b.Corrections, b.MRR, none.MRR, mean, sd, len(picked))
	switch {
	case mean > 0 && mean > sd:
		return best - 1, true, errors.New("kept " + msg)
	case storeAny:
		return best - 1, true, errors.New("kept because asked, although for " + msg + " the gain is within the spread or a loss")
	}
	return best - 1, false, fmt.Errorf("%w: for the best correction, %s, the gain is within the fold-to-fold spread or a loss (StoreAny stores it anyway)", ErrNoGain, msg)
}

// calibInputs is what Calibrate reads from the database under its lock.
type calibInputs struct {
	pm, tm              Modality
	pidx, tidx          hnsw.Index
	align               *Alignment // nil on the direct route
	probeIDs, targetIDs []uint32
}

// calibrationInputs resolves the route from probe to target (corrections
// need a direct or aligned one) and copies the items that carry each.
func (db *DB) calibrationInputs(probe, target string) (*calibInputs, error) {
	pr, err := db.pair(probe, target)
	if err != nil {
		return nil, err
	}
	s, pm, tm, pidx, tidx := pr.s, pr.pm, pr.tm, pr.pidx, pr.tidx
	if err := refuseMulti("Calibrate", pm, tm); err != nil {
		return nil, err
	}
	route, al, rerr := s.route(pm, tm)
	if route == RoutePivot {
		return nil, fmt.Errorf("%w; corrections need a direct route or a stored alignment", rerr)
	}
	return &calibInputs{pm: pm, tm: tm, pidx: pidx, tidx: tidx, align: al,
		probeIDs: db.items.With(s.byName[pm.Name]).ToArray(), targetIDs: db.items.With(s.byName[tm.Name]).ToArray()}, nil
}

// toTarget returns item id's probe vector carried into the target's space
// as Search carries a query: projected, then normalised under Cosine, so
// the centre and the bank are in the units queries are in.
func (in *calibInputs) toTarget(id uint32) ([]float32, bool) {
	v, ok := in.pidx.Vector(id)
	if !ok {
		return nil, false
	}
	v, err := in.align.carry(in.tm, v)
	return v, err == nil
}

// sampleBank picks the bank (opts.Bank probe items, by opts.Seed) and
// copies its vectors in the target's space and their mean.
func (in *calibInputs) sampleBank(opts CalibrateOptions) (*calibFitter, error) {
	size := opts.Bank
	if size <= 0 {
		size = min(len(in.probeIDs)/2, 10000)
	}
	size = min(size, len(in.probeIDs))
	if size < opts.K {
		return nil, fmt.Errorf("%w: a bank of %d %s vectors is smaller than k=%d", ErrInvalidQuery, size, in.pm.Name, opts.K)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x63616c))
	picked := slices.Clone(in.probeIDs)
	rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	f := &calibFitter{in: in, bank: roaring.New(), sims: map[bool][][]float32{}, kmax: opts.K}
	sum := make([]float64, in.tm.Dim)
	for _, id := range picked[:size] {
		v, ok := in.toTarget(id)
		if !ok {
			continue
		}
		f.ids, f.vecs = append(f.ids, id), append(f.vecs, v)
		f.bank.Add(id)
		for j, x := range v {
			sum[j] += float64(x)
		}
	}
	if len(f.vecs) == 0 {
		return nil, fmt.Errorf("%w: no %s vectors for the bank", ErrInvalidQuery, in.pm.Name)
	}
	f.centre = make([]float32, in.tm.Dim)
	for j := range sum {
		f.centre[j] = float32(sum[j] / float64(len(f.vecs)))
	}
	return f, nil
}
