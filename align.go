package mmdb

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Alignment is a linear map from one modality's space into another's:
// y = W x + Bias, then normalised when the target is Cosine. The planner
// uses a stored alignment from a probe's modality to the target (the
// aligned route) before it falls back to pivoting.
type Alignment struct {
	// From and To name the modalities.
	From string
	To   string
	// W has one row per To dimension, each with one weight per From
	// dimension.
	W [][]float32
	// Bias has To's dimension, or is empty.
	Bias []float32
	// Method says how the map was made ("ridge", "procrustes", ...).
	Method string
	// Report is what Align measured when it learned the map: every
	// method's cross-fitted figures beside searching without a map. Nil
	// for maps given to SetAlignment.
	Report *align.Report
	// Label is the attribute Align scored and fitted by (AlignOptions.
	// Label), "" for none; Evaluate refits by it when it cross-fits.
	Label string

	// fitted holds the items Align fitted the map on: Evaluate keeps them
	// out of its queries (their figures would be training figures). Nil
	// for maps given to SetAlignment, which says nothing of how they were
	// made.
	fitted *roaring.Bitmap
}

// Fitted is the number of items Align fitted the map on (0 for a map
// given to SetAlignment).
func (a *Alignment) Fitted() int {
	if a.fitted == nil {
		return 0
	}
	return int(a.fitted.GetCardinality())
}

