package mmdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/storage"
)

// MaxProbeText bounds a text probe, in bytes.
const MaxProbeText = 64 << 10

// Encode returns the vectors modality name's encoder makes of in, as Put
// stores them (standardised by the fitted Scaler, normalised under
// cosine). It fails with ErrNoEncoder when the modality has none, or its
// standardisation is not fitted yet.
func (db *DB) Encode(ctx context.Context, name string, in ...encoder.Input) ([][]float32, error) {
	s, err := db.state()
	if err != nil {
		return nil, err
	}
	m, _, err := s.modality(name)
	if err != nil {
		return nil, fmt.Errorf("mmdb: encode: %w", err)
	}
	enc, err := encoderOf(m)
	if err != nil {
		return nil, fmt.Errorf("mmdb: encode: %w", err)
	}
	for i, x := range in {
		if err := checkInput(m, x); err != nil {
			return nil, fmt.Errorf("mmdb: encode: input %d: %w", i, err)
		}
	}
	out, err := enc.Encode(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("mmdb: encode: modality %q: %w", m.Name, err)
	}
	for i, v := range out {
		if out[i], err = m.Prepare(v); err != nil {
			return nil, fmt.Errorf("mmdb: encode: modality %q, input %d: %w", m.Name, i, err)
		}
	}
	return out, nil
}

// encoderOf returns m's standardised encoder, or why there is none.
func encoderOf(m Modality) (encoder.Encoder, error) {
	if m.Encoder == nil {
		return nil, fmt.Errorf("%w: modality %q has no encoder (its vectors are given by callers): search with a vector or an item", ErrNoEncoder, m.Name)
	}
	enc, err := m.Encoder.Encoder()
	if errors.Is(err, encoder.ErrNotFitted) {
		return nil, fmt.Errorf("%w: modality %q: %w; import some first", ErrNoEncoder, m.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("modality %q: %w", m.Name, err)
	}
	return enc, nil
}

// checkInput refuses an input of the wrong kind for m's encoder.
func checkInput(m Modality, x encoder.Input) error {
	want := encoder.InputKind("")
	if m.Encoder != nil {
		want = m.Encoder.Input()
	}
	switch {
	case x.Text != "" && x.Data != nil:
		return fmt.Errorf("%w: an input is text or a file, not both", ErrInvalidQuery)
	case x.Text != "" && want != encoder.InputText:
		return fmt.Errorf("%w: modality %q encodes %s files, not text", ErrInvalidQuery, m.Name, want)
	case x.Text == "" && want == encoder.InputText:
		return fmt.Errorf("%w: modality %q encodes text, not files", ErrInvalidQuery, m.Name)
	case len(x.Text) > MaxProbeText:
		return fmt.Errorf("%w: modality %q: text of %d bytes is over %d", ErrInvalidQuery, m.Name, len(x.Text), MaxProbeText)
	case x.Text != "" && !utf8.ValidString(x.Text):
		return fmt.Errorf("%w: modality %q: text is not valid UTF-8", ErrInvalidQuery, m.Name)
	}
	return nil
}

// Query-time calls to a remote encoder fail sooner than imports: one
// retry, probeTimeout an attempt (a search should not wait minutes).
const probeTimeout = 10 * time.Second

// encodeProbe makes the vector of a probe given as a file, bytes or text;
// it reports the encoder and the time the encoding took. Within a
// statement or a search over several targets, each probe is encoded once
// (see withEncodeCache).
func (db *DB) encodeProbe(ctx context.Context, m Modality, p Probe) ([]float32, encoded, error) {
	start := time.Now()
	enc, err := encoderOf(m)
	if err != nil {
		return nil, encoded{}, fmt.Errorf("probe: %w", err)
	}
	if c, ok := enc.(*encoder.OpenAI); ok {
		c.Timeout, c.Retries = probeTimeout, 1
	}
	key := probeKey{m.Name, m.Encoder, p.File, p.Text, string(p.Data)}
	cache, _ := ctx.Value(encodeCacheKey{}).(*encodeCache)
	if v, e, ok := cache.get(key); ok {
		return v, e, nil
	}
	in := encoder.Input{Text: p.Text, Data: p.Data}
	what := "data"
	switch {
	case p.File != "" && db.opts.NoFileProbes:
		return nil, encoded{}, fmt.Errorf("%w: probe of modality %q names a file, and this database was opened with NoFileProbes: give its bytes", ErrInvalidQuery, m.Name)
	case p.File != "":
		what = "file " + strconv.Quote(p.File)
		data, err := encoder.ReadFile(p.File)
		if err != nil {
			return nil, encoded{}, fmt.Errorf("%w: probe of modality %q: %w", ErrInvalidQuery, m.Name, err)
		}
		in.Data = data
	case p.Text != "":
		what = "text"
	}
	if err := checkInput(m, in); err != nil {
		return nil, encoded{}, fmt.Errorf("probe (%s): %w", what, err)
	}
	out, err := enc.Encode(ctx, []encoder.Input{in})
	if err == nil {
		out[0], err = m.Prepare(out[0])
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, encoded{}, ctx.Err()
		}
		return nil, encoded{}, fmt.Errorf("%w: probe of modality %q (%s): %w", ErrInvalidQuery, m.Name, what, err)
	}
	e := encoded{how: m.Encoder.String(), took: time.Since(start), spec: m.Encoder}
	cache.put(key, out[0], e)
	return out[0], e, nil
}

