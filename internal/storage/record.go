package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// ErrAttribute: an attribute name or value is not storable.
var ErrAttribute = errors.New("invalid attribute")

// MaxAttrName bounds attribute names; they become bucket names for
// postings, and bbolt keys must stay small.
const MaxAttrName = 255

// MaxAttrs bounds the number of attributes one item may hold. Each name is
// a posting bucket, and a write touching tens of thousands of them holds
// the write lock for seconds; CanonicalAttrs refuses more with an error
// wrapping ErrAttribute. Stored records are not held to it when read back.
const MaxAttrs = 1024

// Record is what the items bucket holds for one item.
type Record struct {
	// ID is the item's external ID.
	ID string `msgpack:"i"`
	// Attrs holds canonical values only (see CanonicalAttrs).
	Attrs map[string]any `msgpack:"a,omitempty"`
}

// EncodeRecord serialises r as msgpack, with map keys sorted so that equal
// records give equal bytes.
func EncodeRecord(r Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAttribute, err)
	}
	return buf.Bytes(), nil
}

// DecodeRecord parses bytes written by EncodeRecord. Bytes that do not
// decode to a record with canonical attributes give an error wrapping
// ErrCorrupt; it never panics.
//
// The record is walked by hand rather than with msgpack's reflection
// decoder because that decoder sizes a map from its declared length before
// reading it: four damaged bytes could ask for a map of four billion
// entries. Here every declared length is checked against the bytes left.
func DecodeRecord(b []byte) (Record, error) {
	var d recordDecoder
	return d.decode(b)
}

// recordDecoder decodes records one after another with one reader and one
// msgpack decoder: a scan over every record (Open's, an export's) would
// otherwise leave both behind as garbage for each, about 190 bytes an item.
type recordDecoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
}

// decode is DecodeRecord, reusing d's reader and decoder.
func (d *recordDecoder) decode(b []byte) (Record, error) {
	d.rd.Reset(b)
	if d.dec == nil {
		d.dec = msgpack.NewDecoder(&d.rd)
	} else {
		d.dec.Reset(&d.rd) // also clears its options
	}
	d.dec.UseLooseInterfaceDecoding(true)
	r, err := decodeRecord(d.dec, &d.rd)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if d.rd.Len() > 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, d.rd.Len())
	}
	attrs, err := canonicalAttrs(r.Attrs, 0)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	r.Attrs = attrs
	return r, nil
}

// containerLen reads a map or array length (per isMap) and checks that the
// remaining input could hold that many elements of at least one byte each.
func containerLen(dec *msgpack.Decoder, rd *bytes.Reader, isMap bool) (int, error) {
	var n int
	var err error
	if isMap {
		n, err = dec.DecodeMapLen()
	} else {
		n, err = dec.DecodeArrayLen()
	}
	if err != nil {
		return 0, err
	}
	// A map entry takes at least two bytes, an array element one.
	per := 1
	if isMap {
		per = 2
	}
	if n > rd.Len()/per {
		return 0, fmt.Errorf("declared length %d exceeds the %d bytes left", n, rd.Len())
	}
	return n, nil
}

func decodeRecord(dec *msgpack.Decoder, rd *bytes.Reader) (Record, error) {
	var r Record
	n, err := containerLen(dec, rd, true)
	if err != nil {
		return r, err
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return r, err
		}
		switch key {
		case "i":
			if r.ID, err = dec.DecodeString(); err != nil {
				return r, err
			}
		case "a":
			if r.Attrs, err = decodeAttrs(dec, rd); err != nil {
				return r, err
			}
		default:
			return r, fmt.Errorf("unknown field %q", key)
		}
	}
	if r.ID == "" || !utf8.ValidString(r.ID) {
		return r, fmt.Errorf("record without a valid ID")
	}
	return r, nil
}

func decodeAttrs(dec *msgpack.Decoder, rd *bytes.Reader) (map[string]any, error) {
	n, err := containerLen(dec, rd, true)
	if err != nil || n <= 0 {
		return nil, err
	}
	attrs := make(map[string]any, min(n, 64)) // grows as entries are read
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, err
		}
		c, err := dec.PeekCode()
		if err != nil {
			return nil, err
		}
		var v any
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			m, err := containerLen(dec, rd, false)
			if err != nil {
				return nil, err
			}
			list := make([]string, 0, min(max(m, 0), 64))
			for range max(m, 0) {
				e, err := dec.DecodeString()
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			}
			v = list
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			return nil, fmt.Errorf("attribute %q holds a map", k)
		default:
			if v, err = dec.DecodeInterfaceLoose(); err != nil {
				return nil, err
			}
		}
		attrs[k] = v
	}
	return attrs, nil
}

// CanonicalAttrs validates attributes and converts them to the types mmdb
// stores and filters on: string, int64, float64, bool and []string. Every
// Go integer type becomes int64 (unsigned values above MaxInt64 are
// refused), float32 becomes float64, and a []any holding only strings
// becomes []string. NaN, nested maps and other types are refused with an
// error wrapping ErrAttribute that names the attribute. An empty map gives
// nil. More than MaxAttrs attributes are refused with ErrAttribute.
func CanonicalAttrs(in map[string]any) (map[string]any, error) {
	return canonicalAttrs(in, MaxAttrs)
}

// canonicalAttrs is CanonicalAttrs with a limit on the attribute count
// (0: none, for records already stored).
func canonicalAttrs(in map[string]any, limit int) (map[string]any, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if limit > 0 && len(in) > limit {
		return nil, fmt.Errorf("%w: %d attributes; an item holds at most %d (MaxAttrs)", ErrAttribute, len(in), limit)
	}
	out := make(map[string]any, len(in))
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first bad attribute deterministically
	for _, k := range keys {
		if k == "" || len(k) > MaxAttrName || !utf8.ValidString(k) {
			return nil, fmt.Errorf("%w: name %q must be 1-%d bytes of UTF-8", ErrAttribute, k, MaxAttrName)
		}
		v, err := canonicalValue(in[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrAttribute, k, err)
		}
		out[k] = v
	}
	return out, nil
}

func canonicalValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return x, nil
	case bool:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return fromUint(uint64(x))
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return fromUint(x)
	case float32:
		return fromFloat(float64(x))
	case float64:
		return fromFloat(x)
	case []string:
		for _, s := range x {
			if !utf8.ValidString(s) {
				return nil, errors.New("list holds a string that is not valid UTF-8")
			}
		}
		out := make([]string, len(x)) // never nil: nil would not round-trip
		copy(out, x)
		return out, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("list element %d is %T; lists hold strings only", i, e)
			}
			if !utf8.ValidString(s) {
				return nil, errors.New("list holds a string that is not valid UTF-8")
			}
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, errors.New("nil value (omit the attribute instead)")
	}
	return nil, fmt.Errorf("unsupported type %T (want string, integer, float, bool or []string)", v)
}

func fromUint(x uint64) (any, error) {
	if x > math.MaxInt64 {
		return nil, fmt.Errorf("unsigned value %d overflows int64", x)
	}
	return int64(x), nil
}

func fromFloat(x float64) (any, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, fmt.Errorf("non-finite number %v", x)
	}
	return x, nil
}
