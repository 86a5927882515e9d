package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/bitmaps"
	bolt "go.etcd.io/bbolt"
)

// Attribute postings: bucket post/<attribute> maps an encoded value to the
// roaring bitmap of the internal IDs holding it. Values are encoded so that
// byte order is value order within a kind: a kind byte ('b' bool, 'n'
// number, 's' string), then the value. Numbers, integer or float, are one
// kind, encoded as order-preserving float64 bits, so a range over a number
// attribute is one cursor scan (integers are exact up to 2^53).

// Value kinds in posting keys.
const (
	KindBool   byte = 'b'
	KindNumber byte = 'n'
	KindString byte = 's'
	// KindEmptyList marks an attribute holding an empty list: it has no
	// element to post, but EXISTS must still find it.
	KindEmptyList byte = 'L'
)

func postBucketName(attr string) []byte { return []byte("post/" + attr) }

// EncodeValue returns the posting key of a canonical attribute value or a
// filter literal (string, int64, float64, bool), and false for other types.
func EncodeValue(v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return append([]byte{KindString}, x...), true
	case bool:
		if x {
			return []byte{KindBool, 1}, true
		}
		return []byte{KindBool, 0}, true
	case int64:
		return encodeNumber(float64(x)), true
	case float64:
		return encodeNumber(x), true
	}
	return nil, false
}

func encodeNumber(f float64) []byte {
	if f == 0 {
		f = 0 // fold -0 into +0
	}
	b := math.Float64bits(f)
	if b>>63 == 1 {
		b = ^b // negative: reverse the order
	} else {
		b |= 1 << 63
	}
	k := make([]byte, 9)
	k[0] = KindNumber
	binary.BigEndian.PutUint64(k[1:], b)
	return k
}

// PostingKeys lists the posting keys of one canonical attribute value: one
// for a scalar, one per element for a string list.
func PostingKeys(v any) [][]byte {
	if list, ok := v.([]string); ok {
		if len(list) == 0 {
			return [][]byte{{KindEmptyList}}
		}
		keys := make([][]byte, 0, len(list))
		for _, s := range list {
			k, _ := EncodeValue(s)
			keys = append(keys, k)
		}
		return keys
	}
	if k, ok := EncodeValue(v); ok {
		return [][]byte{k}
	}
	return nil
}

// PostingDelta accumulates posting changes within a transaction, so a batch
// that gives 10,000 items the same value rewrites that value's bitmap once.
type PostingDelta struct {
	m map[string]map[string]*postingChange
}

type postingChange struct{ add, rem *roaring.Bitmap }

func (d *PostingDelta) at(attr string, key []byte) *postingChange {
	if d.m == nil {
		d.m = map[string]map[string]*postingChange{}
	}
	byKey := d.m[attr]
	if byKey == nil {
		byKey = map[string]*postingChange{}
		d.m[attr] = byKey
	}
	c := byKey[string(key)]
	if c == nil {
		c = &postingChange{roaring.New(), roaring.New()}
		byKey[string(key)] = c
	}
	return c
}

// Update records that item id's attributes change from old to new.
func (d *PostingDelta) Update(id uint32, old, new map[string]any) {
	for attr, v := range old {
		for _, k := range PostingKeys(v) {
			c := d.at(attr, k)
			c.add.Remove(id)
			c.rem.Add(id)
		}
	}
	for attr, v := range new {
		for _, k := range PostingKeys(v) {
			c := d.at(attr, k)
			c.rem.Remove(id)
			c.add.Add(id)
		}
	}
}

