package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func build(descr string, shape string, fortran bool, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }", descr, order, shape)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func f64bytes(v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func TestRead(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		shape []int
		data  []float32
		err   string
	}{
		{"f4 2d", build("<f4", "2, 3", false, f32bytes(1, 2, 3, 4, 5, 6)), []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}, ""},
		{"f8 1d", build("<f8", "2,", false, f64bytes(0.5, -1)), []int{2}, []float32{0.5, -1}, ""},
		{"fortran", build("<f4", "2, 2", true, f32bytes(1, 2, 3, 4)), nil, nil, "Fortran"},
		{"int dtype", build("<i4", "2,", false, f32bytes(1, 2)), nil, nil, "dtype"},
		{"truncated", build("<f4", "2, 3", false, f32bytes(1, 2)), nil, nil, "truncated"},
		{"bad magic", []byte("NOTNUMPY........"), nil, nil, "magic"},
		{"huge shape", build("<f4", "100000, 100000, 100000", false, nil), nil, nil, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.in))
			if tc.err != "" {
				require.ErrorIs(t, err, ErrFormat)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.shape, a.Shape)
			assert.Equal(t, tc.data, a.Data)
		})
	}
}

func TestRows(t *testing.T) {
	a := Array{Shape: []int{2, 2, 3}, Data: []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	rows, err := a.Rows(1)
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{6, 7, 8}, {9, 10, 11}}, rows)
	_, err = a.Rows(2)
	assert.Error(t, err)
}

func FuzzRead(f *testing.F) {
	f.Add(build("<f4", "2, 3", false, f32bytes(1, 2, 3, 4, 5, 6)))
	f.Add(build("<f8", "1,", false, f64bytes(1)))
	f.Add([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "npy:") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if n != len(a.Data) {
			t.Fatalf("shape %v but %d values", a.Shape, len(a.Data))
		}
	})
}
