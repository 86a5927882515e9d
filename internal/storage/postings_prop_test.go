package storage

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/internal/bitmaps"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- values and a reference order ---------------------------------------------

// Numbers that sit on the edges of float64's encoding: zeros of both
// signs, subnormals, the extremes, integers around 2^53 and int64's ends.
var propNumbers = []any{
	int64(0), 0.0, math.Copysign(0, -1), int64(1), 1.0, int64(-1), -1.0,
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 1e-310, -1e-310, 2.2250738585072014e-308,
	math.MaxFloat64, -math.MaxFloat64, 1e300, -1e300, 0.1, -0.1, 0.5, -2.5,
	int64(1 << 53), int64(1<<53 - 1), int64(-(1 << 53)), float64(1 << 53), float64(1<<53) + 2,
	int64(math.MaxInt64), int64(math.MinInt64), int64(math.MaxInt32), int64(math.MinInt32),
}

var propStrings = []string{"", "\x00", "\x00\x00", "a", "a\x00", "ab", "b", "B", "\xff", "\xff\xff", "é", "e\u0301", "日本", "zz", "a b", "'"}

// propValue is a random attribute scalar of kind k ('n', 's' or 'b').
func propValue(r *rand.Rand, k byte) any {
	switch k {
	case KindNumber:
		switch r.IntN(6) {
		case 0:
			return propNumbers[r.IntN(len(propNumbers))]
		case 1:
			return int64(r.Uint64())
		case 2:
			return r.Int64N(21) - 10
		case 3:
			return float64(r.IntN(21)-10) / 4
		case 4:
			for { // any finite float64, from its bits
				if f := math.Float64frombits(r.Uint64()); !math.IsNaN(f) && !math.IsInf(f, 0) {
					return f
				}
			}
		}
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(600)-300))
	case KindString:
		if r.IntN(2) == 0 {
			return propStrings[r.IntN(len(propStrings))]
		}
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = "a\x00\xffz"[r.IntN(4)]
		}
		return string(b)
	}
	return r.IntN(2) == 0
}

func kindOf(v any) byte {
	switch v.(type) {
	case int64, float64:
		return KindNumber
	case string:
		return KindString
	case bool:
		return KindBool
	}
	panic(fmt.Sprintf("kindOf(%T)", v))
}

// refCompare orders two values of one kind the way filters do: numbers by
// value as float64 (int64 and float64 alike; integers are exact up to
// 2^53), strings by bytes, false before true.
func refCompare(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return cmp.Compare(propFloat(a), propFloat(b))
}

func propFloat(v any) float64 {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v.(float64)
}

func sign(n int) int { return cmp.Compare(n, 0) }

var propKinds = []byte{KindNumber, KindString, KindBool}

// TestEncodeValueOrderProp: within a kind, byte order of posting keys is
// value order (and equal values, -0 and 0 or 3 and 3.0, share a key);
// across kinds, the kind byte alone decides, so one kind's keys form a
// contiguous block and never interleave with another's.
func TestEncodeValueOrderProp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a := propValue(r, propKinds[r.IntN(3)])
		b := propValue(r, propKinds[r.IntN(3)])
		ka, ok := EncodeValue(a)
		require.True(t, ok)
		kb, ok := EncodeValue(b)
		require.True(t, ok)
		require.Equal(t, kindOf(a), ka[0], "%#v: the key starts with its kind", a)
		if ka[0] == KindNumber {
			require.Len(t, ka, 9, "%#v", a)
		}
		got := bytes.Compare(ka, kb)
		if kindOf(a) != kindOf(b) {
			require.Equal(t, sign(int(ka[0])-int(kb[0])), got, "%#v vs %#v: kinds order by kind byte", a, b)
			continue
		}
		require.Equal(t, refCompare(a, b), got, "%#v vs %#v: %x vs %x", a, b, ka, kb)
	}
}

