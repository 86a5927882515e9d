// Package encoder turns raw media into vectors: MFCC features for WAV
// audio, pixel and gradient features for images, and a client for
// OpenAI-compatible /v1/embeddings servers. Each implements Encoder;
// implement it for your own models.
//
// The built-in feature extractors need no weights. Their vectors live in
// spaces of their own, so a database aligns them to other modalities (see
// package align) rather than comparing them directly.
package encoder

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// ErrInput: an input the encoder cannot read (not a WAV or image file, an
// unsupported sample format, too short, ...).
var ErrInput = errors.New("encoder: bad input")

// Input is one thing to encode: text, or the bytes of a media file.
type Input struct {
	// Text is the input of text encoders.
	Text string
	// Data is a media file as stored on disk (WAV, PNG, JPEG).
	Data []byte
	// MIME optionally names Data's type ("image/png"); encoders that need
	// it guess from the bytes when it is empty.
	MIME string
}

// Encoder embeds inputs, in order, as vectors of one fixed dimension.
type Encoder interface {
	// Dim is the vector dimension, or 0 while it is unknown (a remote
	// model, before its first answer).
	Dim() int
	// Encode returns one vector per input.
	Encode(ctx context.Context, in []Input) ([][]float32, error)
}

// Scaler standardises features: each dimension minus its mean, over its
// standard deviation, both measured on a training set. Feature extractors
// give dimensions of very different scales; without this, cosine and L2
// see only the largest.
type Scaler struct {
	Mean, Std []float32
}

// FitScaler measures the mean and standard deviation of each dimension.
// Constant dimensions get a deviation of 1, so they pass through centred.
func FitScaler(vecs [][]float32) (*Scaler, error) {
	if len(vecs) == 0 {
		return nil, fmt.Errorf("%w: no vectors to fit a scaler on", ErrInput)
	}
	d := len(vecs[0])
	mean := make([]float64, d)
	sq := make([]float64, d)
	for i, v := range vecs {
		if len(v) != d {
			return nil, fmt.Errorf("%w: vector %d has %d values, the first has %d", ErrInput, i, len(v), d)
		}
		for j, x := range v {
			mean[j] += float64(x)
		}
	}
	n := float64(len(vecs))
	for j := range mean {
		mean[j] /= n
	}
	for _, v := range vecs {
		for j, x := range v {
			dx := float64(x) - mean[j]
			sq[j] += dx * dx
		}
	}
	s := &Scaler{Mean: make([]float32, d), Std: make([]float32, d)}
	for j := range d {
		s.Mean[j] = float32(mean[j])
		sd := math.Sqrt(sq[j] / n)
		if sd < 1e-8 {
			sd = 1
		}
		s.Std[j] = float32(sd)
	}
	return s, nil
}

// Apply returns a standardised copy of v.
func (s *Scaler) Apply(v []float32) []float32 {
	out := make([]float32, len(v))
	for j, x := range v {
		out[j] = (x - s.Mean[j]) / s.Std[j]
	}
	return out
}
