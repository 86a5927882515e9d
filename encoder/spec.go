package encoder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Kind names one way of making vectors from raw content.
type Kind string

// The encoders a Spec can name.
const (
	// KindMFCC is the built-in audio encoder (MFCC).
	KindMFCC Kind = "mfcc"
	// KindImage is the built-in picture encoder (Image).
	KindImage Kind = "image"
	// KindOpenAI is a server speaking OpenAI's /v1/embeddings API (OpenAI).
	KindOpenAI Kind = "openai"
)

// InputKind is what an encoder takes.
type InputKind string

// The kinds of input.
const (
	// InputText is a sentence or a passage.
	InputText InputKind = "text"
	// InputImage is a PNG or JPEG file.
	InputImage InputKind = "image"
	// InputAudio is a WAV file.
	InputAudio InputKind = "audio"
)

// ErrNotFitted: a Spec whose encoder needs a standardisation (Scaler)
// that has not been fitted yet.
var ErrNotFitted = errors.New("encoder: standardisation not fitted yet")

// Spec is how a modality's vectors are made, as a database schema keeps
// it: one of the built-in encoders with its parameters, or a remote
// embeddings server, and the standardisation fitted for it.
type Spec struct {
	// Kind names the encoder.
	Kind Kind `json:"kind"`
	// MFCC holds KindMFCC's parameters; nil for the defaults.
	MFCC *MFCC `json:"mfcc,omitempty"`
	// Image holds KindImage's parameters; nil for the defaults.
	Image *Image `json:"image,omitempty"`
	// Remote is KindOpenAI's server; required for that kind.
	Remote *Remote `json:"remote,omitempty"`
	// Scaler is the standardisation fitted on the first import, applied to
	// every later vector the built-in encoders make (Standardizes).
	Scaler *Scaler `json:"scaler,omitempty"`
}

// Remote names an OpenAI-compatible embeddings server and model.
type Remote struct {
	// URL is the server's root ("http://localhost:7997"); see OpenAI.BaseURL.
	URL string `json:"url"`
	// Model is the model name sent with each request.
	Model string `json:"model"`
	// Input is what the model embeds: InputText or InputImage.
	Input InputKind `json:"input"`
	// Dimensions, if set, asks the model for vectors of that length.
	Dimensions int `json:"dimensions,omitempty"`
	// KeyEnv, if set, names the environment variable that holds the API
	// key: keys are never stored in a database file.
	KeyEnv string `json:"key_env,omitempty"`
}

// Limits on the built-in encoders' parameters, so that a schema cannot
// ask for work or vectors without bound.
const (
	maxBands, maxSegments = 256, 256
	maxSize, maxOrient    = 256, 64
	maxDim                = 1 << 16
)

// Validate checks the spec on its own and, when dim is positive, that its
// encoder gives vectors of dim values.
func (s *Spec) Validate(dim int) error {
	switch s.Kind {
	case KindMFCC:
		if s.Image != nil || s.Remote != nil {
			return fmt.Errorf("%w: a %s encoder takes MFCC parameters only", ErrInput, s.Kind)
		}
		if m := s.MFCC; m != nil && (m.Bands < 0 || m.Bands > maxBands || m.Coeffs < 0 || m.Coeffs > maxBands || m.Segments < 0 || m.Segments > maxSegments) {
			return fmt.Errorf("%w: MFCC bands and coefficients must be 0..%d, segments 0..%d", ErrInput, maxBands, maxSegments)
		}
	case KindImage:
		if s.MFCC != nil || s.Remote != nil {
			return fmt.Errorf("%w: an %s encoder takes image parameters only", ErrInput, s.Kind)
		}
		if m := s.Image; m != nil && (m.Size < 0 || m.Size > maxSize || m.Orientations < 0 || m.Orientations > maxOrient || m.Cell < 0 || m.Stride < 0 || m.Stride > maxSize) {
			return fmt.Errorf("%w: image size and stride must be 0..%d, orientations 0..%d", ErrInput, maxSize, maxOrient)
		}
	case KindOpenAI:
		if s.MFCC != nil || s.Image != nil || s.Scaler != nil {
			return fmt.Errorf("%w: an %s encoder takes a server only (no parameters, no scaler)", ErrInput, s.Kind)
		}
		if err := s.Remote.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown encoder %q (want %s, %s or %s)", ErrInput, s.Kind, KindMFCC, KindImage, KindOpenAI)
	}
	if d := s.Dim(); d <= 0 && s.Kind != KindOpenAI {
		return fmt.Errorf("%w: the %s encoder's parameters give no values", ErrInput, s.Kind)
	} else if d > maxDim {
		return fmt.Errorf("%w: the %s encoder's parameters give %d values, more than %d", ErrInput, s.Kind, d, maxDim)
	} else if dim > 0 && d > 0 && d != dim {
		return fmt.Errorf("%w: the %s encoder gives %d values, not %d", ErrInput, s.Kind, d, dim)
	}
	if s.Scaler != nil {
		return s.Scaler.validate(dim)
	}
	return nil
}

