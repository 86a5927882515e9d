package modality

import (
	"encoding/json"
	"testing"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMultiCount(t *testing.T) {
	single := Modality{Name: "s", Dim: 4, Metric: L2}
	set := Modality{Name: "m", Dim: 4, Metric: L2, Multi: MaxSim}
	wide := Modality{Name: "w", Dim: 8192, Metric: L2, Multi: MaxPair}
	for _, c := range []struct {
		m    Modality
		n    int
		want int
	}{
		{single, 4, 1}, {single, 8, 0}, {single, 3, 0}, {single, 0, 0},
		{set, 4, 1}, {set, 8, 2}, {set, 6, 0}, {set, 0, 0},
		{set, 4 * MaxSet, MaxSet}, {set, 4 * (MaxSet + 1), 0},
		{wide, 8192 * 128, 128}, {wide, 8192 * 129, 0}, // past MaxSetValues
	} {
		assert.Equal(t, c.want, c.m.Count(c.n), "%s with %d values", c.m.Name, c.n)
		if c.want == 0 {
			assert.ErrorIs(t, c.m.CheckLen(c.n), ErrDimension)
		} else {
			assert.NoError(t, c.m.CheckLen(c.n))
		}
	}
}

func TestMultiPrepareSplitJoin(t *testing.T) {
	m := Modality{Name: "tok", Dim: 2, Metric: Cosine, Multi: MaxSim}
	in := []float32{3, 4, 0, 2}
	out, err := m.Prepare(in)
	require.NoError(t, err)
	assert.Equal(t, []float32{0.6, 0.8, 0, 1}, out, "each vector of the set normalised on its own")
	assert.Equal(t, []float32{3, 4, 0, 2}, in, "input untouched")
	parts := m.Split(out)
	require.Len(t, parts, 2)
	assert.Equal(t, out, Join(parts...))
	assert.Nil(t, m.Split(out[:3]))
	_, err = m.Prepare([]float32{1, 0, 0, 0})
	assert.ErrorIs(t, err, ErrInvalidVector)
	assert.ErrorContains(t, err, "vector 1 of the set")
}

func TestMultiJSONAndValidate(t *testing.T) {
	for _, a := range []Multi{Single, MaxSim, MaxPair} {
		b, err := json.Marshal(a)
		require.NoError(t, err)
		var back Multi
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, a, back)
		p, err := ParseMulti(a.String())
		require.NoError(t, err)
		assert.Equal(t, a, p)
	}
	var bad Multi
	assert.ErrorIs(t, json.Unmarshal([]byte(`"mean"`), &bad), ErrInvalidSchema)
	assert.ErrorIs(t, json.Unmarshal([]byte(`7`), &bad), ErrInvalidSchema)
	b, _ := json.Marshal(Modality{Name: "a", Dim: 2, Metric: L2})
	assert.NotContains(t, string(b), "multi", "a single-vector modality's schema is as before")

	assert.ErrorIs(t, Modality{Name: "a", Dim: 2, Metric: L2, Multi: 9}.Validate(), ErrInvalidSchema)
	audio := Modality{Name: "a", Multi: MaxSim, Encoder: &encoder.Spec{Kind: encoder.KindMFCC}}.WithDefaults()
	assert.Equal(t, 12, audio.Dim, "an MFCC set has a 12-d vector a segment")
	require.NoError(t, audio.Validate())
	audio.Dim = 96
	assert.ErrorIs(t, audio.Validate(), ErrInvalidSchema)
}
