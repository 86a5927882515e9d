package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildFile writes a small but complete store: a modality with vectors,
// records with attributes and their postings (so nested and inline
// buckets, branch pages and overflow-free leaves), and returns its path
// and bytes.
func buildFile(t testing.TB, items int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.mmdb")
	s, err := Open(path, &Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *Tx) error {
		if err := tx.DefineModality(modality.Modality{Name: "img", Dim: 8, Metric: modality.L2}); err != nil {
			return err
		}
		var post PostingDelta
		for i := range items {
			ext := fmt.Sprintf("item-%04d", i)
			id, err := tx.AllocID(ext)
			if err != nil {
				return err
			}
			attrs, err := CanonicalAttrs(map[string]any{"n": i, "kind": fmt.Sprint("k", i%5), "tags": []string{"a", fmt.Sprint(i % 3)}})
			if err != nil {
				return err
			}
			if err := tx.PutRecord(id, Record{ID: ext, Attrs: attrs}); err != nil {
				return err
			}
			post.Update(id, nil, attrs)
			v := make([]float32, 8)
			for j := range v {
				v[j] = float32(i*8 + j)
			}
			if err := tx.PutVector("img", id, v); err != nil {
				return err
			}
			if _, err := tx.logChange(id, "img", OpPut); err != nil {
				return err
			}
		}
		return tx.ApplyPostings(&post)
	}))
	require.NoError(t, s.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, data
}

// pageSizeOf reads the page size from a sound file's first meta page.
func pageSizeOf(data []byte) int {
	return int(binary.NativeEndian.Uint32(data[pageHeaderSize+8:]))
}

// resum rewrites the checksum of the meta page at off after a test edited
// it, so the edit is what the check sees.
func resum(b []byte, off int) {
	h := fnv.New64a()
	h.Write(b[off+pageHeaderSize : off+pageHeaderSize+metaSumSize])
	binary.NativeEndian.PutUint64(b[off+pageHeaderSize+metaSumSize:], h.Sum64())
}