func (r *Remote) validate() error {
	if r == nil {
		return fmt.Errorf("%w: an %s encoder needs a server (URL, model, input)", ErrInput, KindOpenAI)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: embeddings server URL %q is not an http(s) URL", ErrInput, r.URL)
	}
	if r.Model == "" {
		return fmt.Errorf("%w: an %s encoder needs a model name", ErrInput, KindOpenAI)
	}
	if r.Input != InputText && r.Input != InputImage {
		return fmt.Errorf("%w: a remote model's input is %q or %q, not %q", ErrInput, InputText, InputImage, r.Input)
	}
	if r.Dimensions < 0 {
		return fmt.Errorf("%w: dimensions %d is negative", ErrInput, r.Dimensions)
	}
	if r.KeyEnv != "" && !keyEnvRE.MatchString(r.KeyEnv) {
		return fmt.Errorf("%w: the API key's variable %q must be named MMDB_<NAME> (letters, digits, _): a database or schema file names it, and must not be able to send any other of the process's secrets to its server", ErrInput, r.KeyEnv)
	}
	return nil
}

// keyEnvRE is the form of Remote.KeyEnv.
var keyEnvRE = regexp.MustCompile(`^MMDB_[A-Z0-9_]{1,64}$`)

func (sc *Scaler) validate(dim int) error {
	if len(sc.Mean) != len(sc.Std) || (dim > 0 && len(sc.Mean) != dim) {
		return fmt.Errorf("%w: scaler has %d means and %d deviations for %d dimensions", ErrInput, len(sc.Mean), len(sc.Std), dim)
	}
	for j := range sc.Mean {
		m, d := float64(sc.Mean[j]), float64(sc.Std[j])
		// FitScaler's own floor and a bound far above any feature: outside
		// them a standardised value overflows or is noise.
		if !(math.Abs(m) <= maxMean) || !(d >= minStd && d <= maxMean) {
			return fmt.Errorf("%w: scaler dimension %d has mean %v and deviation %v (want |mean| <= %g, deviation in %g..%g)", ErrInput, j, m, d, maxMean, minStd, maxMean)
		}
	}
	return nil
}

// The bounds of a valid Scaler's values.
const minStd, maxMean = 1e-9, 1e12

// Dim is the dimension of the vectors the encoder gives, or 0 when only
// the server knows it.
func (s *Spec) Dim() int {
	switch s.Kind {
	case KindMFCC:
		return s.mfcc().Dim()
	case KindImage:
		return s.image().Dim()
	case KindOpenAI:
		if s.Remote != nil {
			return s.Remote.Dimensions
		}
	}
	return 0
}

// Input is what the encoder takes.
func (s *Spec) Input() InputKind {
	switch s.Kind {
	case KindMFCC:
		return InputAudio
	case KindImage:
		return InputImage
	case KindOpenAI:
		if s.Remote != nil {
			return s.Remote.Input
		}
	}
	return ""
}

// Standardizes reports whether the encoder's features are standardised by
// a fitted Scaler (the built-in ones are: their dimensions have very
// different scales).
func (s *Spec) Standardizes() bool { return s.Kind == KindMFCC || s.Kind == KindImage }

// SameEncoder reports whether s and o make the same raw vectors: the same
// kind with the same parameters (defaults filled in), or the same remote
// model, input and dimensions (wherever the server is). Scalers are not
// compared.
func (s *Spec) SameEncoder(o *Spec) bool {
	if s == nil || o == nil {
		return s == o
	}
	if s.Kind != o.Kind {
		return false
	}
	switch s.Kind {
	case KindMFCC:
		return s.mfcc() == o.mfcc()
	case KindImage:
		return s.image() == o.image()
	}
	a, b := s.Remote, o.Remote
	if a == nil || b == nil {
		return a == b
	}
	// The server's address and key may move; the model makes the vectors.
	return a.Model == b.Model && a.Input == b.Input && a.Dimensions == b.Dimensions
}

