package mmdb

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
)

// CalibrateOptions choose the query-time corrections Calibrate sets up.
// The zero value (or nil) removes any stored calibration.
type CalibrateOptions struct {
	// Centre subtracts the mean probe vector (in the target's space) from
	// every query: the "modality gap" between two encoders' outputs.
	Centre bool
	// Alpha turns on the hubness correction: a target's score becomes its
	// similarity minus Alpha times its hubness, the mean of its K highest
	// similarities to a bank of stored probe vectors. Targets that are
	// near every query (hubs) lose rank to the ones near this query.
	// 0.5-0.75 worked on coco500 (../shared/notes); 0 is off.
	Alpha float64
	// K is the number of bank neighbours averaged; default 10.
	K int
	// Bank is the number of probe vectors sampled for the bank; default
	// half of the items that carry the probe modality, at most 10,000.
	Bank int
	// Seed picks the bank.
	Seed uint64
}

// MaxAlpha bounds CalibrateOptions.Alpha: the correction subtracts Alpha
// times a similarity, so larger values only rank by hubness.
const MaxAlpha = 100

// Calibration is the corrections for searches from Probe to Target.
type Calibration struct {
	// Probe and Target are the modalities searched from and ranked.
	Probe, Target string
	// Centre is the mean probe vector in the target's space, subtracted
	// from each query; nil when centring is off.
	Centre []float32
	// Alpha and K are the hubness correction's strength (0: off) and the
	// number of bank neighbours averaged.
	Alpha float64
	K     int
	// MeanHub is the mean hubness of the targets, given to targets stored
	// after calibrating.
	MeanHub float32

	// bank holds the items whose probe vectors formed the bank. Evaluate
	// keeps them out of its queries and targets: an item whose own probe
	// vector is in the bank would be judged by its own query.
	bank *roaring.Bitmap
	hub  map[uint32]float32 // internal ID -> hubness
}

// BankSize is the number of probe vectors the hubness was measured
// against.
func (c *Calibration) BankSize() int { return int(c.bank.GetCardinality()) }

// record encodes c for the file.
func (c *Calibration) record() (*storage.CalibrationRecord, error) {
	r := &storage.CalibrationRecord{Probe: c.Probe, Target: c.Target, Centre: c.Centre, Alpha: c.Alpha, K: c.K, MeanHub: c.MeanHub}
	var err error
	if r.BankItems, err = c.bank.ToBytes(); err != nil {
		return r, err
	}
	r.IDs = slices.Sorted(maps.Keys(c.hub))
	r.Hub = make([]float32, len(r.IDs))
	for i, id := range r.IDs {
		r.Hub[i] = c.hub[id]
	}
	return r, nil
}

// describe says what the calibration does, for EXPLAIN.
func (c *Calibration) describe() string {
	var parts []string
	if c.Centre != nil {
		parts = append(parts, "centred")
	}
	if c.Alpha > 0 {
		parts = append(parts, fmt.Sprintf("hubness alpha=%g k=%d over a %d-vector bank", c.Alpha, c.K, c.bank.GetCardinality()))
	}
	return strings.Join(parts, ", ")
}

// penalty returns the target's hubness times Alpha: how much its score
// drops (and its distance grows) under the correction.
func (c *Calibration) penalty(id uint32) float32 {
	h, ok := c.hub[id]
	if !ok {
		h = c.MeanHub
	}
	return float32(c.Alpha) * h
}

// validNumbers checks that a stored calibration holds only finite numbers
// in range: a damaged one must not turn every score into NaN.
func (c *Calibration) validNumbers() error {
	if !(c.Alpha >= 0 && c.Alpha <= MaxAlpha) || c.K < 0 {
		return fmt.Errorf("alpha %g or k %d out of range", c.Alpha, c.K)
	}
	if err := modality.CheckQuery(c.Centre); err != nil {
		return fmt.Errorf("centre: %w", err)
	}
	// Hubness values are scores, one per target: each must be finite; as
	// a list they are no vector, and have no length to bound.
	for _, h := range c.hub {
		if math.IsNaN(float64(h)) || math.IsInf(float64(h), 0) {
			return fmt.Errorf("hubness: %w: %v", ErrInvalidVector, h)
		}
	}
	if err := modality.CheckFinite([]float32{c.MeanHub}); err != nil {
		return fmt.Errorf("mean hubness: %w", err)
	}
	return nil
}

