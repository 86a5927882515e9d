package hnsw

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/parquet-go/bitpack"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Serialised indexes are framed as: 4-byte magic naming the engine, uint32
// format version, the engine's payload, then a CRC-32C of everything before
// it. Loaders read the whole frame, check the checksum first, and only then
// parse, with every length checked against what remains: damaged input is
// an error, never a panic or a huge allocation.

// frameWriter accumulates a frame in memory and writes it with its checksum.
type frameWriter struct {
	buf []byte
}

// newFrame starts a frame; size is a hint of the payload's bytes, so a
// large index is written without the buffer growing (and copying) as it
// goes.
func newFrame(magic string, version uint32, size int) *frameWriter {
	f := &frameWriter{buf: make([]byte, 0, 12+max(size, 0))}
	f.buf = append(f.buf, magic...)
	f.u32(version)
	return f
}

func (f *frameWriter) u32(v uint32) { f.buf = binary.LittleEndian.AppendUint32(f.buf, v) }
func (f *frameWriter) u64(v uint64) { f.buf = binary.LittleEndian.AppendUint64(f.buf, v) }

func (f *frameWriter) f32s(v []float32) {
	appendAll(f, v, func(b []byte, x float32) []byte { return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)) })
}

func (f *frameWriter) bytes(b []byte) { f.buf = append(f.buf, b...) }

// Write appends p, so that a frame can be written into another one.
func (f *frameWriter) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *frameWriter) u32s(v []uint32) {
	appendAll(f, v, binary.LittleEndian.AppendUint32)
}

// appendAll is readInto's mirror: one bulk append on little-endian
// machines, else one element at a time.
func appendAll[T float32 | uint32](f *frameWriter, v []T, enc func([]byte, T) []byte) {
	if nativeLittle && len(v) > 0 {
		f.buf = append(f.buf, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))...)
		return
	}
	for _, x := range v {
		f.buf = enc(f.buf, x)
	}
}

func (f *frameWriter) writeTo(w io.Writer) error {
	f.buf = binary.LittleEndian.AppendUint32(f.buf, crc32.Checksum(f.buf, castagnoli))
	_, err := w.Write(f.buf)
	return err
}

// frameReader parses a frame whose checksum has been verified.
type frameReader struct {
	b   []byte
	err error
}

// openFrame reads r to the end, verifies magic, version and checksum, and
// returns a reader positioned on the payload.
func openFrame(r io.Reader, magic string, version uint32) (*frameReader, error) {
	fr, _, err := openFrameVersions(r, magic, version, version)
	return fr, err
}

// openFrameVersions is openFrame for a format whose versions lo..hi this
// build reads; it returns the frame's version.
func openFrameVersions(r io.Reader, magic string, lo, hi uint32) (*frameReader, uint32, error) {
	var b []byte
	var err error
	if bb, ok := r.(interface {
		Next(n int) []byte
		Len() int
	}); ok {
		// A bytes.Buffer (the database wraps a stored value in one): parse
		// its bytes in place, one copy fewer for a large graph. Nothing
		// parsed keeps a reference to them (arrays are copied out), so
		// the caller's bytes may be reused after Load returns.
		b = bb.Next(bb.Len())
	} else if lr, ok := r.(interface{ Len() int }); ok {
		// A bytes.Reader (the database hands over a stored value) says its
		// size: one allocation instead of ReadAll's doublings and copies.
		b = make([]byte, lr.Len())
		_, err = io.ReadFull(r, b)
	} else {
		b, err = io.ReadAll(r)
	}
	if err != nil {
		return nil, 0, err
	}
	if len(b) < len(magic)+8 {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(b))
	}
	if string(b[:len(magic)]) != magic {
		return nil, 0, fmt.Errorf("%w: magic %q, want %q", ErrFormat, b[:len(magic)], magic)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, 0, fmt.Errorf("%w: checksum mismatch (truncated or corrupted)", ErrFormat)
	}
	fr := &frameReader{b: body[len(magic):]}
	v := fr.u32()
	if v < lo || v > hi {
		if lo == hi {
			return nil, 0, fmt.Errorf("%w: format version %d, this build reads %d", ErrFormat, v, hi)
		}
		return nil, 0, fmt.Errorf("%w: format version %d, this build reads %d to %d", ErrFormat, v, lo, hi)
	}
	return fr, v, nil
}

// bytes returns the next n bytes, without copying.
func (f *frameReader) bytes(n uint64) []byte {
	if !f.need(n) {
		return nil
	}
	b := f.b[:n:n]
	f.b = f.b[n:]
	return b
}

func (f *frameReader) need(n uint64) bool {
	if f.err != nil {
		return false
	}
	if uint64(len(f.b)) < n {
		f.err = fmt.Errorf("%w: truncated payload", ErrFormat)
		return false
	}
	return true
}

func (f *frameReader) u32() uint32 {
	if !f.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(f.b)
	f.b = f.b[4:]
	return v
}

func (f *frameReader) u64() uint64 {
	if !f.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(f.b)
	f.b = f.b[8:]
	return v
}

