package storage

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

func TestCheckMsgpack(t *testing.T) {
	mustMarshal := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	deep := strings.Repeat("\x91", MaxMsgpackDepth+1) + "\xc0"
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"nil", []byte{0xc0}, true},
		{"schema", mustMarshal([]modality.Modality{{Name: "a", Dim: 3, Metric: modality.L2}}), true},
		{"nested", mustMarshal(map[string]any{"w": [][]float32{{1, 2}, {3, 4}}, "s": "x", "b": []byte{1, 2}, "n": -70000, "u": uint64(1) << 40}), true},
		{"every scalar", []byte{0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd4, 1, 2}, true},
		{"ext32", []byte{0xc9, 0, 0, 0, 1, 5, 9}, true},
		{"empty", nil, false},
		{"array32 of 4 billion", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, false},
		{"map32 of 4 billion", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, false},
		{"map16 larger than its bytes", []byte{0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0}, false},
		{"str32 past the end", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}, false},
		{"bin8 past the end", []byte{0xc4, 3, 1, 2}, false},
		{"ext8 past the end", []byte{0xc7, 3, 1, 2}, false},
		{"float64 cut", []byte{0xcb, 0, 0}, false},
		{"array16 length cut", []byte{0xdc, 0}, false},
		{"fixarray missing elements", []byte{0x93, 0xc0}, false},
		{"undefined code", []byte{0xc1}, false},
		{"trailing bytes", []byte{0xc0, 0xc0}, false},
		{"too deep", []byte(deep), false},
		{"deep enough", []byte(deep[1:]), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckMsgpack(tc.data)
			if tc.ok {
				require.NoError(t, err)
				var v any
				if err := Unmarshal(tc.data, &v); err != nil {
					// Well formed, but an extension msgpack does not know.
					require.ErrorIs(t, err, ErrCorrupt)
					assert.ErrorContains(t, err, "unknown ext")
				}
				return
			}
			require.Error(t, err)
			var v any
			assert.ErrorIs(t, Unmarshal(tc.data, &v), ErrCorrupt)
		})
	}
}

// tinyStd is an image encoder record whose scaler divides by 1e-45.
func tinyStd() *encoderRecord {
	e := &encoderRecord{Kind: "image", Mean: make([]float32, 136), Std: make([]float32, 136)}
	for i := range e.Std {
		e.Std[i] = 1e-45
	}
	return e
}

// encRec is a stored schema of one 136-d modality with encoder record e;
// encRec4 of one 4-d modality.
func encRec(e *encoderRecord) []byte {
	b, _ := msgpack.Marshal([]modalityRecord{{Name: "m", Dim: 136, Metric: modality.Cosine, Encoder: e}})
	return b
}

func encRec4(e *encoderRecord) []byte {
	b, _ := msgpack.Marshal([]modalityRecord{{Name: "m", Dim: 4, Metric: modality.Cosine, Encoder: e}})
	return b
}

// A stored schema decodes, or fails with ErrCorrupt; what decodes encodes
// back to a schema that decodes the same.
func FuzzDecodeSchema(f *testing.F) {
	sc := &encoderRecord{Kind: "image", Mean: make([]float32, 136), Std: make([]float32, 136)}
	for i := range sc.Std {
		sc.Std[i] = 1
	}
	for _, seed := range [][]byte{encRec(sc), encRec(&encoderRecord{Kind: "image", Params: []int{8, 8, 4, 2}}),
		encRec4(&encoderRecord{Kind: "openai", URL: "http://a", Model: "m", Input: "image", KeyEnv: "K"}), {0x90}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decodeSchema(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not ErrCorrupt: %v", err)
			}
			return
		}
		recs := make([]modalityRecord, len(ms))
		for i, m := range ms {
			recs[i] = toRecord(m)
		}
		again, err := msgpack.Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		ms2, err := decodeSchema(again)
		if err != nil || !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, ms, ms2)
		}
	})
}

