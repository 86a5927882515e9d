package dataset

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadVecs(t *testing.T) {
	rec := func(vals ...float32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(vals)))
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	good := append(rec(1, 2, 3), rec(-4.5, 0, 7)...)
	tests := []struct {
		name    string
		data    []byte
		want    [][]float32
		wantErr string
	}{
		{"two vectors", good, [][]float32{{1, 2, 3}, {-4.5, 0, 7}}, ""},
		{"empty file", nil, nil, ""},
		{"truncated record", good[:len(good)-2], nil, "bad dimension 3"},
		{"stray bytes", append(append([]byte(nil), good...), 1, 2), nil, "truncated"},
		{"zero dimension", binary.LittleEndian.AppendUint32(nil, 0), nil, "bad dimension 0"},
		{"negative dimension", binary.LittleEndian.AppendUint32(nil, math.MaxUint32), nil, "bad dimension -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.fvecs")
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			got, err := ReadVecs(path)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := ReadVecs(filepath.Join(t.TempDir(), "missing.fvecs"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
