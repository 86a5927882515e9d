package fusion

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustFuse(t *testing.T, m Method, lists [][]Ranked, w []float64) []Ranked {
	t.Helper()
	out, err := Fuse(m, lists, w)
	require.NoError(t, err)
	return out
}

func TestFuseFormulas(t *testing.T) {
	a := []Ranked{{1, 0.9}, {2, 0.5}, {3, 0.1}}
	b := []Ranked{{2, 10}, {4, 8}}
	t.Run("rrf", func(t *testing.T) {
		got := mustFuse(t, RRF, [][]Ranked{a, b}, []float64{1, 2})
		want := map[uint32]float64{
			1: 1.0 / 61,
			2: 1.0/62 + 2.0/61,
			3: 1.0 / 63,
			4: 2.0 / 62,
		}
		require.Len(t, got, 4)
		assert.Equal(t, uint32(2), got[0].ID)
		for _, r := range got {
			assert.InDelta(t, want[r.ID], r.Score, 1e-12, "id %d", r.ID)
		}
	})
	t.Run("weighted min-max", func(t *testing.T) {
		got := mustFuse(t, Weighted, [][]Ranked{a, b}, nil)
		want := map[uint32]float64{1: 1, 2: 0.5 + 1, 3: 0, 4: 0}
		for _, r := range got {
			assert.InDelta(t, want[r.ID], r.Score, 1e-12, "id %d", r.ID)
		}
		assert.Equal(t, uint32(2), got[0].ID)
	})
	t.Run("dbsf", func(t *testing.T) {
		got := mustFuse(t, DBSF, [][]Ranked{a}, nil)
		mu := (0.9 + 0.5 + 0.1) / 3
		sd := math.Sqrt(((0.9-mu)*(0.9-mu) + (0.5-mu)*(0.5-mu) + (0.1-mu)*(0.1-mu)) / 3)
		for _, r := range got {
			s := map[uint32]float64{1: 0.9, 2: 0.5, 3: 0.1}[r.ID]
			assert.InDelta(t, (s-(mu-3*sd))/(6*sd), r.Score, 1e-12)
		}
	})
	t.Run("empty", func(t *testing.T) {
		assert.Empty(t, mustFuse(t, RRF, nil, nil))
	})
}

// Early and unknown methods are refused, never merged as RRF.
func TestFuseRefusesWhatItCannotMerge(t *testing.T) {
	for _, m := range []Method{Early, "", "borda"} {
		_, err := Fuse(m, [][]Ranked{{{1, 1}}}, nil)
		assert.Error(t, err, "%q", m)
	}
	assert.True(t, Valid(""))
	assert.True(t, Valid(Early))
	assert.False(t, Valid("borda"))
}