// probeKey names one encoding: the modality, the encoder (its spec as
// stored: a refit makes another) and the content.
type probeKey struct {
	modality         string
	spec             *encoder.Spec
	file, text, data string
}

// encodeCache holds the probes one statement has encoded.
type encodeCache struct {
	mu   sync.Mutex
	vecs map[probeKey]cachedProbe
}

type cachedProbe struct {
	vec []float32
	e   encoded
}

type encodeCacheKey struct{}

// needsEncoding says whether any probe is raw content (a file, bytes or
// text) that an encoder turns into a vector.
func needsEncoding(probes []Probe) bool {
	for _, pr := range probes {
		if pr.File != "" || pr.Data != nil || pr.Text != "" {
			return true
		}
	}
	return false
}

// withEncodeCache returns ctx carrying a cache, unless it has one: the
// probes of one statement are encoded once however many plans it makes.
func withEncodeCache(ctx context.Context) context.Context {
	if ctx.Value(encodeCacheKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, encodeCacheKey{}, &encodeCache{vecs: map[probeKey]cachedProbe{}})
}

func (c *encodeCache) get(k probeKey) ([]float32, encoded, bool) {
	if c == nil {
		return nil, encoded{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vecs[k]
	return v.vec, v.e, ok
}

func (c *encodeCache) put(k probeKey, v []float32, e encoded) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vecs[k] = cachedProbe{v, e}
}

// stillEncoded fails with ErrChanged when a probe's modality got another
// encoder or standardisation (a refit) while the search ran: its vector
// was made the old way.
func (db *DB) stillEncoded(p *planned) error {
	s := db.st.Load()
	for _, pr := range p.plan.Probes {
		if pr.spec == nil {
			continue
		}
		if m, _, err := s.modality(pr.Modality); err != nil || m.Encoder != pr.spec {
			return fmt.Errorf("%w: modality %q's encoder changed while the search ran (a refit?): search again", ErrChanged, pr.Modality)
		}
	}
	return nil
}

// SetEncoder stores spec as how modality name's vectors are made (nil
// for none), with items, in one transaction: items are merged as Merge
// does. When the modality holds vectors and spec makes them another way
// than the stored one (another encoder, other parameters, another fitted
// standardisation), every item holding one must be among items, with a
// new vector of the modality: a database never keeps vectors made two
// ways, which would compare wrongly. Otherwise it fails with
// ErrModalityConflict naming an item left out.
//
// A change of vectors also drops the alignments and calibrations to or
// from the modality, fitted on the old vectors (Options.Logger is told):
// align and calibrate again.
//
// Imports use it to store the standardisation they fit, and a refit to
// store the new one with every re-encoded vector.
func (db *DB) SetEncoder(ctx context.Context, name string, spec *encoder.Spec, items ...Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	s, err := db.state()
	if err != nil {
		return err
	}
	old, _, err := s.modality(name)
	if err != nil {
		return fmt.Errorf("mmdb: set encoder: %w", err)
	}
	m := old
	m.Encoder = spec
	if err := m.Validate(); err != nil {
		return fmt.Errorf("mmdb: set encoder: %w", err)
	}
	if err := sharesSpaceWith(s, m); err != nil {
		return err
	}
	var stale [][2]string // maps and corrections measured on the old vectors
	if spec != nil && !sameSpec(old.Encoder, spec) {
		if err := db.covers(s, name, items); err != nil {
			return err
		}
		for k := range s.aligns {
			if k[0] == name || k[1] == name {
				stale = append(stale, k)
			}
		}
		for k := range s.calibs {
			if (k[0] == name || k[1] == name) && s.aligns[k] == nil {
				stale = append(stale, k)
			}
		}
	}
	next := s.clone()
	next.schema[next.byName[name]] = m
	err = db.writeLocked(ctx, "set encoder", next, items, writeMerge, func(tx *storage.Tx) error {
		for _, k := range stale {
			if err := tx.DeleteAlignment(k[0], k[1]); err != nil {
				return err
			}
			if err := tx.PutCalibration(k[0], k[1], nil); err != nil {
				return err
			}
		}
		return tx.ReplaceModality(m)
	})
	if err != nil {
		return err
	}
	db.update(func(s *state) {
		s.schema[s.byName[name]] = m
		for _, k := range stale {
			delete(s.aligns, k)
			delete(s.calibs, k)
		}
	})
	if db.opts.Logger != nil && len(stale) > 0 {
		db.opts.Logger.Warn("mmdb: set encoder: alignments and calibrations of the re-encoded modality were dropped (fitted on the old vectors): align again", "modality", name, "pairs", stale)
	}
	return nil
}

// MergeEncoded merges items (as Merge does) whose name vectors were made
// by spec, the modality's encoder when they were encoded: if the encoder
// or its standardisation has changed since (a refit ran meanwhile),
// nothing is stored and it fails with ErrChanged; encode them again.
// Imports store through it, so that no vector lands beside ones
// standardised another way.
func (db *DB) MergeEncoded(ctx context.Context, name string, spec *encoder.Spec, items ...Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	s, err := db.state()
	if err != nil {
		return err
	}
	m, _, err := s.modality(name)
	if err != nil {
		return fmt.Errorf("mmdb: merge: %w", err)
	}
	if spec == nil || !sameSpec(m.Encoder, spec) {
		return fmt.Errorf("mmdb: merge: %w: modality %q's encoder or standardisation changed since these vectors were encoded (a refit?): encode them again", ErrChanged, name)
	}
	return db.writeLocked(ctx, "merge", s, items, writeMerge, nil)
}

// sharesSpaceWith refuses a remote model for m that differs from the
// model of another modality in its space: their vectors would be compared
// directly, and vectors of two models do not compare.
func sharesSpaceWith(s *state, m Modality) error {
	if m.Encoder == nil || m.Encoder.Remote == nil {
		return nil
	}
	for _, o := range s.schema {
		if o.Name != m.Name && o.SpaceName() == m.SpaceName() && o.Encoder != nil && o.Encoder.Remote != nil && o.Encoder.Remote.Model != m.Encoder.Remote.Model {
			return fmt.Errorf("mmdb: %w: modality %q shares space %q with %q, made by model %q; %q would be made by %q, and vectors of two models are not comparable (give them other spaces)",
				ErrModalityConflict, m.Name, m.SpaceName(), o.Name, o.Encoder.Remote.Model, m.Name, m.Encoder.Remote.Model)
		}
	}
	return nil
}

// covers checks that items give a new name vector to every item that
// holds one.
func (db *DB) covers(s *state, name string, items []Item) error {
	given := make(map[string]bool, len(items))
	for _, it := range items {
		if it.Vectors[name] != nil {
			given[it.ID] = true
		}
	}
	held := db.items.With(s.byName[name])
	for _, id := range held.ToArray() {
		if ext := db.items.Name(id); !given[ext] {
			return fmt.Errorf("mmdb: set encoder: %w: modality %q: item %q holds a vector made by the stored encoder; a new encoder or standardisation must come with every vector re-encoded (%d held)",
				ErrModalityConflict, name, ext, held.GetCardinality())
		}
	}
	return nil
}

// sameSpec reports whether two specs make the same vectors: the same
// encoder and the same standardisation.
func sameSpec(a, b *encoder.Spec) bool {
	if !a.SameEncoder(b) {
		return false
	}
	if a == nil || a.Scaler == nil || b.Scaler == nil {
		return a == nil || a.Scaler == b.Scaler
	}
	return slices.Equal(a.Scaler.Mean, b.Scaler.Mean) && slices.Equal(a.Scaler.Std, b.Scaler.Std)
}
