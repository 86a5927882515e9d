package storage

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVectorBytesMatchPortable checks that the copying encode and decode
// of a little-endian machine give what the portable byte-by-byte code
// gives, bit for bit, NaN payloads, infinities, signed zeros and
// subnormals included; and that decoding reads only the first len(dst)
// values of a longer buffer.
func TestVectorBytesMatchPortable(t *testing.T) {
	tests := []struct {
		name string
		v    []float32
	}{
		{"empty", []float32{}},
		{"one", []float32{1.5}},
		{"specials", []float32{
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0,
			math.Float32frombits(0x7fc00001), math.Float32frombits(0xffbfffff), // NaNs with payloads
			math.Float32frombits(1), math.MaxFloat32, -math.SmallestNonzeroFloat32,
		}},
		{"odd length", []float32{1, -2, 3, -4, 5, -6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, 4*len(tt.v))
			encodePortable(want, tt.v)
			got := EncodeVector(tt.v)
			require.Equal(t, want, got)
			if len(tt.v) > 0 {
				require.Equal(t, byte(math.Float32bits(tt.v[0])), got[0], "little-endian: the low byte first")
			}

			back := DecodeVector(got)
			portable := make([]float32, len(tt.v))
			decodePortable(portable, got)
			require.Len(t, back, len(tt.v))
			for i := range tt.v {
				require.Equal(t, math.Float32bits(tt.v[i]), math.Float32bits(back[i]), "value %d", i)
				require.Equal(t, math.Float32bits(tt.v[i]), math.Float32bits(portable[i]), "value %d", i)
			}

			if len(tt.v) > 1 {
				short := make([]float32, len(tt.v)-1)
				decodeInto(short, got)
				for i := range short {
					require.Equal(t, math.Float32bits(tt.v[i]), math.Float32bits(short[i]), "value %d", i)
				}
			}
		})
	}
}

// FuzzDecodeVector compares DecodeVector with the portable decoding, and
// EncodeVector with the input, on any bytes of whole float32s.
func FuzzDecodeVector(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0xc0, 0x7f, 1, 0, 0x80, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b)/4*4]
		v := DecodeVector(b)
		want := make([]float32, len(b)/4)
		decodePortable(want, b)
		for i := range want {
			if math.Float32bits(v[i]) != math.Float32bits(want[i]) {
				t.Fatalf("value %d: %08x, portable %08x", i, math.Float32bits(v[i]), math.Float32bits(want[i]))
			}
		}
		if got := EncodeVector(v); string(got) != string(b) {
			t.Fatalf("EncodeVector(DecodeVector(%x)) = %x", b, got)
		}
	})
}