func TestCheckLayout(t *testing.T) {
	_, good := buildFile(t, 50)
	ps := pageSizeOf(good)
	l, err := checkLayout(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	require.NotEqual(t, noFreelist, l.meta.freelist)
	fl := int(l.meta.freelist) * ps
	// cur is the offset of the meta page in use.
	cur := 0
	if l.meta.txid%2 == 1 {
		cur = ps
	}
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	setMeta := func(field int, v uint64) func([]byte) {
		return func(b []byte) {
			binary.NativeEndian.PutUint64(b[cur+pageHeaderSize+field:], v)
			resum(b, cur)
		}
	}
	tests := []struct {
		name string
		data []byte
		err  error
		msg  string
	}{
		{"sound", good, nil, ""},
		{"empty", nil, ErrNotDatabase, "no bbolt meta"},
		{"text", []byte("hello, this is not a database at all, not even close to one....................."), ErrNotDatabase, "no bbolt meta"},
		{"zeros", make([]byte, 4*ps), ErrNotDatabase, "no bbolt meta"},
		{"truncated to 100 bytes", good[:100], ErrCorrupt, "truncated"},
		{"truncated to one page", good[:ps], ErrCorrupt, "truncated"},
		{"truncated to 8192 bytes", good[:8192], ErrCorrupt, "truncated"},
		{"truncated by a byte", good[:int(l.meta.pgid)*ps-1], ErrCorrupt, "truncated"},
		{"both metas damaged", edit(func(b []byte) { b[pageHeaderSize+20]++; b[ps+pageHeaderSize+20]++ }), ErrCorrupt, "checksum"},
		{"page size not a power of two", edit(func(b []byte) {
			for _, off := range []int{0, ps} {
				binary.NativeEndian.PutUint32(b[off+pageHeaderSize+8:], 3000)
				resum(b, off)
			}
		}), ErrCorrupt, "page size"},
		{"root past the end", edit(setMeta(16, 1<<40)), ErrCorrupt, "root page"},
		{"root is a meta page", edit(setMeta(16, 1)), ErrCorrupt, "root page"},
		{"high-water mark past the end", edit(setMeta(40, uint64(len(good)/ps+1))), ErrCorrupt, "truncated"},
		{"huge high-water mark", edit(setMeta(40, 0xF000000000000000)), ErrCorrupt, "truncated"},
		{"freelist past the end", edit(setMeta(32, 1<<33)), ErrCorrupt, "freelist page"},
		{"freelist page zeroed", edit(func(b []byte) { clear(b[fl : fl+ps]) }), ErrCorrupt, "freelist page"},
		{"freelist count too big", edit(func(b []byte) { binary.NativeEndian.PutUint16(b[fl+10:], 0xFFFE) }), ErrCorrupt, "free pages"},
		{"freelist extended count too big", edit(func(b []byte) {
			binary.NativeEndian.PutUint16(b[fl+10:], 0xFFFF)
			binary.NativeEndian.PutUint64(b[fl+pageHeaderSize:], 1<<62)
		}), ErrCorrupt, "free pages"},
		{"freelist overflow past the end", edit(func(b []byte) { binary.NativeEndian.PutUint32(b[fl+12:], 1<<20) }), ErrCorrupt, "overflows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkLayout(bytes.NewReader(tc.data), int64(len(tc.data)))
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.err)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

// TestCheckLayoutFallsBack: a damaged newest meta page is not fatal when
// the other one is sound; bbolt uses the other, and so does the check.
func TestCheckLayoutFallsBack(t *testing.T) {
	_, good := buildFile(t, 20)
	ps := pageSizeOf(good)
	l, err := checkLayout(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	for _, off := range []int{0, ps} {
		b := bytes.Clone(good)
		b[off+pageHeaderSize+48]++ // txid, without fixing the checksum
		got, err := checkLayout(bytes.NewReader(b), int64(len(b)))
		require.NoError(t, err)
		if m := parseMeta(good[off:]); m.txid == l.meta.txid {
			assert.Less(t, got.meta.txid, l.meta.txid, "falls back to the older meta")
		} else {
			assert.Equal(t, l.meta.txid, got.meta.txid)
		}
	}
}

// TestOpenDamagedFile: Open refuses a truncated file or a damaged freelist
// with ErrCorrupt naming the file, read-write and read-only, instead of
// the SIGBUS or assertion bbolt would die of.
func TestOpenDamagedFile(t *testing.T) {
	path, good := buildFile(t, 200)
	ps := pageSizeOf(good)
	l, err := checkLayout(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	zeroFreelist := bytes.Clone(good)
	clear(zeroFreelist[int(l.meta.freelist)*ps:][:ps])
	tests := map[string][]byte{
		"truncated to 8192": good[:8192],
		"truncated by half": good[:len(good)/2],
		"truncated by 1":    good[:int(l.meta.pgid)*ps-1],
		"zeroed freelist":   zeroFreelist,
	}
	dir := filepath.Dir(path)
	for name, data := range tests {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", name, ro), func(t *testing.T) {
				p := filepath.Join(dir, "damaged.mmdb")
				require.NoError(t, os.WriteFile(p, data, 0o600))
				s, err := Open(p, &Options{ReadOnly: ro})
				if err == nil {
					s.Close()
				}
				require.ErrorIs(t, err, ErrCorrupt)
				assert.ErrorContains(t, err, p)
				after, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.Equal(t, data, after, "a refused file is left as it was")
			})
		}
	}
}

// FuzzCheckLayout: whatever the bytes, checkLayout returns a layout whose
// pages all lie in the file, or an error wrapping ErrCorrupt or
// ErrNotDatabase; it never panics.
func FuzzCheckLayout(f *testing.F) {
	good := smallBolt(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("not a database"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := checkLayout(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !assert.True(t, errorsIsAny(err, ErrCorrupt, ErrNotDatabase), err) {
				t.FailNow()
			}
			return
		}
		ps := l.pageSize
		assert.GreaterOrEqual(t, ps, int64(minPageSize))
		assert.LessOrEqual(t, l.meta.pgid*uint64(ps), uint64(len(b)))
		assert.Less(t, l.meta.root, l.meta.pgid)
		if l.meta.freelist != noFreelist {
			assert.Less(t, l.meta.freelist, l.meta.pgid)
		}
	})
}