// record is a as the file stores it.
func (a *Alignment) record() (*storage.AlignmentRecord, error) {
	r := &storage.AlignmentRecord{From: a.From, To: a.To, W: a.W, Bias: a.Bias, Method: a.Method, Report: a.Report, Label: a.Label}
	if a.fitted != nil {
		var err error
		if r.Fitted, err = a.fitted.ToBytes(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// alignmentOf decodes a stored record.
func alignmentOf(r storage.AlignmentRecord) (*Alignment, error) {
	a := &Alignment{From: r.From, To: r.To, W: r.W, Bias: r.Bias, Method: r.Method, Report: r.Report, Label: r.Label}
	if len(r.Fitted) > 0 {
		var err error
		if a.fitted, err = storage.DecodeBitmap(r.Fitted); err != nil {
			return nil, fmt.Errorf("alignment %s->%s: fitted items: %w", r.From, r.To, err)
		}
	}
	return a, nil
}

// carry brings probe vector x into the target modality tm's space as
// every query path does: through a (projected, then prepared: normalised
// under Cosine, checked finite and bounded), or as it is when a is nil
// (the direct route).
func (a *Alignment) carry(tm Modality, x []float32) ([]float32, error) {
	if a == nil {
		return x, nil
	}
	return tm.Prepare(a.project(x))
}

// project maps x through the alignment.
func (a *Alignment) project(x []float32) []float32 {
	y := make([]float32, len(a.W))
	for i, row := range a.W {
		y[i] = kernel.DotProduct(row, x)
		if len(a.Bias) > 0 {
			y[i] += a.Bias[i]
		}
	}
	return y
}

func (a *Alignment) validate(from, to Modality) error {
	if a.From == a.To {
		return fmt.Errorf("%w: alignment from %s to itself", ErrInvalidQuery, a.From)
	}
	if len(a.W) != to.Dim {
		return fmt.Errorf("%w: alignment %s->%s has %d rows, %s has dimension %d", ErrInvalidQuery, a.From, a.To, len(a.W), to.Name, to.Dim)
	}
	for i, row := range a.W {
		if len(row) != from.Dim {
			return fmt.Errorf("%w: alignment %s->%s row %d has %d weights, %s has dimension %d", ErrInvalidQuery, a.From, a.To, i, len(row), from.Name, from.Dim)
		}
		if err := modality.CheckQuery(row); err != nil {
			return fmt.Errorf("%w: alignment %s->%s row %d: %w", ErrInvalidQuery, a.From, a.To, i, err)
		}
	}
	if len(a.Bias) != 0 && len(a.Bias) != to.Dim {
		return fmt.Errorf("%w: alignment %s->%s bias has %d values, want %d", ErrInvalidQuery, a.From, a.To, len(a.Bias), to.Dim)
	}
	if err := modality.CheckQuery(a.Bias); err != nil {
		return fmt.Errorf("%w: alignment %s->%s bias: %w", ErrInvalidQuery, a.From, a.To, err)
	}
	return nil
}

// DropAlignment removes the stored projection from one modality to
// another (searches between them take the direct or pivot route again),
// with the calibration measured through it; it reports whether there was
// one.
func (db *DB) DropAlignment(from, to string) (bool, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	s, err := db.state()
	if err != nil {
		return false, err
	}
	for _, name := range []string{from, to} {
		if _, _, err := s.modality(name); err != nil {
			return false, fmt.Errorf("mmdb: drop alignment: %w", err)
		}
	}
	k := [2]string{from, to}
	if s.aligns[k] == nil {
		return false, nil
	}
	if err := db.store.Update(func(tx *storage.Tx) error {
		if err := tx.DeleteAlignment(from, to); err != nil {
			return err
		}
		return tx.PutCalibration(from, to, nil)
	}); err != nil {
		return false, fmt.Errorf("mmdb: drop alignment: %w", err)
	}
	db.update(func(s *state) {
		delete(s.aligns, k)
		delete(s.calibs, k)
	})
	return true, nil
}

// SetAlignment stores a projection from a.From to a.To, replacing any
// earlier one; searches from a.From to a.To use it at once (the aligned
// route, which takes precedence over the direct one). A calibration made
// for searches from a.From to a.To is dropped (it was measured through the
// old route); Options.Logger is told, and Align's report says so.
func (db *DB) SetAlignment(a Alignment) error {
	_, err := db.setAlignment(a)
	return err
}

// setAlignment is SetAlignment, reporting whether a calibration was
// dropped.
func (db *DB) setAlignment(a Alignment) (dropped bool, err error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	s, err := db.state()
	if err != nil {
		return false, err
	}
	from, _, err1 := s.modality(a.From)
	to, _, err2 := s.modality(a.To)
	_, hadCalib := s.calibs[[2]string{a.From, a.To}]
	if err1 != nil {
		return false, fmt.Errorf("mmdb: alignment: %w", err1)
	}
	if err2 != nil {
		return false, fmt.Errorf("mmdb: alignment: %w", err2)
	}
	if err := refuseMulti("an alignment", from, to); err != nil {
		return false, fmt.Errorf("mmdb: alignment: %w", err)
	}
	if err := a.validate(from, to); err != nil {
		return false, fmt.Errorf("mmdb: %w", err)
	}
	// Keep a copy: the caller may reuse its slices.
	a.W = slices.Clone(a.W)
	for i := range a.W {
		a.W[i] = slices.Clone(a.W[i])
	}
	a.Bias = slices.Clone(a.Bias)
	rec, err := a.record()
	if err != nil {
		return false, err
	}
	// A calibration made through the old route (its centre and hubness
	// are in that route's output) would be wrong for the new map: drop it.
	if err := db.store.Update(func(tx *storage.Tx) error {
		if err := tx.PutAlignment(rec); err != nil {
			return err
		}
		return tx.PutCalibration(a.From, a.To, nil)
	}); err != nil {
		return false, fmt.Errorf("mmdb: alignment: %w", err)
	}
	db.update(func(s *state) {
		s.aligns[[2]string{a.From, a.To}] = &a
		delete(s.calibs, [2]string{a.From, a.To})
	})
	if hadCalib && db.opts.Logger != nil {
		db.opts.Logger.Warn("mmdb: calibration dropped: a new alignment replaces the route it was measured on", "from", a.From, "to", a.To)
	}
	return hadCalib, nil
}

// loadAlignments reads the stored projections at Open.
func loadAlignments(tx *storage.Tx, s *state) error {
	return tx.ForEachAlignment(func(rec storage.AlignmentRecord) error {
		a, err := alignmentOf(rec)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		from, ok1 := s.byName[a.From]
		to, ok2 := s.byName[a.To]
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: alignment %s->%s names an unknown modality", ErrCorrupt, a.From, a.To)
		}
		if err := a.validate(s.schema[from], s.schema[to]); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		s.aligns[[2]string{a.From, a.To}] = a
		return nil
	})
}

// AlignOptions tune Align; nil means the defaults.
type AlignOptions struct {
	// Method is the learner; "" means align.Auto.
	Method align.Method
	// Force learns a map between modalities that share a space (refused
	// otherwise with ErrSharedSpace: searches between them take the
	// direct route, which a map would replace).
	Force bool
	// Label names an attribute whose value is each item's class, for
	// items paired by class rather than one to one (a spoken digit with a
	// written one): a target of the query's class counts as a hit when
	// methods are scored and chosen, and InfoNCE does not treat the
	// query's classmates as negatives. Items without it are an error.
	Label string
	// StoreAny stores the best method's map even when it does not beat
	// searching without one (refused otherwise with ErrNoGain). FORCE in
	// an ALIGN statement and --force in mmdb align set both.
	StoreAny bool
}

// ErrNoGain: what Align or Calibrate measured does not beat doing without
// by more than the fold-to-fold spread: no method beats searching without
// a map (the direct route between modalities of one space, else the
// pivot), or ranks above chance; no correction beats none. Nothing is
// stored; the report (Align) or Calibration.Measured says what each
// scored.
var ErrNoGain = errors.New("no measured gain")

// ErrSharedSpace: Align was asked for a map between two modalities of one
// embedding space, which search compares directly.
var ErrSharedSpace = errors.New("modalities share a space")

// Align learns a projection from modality from to modality to, from the
// items that carry both, stores it (replacing any earlier one) with the
// items it was fitted on, and returns what it measured. Searches from from
// to to then take the aligned route.
//
// Method align.Auto (or "") cross-fits every learner in 5 folds of the
// items: each item is scored by a map fitted without it, against every
// item's to vector (R@1/5/10, MRR, beside the chance level). Beside them
// it scores what searches do without a map: the direct route between
// modalities of one space, else the pivot. The learner with the best MRR
// is fitted again on all the items and stored only when it beats that by
// more than the fold-to-fold spread of the gain; otherwise nothing is
// stored and the error wraps ErrNoGain, with the report. Any other method
// is scored and judged the same way, alone. opts.StoreAny stores the best
// anyway.
//
// Modalities that share a space are refused with ErrSharedSpace unless
// opts.Force is set. Storing the map drops a calibration made for searches
// from from to to; the report's Notes say so.
//
// Align reads the vectors without a lock and fits without one, so
// searches and writes go on; items written meanwhile are not used.
func (db *DB) Align(ctx context.Context, from, to string, opts *AlignOptions) (_ *align.Report, err error) {
	defer db.readBackCheck(db.readBack.Load(), &err)
	if opts == nil {
		opts = &AlignOptions{}
	}
	ctx, done := db.measuring(ctx)
	defer done()
	method := opts.Method
	if method == "" {
		method = align.Auto
	}
	if _, err := align.ParseMethod(string(method)); err != nil {
		return nil, fmt.Errorf("mmdb: align: %w: %w", ErrInvalidQuery, err)
	}
	pairs, ids, fm, tm, err := db.alignPairs(from, to, opts.Force)
	if err == nil && opts.Label != "" {
		pairs, ids, err = db.labelPairs(pairs, ids, opts.Label)
	}
	if err != nil {
		return nil, fmt.Errorf("mmdb: align %s->%s: %w", from, to, err)
	}
	o := align.Options{Metric: tm.Metric, SourceMetric: fm.Metric, Seed: 1, Reference: align.Pivot, Force: opts.StoreAny}
	if directRoute(fm, tm) == nil {
		o.Reference = align.Baseline
	}
	if db.opts.Progress != nil {
		o.Progress = func(done, total int) { db.opts.Progress("align "+from+"->"+to+" (methods)", done, total) }
	}
	var only []align.Method
	if method != align.Auto {
		only = []align.Method{method}
	}
	proj, rep, err := align.FitAuto(ctx, pairs, o, only...)
	err = db.closedErr(err)
	if err != nil {
		if errors.Is(err, align.ErrNoGain) {
			err = fmt.Errorf("%w: %s (FORCE in ALIGN, --force in mmdb align, stores the best anyway)", ErrNoGain, rep.Why)
		}
		return rep, fmt.Errorf("mmdb: align %s->%s: nothing stored: %w", from, to, err)
	}
	w, bias := proj.Float32()
	a := Alignment{From: from, To: to, W: w, Bias: bias, Method: string(proj.Method), Report: rep, Label: opts.Label, fitted: roaring.BitmapOf(ids...)}
	dropped, err := db.setAlignment(a)
	if err != nil {
		return rep, err
	}
	if dropped {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the %s->%s calibration was dropped: it was measured on the route this map replaces (calibrate again)", from, to))
	}
	return rep, nil
}

// alignPairs copies the vectors of the items that carry both modalities,
// and lists the items.
func (db *DB) alignPairs(from, to string, force bool) (p align.Pairs, ids []uint32, fm, tm Modality, err error) {
	pr, err := db.pair(from, to)
	if err != nil {
		return p, nil, fm, tm, err
	}
	s, fidx, tidx := pr.s, pr.pidx, pr.tidx
	fm, tm = pr.pm, pr.tm
	if err := refuseMulti("ALIGN", fm, tm); err != nil {
		return p, nil, fm, tm, err
	}
	if fm.Name == tm.Name {
		return p, nil, fm, tm, fmt.Errorf("%w: cannot align %s with itself", ErrInvalidQuery, fm.Name)
	}
	if directRoute(fm, tm) == nil && !force {
		return p, nil, fm, tm, fmt.Errorf("%w: %s and %s are both in space %q, so searches between them take the direct route; a map would replace it (force to learn one anyway: FORCE in ALIGN, --force in mmdb align)", ErrSharedSpace, fm.Name, tm.Name, tm.SpaceName())
	}
	both := db.items.WithBoth(s.byName[fm.Name], s.byName[tm.Name])
	it := both.Iterator()
	for it.HasNext() {
		id := it.Next()
		x, ok1 := fidx.Vector(id)
		y, ok2 := tidx.Vector(id)
		if !ok1 || !ok2 {
			continue
		}
		p.X, p.Y = append(p.X, x), append(p.Y, y)
		ids = append(ids, id)
	}
	if p.Len() < align.MinPairs*4 {
		return p, ids, fm, tm, fmt.Errorf("%w: %d items carry both %s and %s; aligning needs at least %d", align.ErrTooFewPairs, p.Len(), fm.Name, tm.Name, align.MinPairs*4)
	}
	return p, ids, fm, tm, nil
}

// labelPairs gives the pairs their classes by attribute attr, dropping the
// pairs whose item left since their vectors were copied.
func (db *DB) labelPairs(p align.Pairs, ids []uint32, attr string) (align.Pairs, []uint32, error) {
	classes, err := db.labels(attr, ids, true)
	if err != nil {
		return p, ids, err
	}
	var out align.Pairs
	var kept []uint32
	for i, c := range classes {
		if c != gone {
			out.X, out.Y, out.Classes = append(out.X, p.X[i]), append(out.Y, p.Y[i]), append(out.Classes, c)
			kept = append(kept, ids[i])
		}
	}
	return out, kept, nil
}