// ApplyPostings writes the accumulated changes.
func (t *Tx) ApplyPostings(d *PostingDelta) error {
	attrs := make([]string, 0, len(d.m))
	for attr := range d.m {
		attrs = append(attrs, attr)
	}
	sort.Strings(attrs)
	for _, attr := range attrs {
		byKey := d.m[attr]
		b, err := t.tx.CreateBucketIfNotExists(postBucketName(attr))
		if err != nil {
			return err
		}
		for key, c := range byKey {
			bm := roaring.New()
			if cur := b.Get([]byte(key)); cur != nil {
				var err error
				if bm, err = readBitmap(attr, []byte(key), cur); err != nil {
					return err
				}
			}
			bm.AndNot(c.rem)
			bm.Or(c.add)
			if bm.IsEmpty() {
				if err := b.Delete([]byte(key)); err != nil {
					return err
				}
				continue
			}
			bm.RunOptimize()
			data, err := bm.ToBytes()
			if err != nil {
				return err
			}
			if err := b.Put([]byte(key), data); err != nil {
				return err
			}
		}
	}
	return nil
}

// readBitmap decodes the stored posting bitmap of attr's value key k. A
// bitmap that does not decode, or decodes to containers that break
// roaring's invariants (unsorted, overlapping runs: roaring would panic
// on the next change to it), is ErrCorrupt naming the attribute.
func readBitmap(attr string, k, v []byte) (*roaring.Bitmap, error) {
	bm, err := DecodeBitmap(v)
	if err != nil {
		return nil, fmt.Errorf("posting %s/%x: %w", attr, k, err)
	}
	return bm, nil
}

// viewBitmap is readBitmap without the copy: the bitmap reads its
// containers from v, the file's mapped memory, so it is valid only while
// the read transaction is open, and must only be read (given to
// bitmaps.Union, whose result shares nothing with it). Decoding a small
// posting this way takes 0.6 of the time, checks included
// (BenchmarkViewBitmap: 0.25 µs against 0.41), which a range over
// hundreds of values pays for each.
func viewBitmap(attr string, k, v []byte) (*roaring.Bitmap, error) {
	bm, err := decodeBitmap(v, true)
	if err != nil {
		return nil, fmt.Errorf("posting %s/%x: %w", attr, k, err)
	}
	return bm, nil
}

// DecodeBitmap decodes a stored roaring bitmap and validates it. Any
// failure, including a panic in roaring's decoder, gives an error wrapping
// ErrCorrupt.
func DecodeBitmap(v []byte) (*roaring.Bitmap, error) { return decodeBitmap(v, false) }

