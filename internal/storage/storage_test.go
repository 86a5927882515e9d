package storage

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"none", nil, nil},
		{"empty map", map[string]any{}, nil},
		{"scalars", map[string]any{"s": "x", "i": 7, "neg": int8(-3), "u": uint32(9), "f": float32(0.5), "d": 2.25, "b": true},
			map[string]any{"s": "x", "i": int64(7), "neg": int64(-3), "u": int64(9), "f": 0.5, "d": 2.25, "b": true}},
		{"big ints", map[string]any{"max": int64(math.MaxInt64), "min": int64(math.MinInt64)},
			map[string]any{"max": int64(math.MaxInt64), "min": int64(math.MinInt64)}},
		{"nil list", map[string]any{"tags": []string(nil)}, map[string]any{"tags": []string{}}},
		{"lists", map[string]any{"tags": []string{"a", "b"}, "any": []any{"c"}, "empty": []string{}},
			map[string]any{"tags": []string{"a", "b"}, "any": []string{"c"}, "empty": []string{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attrs, err := CanonicalAttrs(tc.in)
			require.NoError(t, err)
			b, err := EncodeRecord(Record{ID: "item-1", Attrs: attrs})
			require.NoError(t, err)
			r, err := DecodeRecord(b)
			require.NoError(t, err)
			assert.Equal(t, "item-1", r.ID)
			assert.Equal(t, tc.want, r.Attrs)
			b2, err := EncodeRecord(r)
			require.NoError(t, err)
			assert.Equal(t, b, b2, "encoding is deterministic")
		})
	}
}

func TestCanonicalAttrsRejects(t *testing.T) {
	tests := map[string]map[string]any{
		"uint overflow": {"u": uint64(math.MaxUint64)},
		"nil value":     {"n": nil},
		"mixed list":    {"l": []any{"a", 1}},
		"int list":      {"l": []int{1}},
		"struct":        {"s": struct{}{}},
		"inf":           {"f": math.Inf(1)},
		"empty name":    {"": 1},
		"bad utf8":      {"s": "\xff"},
	}
	for name, attrs := range tests {
		_, err := CanonicalAttrs(attrs)
		assert.ErrorIs(t, err, ErrAttribute, name)
	}
}

func TestDecodeRecordRejectsGarbage(t *testing.T) {
	good, err := EncodeRecord(Record{ID: "x", Attrs: map[string]any{"a": int64(1)}})
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0xc0),
		"not a map": {0x01},
		"empty map": {0x80},
		"nil":       {0xc0},
		"nil ID":    {0x81, 0xa1, 'i', 0xc0},
		"empty ID":  {0x81, 0xa1, 'i', 0xa0},
	} {
		_, err := DecodeRecord(b)
		assert.ErrorIs(t, err, ErrCorrupt, name)
	}
}

func TestVectorEncoding(t *testing.T) {
	v := []float32{0, -1.5, float32(math.SmallestNonzeroFloat32), math.MaxFloat32}
	b := EncodeVector(v)
	assert.Len(t, b, 16)
	assert.Equal(t, []byte{0, 0, 0xc0, 0xbf}, b[4:8], "little-endian IEEE 754")
	assert.Equal(t, v, DecodeVector(b))
}

