package align

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Errors returned for input a learner cannot fit.
var (
	// ErrTooFewPairs: fewer pairs than the method needs.
	ErrTooFewPairs = errors.New("align: too few pairs")
	// ErrBadInput: ragged rows, NaN or Inf values, or vectors with no
	// variance at all.
	ErrBadInput = errors.New("align: bad input")
)

// MinPairs is the fewest pairs any learner accepts: below it a held-out
// split and K-fold selection are meaningless.
const MinPairs = 10

// Pairs are the training data: X[i] (source space) and Y[i] (target
// space) belong to the same item.
type Pairs struct {
	X, Y [][]float32
	// Groups, when set, gives each pair a group (usually the item): splits
	// keep a group on one side, so no item is both trained on and scored.
	// Nil means every pair is its own group.
	Groups []int
	// Classes, when set, labels each pair: a target of the same class as
	// the query counts as relevant when scoring, and InfoNCE does not use
	// same-class pairs as negatives. Nil means only a pair's own Y is
	// relevant.
	Classes []int
}

// Len is the number of pairs.
func (p Pairs) Len() int { return len(p.X) }

// check validates p and returns the dimensions.
func (p Pairs) check(minPairs int) (d1, d2 int, err error) {
	n := len(p.X)
	if len(p.Y) != n {
		return 0, 0, fmt.Errorf("%w: %d source vectors but %d target vectors", ErrBadInput, n, len(p.Y))
	}
	if p.Groups != nil && len(p.Groups) != n {
		return 0, 0, fmt.Errorf("%w: %d groups for %d pairs", ErrBadInput, len(p.Groups), n)
	}
	if p.Classes != nil && len(p.Classes) != n {
		return 0, 0, fmt.Errorf("%w: %d classes for %d pairs", ErrBadInput, len(p.Classes), n)
	}
	if n < max(minPairs, MinPairs) {
		return 0, 0, fmt.Errorf("%w: %d pairs, need at least %d", ErrTooFewPairs, n, max(minPairs, MinPairs))
	}
	d1, d2 = len(p.X[0]), len(p.Y[0])
	if d1 == 0 || d2 == 0 {
		return 0, 0, fmt.Errorf("%w: empty vectors", ErrBadInput)
	}
	for side, rows := range [][][]float32{p.X, p.Y} {
		name, d := "source", d1
		if side == 1 {
			name, d = "target", d2
		}
		varies := false
		for i, r := range rows {
			if len(r) != d {
				return 0, 0, fmt.Errorf("%w: %s vector %d has %d values, the first has %d", ErrBadInput, name, i, len(r), d)
			}
			for j, v := range r {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return 0, 0, fmt.Errorf("%w: %s vector %d has %v at %d", ErrBadInput, name, i, v, j)
				}
			}
			if !varies && i > 0 && !slices.Equal(r, rows[0]) {
				varies = true
			}
		}
		if !varies {
			return 0, 0, fmt.Errorf("%w: every %s vector is the same; there is nothing to learn from", ErrBadInput, name)
		}
	}
	return d1, d2, nil
}

// groups counts the distinct groups.
func (p Pairs) groups() int {
	if p.Groups == nil {
		return len(p.X)
	}
	seen := map[int]bool{}
	for _, g := range p.Groups {
		seen[g] = true
	}
	return len(seen)
}

// relevantCounts gives, per query, how many of the pairs' targets are
// relevant to it: 1, or its class's size.
func (p Pairs) relevantCounts() []int {
	out := make([]int, len(p.X))
	size := map[int]int{}
	for _, c := range p.Classes {
		size[c]++
	}
	for i := range out {
		out[i] = 1
		if p.Classes != nil {
			out[i] = size[p.Classes[i]]
		}
	}
	return out
}

// subset returns the pairs at idx.
func (p Pairs) subset(idx []int) Pairs {
	s := Pairs{X: make([][]float32, len(idx)), Y: make([][]float32, len(idx))}
	if p.Groups != nil {
		s.Groups = make([]int, len(idx))
	}
	if p.Classes != nil {
		s.Classes = make([]int, len(idx))
	}
	for k, i := range idx {
		s.X[k], s.Y[k] = p.X[i], p.Y[i]
		if p.Groups != nil {
			s.Groups[k] = p.Groups[i]
		}
		if p.Classes != nil {
			s.Classes[k] = p.Classes[i]
		}
	}
	return s
}

// folds splits the pair indices into k parts by group, shuffled by seed.
func (p Pairs) folds(k int, seed uint64) [][]int {
	group := func(i int) int {
		if p.Groups == nil {
			return i
		}
		return p.Groups[i]
	}
	var keys []int
	members := map[int][]int{}
	for i := range p.X {
		g := group(i)
		if _, ok := members[g]; !ok {
			keys = append(keys, g)
		}
		members[g] = append(members[g], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6d6462))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	out := make([][]int, k)
	for j, g := range keys {
		out[j%k] = append(out[j%k], members[g]...)
	}
	for _, f := range out {
		slices.Sort(f)
	}
	return out
}

// split divides the pairs by group into a train part and a held-out part
// of about frac of the groups.
func (p Pairs) split(frac float64, seed uint64) (train, test []int) {
	k := max(2, int(math.Round(1/frac)))
	f := p.folds(k, seed)
	test = f[0]
	for _, part := range f[1:] {
		train = append(train, part...)
	}
	slices.Sort(train)
	return train, test
}

// dense copies rows into a float64 matrix.
func dense(rows [][]float32) *mat.Dense {
	n, d := len(rows), len(rows[0])
	data := make([]float64, n*d)
	for i, r := range rows {
		for j, v := range r {
			data[i*d+j] = float64(v)
		}
	}
	return mat.NewDense(n, d, data)
}

// centre subtracts the column means from m in place and returns them.
func centre(m *mat.Dense) []float64 {
	n, d := m.Dims()
	mean := make([]float64, d)
	for i := range n {
		for j, v := range m.RawRowView(i) {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		row := m.RawRowView(i)
		for j := range row {
			row[j] -= mean[j]
		}
	}
	return mean
}
