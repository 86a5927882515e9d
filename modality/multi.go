package modality

import (
	"fmt"
	"strconv"
)

// Multi says whether a modality holds one vector an item or a set of them,
// and for a set how a probe scores it (late interaction). The zero value
// is Single.
type Multi uint8

const (
	// Single is the default: one vector an item.
	Single Multi = iota
	// MaxSim holds a set of vectors an item (caption tokens, image
	// patches, audio segments) and scores it as ColBERT does: each probe
	// vector is matched with its closest vector of the set, and the
	// distances are averaged over the probe's vectors. Averaged rather
	// than summed, a score stays on its metric's scale (a cosine MaxSim is
	// in [-1, 1]) whatever the probe's size; ColBERT's sum is the score
	// times the number of probe vectors, and ranks the same.
	MaxSim
	// MaxPair holds a set of vectors an item and scores it by its single
	// closest pair with the probe's vectors: "any photo of the product
	// matches".
	MaxPair
)

// MaxSet is the most vectors one item may hold for a multi-vector
// modality: enough for a 16 x 16 patch grid or a 256-token passage.
const MaxSet = 256

// MaxSetValues bounds the values of one item's set (vectors times
// dimension): 4 MiB of float32 a record.
const MaxSetValues = 1 << 20

// String returns the aggregation's name: "single", "maxsim" or "maxpair".
func (a Multi) String() string {
	switch a {
	case Single:
		return "single"
	case MaxSim:
		return "maxsim"
	case MaxPair:
		return "maxpair"
	}
	return fmt.Sprintf("multi(%d)", uint8(a))
}

// ParseMulti is the inverse of Multi.String; "" is Single.
func ParseMulti(s string) (Multi, error) {
	switch s {
	case "", "single":
		return Single, nil
	case "maxsim", "max_sim", "MaxSim":
		return MaxSim, nil
	case "maxpair", "max_pair", "max", "MaxPair":
		return MaxPair, nil
	}
	return 0, fmt.Errorf("%w: unknown multi-vector scoring %q (want single, maxsim or maxpair)", ErrInvalidSchema, s)
}

// Valid reports whether a is one of the defined values.
func (a Multi) Valid() bool { return a <= MaxPair }

// MarshalJSON writes the name; Single is written too, though schema files
// omit it.
func (a Multi) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(a.String())), nil }

// UnmarshalJSON reads a name, or a number.
func (a *Multi) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		v, err := ParseMulti(s[1 : len(s)-1])
		if err != nil {
			return err
		}
		*a = v
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !Multi(n).Valid() {
		return fmt.Errorf("%w: multi %s", ErrInvalidSchema, s)
	}
	*a = Multi(n)
	return nil
}

// IsMulti reports whether the modality holds sets of vectors.
func (m Modality) IsMulti() bool { return m.Multi != Single }

// Count returns how many vectors a stored value of n float32s holds for
// the modality, or 0 when n is not a length the modality can have: Dim
// for a single-vector modality; a whole multiple of Dim, 1 to MaxSet
// vectors and at most MaxSetValues values, for a multi-vector one.
func (m Modality) Count(n int) int {
	if m.Dim <= 0 || n <= 0 || n%m.Dim != 0 {
		return 0
	}
	c := n / m.Dim
	if !m.IsMulti() {
		if c != 1 {
			return 0
		}
		return 1
	}
	if c > MaxSet || n > MaxSetValues {
		return 0
	}
	return c
}

// Split returns the vectors of a set laid end to end (as Get returns a
// multi-vector modality's value), sharing v's memory, or nil when v's
// length is not a whole number of the modality's vectors.
func (m Modality) Split(v []float32) [][]float32 {
	if m.Dim <= 0 || len(v) == 0 || len(v)%m.Dim != 0 {
		return nil
	}
	out := make([][]float32, len(v)/m.Dim)
	for i := range out {
		out[i] = v[i*m.Dim : (i+1)*m.Dim : (i+1)*m.Dim]
	}
	return out
}

// Join lays vectors end to end: the form Put takes for a multi-vector
// modality.
func Join(vecs ...[]float32) []float32 {
	n := 0
	for _, v := range vecs {
		n += len(v)
	}
	out := make([]float32, 0, n)
	for _, v := range vecs {
		out = append(out, v...)
	}
	return out
}

// CheckLen returns nil when n values can be a value of the modality (see
// Count), else an error wrapping ErrDimension that says why not.
func (m Modality) CheckLen(n int) error {
	if m.Count(n) > 0 {
		return nil
	}
	return m.lengthError(n)
}

// lengthError explains why n values are not a value of modality m.
func (m Modality) lengthError(n int) error {
	if !m.IsMulti() {
		return fmt.Errorf("%w: got %d values, modality %q wants %d", ErrDimension, n, m.Name, m.Dim)
	}
	switch {
	case n == 0 || n%m.Dim != 0:
		return fmt.Errorf("%w: got %d values, multi-vector modality %q wants a whole number of %d-d vectors laid end to end", ErrDimension, n, m.Name, m.Dim)
	case n/m.Dim > MaxSet:
		return fmt.Errorf("%w: got %d vectors, multi-vector modality %q holds at most %d an item", ErrDimension, n/m.Dim, m.Name, MaxSet)
	}
	return fmt.Errorf("%w: got %d values, multi-vector modality %q holds at most %d values an item", ErrDimension, n, m.Name, MaxSetValues)
}