// TestEncodeValueKinds: the fixed points of the encoding.
func TestEncodeValueKinds(t *testing.T) {
	key := func(v any) []byte {
		k, ok := EncodeValue(v)
		require.True(t, ok, "%#v", v)
		return k
	}
	tests := []struct {
		name string
		a, b any
		want int
	}{
		{"-0 is 0", math.Copysign(0, -1), 0.0, 0},
		{"int 0 is float 0", int64(0), math.Copysign(0, -1), 0},
		{"3 is 3.0", int64(3), 3.0, 0},
		{"-1 below -0.5", int64(-1), -0.5, -1},
		{"tiny negative below 0", -math.SmallestNonzeroFloat64, 0.0, -1},
		{"tiny positive above 0", math.SmallestNonzeroFloat64, int64(0), 1},
		{"-MaxFloat64 lowest", -math.MaxFloat64, int64(math.MinInt64), -1},
		{"MaxFloat64 highest", math.MaxFloat64, int64(math.MaxInt64), 1},
		{"2^53+1 rounds to 2^53", int64(1<<53 + 1), float64(1 << 53), 0}, // exact only up to 2^53
		{"empty string lowest string", "", "\x00", -1},
		{"prefix first", "a", "a\x00", -1},
		{"false before true", false, true, -1},
		{"every bool below every number", true, -math.MaxFloat64, -1},
		{"every number below every string", math.MaxFloat64, "", -1},
		{"empty list below every bool", PostingKeys([]string{})[0], false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka, ok := tc.a.([]byte)
			if !ok {
				ka = key(tc.a)
			}
			assert.Equal(t, tc.want, bytes.Compare(ka, key(tc.b)), "%x vs %x", ka, key(tc.b))
		})
	}
	_, ok := EncodeValue(int(3))
	assert.False(t, ok, "only canonical types encode")
	_, ok = EncodeValue([]string{"a"})
	assert.False(t, ok)
	assert.Equal(t, [][]byte{key("a"), key("b"), key("a")}, PostingKeys([]string{"a", "b", "a"}), "a list posts each element")
	assert.Equal(t, [][]byte{{KindEmptyList}}, PostingKeys([]string{}))
	assert.Equal(t, [][]byte{key(2.5)}, PostingKeys(2.5))
	assert.Nil(t, PostingKeys(struct{}{}))
}

// propItemValue is a random canonical attribute value: a scalar of any
// kind, or a string list (sometimes empty).
func propItemValue(r *rand.Rand) any {
	switch r.IntN(8) {
	case 0:
		list := make([]string, r.IntN(4))
		for i := range list {
			list[i] = propValue(r, KindString).(string)
		}
		return list
	case 1, 2:
		return propValue(r, KindString)
	case 3:
		return propValue(r, KindBool)
	}
	return propValue(r, KindNumber)
}

// elements are the scalars a value posts under.
func elements(v any) []any {
	if list, ok := v.([]string); ok {
		out := make([]any, len(list))
		for i, s := range list {
			out[i] = s
		}
		return out
	}
	return []any{v}
}

// bruteRange is PostingRange's meaning: the items with an element of the
// bounds' kind between them.
func bruteRange(vals map[uint32]any, lo, hi any, loInc, hiInc bool) []uint32 {
	var kind byte
	switch {
	case lo == nil && hi == nil:
		return []uint32{}
	case lo != nil && hi != nil && kindOf(lo) != kindOf(hi):
		return []uint32{}
	case lo != nil:
		kind = kindOf(lo)
	default:
		kind = kindOf(hi)
	}
	out := []uint32{}
	for id, v := range vals {
		for _, e := range elements(v) {
			if kindOf(e) != kind {
				continue
			}
			if lo != nil {
				if c := refCompare(e, lo); c < 0 || c == 0 && !loInc {
					continue
				}
			}
			if hi != nil {
				if c := refCompare(e, hi); c > 0 || c == 0 && !hiInc {
					continue
				}
			}
			out = append(out, id)
			break
		}
	}
	slices.Sort(out)
	return out
}

