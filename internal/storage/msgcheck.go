package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxMsgpackDepth bounds the nesting of arrays and maps in a stored
// msgpack value. What mmdb stores nests three or four levels deep.
const MaxMsgpackDepth = 64

// Unmarshal decodes the stored msgpack value data into v, as
// msgpack.Unmarshal does, after CheckMsgpack has verified its structure:
// msgpack's decoder sizes slices, maps and strings from their declared
// lengths before reading them, so five damaged bytes could ask it for
// gigabytes. Any failure, including trailing bytes after the value, gives
// an error wrapping ErrCorrupt; it never panics.
func Unmarshal(data []byte, v any) (err error) {
	if err := CheckMsgpack(data); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: msgpack decoder panicked: %v", ErrCorrupt, p)
		}
	}()
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

var errMsgpackShort = errors.New("msgpack value runs past the end of its bytes")

// CheckMsgpack verifies that data is exactly one well-formed msgpack
// value: every code is defined, every declared array, map, string, binary
// and extension length fits in the bytes that follow it (each array
// element and map key or value taking at least one byte), arrays and maps
// nest at most MaxMsgpackDepth deep, and nothing follows the value. It
// reads the bytes once and allocates nothing that grows with the input.
func CheckMsgpack(data []byte) error {
	// pending[d] counts the values still to read at depth d; the value
	// being read now is one of pending[len(pending)-1].
	var stack [MaxMsgpackDepth + 1]uint64
	pending := stack[:1]
	pending[0] = 1
	i := uint64(0)
	n := uint64(len(data))
	// need returns the k bytes at i.. as a number (big-endian) after
	// checking they exist, and advances past them.
	need := func(k uint64) (uint64, error) {
		if k > n-i {
			return 0, errMsgpackShort
		}
		var v uint64
		switch k {
		case 1:
			v = uint64(data[i])
		case 2:
			v = uint64(binary.BigEndian.Uint16(data[i:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(data[i:]))
		case 8:
			v = binary.BigEndian.Uint64(data[i:])
		}
		i += k
		return v, nil
	}
	skip := func(k uint64) error {
		if k > n-i {
			return fmt.Errorf("%w: %d bytes declared at offset %d, %d left", errMsgpackShort, k, i, n-i)
		}
		i += k
		return nil
	}
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if i >= n {
			return errMsgpackShort
		}
		c := data[i]
		at := i
		i++
		var elems uint64 // values a container adds
		isContainer := false
		var err error
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c >= 0x80 && c <= 0x8f: // fixmap
			elems, isContainer = 2*uint64(c&0x0f), true
		case c >= 0x90 && c <= 0x9f: // fixarray
			elems, isContainer = uint64(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf: // fixstr
			err = skip(uint64(c & 0x1f))
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
		case c == 0xc1:
			return fmt.Errorf("msgpack: undefined code 0xc1 at offset %d", at)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			err = skipLen(need, skip, 1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			err = skipLen(need, skip, 2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			err = skipLen(need, skip, 4)
		case c == 0xc7, c == 0xc8, c == 0xc9: // ext8, ext16, ext32
			var l uint64
			if l, err = need(1 << (c - 0xc7)); err == nil {
				err = skip(l + 1) // the type byte, then the data
			}
		case c == 0xca: // float32
			err = skip(4)
		case c == 0xcb: // float64
			err = skip(8)
		case c >= 0xcc && c <= 0xcf: // uint8..uint64
			err = skip(1 << (c - 0xcc))
		case c >= 0xd0 && c <= 0xd3: // int8..int64
			err = skip(1 << (c - 0xd0))
		case c >= 0xd4 && c <= 0xd8: // fixext1..fixext16
			err = skip(1 + 1<<(c-0xd4))
		case c == 0xdc: // array16
			elems, err = need(2)
			isContainer = true
		case c == 0xdd: // array32
			elems, err = need(4)
			isContainer = true
		case c == 0xde: // map16
			elems, err = need(2)
			elems *= 2
			isContainer = true
		case c == 0xdf: // map32
			elems, err = need(4)
			elems *= 2
			isContainer = true
		}
		if err != nil {
			return err
		}
		if !isContainer || elems == 0 {
			continue
		}
		if elems > n-i {
			return fmt.Errorf("msgpack: container at offset %d declares %d values, %d bytes left", at, elems, n-i)
		}
		if len(pending) > MaxMsgpackDepth {
			return fmt.Errorf("msgpack: containers nest deeper than %d at offset %d", MaxMsgpackDepth, at)
		}
		pending = append(pending, elems)
	}
	if i != n {
		return fmt.Errorf("msgpack: %d trailing bytes after the value", n-i)
	}
	return nil
}

// skipLen reads a k-byte length and skips that many bytes.
func skipLen(need func(uint64) (uint64, error), skip func(uint64) error, k uint64) error {
	l, err := need(k)
	if err != nil {
		return err
	}
	return skip(l)
}
