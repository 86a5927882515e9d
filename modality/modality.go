package modality

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/kernel"
)

// Metric is how two vectors of a modality are compared.
type Metric uint8

const (
	// Cosine compares directions: vectors are normalised on the way in and
	// compared by dot product. Score is the cosine similarity, distance is
	// 1 - cosine.
	Cosine Metric = iota + 1
	// Dot is the raw inner product: score is the dot product, distance is
	// its negation. Use it when the encoder's norms carry meaning.
	Dot
	// L2 is Euclidean distance. Score is the negated distance.
	L2
)

// String returns the metric's lower-case name.
func (m Metric) String() string {
	switch m {
	case Cosine:
		return "cosine"
	case Dot:
		return "dot"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("metric(%d)", uint8(m))
}

// ParseMetric is the inverse of Metric.String.
func ParseMetric(s string) (Metric, error) {
	switch s {
	case "cosine", "Cosine", "COSINE":
		return Cosine, nil
	case "dot", "Dot", "DOT", "ip":
		return Dot, nil
	case "l2", "L2", "euclidean":
		return L2, nil
	}
	return 0, fmt.Errorf("%w: unknown metric %q (want cosine, dot or l2)", ErrInvalidSchema, s)
}

// Valid reports whether m is one of the defined metrics.
func (m Metric) Valid() bool { return m >= Cosine && m <= L2 }

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is.
var (
	// ErrDimension: a vector's length differs from its modality's Dim.
	ErrDimension = errors.New("wrong dimension")
	// ErrInvalidVector: a vector holds NaN or Inf, or is zero under Cosine.
	ErrInvalidVector = errors.New("invalid vector")
	// ErrInvalidSchema: a Modality definition is malformed.
	ErrInvalidSchema = errors.New("invalid modality definition")
)

// MaxDim bounds a modality's dimension; larger vectors are almost always a
// mistake (a flattened image, a wrong axis) and would make records huge.
const MaxDim = 65536

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]{0,63}$`)

// Modality is the schema of one kind of embedding.
type Modality struct {
	// Name identifies the modality on items and in queries ("image").
	Name string `json:"name"`
	// Dim is the vector length every item's vector must have.
	Dim int `json:"dim"`
	// Metric is how vectors are compared.
	Metric Metric `json:"metric"`
	// Space names the embedding space ("clip-vit-b16"). Modalities that share
	// a Space are directly comparable. Empty means a space of its own,
	// named after the modality.
	Space string `json:"space"`
	// Encoder, if set, names how the modality's vectors are made from raw
	// content (a picture, a recording, a sentence), so that imports and
	// probes can give files or text; nil when callers give the vectors.
	Encoder *encoder.Spec `json:"encoder,omitempty"`
	// Multi, when not Single, makes the modality hold a set of 1 to MaxSet
	// Dim-long vectors an item, laid end to end in one []float32, scored
	// against a probe by late interaction (MaxSim or MaxPair). Its
	// encoder, if any, must give a set: MFCC (a vector a segment of time)
	// or Image with Patches (a vector a patch).
	Multi Multi `json:"multi,omitempty"`
}

// SpaceName returns the modality's Space, or its Name when Space is empty.
func (m Modality) SpaceName() string {
	if m.Space == "" {
		return m.Name
	}
	return m.Space
}

// WithDefaults fills what an encoder implies: a zero Dim is the
// encoder's, and a zero Metric is Cosine.
func (m Modality) WithDefaults() Modality {
	if m.Encoder != nil {
		if m.Dim == 0 && m.IsMulti() {
			m.Dim = m.Encoder.SetDim()
		}
		if m.Dim == 0 {
			m.Dim = m.Encoder.Dim()
		}
		if m.Metric == 0 {
			m.Metric = Cosine
		}
	}
	return m
}

// Validate checks the definition itself.
func (m Modality) Validate() error {
	if !nameRE.MatchString(m.Name) {
		return fmt.Errorf("%w: name %q must be 1-64 letters, digits, '_' or '-', starting with a letter or '_'", ErrInvalidSchema, m.Name)
	}
	if m.Dim <= 0 || m.Dim > MaxDim {
		return fmt.Errorf("%w: modality %q: dimension %d out of range 1..%d", ErrInvalidSchema, m.Name, m.Dim, MaxDim)
	}
	if !m.Metric.Valid() {
		return fmt.Errorf("%w: modality %q: metric must be Cosine, Dot or L2", ErrInvalidSchema, m.Name)
	}
	if !m.Multi.Valid() {
		return fmt.Errorf("%w: modality %q: multi must be Single, MaxSim or MaxPair", ErrInvalidSchema, m.Name)
	}
	if len(m.Space) > MaxSpaceLen || !utf8.ValidString(m.Space) || strings.IndexFunc(m.Space, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: modality %q: space must be at most %d bytes of printable UTF-8", ErrInvalidSchema, m.Name, MaxSpaceLen)
	}
	if m.Encoder != nil && m.IsMulti() {
		if d := m.Encoder.SetDim(); d != 0 && d != m.Dim {
			return fmt.Errorf("%w: modality %q: the %s encoder gives a set of %d-d vectors, not %d-d", ErrInvalidSchema, m.Name, m.Encoder.Kind, d, m.Dim)
		} else if d == 0 {
			return fmt.Errorf("%w: modality %q: a multi-vector modality's encoder must give a set of vectors (mfcc gives one a segment of time; image one a patch, with Image.Patches); the %s encoder, as given, gives one vector", ErrInvalidSchema, m.Name, m.Encoder.Kind)
		}
		if err := m.Encoder.Validate(m.Encoder.Dim()); err != nil {
			return fmt.Errorf("%w: modality %q: %v", ErrInvalidSchema, m.Name, err)
		}
		if n := m.Encoder.Dim(); m.Count(n) == 0 {
			return fmt.Errorf("%w: modality %q: the %s encoder's parameters give a set of %d vectors (%d values); a set holds 1 to %d vectors, at most %d values", ErrInvalidSchema, m.Name, m.Encoder.Kind, n/m.Dim, n, MaxSet, MaxSetValues)
		}
	} else if m.Encoder != nil {
		if err := m.Encoder.Validate(m.Dim); err != nil {
			return fmt.Errorf("%w: modality %q: %v", ErrInvalidSchema, m.Name, err)
		}
	}
	return nil
}

// MaxSpaceLen bounds a modality's Space name, in bytes.
const MaxSpaceLen = 256

// Compatible reports whether two modalities can be compared directly:
// same space, same dimension and same metric. (A set of vectors compares
// with single vectors of the same space, vector by vector.)
func (m Modality) Compatible(o Modality) bool {
	return m.SpaceName() == o.SpaceName() && m.Dim == o.Dim && m.Metric == o.Metric
}

// SameEncoder reports whether m and o make vectors the same way: both
// without an encoder, or the same encoder with the same parameters
// (fitted standardisations are not compared).
func (m Modality) SameEncoder(o Modality) bool { return m.Encoder.SameEncoder(o.Encoder) }

// MaxNorm bounds a stored or query vector's Euclidean length. Beyond it,
// squared distances and dot products between two vectors overflow
// float32 (|a|*|b| and (|a|+|b|)^2 must stay below ~3.4e38) and scores
// would come out Inf or NaN. Real embeddings are many orders of magnitude
// shorter.
const MaxNorm = 1e15

// Prepare validates v against the modality and returns the vector to store:
// a copy, normalised to unit length under Cosine. The input is not modified.
// Errors wrap ErrDimension or ErrInvalidVector and say what is wrong: NaN
// or Inf values, a zero vector under Cosine, or a length beyond MaxNorm.
// The normalisation runs in float64, so a vector of tiny (even subnormal)
// values normalises to a finite unit vector, and the result is checked.
// For a multi-vector modality v is the set's vectors laid end to end, and
// each is prepared so; an error names the vector.
func (m Modality) Prepare(v []float32) ([]float32, error) {
	n := m.Count(len(v))
	if n == 0 {
		return nil, m.lengthError(len(v))
	}
	out := make([]float32, len(v))
	for i := range n {
		lo, hi := i*m.Dim, (i+1)*m.Dim
		err := prepareInto(m.Metric, out[lo:hi], v[lo:hi])
		switch {
		case err != nil && n > 1:
			return nil, fmt.Errorf("vector %d of the set: %w", i, err)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}

// prepareInto is Prepare for one vector of the right length, written into
// out (as long as v).
func prepareInto(metric Metric, out, v []float32) error {
	if err := CheckFinite(v); err != nil {
		return err
	}
	copy(out, v)
	n := kernel.Norm64(out)
	switch {
	case metric == Cosine && n == 0:
		return fmt.Errorf("%w: zero vector cannot be compared by cosine", ErrInvalidVector)
	case metric != Cosine && n > MaxNorm:
		return fmt.Errorf("%w: length %.3g is beyond %g, where distances overflow float32", ErrInvalidVector, n, MaxNorm)
	}
	// A vector already of unit length (to float32 precision) is kept as it
	// is: normalising it again moves its last bits, so an exported
	// database would not import back bit for bit.
	if metric == Cosine && math.Abs(n-1) > 1e-6 {
		for i, x := range out {
			out[i] = float32(float64(x) / n)
		}
		if err := CheckFinite(out); err != nil {
			return fmt.Errorf("%w (after normalising)", err)
		}
		if n2 := kernel.Norm64(out); math.Abs(n2-1) > 1e-3 {
			return fmt.Errorf("%w: normalises to length %g, not 1 (values too small for float32)", ErrInvalidVector, n2)
		}
	}
	return nil
}

// CheckFinite returns an error wrapping ErrInvalidVector naming the first
// NaN or Inf value of v.
func CheckFinite(v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: value %d is %v", ErrInvalidVector, i, x)
		}
	}
	return nil
}

// CheckQuery validates a vector computed at query time (projected through
// an alignment, centred, averaged): finite and within MaxNorm. Errors wrap
// ErrInvalidVector.
func CheckQuery(v []float32) error {
	if err := CheckFinite(v); err != nil {
		return err
	}
	if n := kernel.Norm64(v); n > MaxNorm {
		return fmt.Errorf("%w: length %.3g is beyond %g, where distances overflow float32", ErrInvalidVector, n, MaxNorm)
	}
	return nil
}

// Distance returns the distance between a and b under m: 1 - dot for Cosine
// (both already unit length), -dot for Dot, and the squared Euclidean
// distance for L2. Smaller is closer. Indexes rank by this value.
func (m Metric) Distance(a, b []float32) float32 {
	switch m {
	case L2:
		return kernel.L2Sq(a, b)
	case Dot:
		return -kernel.DotProduct(a, b)
	default:
		return 1 - kernel.DotProduct(a, b)
	}
}

// Score converts an index distance into what users see: the score (higher
// is better: cosine similarity, dot product, or negated Euclidean distance)
// and the reported distance (1 - cosine, -dot, or Euclidean distance).
func (m Metric) Score(dist float32) (score, distance float32) {
	switch m {
	case L2:
		d := float32(math.Sqrt(float64(max(dist, 0))))
		return 0 - d, d // not -d: an exact match scores 0, not -0
	case Dot:
		return -dist, dist
	default:
		return 1 - dist, dist
	}
}

// MarshalJSON writes the metric's name ("cosine"), for reports and
// schema files.
func (m Metric) MarshalJSON() ([]byte, error) { return []byte(`"` + m.String() + `"`), nil }

// UnmarshalJSON reads a metric's name, or its number.
func (m *Metric) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		v, err := ParseMetric(s[1 : len(s)-1])
		if err != nil {
			return err
		}
		*m = v
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !Metric(n).Valid() {
		return fmt.Errorf("%w: metric %s", ErrInvalidSchema, s)
	}
	*m = Metric(n)
	return nil
}
