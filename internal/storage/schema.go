package storage

import (
	"fmt"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/modality"
)

// modalityRecord is a modality.Modality as the schema stores it.
type modalityRecord struct {
	Name    string          `msgpack:"name"`
	Dim     int             `msgpack:"dim"`
	Metric  modality.Metric `msgpack:"metric"`
	Space   string          `msgpack:"space"`
	Encoder *encoderRecord  `msgpack:"enc,omitempty"`
	Multi   modality.Multi  `msgpack:"multi,omitempty"`
}

// encoderRecord is an encoder.Spec as the schema stores it. Params are
// the built-in encoder's parameters in their declared order (MFCC: bands,
// coefficients, segments; image: size, orientations, cell, stride).
type encoderRecord struct {
	Kind       string    `msgpack:"kind"`
	Params     []int     `msgpack:"params,omitempty"`
	URL        string    `msgpack:"url,omitempty"`
	Model      string    `msgpack:"model,omitempty"`
	Input      string    `msgpack:"input,omitempty"`
	Dimensions int       `msgpack:"dims,omitempty"`
	KeyEnv     string    `msgpack:"keyenv,omitempty"`
	Mean       []float32 `msgpack:"mean,omitempty"`
	Std        []float32 `msgpack:"std,omitempty"`
}

func toRecord(m modality.Modality) modalityRecord {
	r := modalityRecord{Name: m.Name, Dim: m.Dim, Metric: m.Metric, Space: m.Space, Multi: m.Multi}
	s := m.Encoder
	if s == nil {
		return r
	}
	e := &encoderRecord{Kind: string(s.Kind)}
	if p := s.MFCC; p != nil {
		e.Params = []int{p.Bands, p.Coeffs, p.Segments}
	}
	if p := s.Image; p != nil {
		e.Params = []int{p.Size, p.Orientations, p.Cell, p.Stride}
		if p.Patches {
			e.Params = append(e.Params, 1) // a fifth parameter only when set: older files read as they did
		}
	}
	if p := s.Remote; p != nil {
		e.URL, e.Model, e.Input, e.Dimensions, e.KeyEnv = p.URL, p.Model, string(p.Input), p.Dimensions, p.KeyEnv
	}
	if s.Scaler != nil {
		e.Mean, e.Std = s.Scaler.Mean, s.Scaler.Std
	}
	r.Encoder = e
	return r
}

func fromRecord(r modalityRecord) (modality.Modality, error) {
	m := modality.Modality{Name: r.Name, Dim: r.Dim, Metric: r.Metric, Space: r.Space, Multi: r.Multi}
	e := r.Encoder
	if e == nil {
		return m, nil
	}
	s := &encoder.Spec{Kind: encoder.Kind(e.Kind)}
	remote := e.URL != "" || e.Model != "" || e.Input != "" || e.Dimensions != 0 || e.KeyEnv != ""
	params := map[encoder.Kind]int{encoder.KindMFCC: 3, encoder.KindImage: 4}[s.Kind]
	switch {
	case e.Params != nil && len(e.Params) != params && !(s.Kind == encoder.KindImage && len(e.Params) == 5 && e.Params[4] == 1):
		// (Patches is the image encoder's fifth parameter, stored when set.)
		return m, fmt.Errorf("modality %q: a %s encoder has %d parameters, the record %d", r.Name, e.Kind, params, len(e.Params))
	case remote != (s.Kind == encoder.KindOpenAI):
		return m, fmt.Errorf("modality %q: a %s encoder record with server fields %v", r.Name, e.Kind, remote)
	}
	p := e.Params
	switch {
	case s.Kind == encoder.KindMFCC && p != nil:
		s.MFCC = &encoder.MFCC{Bands: p[0], Coeffs: p[1], Segments: p[2]}
	case s.Kind == encoder.KindImage && p != nil:
		s.Image = &encoder.Image{Size: p[0], Orientations: p[1], Cell: p[2], Stride: p[3], Patches: len(p) == 5 && p[4] == 1}
	case remote:
		s.Remote = &encoder.Remote{URL: e.URL, Model: e.Model, Input: encoder.InputKind(e.Input), Dimensions: e.Dimensions, KeyEnv: e.KeyEnv}
	}
	if e.Mean != nil || e.Std != nil {
		s.Scaler = &encoder.Scaler{Mean: e.Mean, Std: e.Std}
	}
	m.Encoder = s
	return m, nil
}