// calibration decodes a stored record.
func calibrationOf(r storage.CalibrationRecord) (*Calibration, error) {
	c := &Calibration{Probe: r.Probe, Target: r.Target, Centre: r.Centre, Alpha: r.Alpha, K: r.K, MeanHub: r.MeanHub, bank: roaring.New()}
	if len(r.BankItems) > 0 {
		var err error
		if c.bank, err = storage.DecodeBitmap(r.BankItems); err != nil {
			return nil, err
		}
	}
	if len(r.IDs) != len(r.Hub) {
		return nil, fmt.Errorf("%d ids for %d hubness values", len(r.IDs), len(r.Hub))
	}
	c.hub = make(map[uint32]float32, len(r.IDs))
	for i, id := range r.IDs {
		c.hub[id] = r.Hub[i]
	}
	return c, nil
}

// Calibrate sets up query-time corrections for searches from probe to
// target, which must reach it directly or through a stored alignment
// (storing a new alignment drops the calibration made for the old one):
// mean centring and the hubness correction (see CalibrateOptions). Search
// applies them unless Query.NoCorrections is set; Evaluate reports the
// figures with and without them on items outside the bank. Calibrate
// again after large changes to the target modality: the hubness of items
// stored later is the mean.
func (db *DB) Calibrate(ctx context.Context, probe, target string, o *CalibrateOptions) (*Calibration, error) {
	var opts CalibrateOptions
	if o != nil {
		opts = *o
	}
	if !(opts.Alpha >= 0 && opts.Alpha <= MaxAlpha) { // also true for NaN
		return nil, fmt.Errorf("mmdb: calibrate: %w: alpha %g must be between 0 and %g", ErrInvalidQuery, opts.Alpha, float64(MaxAlpha))
	}
	if opts.K <= 0 {
		opts.K = 10
	}
	in, err := db.calibrationInputs(probe, target)
	if err != nil {
		return nil, fmt.Errorf("mmdb: calibrate: %w", err)
	}
	c := &Calibration{Probe: in.pm.Name, Target: in.tm.Name, Alpha: opts.Alpha, K: opts.K, bank: roaring.New(), hub: map[uint32]float32{}}
	if !opts.Centre && opts.Alpha == 0 {
		return nil, db.storeCalibration(c, true)
	}
	if opts.Centre {
		if c.Centre, err = in.centre(); err != nil {
			return nil, fmt.Errorf("mmdb: calibrate: %w", err)
		}
	}
	if opts.Alpha > 0 {
		bank, err := in.bank(ctx, c, opts)
		if err != nil {
			return nil, fmt.Errorf("mmdb: calibrate: %w", err)
		}
		if err := c.hubness(ctx, bank, in.tidx, in.targetIDs, db.opts.Progress); err != nil {
			return nil, fmt.Errorf("mmdb: calibrate: %w", err)
		}
	}
	if err := db.storeCalibration(c, false); err != nil {
		return nil, err
	}
	return c.clone(), nil
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
	route, al, rerr := s.route(pm, tm)
	if route == RoutePivot {
		return nil, fmt.Errorf("%w; corrections need a direct route or a stored alignment", rerr)
	}
	return &calibInputs{pm: pm, tm: tm, pidx: pidx, tidx: tidx, align: al,
		probeIDs: db.items.with(s.byName[pm.Name]).ToArray(), targetIDs: db.items.with(s.byName[tm.Name]).ToArray()}, nil
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

// centre is the mean probe vector in the target's space.
func (in *calibInputs) centre() ([]float32, error) {
	sum := make([]float64, in.tm.Dim)
	n := 0
	for _, id := range in.probeIDs {
		if v, ok := in.toTarget(id); ok {
			for j, x := range v {
				sum[j] += float64(x)
			}
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no %s vectors to centre on", ErrInvalidQuery, in.pm.Name)
	}
	out := make([]float32, in.tm.Dim)
	for j := range sum {
		out[j] = float32(sum[j] / float64(n))
	}
	return out, nil
}

// bank samples the probe vectors the hubness is measured against (c's
// centre applied), records them in c, and indexes them: exactly, or in a
// graph when an exact scan of every target against them would take
// minutes.
func (in *calibInputs) bank(ctx context.Context, c *Calibration, opts CalibrateOptions) (hnsw.Index, error) {
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
	picked = picked[:size]
	var bank hnsw.Index = hnsw.NewFlat(in.tm.Dim, in.tm.Metric)
	if size*len(in.targetIDs) > 50_000_000 {
		bank = hnsw.NewHNSW(in.tm.Dim, in.tm.Metric, hnsw.Config{})
	}
	var ids []uint32
	var vecs [][]float32
	for _, id := range picked {
		v, ok := in.toTarget(id)
		if !ok {
			continue
		}
		v, err := c.centre(in.tm, v)
		if err != nil {
			return nil, fmt.Errorf("bank vector of item %d: %w", id, err)
		}
		ids = append(ids, id)
		vecs = append(vecs, v)
		c.bank.Add(id)
	}
	if err := hnsw.AddParallel(ctx, bank, ids, vecs, 0, nil); err != nil {
		return nil, err
	}
	return bank, nil
}

// clone copies c for a caller, who may change it without touching the
// calibration searches use.
func (c *Calibration) clone() *Calibration {
	d := *c
	d.Centre = slices.Clone(c.Centre)
	d.bank = c.bank.Clone()
	d.hub = maps.Clone(c.hub)
	return &d
}

// hubness measures each target's mean similarity to its K nearest bank
// vectors, on every CPU.
func (c *Calibration) hubness(ctx context.Context, bank, tidx hnsw.Index, targets []uint32, progress func(string, int, int)) error {
	hub := make([]float32, len(targets))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(targets); i += workers {
				if ctx.Err() != nil {
					return
				}
				v, ok := tidx.Vector(targets[i])
				if !ok {
					hub[i] = float32Nan
					continue
				}
				res := bank.Search(v, c.K, hnsw.SearchOptions{Ef: max(64, 2*c.K)})
				var s float32
				for _, r := range res {
					sc, _ := tidx.Metric().Score(r.Dist)
					s += sc
				}
				if len(res) > 0 {
					hub[i] = s / float32(len(res))
				}
				if progress != nil && i%1024 == 0 {
					mu.Lock()
					done += 1024
					progress("calibrate "+c.Probe+"->"+c.Target, min(done, len(targets)), len(targets))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	var sum float64
	for i, id := range targets {
		if hub[i] != hub[i] { // NaN: the vector left meanwhile
			continue
		}
		c.hub[id] = hub[i]
		sum += float64(hub[i])
	}
	if len(c.hub) > 0 {
		c.MeanHub = float32(sum / float64(len(c.hub)))
	}
	return nil
}

var float32Nan = float32(math.NaN()) // marks a target without a vector

// centre applies the calibration's centring to a query already in the
// target's space, as every query path does: the mean subtracted, then
// prepared (normalised under Cosine, checked). Without centring it returns
// v as it is.
func (c *Calibration) centre(tm Modality, v []float32) ([]float32, error) {
	if c == nil || c.Centre == nil {
		return v, nil
	}
	return tm.Prepare(centred(v, c.Centre))
}

func centred(v, mean []float32) []float32 {
	out := make([]float32, len(v))
	for j := range v {
		out[j] = v[j] - mean[j]
	}
	return out
}

func (db *DB) storeCalibration(c *Calibration, remove bool) error {
	var rec *storage.CalibrationRecord
	if !remove {
		// The rule Open applies when it loads a calibration: what is
		// stored must load again.
		if err := c.validNumbers(); err != nil {
			return fmt.Errorf("%w: calibration %s->%s: %w", ErrInvalidQuery, c.Probe, c.Target, err)
		}
		var err error
		if rec, err = c.record(); err != nil {
			return err
		}
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if err := db.store.Update(func(tx *storage.Tx) error { return tx.PutCalibration(c.Probe, c.Target, rec) }); err != nil {
		return fmt.Errorf("mmdb: calibrate: %w", err)
	}
	db.update(func(s *state) {
		if remove {
			delete(s.calibs, [2]string{c.Probe, c.Target})
		} else {
			s.calibs[[2]string{c.Probe, c.Target}] = c
		}
	})
	return nil
}

// loadCalibrations reads the stored calibrations at Open.
func loadCalibrations(tx *storage.Tx, s *state) error {
	return tx.ForEachCalibration(func(r storage.CalibrationRecord) error {
		c, err := calibrationOf(r)
		if err != nil {
			return fmt.Errorf("%w: calibration %s->%s: %v", ErrCorrupt, r.Probe, r.Target, err)
		}
		_, ok1 := s.byName[c.Probe]
		t, ok2 := s.byName[c.Target]
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: calibration %s->%s names an unknown modality", ErrCorrupt, c.Probe, c.Target)
		}
		if c.Centre != nil && len(c.Centre) != s.schema[t].Dim {
			return fmt.Errorf("%w: calibration %s->%s centre has %d values for dimension %d", ErrCorrupt, c.Probe, c.Target, len(c.Centre), s.schema[t].Dim)
		}
		if err := c.validNumbers(); err != nil {
			return fmt.Errorf("%w: calibration %s->%s: %v", ErrCorrupt, c.Probe, c.Target, err)
		}
		s.calibs[[2]string{c.Probe, c.Target}] = c
		return nil
	})
}
