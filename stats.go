package mmdb

import (
	"os"
	"slices"

	"github.com/mmdb-go/mmdb/internal/storage"
)

// Stats describe a database: what the shell's .stats and `mmdb stats`
// print.
type Stats struct {
	// Path and FileSize are the database file and its size in bytes.
	Path     string `json:"path"`
	FileSize int64  `json:"file_size"`
	// Items is the number of live items.
	Items int `json:"items"`
	// Modalities has one entry per modality, in definition order.
	Modalities []ModalityStats `json:"modalities"`
	// Attributes are the attribute names in use, sorted.
	Attributes []string `json:"attributes"`
	// Alignments are the stored projections: from, to and method.
	Alignments [][3]string `json:"alignments"`
	// Calibrations are the probe -> target pairs with corrections.
	Calibrations [][2]string `json:"calibrations"`
}

// ModalityStats is one modality's schema and how many items carry it.
type ModalityStats struct {
	Modality
	// Vectors is the number of items with a vector of the modality (with
	// a set, for a multi-vector modality).
	Vectors int `json:"vectors"`
	// IndexMemory is about how many bytes the modality's index holds in
	// memory (its arrays as allocated, maps estimated), and
	// VectorsInMemory whether that includes the float32 vectors: false
	// under Options.LowMemory, where searches read them from the file.
	IndexMemory     int64 `json:"index_memory"`
	VectorsInMemory bool  `json:"vectors_in_memory"`
}

// indexMemory is what an index reports of its memory.
type indexMemory interface {
	MemoryBytes() int64
	VectorsInMemory() bool
}

// Stats reports the schema, counts and stored alignments.
func (db *DB) Stats() (Stats, error) {
	s, err := db.state()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Path: db.store.Path(), Items: db.items.Size(), Attributes: []string{}, Alignments: [][3]string{}, Calibrations: [][2]string{}}
	for i, m := range s.schema {
		ms := ModalityStats{Modality: m, Vectors: db.items.WithCount(i)}
		if im, ok := s.indexes[i].(indexMemory); ok {
			ms.IndexMemory, ms.VectorsInMemory = im.MemoryBytes(), im.VectorsInMemory()
		}
		st.Modalities = append(st.Modalities, ms)
	}
	for k, a := range s.aligns {
		st.Alignments = append(st.Alignments, [3]string{k[0], k[1], a.Method})
	}
	for k := range s.calibs {
		st.Calibrations = append(st.Calibrations, k)
	}
	slices.SortFunc(st.Alignments, func(a, b [3]string) int { return compareStrings(a[:2], b[:2]) })
	slices.SortFunc(st.Calibrations, func(a, b [2]string) int { return compareStrings(a[:], b[:]) })
	if err := db.store.View(func(tx *storage.Tx) error {
		st.Attributes = append(st.Attributes, tx.Attributes()...)
		return nil
	}); err != nil {
		return st, err
	}
	if fi, err := os.Stat(st.Path); err == nil {
		st.FileSize = fi.Size()
	}
	return st, nil
}

func compareStrings(a, b []string) int { return slices.Compare(a, b) }
