package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/modality"
)

// schemaEntry is one modality in a schema file.
type schemaEntry struct {
	Name   string `json:"name"`
	Dim    int    `json:"dim"`
	Metric string `json:"metric"`
	Space  string `json:"space,omitempty"`
	// Encoder is how the modality's vectors are made, with its fitted
	// standardisation: an import into another database can then probe
	// with files and text, and its vectors compare with the exported ones.
	Encoder *encoder.Spec `json:"encoder,omitempty"`
	// Multi is "maxsim" or "maxpair" for a multi-vector modality.
	Multi modality.Multi `json:"multi,omitempty"`
}

// WriteSchemaFile writes db's modalities as JSON to path, beside an
// export, so that an import can define them.
func WriteSchemaFile(db *mmdb.DB, path string) error {
	var b strings.Builder
	if err := WriteSchema(db, &b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// WriteSchema writes db's modalities as the JSON of a schema file.
func WriteSchema(db *mmdb.DB, w io.Writer) error {
	var s []schemaEntry
	for _, m := range db.Modalities() {
		s = append(s, schemaEntry{Name: m.Name, Dim: m.Dim, Metric: m.Metric.String(), Space: m.Space, Encoder: m.Encoder, Multi: m.Multi})
	}
	data, err := json.MarshalIndent(map[string]any{"modalities": s}, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// ApplySchemaFile defines the modalities listed in the schema file at path
// that db does not have yet; a missing file is not an error. A modality
// that exists with another dimension, metric or space is.
func ApplySchemaFile(db *mmdb.DB, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s struct {
		Modalities []schemaEntry `json:"modalities"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	have := map[string]mmdb.Modality{}
	for _, m := range db.Modalities() {
		have[m.Name] = m
	}
	for _, e := range s.Modalities {
		metric, err := modality.ParseMetric(e.Metric)
		if err != nil {
			return fmt.Errorf("%w: %s: modality %s: %v", ErrBadRecord, path, e.Name, err)
		}
		m := mmdb.Modality{Name: e.Name, Dim: e.Dim, Metric: metric, Space: e.Space, Encoder: e.Encoder, Multi: e.Multi}
		if old, ok := have[e.Name]; ok {
			if old.Dim != m.Dim || old.Metric != m.Metric || old.SpaceName() != m.SpaceName() || old.Multi != m.Multi {
				return fmt.Errorf("%w: %s: modality %s is %d-d %v %v in space %q here, %d-d %v %v in space %q in the file",
					ErrBadRecord, path, e.Name, old.Dim, old.Metric, old.Multi, old.SpaceName(), m.Dim, m.Metric, m.Multi, m.SpaceName())
			}
			if err := sameStandardisation(old, m); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
			}
			continue
		}
		if err := db.DefineModality(m); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// sameStandardisation refuses vectors made by another encoder or
// standardisation than the stored modality's, or by no known encoder for
// a modality whose vectors its encoder makes: they would not compare.
func sameStandardisation(here, file mmdb.Modality) error {
	a, b := here.Encoder, file.Encoder
	switch {
	case a == nil:
		return nil
	case b == nil:
		return fmt.Errorf("modality %s is made by %s here, and the file does not say how its vectors were made: they may not compare (import them into a modality without an encoder)", here.Name, a)
	case !a.SameEncoder(b):
		return fmt.Errorf("modality %s is made by %s here and by %s in the file: the vectors would not compare", here.Name, a, b)
	case a.Scaler == nil && b.Scaler == nil:
		return nil
	case a.Scaler == nil || b.Scaler == nil || !slices.Equal(a.Scaler.Mean, b.Scaler.Mean) || !slices.Equal(a.Scaler.Std, b.Scaler.Std):
		return fmt.Errorf("modality %s is standardised differently here and in the file (fitted on other imports): the vectors would not compare", here.Name)
	}
	return nil
}