func TestStoreIDsAndVectors(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.mmdb"), nil)
	require.NoError(t, err)
	defer s.Close()
	m := modality.Modality{Name: "image", Dim: 2, Metric: modality.L2}
	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.DefineModality(m))
		a, err := tx.AllocID("a")
		require.NoError(t, err)
		b, err := tx.AllocID("b")
		require.NoError(t, err)
		assert.Equal(t, []uint32{0, 1}, []uint32{a, b})
		require.NoError(t, tx.PutRecord(a, Record{ID: "a"}))
		require.NoError(t, tx.PutRecord(b, Record{ID: "b"}))
		require.NoError(t, tx.PutVector("image", b, []float32{1, 2}))
		return nil
	}))
	require.NoError(t, s.View(func(tx *Tx) error {
		id, ok := tx.LookupID("b")
		assert.True(t, ok)
		assert.Equal(t, uint32(1), id)
		v, ok := tx.Vector("image", id)
		assert.True(t, ok)
		assert.Equal(t, []float32{1, 2}, v)
		_, ok = tx.Vector("image", 0)
		assert.False(t, ok)
		var seen []uint32
		require.NoError(t, tx.ForEachRecord(1, func(id uint32, r Record) (bool, error) {
			seen = append(seen, id)
			return true, nil
		}))
		assert.Equal(t, []uint32{1}, seen)
		return nil
	}))
	ms, err := s.Schema()
	require.NoError(t, err)
	assert.Equal(t, []modality.Modality{m}, ms)
}

// FuzzDecodeRecord: whatever the bytes, DecodeRecord returns a record with
// canonical attributes or an ErrCorrupt error; it never panics.
func FuzzDecodeRecord(f *testing.F) {
	seeds := []Record{
		{ID: "a"},
		{ID: "dog-1", Attrs: map[string]any{"year": int64(2014), "tags": []string{"dog", "park"}, "score": 0.5, "ok": true}},
		{ID: "ünïcode", Attrs: map[string]any{"s": "x"}},
	}
	for _, r := range seeds {
		b, err := EncodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa1, 0x69, 0xa1, 0x61, 0xa1, 0x61, 0x81, 0xa1, 0x6d, 0x80})
	good, err := EncodeRecord(seeds[1])
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		// A decoder reused (as a scan reuses one) decodes these bytes,
		// and the record after them, as a fresh one does.
		var d recordDecoder
		_, _ = d.decode(good)
		reused, reusedErr := d.decode(b)
		assert.Equal(t, err, reusedErr)
		assert.Equal(t, r, reused)
		next, nextErr := d.decode(good)
		require.NoError(t, nextErr)
		assert.Equal(t, seeds[1], next)
		if err != nil {
			if !assert.ErrorIs(t, err, ErrCorrupt) {
				t.FailNow()
			}
			return
		}
		again, err := CanonicalAttrs(r.Attrs)
		if err != nil {
			t.Fatalf("decoded attributes are not canonical: %v", err)
		}
		assert.Equal(t, r.Attrs, again)
	})
}

// TestPageSize: a new file has 16 KiB pages, and a file made with another
// page size (as every file was before) keeps it, and its data, when opened
// again and written to.
func TestPageSize(t *testing.T) {
	m := modality.Modality{Name: "image", Dim: 512, Metric: modality.L2}
	put := func(s *Store, ext string) {
		require.NoError(t, s.Update(func(tx *Tx) error {
			id, err := tx.AllocID(ext)
			require.NoError(t, err)
			require.NoError(t, tx.PutRecord(id, Record{ID: ext}))
			return tx.PutVector("image", id, make([]float32, 512))
		}))
	}
	for _, tc := range []struct {
		name    string
		created int
	}{
		{"new file", 16 << 10},
		{"file of 4 KiB pages", 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.mmdb")
			old := pageSize
			pageSize = tc.created
			s, err := Open(path, nil)
			pageSize = old
			require.NoError(t, err)
			require.NoError(t, s.Update(func(tx *Tx) error { return tx.DefineModality(m) }))
			put(s, "a")
			require.NoError(t, s.Close())

			s, err = Open(path, nil)
			require.NoError(t, err)
			defer s.Close()
			assert.Equal(t, tc.created, s.bolt.Info().PageSize)
			put(s, "b")
			require.NoError(t, s.View(func(tx *Tx) error {
				for _, ext := range []string{"a", "b"} {
					id, ok := tx.LookupID(ext)
					require.True(t, ok, ext)
					v, ok := tx.Vector("image", id)
					assert.True(t, ok, ext)
					assert.Len(t, v, 512)
				}
				return nil
			}))
		})
	}
}