// TestPostingRangeMatchesBruteForce: items with random values of every
// kind (some rewritten, some removed) are posted through PostingDelta;
// then PostingRange over random bounds (open, inclusive or not, of any
// kind, mismatched kinds), PostingEqual and PostingExists agree with a
// scan of the values, before and after reopening the file.
func TestPostingRangeMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	path := filepath.Join(t.TempDir(), "p.mmdb")
	s, err := Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	defer func() { s.Close() }()

	const n = 300
	vals := map[uint32]any{}
	require.NoError(t, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(n) {
			vals[id] = propItemValue(r)
			d.Update(id, nil, map[string]any{"v": vals[id], "other": int64(id)})
		}
		return tx.ApplyPostings(&d)
	}))
	// A second transaction rewrites a third of the values and removes a
	// tenth: stale postings must go.
	require.NoError(t, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(n) {
			switch r.IntN(10) {
			case 0:
				d.Update(id, map[string]any{"v": vals[id]}, nil)
				delete(vals, id)
			case 1, 2, 3:
				nv := propItemValue(r)
				d.Update(id, map[string]any{"v": vals[id]}, map[string]any{"v": nv})
				vals[id] = nv
			}
		}
		return tx.ApplyPostings(&d)
	}))

	bound := func() any {
		if r.IntN(4) == 0 {
			return nil
		}
		if r.IntN(3) == 0 { // a value some item holds, to hit inclusive edges
			for _, v := range vals {
				es := elements(v)
				if len(es) > 0 {
					return es[r.IntN(len(es))]
				}
			}
		}
		return propValue(r, propKinds[r.IntN(3)])
	}
	check := func(t *testing.T) {
		require.NoError(t, s.View(func(tx *Tx) error {
			for range 400 {
				lo, hi := bound(), bound()
				if r.IntN(2) == 0 && lo != nil && hi != nil && kindOf(lo) != kindOf(hi) {
					hi = propValue(r, kindOf(lo)) // mostly same-kind bounds
				}
				loInc, hiInc := r.IntN(2) == 0, r.IntN(2) == 0
				got, err := tx.PostingRange("v", lo, hi, loInc, hiInc)
				require.NoError(t, err)
				require.Equal(t, bruteRange(vals, lo, hi, loInc, hiInc), append([]uint32{}, got.ToArray()...),
					"range %#v (inc %v) .. %#v (inc %v)", lo, loInc, hi, hiInc)
			}
			for range 200 {
				v := bound()
				if v == nil {
					continue
				}
				got, err := tx.PostingEqual("v", v)
				require.NoError(t, err)
				require.Equal(t, bruteRange(vals, v, v, true, true), append([]uint32{}, got.ToArray()...), "equal %#v", v)
			}
			exists, err := tx.PostingExists("v")
			require.NoError(t, err)
			want := roaring.New()
			for id := range vals {
				want.Add(id) // empty lists included
			}
			require.True(t, want.Equals(exists), "exists: %d items, postings say %d", want.GetCardinality(), exists.GetCardinality())
			none, err := tx.PostingRange("missing", nil, int64(5), true, true)
			require.NoError(t, err)
			require.True(t, none.IsEmpty())
			assert.Equal(t, []string{"other", "v"}, tx.Attributes())
			return nil
		}))
	}
	t.Run("open", check)
	require.NoError(t, s.Close())
	s, err = Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	t.Run("reopened", check)
}

// TestPostingKeysStayInTheirKind: a cursor over one attribute's postings
// sees every kind as one contiguous run of keys, numbers in value order.
func TestPostingKeysStayInTheirKind(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	s, err := Open(filepath.Join(t.TempDir(), "k.mmdb"), &Options{NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	var nums []float64
	require.NoError(t, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(500) {
			v := propItemValue(r)
			switch v.(type) {
			case int64, float64:
				nums = append(nums, propFloat(v))
			}
			d.Update(id, nil, map[string]any{"v": v})
		}
		return tx.ApplyPostings(&d)
	}))
	require.NoError(t, s.View(func(tx *Tx) error {
		var kinds []byte
		var seenNums []float64
		var last []byte
		require.NoError(t, tx.ForEachPosting(func(attr string, key []byte, ids *roaring.Bitmap) error {
			require.Equal(t, "v", attr)
			require.Positive(t, bytes.Compare(key, last), "keys come in byte order")
			last = slices.Clone(key)
			if len(kinds) == 0 || kinds[len(kinds)-1] != key[0] {
				require.NotContains(t, kinds, key[0], "kind %c comes back after another kind", key[0])
				kinds = append(kinds, key[0])
			}
			if key[0] == KindNumber {
				seenNums = append(seenNums, decodeNumberKey(key))
			}
			require.False(t, ids.IsEmpty())
			return nil
		}))
		assert.True(t, slices.IsSorted(seenNums), "numbers in value order")
		assert.True(t, slices.IsSorted(kinds))
		slices.Sort(nums)
		for i := range nums {
			if nums[i] == 0 {
				nums[i] = 0 // -0 posts as 0
			}
		}
		assert.Equal(t, slices.Compact(nums), seenNums, "one key per distinct number")
		return nil
	}))
}