// TestDecodeSchemaRejects: a stored schema that would allocate without
// bound, or that holds a modality Validate refuses, is ErrCorrupt.
func TestDecodeSchemaRejects(t *testing.T) {
	enc := func(ms ...modality.Modality) []byte {
		recs := make([]modalityRecord, len(ms))
		for i, m := range ms {
			recs[i] = toRecord(m)
		}
		b, err := msgpack.Marshal(recs)
		require.NoError(t, err)
		return b
	}
	good := modality.Modality{Name: "img", Dim: 4, Metric: modality.Cosine}
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"4 billion modalities", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x80}, "declares"},
		{"name of 2 GB", []byte{0x91, 0x81, 0xa4, 'n', 'a', 'm', 'e', 0xdb, 0x7f, 0xff, 0xff, 0xff}, "past the end"},
		{"dim 0", enc(modality.Modality{Name: "img", Dim: 0, Metric: modality.Cosine}), "dimension"},
		{"dim too large", enc(modality.Modality{Name: "img", Dim: modality.MaxDim + 1, Metric: modality.Cosine}), "dimension"},
		{"unknown metric", enc(modality.Modality{Name: "img", Dim: 4, Metric: 9}), "metric"},
		{"bad name", enc(modality.Modality{Name: "", Dim: 4, Metric: modality.L2}), "name"},
		{"defined twice", enc(good, good), "twice"},
		{"not a list", []byte{0x07}, "invalid code"},
		{"unknown encoder", encRec(&encoderRecord{Kind: "clap"}), "unknown encoder"},
		{"image params short", encRec(&encoderRecord{Kind: "image", Params: []int{8}}), "has 4 parameters, the record 1"},
		{"mfcc params long", encRec(&encoderRecord{Kind: "mfcc", Params: []int{40, 13, 8, 1, 1}}), "has 3 parameters, the record 5"},
		{"mfcc with a server", encRec(&encoderRecord{Kind: "mfcc", URL: "http://a"}), "server fields true"},
		{"mfcc of no values", encRec4(&encoderRecord{Kind: "mfcc", Params: []int{1, 0, 0}}), "give no values"},
		{"scaler deviation tiny", encRec(tinyStd()), "deviation in 1e-09"},
		{"remote key variable", encRec4(&encoderRecord{Kind: "openai", URL: "http://a", Model: "m", Input: "text", KeyEnv: "GITHUB_TOKEN"}), "must be named MMDB_"},
		{"huge image grid", encRec(&encoderRecord{Kind: "image", Params: []int{256, 64, 1, 1}}), "more than 65536"},
		{"encoder of another dimension", encRec(&encoderRecord{Kind: "mfcc"}), "gives 96 values, not 136"},
		{"scaler of another length", encRec4(&encoderRecord{Kind: "openai", URL: "http://a", Model: "m", Input: "text", Mean: []float32{0}, Std: []float32{1}}), "no scaler"},
		{"remote without a server", encRec4(&encoderRecord{Kind: "openai"}), "server fields false"},
		{"remote file URL", encRec4(&encoderRecord{Kind: "openai", URL: "file:///etc/passwd", Model: "m", Input: "text"}), "not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeSchema(tc.data)
			require.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	ms, err := decodeSchema(enc(good))
	require.NoError(t, err)
	assert.Equal(t, []modality.Modality{good}, ms)
}

// TestOpenRejectsBadHeader: meta/nextid must be four bytes and above every
// stored item, or AllocID would hand out an ID already in use.
func TestOpenRejectsBadHeader(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value []byte
		msg   string
	}{
		{"nextid below the last item", "nextid", be32(3), "meta/nextid is 3"},
		{"nextid cut", "nextid", []byte{0}, "meta/nextid is 1 bytes"},
		{"version cut", "version", []byte{0, 1}, "meta/version"},
		{"schema allocation bomb", "schema", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := buildFile(t, 10)
			bdb, err := bolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put([]byte(tc.key), tc.value)
			}))
			require.NoError(t, bdb.Close())
			s, err := Open(path, nil)
			if err == nil {
				_, err = s.Schema()
				s.Close()
			}
			require.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestMaxAttrs(t *testing.T) {
	attrs := func(n int) map[string]any {
		m := make(map[string]any, n)
		for i := range n {
			m[fmt.Sprintf("a%05d", i)] = i
		}
		return m
	}
	got, err := CanonicalAttrs(attrs(MaxAttrs))
	require.NoError(t, err)
	assert.Len(t, got, MaxAttrs)
	_, err = CanonicalAttrs(attrs(MaxAttrs + 1))
	require.ErrorIs(t, err, ErrAttribute)
	assert.ErrorContains(t, err, fmt.Sprintf("%d attributes; an item holds at most %d", MaxAttrs+1, MaxAttrs))
	// A record stored with more (by an older build) still reads back.
	b, err := EncodeRecord(Record{ID: "x", Attrs: got})
	require.NoError(t, err)
	_, err = DecodeRecord(b)
	require.NoError(t, err)
}

// FuzzCheckMsgpack: CheckMsgpack never panics, and bytes it accepts decode
// (or fail to decode) without panicking or allocating beyond their size.
func FuzzCheckMsgpack(f *testing.F) {
	for _, v := range []any{
		[]modality.Modality{{Name: "a", Dim: 3, Metric: modality.L2, Space: "s"}},
		map[string]any{"w": [][]float32{{1, 2}, {3, 4}}, "b": []byte{1}, "x": nil, "t": true},
		[]any{int64(-1) << 40, uint64(1) << 63, 1.5, float32(2), "ü"},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc9, 0, 0, 0, 1, 5, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckMsgpack(b) != nil {
			return
		}
		var v any
		_ = Unmarshal(b, &v)
		var ms []modality.Modality
		if _, err := decodeSchema(b); err == nil {
			_ = Unmarshal(b, &ms)
		}
	})
}