// f32s reads n floats; n is checked against the remaining bytes before
// anything is allocated.
func (f *frameReader) f32s(n uint64) []float32 {
	if !f.need(4 * n) {
		return nil
	}
	out := make([]float32, n)
	f.f32sInto(out)
	return out
}

// nativeLittle: the machine stores numbers as the format does, so arrays
// load with one copy.
var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func (f *frameReader) u32s(n uint64) []uint32 {
	if !f.need(4 * n) {
		return nil
	}
	out := make([]uint32, n)
	f.u32sInto(out)
	return out
}

// done reports the first error, or one if bytes are left over.
func (f *frameReader) done() error {
	if f.err == nil && len(f.b) != 0 {
		f.err = fmt.Errorf("%w: %d unexpected trailing bytes", ErrFormat, len(f.b))
	}
	return f.err
}

// f32sInto reads len(dst) floats into dst.
func (f *frameReader) f32sInto(dst []float32) {
	readInto(f, dst, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
}

// u32sInto reads len(dst) integers into dst.
func (f *frameReader) u32sInto(dst []uint32) {
	readInto(f, dst, binary.LittleEndian.Uint32)
}

// readInto fills dst from the frame's next 4*len(dst) bytes: one bulk
// copy on little-endian machines, else decode, one element at a time.
func readInto[T float32 | uint32](f *frameReader, dst []T, decode func([]byte) T) {
	n := uint64(len(dst))
	if !f.need(4 * n) {
		return
	}
	if nativeLittle && n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*n), f.b)
	} else {
		for i := range dst {
			dst[i] = decode(f.b[4*i:])
		}
	}
	f.b = f.b[4*n:]
}

// packPad is the zero bytes written after each packed array: the unpacker
// reads up to that far past the last value's bytes.
const packPad = bitpack.PaddingInt32

// packed appends v, each value in width bits (1 to 32; values must fit),
// then packPad zero bytes.
func (f *frameWriter) packed(v []uint32, width uint) {
	n := bitpack.ByteCount(width * uint(len(v)))
	f.buf = slices.Grow(f.buf, n+packPad)
	at := len(f.buf)
	f.buf = f.buf[:at+n+packPad]
	clear(f.buf[at:])
	if len(v) > 0 {
		bitpack.Pack(f.buf[at:], v, width)
	}
}

// fits reports whether n values of width bits (and the padding) remain, so
// a caller can check before it allocates room for them.
func (f *frameReader) fits(n uint64, width uint) bool {
	return width >= 1 && width <= 32 && n <= uint64(len(f.b))*8/uint64(width) && f.need((n*uint64(width)+7)/8+packPad)
}

// unpackInto reads len(dst) values of width bits, written by packed.
func (f *frameReader) unpackInto(dst []uint32, width uint) {
	if !f.fits(uint64(len(dst)), width) {
		if f.err == nil {
			f.err = fmt.Errorf("%w: %d values of %d bits do not fit", ErrFormat, len(dst), width)
		}
		return
	}
	n := bitpack.ByteCount(width*uint(len(dst))) + packPad
	if len(dst) > 0 {
		bitpack.Unpack(dst, f.b[:n], width)
	}
	f.b = f.b[n:]
}

// packedStream hands out, in order, the values of an array written by
// packed, unpacking streamChunk of them at a time into a small buffer:
// a large array (a graph's links) is read without a copy of it whole.
type packedStream struct {
	b     []byte // the values not yet unpacked, then the padding
	width uint
	left  uint64 // values not yet unpacked
	buf   []uint32
	next  int // buf's next value
}

// streamChunk is how many values a packedStream unpacks at a time: a
// multiple of 8, so that every chunk but the last starts on a byte.
const streamChunk = 4096

// stream returns a packedStream over n values of width bits and moves
// past them, as unpackInto would.
func (f *frameReader) stream(n uint64, width uint) *packedStream {
	if !f.fits(n, width) {
		if f.err == nil {
			f.err = fmt.Errorf("%w: %d values of %d bits do not fit", ErrFormat, n, width)
		}
		return &packedStream{}
	}
	size := bitpack.ByteCount(width*uint(n)) + packPad
	p := &packedStream{b: f.b[:size], width: width, left: n}
	f.b = f.b[size:]
	return p
}

// take fills dst with the next len(dst) values. It reports false, leaving
// dst partly filled, when fewer are left.
func (p *packedStream) take(dst []uint32) bool {
	for len(dst) > 0 {
		if p.next == len(p.buf) {
			if p.left == 0 {
				return false
			}
			c := int(min(p.left, streamChunk))
			if p.buf == nil {
				p.buf = make([]uint32, min(p.left, streamChunk))
			}
			p.buf = p.buf[:c]
			bitpack.Unpack(p.buf, p.b, p.width)
			p.b = p.b[uint(c)*p.width/8:] // whole bytes but after the last chunk
			p.left -= uint64(c)
			p.next = 0
		}
		n := copy(dst, p.buf[p.next:])
		dst, p.next = dst[n:], p.next+n
	}
	return true
}