// decodeNumberKey inverts encodeNumber.
func decodeNumberKey(k []byte) float64 {
	b := uint64(0)
	for _, c := range k[1:9] {
		b = b<<8 | uint64(c)
	}
	if b>>63 == 1 {
		b &^= 1 << 63
	} else {
		b = ^b
	}
	return math.Float64frombits(b)
}

// TestPostingRangeOverManyValues: a range over more values than
// PostingRange merges at once (bitmaps.Batch) finds every ID once.
func TestPostingRangeOverManyValues(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "m.mmdb"), &Options{NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	const n = 3*bitmaps.Batch + 7
	require.NoError(t, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(2 * n) {
			d.Update(id, nil, map[string]any{"v": int64(id % n)}) // two IDs a value
		}
		return tx.ApplyPostings(&d)
	}))
	tests := []struct {
		lo, hi   any
		min, max int64 // the values expected, inclusive
	}{
		{int64(3), nil, 3, n - 1},
		{int64(1), int64(bitmaps.Batch + 1), 1, bitmaps.Batch + 1},
		{nil, int64(2 * bitmaps.Batch), 0, 2 * bitmaps.Batch},
	}
	for _, tt := range tests {
		var want []uint32
		for id := range uint32(2 * n) {
			if v := int64(id % n); v >= tt.min && v <= tt.max {
				want = append(want, id)
			}
		}
		require.NoError(t, s.View(func(tx *Tx) error {
			got, err := tx.PostingRange("v", tt.lo, tt.hi, true, true)
			require.NoError(t, err)
			assert.Equal(t, want, got.ToArray(), "%v..%v", tt.lo, tt.hi)
			return nil
		}))
	}
}

// FuzzViewBitmap: a posting read in place (viewBitmap, the file's memory)
// and one copied out (DecodeBitmap) agree on every input: both refuse it
// with ErrCorrupt, or both give the same IDs; neither panics.
func FuzzViewBitmap(f *testing.F) {
	arr, dense, runs := roaring.BitmapOf(1, 5, 70_000), roaring.New(), roaring.New()
	for i := range uint32(5000) {
		dense.Add(i * 3)
	}
	runs.AddRange(100, 90_000)
	runs.RunOptimize()
	for _, bm := range []*roaring.Bitmap{arr, dense, runs, roaring.New()} {
		b, err := bm.ToBytes()
		require.NoError(f, err)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		copied, errC := DecodeBitmap(data)
		view, errV := viewBitmap("a", []byte("k"), data)
		if errC != nil || errV != nil {
			// roaring's copying and in-place readers check the same
			// header; a difference is worth seeing, not a crash.
			if errV != nil {
				require.ErrorIs(t, errV, ErrCorrupt)
			}
			if errC != nil {
				require.ErrorIs(t, errC, ErrCorrupt)
			}
			return
		}
		require.True(t, copied.Equals(view), "copied %d IDs, in place %d", copied.GetCardinality(), view.GetCardinality())
	})
}

