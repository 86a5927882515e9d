package dataset

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// ReadVecs reads the TEXMEX .fvecs/.ivecs format (SIFT's): per vector an
// int32 dimension, then that many 4-byte values. ivecs values are returned
// as their bit patterns in float32s.
func ReadVecs(path string) ([][]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%s: truncated", path)
		}
		d := int(int32(binary.LittleEndian.Uint32(b)))
		if d <= 0 || d > 1<<16 || len(b) < 4+4*d {
			return nil, fmt.Errorf("%s: bad dimension %d", path, d)
		}
		v := make([]float32, d)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4+4*i:]))
		}
		out = append(out, v)
		b = b[4+4*d:]
	}
	return out, nil
}
