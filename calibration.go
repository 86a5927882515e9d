package mmdb

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
)

// MaxAlpha bounds CalibrateOptions.Alpha: the correction subtracts Alpha
// times a similarity, so larger values only rank by hubness. MinBeta and
// MaxBeta bound Beta: past MaxBeta the log-sum-exp is the largest
// similarity, and below MinBeta it is log(n)/Beta, a number that only
// grows.
const (
	MaxAlpha = 100
	MinBeta  = 1e-3
	MaxBeta  = 1000
)

// CalibrationScore is how one set of corrections ranked Calibrate's
// held-out queries: R@1, R@10 and MRR of each query's own target, and the
// MRR of each of 5 folds of the queries.
type CalibrationScore struct {
	Corrections string    `json:"corrections"` // "none" for the uncorrected ranking
	R1          float64   `json:"r1"`
	R10         float64   `json:"r10"`
	MRR         float64   `json:"mrr"`
	FoldMRR     []float64 `json:"fold_mrr"`
}

// Calibration is the corrections for searches from Probe to Target.
type Calibration struct {
	// Probe and Target are the modalities searched from and ranked.
	Probe  string `json:"probe"`
	Target string `json:"target"`
	// Centre is the mean probe vector in the target's space, subtracted
	// from each query; nil when centring is off.
	Centre []float32 `json:"centre"`
	// Alpha and K are the hubness correction's strength (0: off) and the
	// number of bank neighbours it looks at.
	Alpha float64 `json:"alpha"`
	K     int     `json:"k"`
	// Beta, when above 0, makes the hubness the inverted softmax's
	// (QB-Norm's) log-sum-exp of those K similarities at inverse
	// temperature Beta, instead of their mean.
	Beta float64 `json:"beta"`
	// MeanHub is the mean hubness of the targets, given to targets stored
	// after calibrating.
	MeanHub float32 `json:"mean_hub"`
	// Measured is what Calibrate measured on the query items outside the
	// bank, first without corrections; Why says what it kept and why.
	// Neither is stored.
	Measured []CalibrationScore `json:"measured"`
	Why      string             `json:"why"`

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
	r := &storage.CalibrationRecord{Probe: c.Probe, Target: c.Target, Centre: c.Centre, Alpha: c.Alpha, K: c.K, Beta: c.Beta, MeanHub: c.MeanHub}
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
	switch {
	case c.Alpha > 0 && c.Beta > 0:
		parts = append(parts, fmt.Sprintf("inverted softmax beta=%g alpha=%g k=%d over a %d-vector bank", c.Beta, c.Alpha, c.K, c.bank.GetCardinality()))
	case c.Alpha > 0:
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
	if !(c.Alpha >= 0 && c.Alpha <= MaxAlpha) || c.K < 0 || !(c.Beta >= 0 && c.Beta <= MaxBeta) {
		return fmt.Errorf("alpha %g, beta %g or k %d out of range", c.Alpha, c.Beta, c.K)
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
		// A penalty is subtracted from a score in float32: it must stay
		// far from overflowing (scores are at most 1e15 in size).
		if p := float64(c.Alpha) * float64(h); math.Abs(p) > maxPenalty {
			return fmt.Errorf("hubness: %w: alpha %g x hubness %g is beyond %g", ErrInvalidVector, c.Alpha, h, maxPenalty)
		}
	}
	if err := modality.CheckFinite([]float32{c.MeanHub}); err != nil {
		return fmt.Errorf("mean hubness: %w", err)
	}
	if math.Abs(c.Alpha*float64(c.MeanHub)) > maxPenalty {
		return fmt.Errorf("mean hubness: %w: alpha %g x %g is beyond %g", ErrInvalidVector, c.Alpha, c.MeanHub, maxPenalty)
	}
	return nil
}

// maxPenalty bounds a hubness penalty (alpha x hubness).
const maxPenalty = 1e30

// calibration decodes a stored record.
func calibrationOf(r storage.CalibrationRecord) (*Calibration, error) {
	c := &Calibration{Probe: r.Probe, Target: r.Target, Centre: r.Centre, Alpha: r.Alpha, K: r.K, Beta: r.Beta, MeanHub: r.MeanHub, bank: roaring.New()}
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

// clone copies c for a caller, who may change it without touching the
// calibration searches use.
func (c *Calibration) clone() *Calibration {
	d := *c
	d.Centre = slices.Clone(c.Centre)
	d.bank = c.bank.Clone()
	d.hub = maps.Clone(c.hub)
	d.Measured = slices.Clone(c.Measured)
	return &d
}

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

// via is the alignment c was measured through (nil on the direct route):
// if another replaced it meanwhile, c no longer describes the route and is
// not stored (ErrChanged).
func (db *DB) storeCalibration(c *Calibration, remove bool, via *Alignment) error {
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
	if !remove && db.st.Load().aligns[[2]string{c.Probe, c.Target}] != via {
		return fmt.Errorf("mmdb: calibrate: %w: the %s->%s alignment was replaced while calibrating; calibrate again", ErrChanged, c.Probe, c.Target)
	}
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
		p, ok1 := s.byName[c.Probe]
		t, ok2 := s.byName[c.Target]
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: calibration %s->%s names an unknown modality", ErrCorrupt, c.Probe, c.Target)
		}
		if err := refuseMulti("a calibration", s.schema[p], s.schema[t]); err != nil {
			return fmt.Errorf("%w: calibration %s->%s: %v", ErrCorrupt, c.Probe, c.Target, err)
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

// dropCalibration removes the corrections stored for searches from probe
// to target, reporting whether there were any (DROP CALIBRATION; Calibrate
// with no options does the same).
func (db *DB) dropCalibration(probe, target string) (bool, error) {
	s, err := db.state()
	if err != nil {
		return false, err
	}
	pm, _, err := s.modality(probe)
	if err != nil {
		return false, fmt.Errorf("mmdb: drop calibration: %w", err)
	}
	tm, _, err := s.modality(target)
	if err != nil {
		return false, fmt.Errorf("mmdb: drop calibration: %w", err)
	}
	had := s.calibs[[2]string{pm.Name, tm.Name}] != nil
	if !had {
		return false, nil
	}
	return true, db.storeCalibration(&Calibration{Probe: pm.Name, Target: tm.Name}, true, nil)
}