// BenchmarkViewBitmap: decoding a small posting (100 IDs over 100k) by
// copying it out (DecodeBitmap) and in place (viewBitmap), validation
// included: what a range filter pays for each of its values.
func BenchmarkViewBitmap(b *testing.B) {
	bm := roaring.New()
	for id := 7; id < 100_000; id += 1000 {
		bm.Add(uint32(id))
	}
	data, err := bm.ToBytes()
	require.NoError(b, err)
	b.Run("copied", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeBitmap(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-place", func(b *testing.B) {
		for b.Loop() {
			if _, err := viewBitmap("a", nil, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// PostingIn is the union of PostingEqual over its values: values stored
// and not, repeated, of another kind, unencodable, over more values than
// a Unioner batch, on an attribute no item has; and what it returns stays
// whole after the transaction, as the file's pages are rewritten.
func TestPostingInMatchesEqual(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "m.mmdb"), &Options{NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	const n = 2*bitmaps.Batch + 9
	require.NoError(t, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(3 * n) {
			d.Update(id, nil, map[string]any{"v": int64(id % n), "tags": []any{"a", fmt.Sprint(id % 5)}})
		}
		return tx.ApplyPostings(&d)
	}))
	many := make([]any, 0, n+10)
	for v := range int64(n + 10) { // 10 values no item holds
		many = append(many, v)
	}
	tests := []struct {
		name   string
		attr   string
		values []any
	}{
		{"none", "v", nil},
		{"one", "v", []any{int64(4)}},
		{"repeated", "v", []any{int64(4), int64(4), int64(9)}},
		{"absent and another kind", "v", []any{int64(n + 3), "4", 4.0, true}},
		{"unencodable", "v", []any{struct{}{}, int64(2)}},
		{"more than a batch", "v", many},
		{"list elements", "tags", []any{"3", "a"}},
		{"no such attribute", "w", []any{int64(1)}},
	}
	kept, copies := map[string]*roaring.Bitmap{}, map[string][]uint32{}
	for _, tt := range tests {
		require.NoError(t, s.View(func(tx *Tx) error {
			want := roaring.New()
			for _, v := range tt.values {
				if _, ok := EncodeValue(v); !ok {
					continue
				}
				bm, err := tx.PostingEqual(tt.attr, v)
				require.NoError(t, err)
				want.Or(bm)
			}
			got, err := tx.PostingIn(tt.attr, tt.values)
			require.NoError(t, err)
			assert.Equal(t, want.ToArray(), got.ToArray(), tt.name)
			kept[tt.name], copies[tt.name] = got, got.ToArray()
			return nil
		}))
	}
	require.Len(t, copies["more than a batch"], 3*n)
	// Move every item to new values, and write postings for many more:
	// the old postings' pages are freed and reused, and the file grows
	// (bbolt maps it again, and the old mapping goes).
	for round := range 3 {
		require.NoError(t, s.Update(func(tx *Tx) error {
			var d PostingDelta
			for id := range uint32(3 * n) {
				d.Update(id, map[string]any{"v": int64(id%n) + int64(round*n)}, map[string]any{"v": int64(id%n) + int64((round+1)*n)})
			}
			for id := range uint32(20_000) {
				d.Update(uint32(10*n)+id+uint32(round)*20_000, nil, map[string]any{fmt.Sprint("u", round): fmt.Sprint(id)})
			}
			return tx.ApplyPostings(&d)
		}))
	}
	for name, bm := range kept {
		assert.Equal(t, copies[name], bm.ToArray(), "%s: the result shares no memory with the file", name)
	}
}

// BenchmarkPostingIn: an IN list of 10 and 100 values over 100k IDs (100
// IDs a value), each value's posting copied out and then unioned (what
// query.Eval did before PostingIn) against PostingIn's postings read in
// place and unioned at once.
func BenchmarkPostingIn(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "m.mmdb"), &Options{NoSync: true})
	require.NoError(b, err)
	defer s.Close()
	require.NoError(b, s.Update(func(tx *Tx) error {
		var d PostingDelta
		for id := range uint32(100_000) {
			d.Update(id, nil, map[string]any{"v": int64(id % 1000)})
		}
		return tx.ApplyPostings(&d)
	}))
	for _, n := range []int{10, 100} {
		values := make([]any, n)
		for i := range values {
			values[i] = int64(i * 7)
		}
		b.Run(fmt.Sprintf("values=%d/copied", n), func(b *testing.B) {
			require.NoError(b, s.View(func(tx *Tx) error {
				for b.Loop() {
					bms := make([]*roaring.Bitmap, 0, n)
					for _, v := range values {
						bm, err := tx.PostingEqual("v", v)
						if err != nil {
							b.Fatal(err)
						}
						bms = append(bms, bm)
					}
					bitmaps.Union(bms...)
				}
				return nil
			}))
		})
		b.Run(fmt.Sprintf("values=%d/in-place", n), func(b *testing.B) {
			require.NoError(b, s.View(func(tx *Tx) error {
				for b.Loop() {
					if _, err := tx.PostingIn("v", values); err != nil {
						b.Fatal(err)
					}
				}
				return nil
			}))
		})
	}
}
