package storage

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian reports whether this machine stores a float32 in the
// file's byte order (little-endian), so a stored vector's bytes are its
// values and decoding or encoding one is a copy.
var littleEndian = binary.NativeEndian.Uint32([]byte{1, 0, 0, 0}) == 1

// floatBytes is the memory of v as bytes.
func floatBytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// EncodeVector returns the little-endian IEEE-754 bytes of v, the form
// vectors are stored in.
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	if littleEndian {
		copy(b, floatBytes(v))
		return b
	}
	encodePortable(b, v)
	return b
}

// encodePortable writes v into b as EncodeVector does, on any machine.
func encodePortable(b []byte, v []float32) {
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
}

// DecodeVector is the inverse of EncodeVector. len(b) must be a multiple of 4.
func DecodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	decodeInto(v, b)
	return v
}

// decodeInto decodes the first len(dst) float32s of b into dst: a copy
// on a little-endian machine, bit for bit as Float32frombits would (NaN
// payloads included).
func decodeInto(dst []float32, b []byte) {
	if littleEndian {
		copy(floatBytes(dst), b[:4*len(dst)])
		return
	}
	decodePortable(dst, b)
}

// decodePortable is decodeInto on any machine.
func decodePortable(dst []float32, b []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}