// decodeBitmap checks v (checkRoaring, before decoding: what roaring's
// Validate checks, in linear time) and decodes it, copying it out or, in
// place, reading from it.
func decodeBitmap(v []byte, inPlace bool) (bm *roaring.Bitmap, err error) {
	defer func() {
		if p := recover(); p != nil {
			bm, err = nil, fmt.Errorf("%w: roaring decoder panicked: %v", ErrCorrupt, p)
		}
	}()
	if err := checkRoaring(v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	bm = roaring.New()
	if inPlace {
		_, err = bm.FromUnsafeBytes(v)
	} else {
		err = bm.UnmarshalBinary(v)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return bm, nil
}

// PostingEqual returns the IDs whose attr holds v (an empty bitmap when
// none do).
func (t *Tx) PostingEqual(attr string, v any) (*roaring.Bitmap, error) {
	b := t.tx.Bucket(postBucketName(attr))
	k, ok := EncodeValue(v)
	if b == nil || !ok {
		return roaring.New(), nil
	}
	data := b.Get(k)
	if data == nil {
		return roaring.New(), nil
	}
	return readBitmap(attr, k, data)
}

// PostingIn returns the IDs whose attr holds any of values (an IN list):
// the values' postings read in place (viewBitmap) and unioned at once,
// one copy of what they hold instead of a copy of each and then the
// union's.
func (t *Tx) PostingIn(attr string, values []any) (*roaring.Bitmap, error) {
	b := t.tx.Bucket(postBucketName(attr))
	if b == nil {
		return roaring.New(), nil
	}
	var u bitmaps.Unioner
	for _, v := range values {
		k, ok := EncodeValue(v)
		if !ok {
			continue
		}
		data := b.Get(k)
		if data == nil {
			continue
		}
		bm, err := viewBitmap(attr, k, data)
		if err != nil {
			return nil, err
		}
		u.Add(bm)
	}
	return u.Result(), nil
}

// PostingRange returns the IDs whose attr holds a value between lo and hi
// of the same kind as the non-nil bound(s); a nil bound is open. Bounds of
// different kinds match nothing.
func (t *Tx) PostingRange(attr string, lo, hi any, loInc, hiInc bool) (*roaring.Bitmap, error) {
	out := roaring.New()
	b := t.tx.Bucket(postBucketName(attr))
	if b == nil {
		return out, nil
	}
	var lk, hk []byte
	var kind byte
	if lo != nil {
		var ok bool
		if lk, ok = EncodeValue(lo); !ok {
			return out, nil
		}
		kind = lk[0]
	}
	if hi != nil {
		var ok bool
		if hk, ok = EncodeValue(hi); !ok {
			return out, nil
		}
		if kind != 0 && hk[0] != kind {
			return out, nil
		}
		kind = hk[0]
	}
	if kind == 0 {
		return out, nil
	}
	c := b.Cursor()
	var k, v []byte
	if lk != nil {
		k, v = c.Seek(lk)
	} else {
		k, v = c.Seek([]byte{kind})
	}
	var u bitmaps.Unioner
	for ; k != nil && k[0] == kind; k, v = c.Next() {
		if lk != nil && !loInc && bytes.Equal(k, lk) {
			continue
		}
		if hk != nil {
			if cmp := bytes.Compare(k, hk); cmp > 0 || cmp == 0 && !hiInc {
				break
			}
		}
		bm, err := viewBitmap(attr, k, v)
		if err != nil {
			return nil, err
		}
		u.Add(bm)
	}
	return u.Result(), nil
}

// PostingExists returns the IDs that have attr at all.
func (t *Tx) PostingExists(attr string) (*roaring.Bitmap, error) {
	b := t.tx.Bucket(postBucketName(attr))
	if b == nil {
		return roaring.New(), nil
	}
	var u bitmaps.Unioner
	err := b.ForEach(func(k, v []byte) error {
		bm, err := viewBitmap(attr, k, v)
		if err != nil {
			return err
		}
		u.Add(bm)
		return nil
	})
	return u.Result(), err
}

// Classes maps each item that has attribute attr to a class: items with
// equal values share one (numbered in value order). An item listed under
// two values (a list attribute) is an error naming it (name gives an
// internal ID's external one).
func (t *Tx) Classes(attr string, name func(uint32) string) (map[uint32]int, error) {
	out := map[uint32]int{}
	b := t.tx.Bucket(postBucketName(attr))
	if b == nil {
		return out, nil
	}
	class := 0
	err := b.ForEach(func(k, v []byte) error {
		if len(k) == 1 && k[0] == KindEmptyList {
			return nil // an empty list is no value: no class
		}
		bm, err := readBitmap(attr, k, v)
		if err != nil {
			return err
		}
		it := bm.Iterator()
		for it.HasNext() {
			id := it.Next()
			if _, dup := out[id]; dup {
				return fmt.Errorf("%w: item %q has several values of %q; a label needs one", ErrAttribute, name(id), attr)
			}
			out[id] = class
		}
		class++
		return nil
	})
	return out, err
}

// ForEachPosting calls fn for every (attribute, encoded value, bitmap).
func (t *Tx) ForEachPosting(fn func(attr string, key []byte, ids *roaring.Bitmap) error) error {
	return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if !bytes.HasPrefix(name, []byte("post/")) {
			return nil
		}
		attr := string(name[5:])
		return b.ForEach(func(k, v []byte) error {
			bm, err := readBitmap(attr, k, v)
			if err != nil {
				return err
			}
			return fn(attr, k, bm)
		})
	})
}

// HasAttribute reports whether attribute attr has postings: one bucket
// lookup, for the filter check every filtered search runs.
func (t *Tx) HasAttribute(attr string) bool {
	return t.tx.Bucket(postBucketName(attr)) != nil
}

// Attributes lists the attribute names that have postings, sorted.
func (t *Tx) Attributes() []string {
	var out []string
	_ = t.tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if bytes.HasPrefix(name, []byte("post/")) {
			out = append(out, string(name[len("post/"):]))
		}
		return nil
	})
	return out
}
