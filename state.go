package mmdb

import (
	"fmt"
	"maps"
	"strings"

	"github.com/mmdb-go/mmdb/hnsw"
)

// state is what reads need of the schema and what hangs off it: the
// modalities, their indexes, the alignments, calibrations and broken
// indexes. A published state never changes: a writer (holding writeMu)
// copies it, changes the copy and publishes that (update), and a reader
// takes the current one with one atomic load (DB.state), holding no lock.
// The indexes are safe for concurrent use; the items are in an
// itemset.Set, which has its own lock.
type state struct {
	closed  bool
	schema  []Modality
	byName  map[string]int // modality name -> index in schema and indexes
	indexes []hnsw.Index
	aligns  map[[2]string]*Alignment
	calibs  map[[2]string]*Calibration
	broken  map[string]error // modality -> why its index cannot serve
}

func newState() *state {
	return &state{byName: map[string]int{}, aligns: map[[2]string]*Alignment{}, calibs: map[[2]string]*Calibration{}, broken: map[string]error{}}
}

// clone copies s one level deep: enough for a writer to change any field
// of the copy without touching s.
func (s *state) clone() *state {
	c := *s
	c.schema = append([]Modality(nil), s.schema...)
	c.indexes = append([]hnsw.Index(nil), s.indexes...)
	c.byName = maps.Clone(s.byName)
	c.aligns = maps.Clone(s.aligns)
	c.calibs = maps.Clone(s.calibs)
	c.broken = maps.Clone(s.broken)
	return &c
}

// state returns the current state, or ErrClosed.
func (db *DB) state() (*state, error) {
	s := db.st.Load()
	if s.closed {
		return nil, ErrClosed
	}
	return s, nil
}

// update publishes a changed copy of the state; writeMu is held.
func (db *DB) update(change func(*state)) {
	s := db.st.Load().clone()
	change(s)
	db.st.Store(s)
}

// modality returns the named modality and its index.
func (s *state) modality(name string) (Modality, hnsw.Index, error) {
	i, ok := s.byName[name]
	if !ok {
		return Modality{}, nil, fmt.Errorf("%w %q (defined: %s)", ErrUnknownModality, name, s.namesList())
	}
	if err := s.broken[name]; err != nil {
		return Modality{}, nil, err
	}
	return s.schema[i], s.indexes[i], nil
}

// pair is a probe modality and a target modality, with their indexes, on
// one state.
type pair struct {
	s          *state
	pm, tm     Modality
	pidx, tidx hnsw.Index
}

// pair looks up the modalities probe and target on the current state.
func (db *DB) pair(probe, target string) (pair, error) {
	s, err := db.state()
	if err != nil {
		return pair{}, err
	}
	pm, pidx, err := s.modality(probe)
	if err != nil {
		return pair{}, err
	}
	tm, tidx, err := s.modality(target)
	if err != nil {
		return pair{}, err
	}
	return pair{s: s, pm: pm, tm: tm, pidx: pidx, tidx: tidx}, nil
}

// names lists the modality names in definition order.
func (s *state) names() []string {
	names := make([]string, len(s.schema))
	for i, m := range s.schema {
		names[i] = m.Name
	}
	return names
}

func (s *state) namesList() string {
	if len(s.schema) == 0 {
		return "none"
	}
	return strings.Join(s.names(), ", ")
}
