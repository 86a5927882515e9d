package modality

import (
	"math"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricDistanceAndScore(t *testing.T) {
	a := []float32{1, 0}
	b := []float32{0.6, 0.8}
	tests := []struct {
		m                   Metric
		dist, score, report float32
	}{
		{Cosine, 0.4, 0.6, 0.4},
		{Dot, -0.6, 0.6, -0.6},
		{L2, 0.8, -float32(math.Sqrt(0.8)), float32(math.Sqrt(0.8))},
	}
	for _, tc := range tests {
		t.Run(tc.m.String(), func(t *testing.T) {
			d := tc.m.Distance(a, b)
			assert.InDelta(t, tc.dist, d, 1e-6)
			s, rep := tc.m.Score(d)
			assert.InDelta(t, tc.score, s, 1e-6)
			assert.InDelta(t, tc.report, rep, 1e-6)
		})
	}
}

func TestPrepare(t *testing.T) {
	cos := Modality{Name: "text", Dim: 3, Metric: Cosine}
	l2 := Modality{Name: "audio", Dim: 3, Metric: L2}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		m    Modality
		in   []float32
		err  error
		msg  string
	}{
		{"short", cos, []float32{1, 2}, ErrDimension, "got 2 values"},
		{"long", cos, []float32{1, 2, 3, 4}, ErrDimension, "wants 3"},
		{"nan", cos, []float32{1, nan, 3}, ErrInvalidVector, "value 1 is NaN"},
		{"inf", l2, []float32{inf, 0, 0}, ErrInvalidVector, "value 0 is +Inf"},
		{"zero cosine", cos, []float32{0, 0, 0}, ErrInvalidVector, "zero vector"},
		{"zero l2 ok", l2, []float32{0, 0, 0}, nil, ""},
		{"ok", cos, []float32{3, 0, 4}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float32(nil), tc.in...)
			out, err := tc.m.Prepare(in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Contains(t, err.Error(), tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.in, in, "input must not be modified")
			if tc.m.Metric == Cosine {
				assert.InDelta(t, 1, kernel.Norm(out), 1e-6)
				assert.InDelta(t, 0.6, out[0], 1e-7)
			} else {
				assert.Equal(t, tc.in, out)
			}
		})
	}
}

func TestModalityValidate(t *testing.T) {
	tests := []struct {
		m  Modality
		ok bool
	}{
		{Modality{Name: "image", Dim: 512, Metric: Cosine, Space: "clip"}, true},
		{Modality{Name: "", Dim: 512, Metric: Cosine}, false},
		{Modality{Name: "has space", Dim: 512, Metric: Cosine}, false},
		{Modality{Name: "x", Dim: 0, Metric: Cosine}, false},
		{Modality{Name: "x", Dim: MaxDim + 1, Metric: Cosine}, false},
		{Modality{Name: "x", Dim: 4}, false},
	}
	for _, tc := range tests {
		err := tc.m.Validate()
		if tc.ok {
			assert.NoError(t, err, "%+v", tc.m)
		} else {
			assert.ErrorIs(t, err, ErrInvalidSchema, "%+v", tc.m)
		}
	}
	assert.Equal(t, "x", Modality{Name: "x"}.SpaceName())
	m, err := ParseMetric("l2")
	require.NoError(t, err)
	assert.Equal(t, L2, m)
	_, err = ParseMetric("manhattan")
	assert.ErrorIs(t, err, ErrInvalidSchema)
}

// Values that are finite on the way in but overflow or underflow on the
// way to storage are refused or normalised exactly, never stored as Inf or
// NaN.
func TestPrepareNeverStoresNonFinite(t *testing.T) {
	tiny := float32(1e-45) // subnormal: its norm's reciprocal overflows float32
	cases := []struct {
		name   string
		m      Modality
		v      []float32
		want   []float32
		errMsg string
	}{
		{"subnormal cosine normalises", Modality{Name: "c", Dim: 4, Metric: Cosine}, []float32{tiny, tiny, tiny, tiny}, []float32{0.5, 0.5, 0.5, 0.5}, ""},
		{"huge L2 refused", Modality{Name: "l", Dim: 4, Metric: L2}, []float32{2e19, 0, 0, 0}, nil, "beyond"},
		{"huge dot refused", Modality{Name: "d", Dim: 2, Metric: Dot}, []float32{3e38, 3e38}, nil, "beyond"},
		{"huge cosine normalises", Modality{Name: "c", Dim: 2, Metric: Cosine}, []float32{3e38, 3e38}, []float32{float32(math.Sqrt(0.5)), float32(math.Sqrt(0.5))}, ""},
		{"at the bound", Modality{Name: "l", Dim: 1, Metric: L2}, []float32{1e15}, []float32{1e15}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.Prepare(c.v)
			if c.errMsg != "" {
				require.ErrorIs(t, err, ErrInvalidVector)
				assert.Contains(t, err.Error(), c.errMsg)
				return
			}
			require.NoError(t, err)
			assert.InDeltaSlice(t, c.want, got, 1e-6)
			require.NoError(t, CheckFinite(got))
		})
	}
}

func TestValidateSpace(t *testing.T) {
	for _, sp := range []string{"a\x00b", strings.Repeat("x", MaxSpaceLen+1), "bad\xff", "line\nbreak"} {
		err := Modality{Name: "m", Dim: 2, Metric: L2, Space: sp}.Validate()
		assert.ErrorIs(t, err, ErrInvalidSchema, "%q", sp)
	}
	require.NoError(t, Modality{Name: "m", Dim: 2, Metric: L2, Space: "clip-vit-b/16 (openai)"}.Validate())
}