// String names the encoder and its parameters, as a schema listing shows
// them.
func (s *Spec) String() string {
	var out string
	switch s.Kind {
	case KindMFCC:
		m := s.mfcc()
		out = fmt.Sprintf("mfcc(bands=%d coeffs=%d segments=%d)", m.Bands, m.Coeffs, m.Segments)
	case KindImage:
		m := s.image()
		out = fmt.Sprintf("image(size=%d orientations=%d cell=%d stride=%d)", m.Size, m.Orientations, m.Cell, m.Stride)
		if m.Patches {
			out = strings.TrimSuffix(out, ")") + " patches)"
		}
	case KindOpenAI:
		if r := s.Remote; r != nil {
			out = fmt.Sprintf("openai(url=%s model=%s input=%s", r.URL, r.Model, r.Input)
			if r.KeyEnv != "" {
				out += " key=$" + r.KeyEnv
			}
			out += ")"
		}
	default:
		out = string(s.Kind)
	}
	switch {
	case s.Scaler != nil:
		out += " standardised"
	case s.Standardizes():
		out += " not fitted"
	}
	return out
}

func (s *Spec) mfcc() MFCC {
	if s.MFCC == nil {
		return MFCC{}.withDefaults()
	}
	return s.MFCC.withDefaults()
}

func (s *Spec) image() Image {
	if s.Image == nil {
		return Image{}.withDefaults()
	}
	return s.Image.withDefaults()
}

// Raw returns the encoder the spec names, without its standardisation:
// what FitScaler is fitted on.
func (s *Spec) Raw() (Encoder, error) {
	if err := s.Validate(0); err != nil {
		return nil, err
	}
	switch s.Kind {
	case KindMFCC:
		return s.mfcc(), nil
	case KindImage:
		return s.image(), nil
	}
	r := s.Remote
	c := &OpenAI{BaseURL: r.URL, Model: r.Model, Dimensions: r.Dimensions}
	if r.KeyEnv != "" {
		if c.APIKey = os.Getenv(r.KeyEnv); c.APIKey == "" {
			return nil, fmt.Errorf("%w: the API key's environment variable %s is not set", ErrInput, r.KeyEnv)
		}
	}
	return c, nil
}

// Encoder returns the encoder the spec names, standardised by its Scaler:
// the vectors a database stores. It fails with ErrNotFitted when the
// encoder standardises and no Scaler is fitted yet.
func (s *Spec) Encoder() (Encoder, error) {
	raw, err := s.Raw()
	if err != nil {
		return nil, err
	}
	if !s.Standardizes() {
		return raw, nil
	}
	if s.Scaler == nil {
		return nil, fmt.Errorf("%w: the %s encoder's standardisation is fitted by the first import of files", ErrNotFitted, s.Kind)
	}
	return scaled{raw, s.Scaler}, nil
}

// scaled is an encoder followed by a fitted standardisation.
type scaled struct {
	Encoder
	sc *Scaler
}

func (e scaled) Encode(ctx context.Context, in []Input) ([][]float32, error) {
	out, err := e.Encoder.Encode(ctx, in)
	if err != nil {
		return nil, err
	}
	for i, v := range out {
		if len(v) != len(e.sc.Mean) {
			return nil, fmt.Errorf("%w: input %d gave %d values, the scaler was fitted on %d", ErrInput, i, len(v), len(e.sc.Mean))
		}
		out[i] = e.sc.Apply(v)
	}
	return out, nil
}

// SetDim is the dimension of each vector when the encoder's output is
// taken as a set (a multi-vector modality), or 0 when it cannot be: the
// MFCC encoder's output is its Segments stretches of Coeffs-1
// coefficients laid end to end, a set of one vector a stretch of time.
//
// The image encoder's output is a set with Patches: one vector a cell.
func (s *Spec) SetDim() int {
	switch {
	case s.Kind == KindMFCC:
		m := s.mfcc()
		return m.Coeffs - 1
	case s.Kind == KindImage && s.image().Patches:
		return s.image().PatchDim()
	}
	return 0
}
