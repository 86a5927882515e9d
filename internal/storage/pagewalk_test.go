package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func walkBytes(t testing.TB, b []byte) ([]error, error) {
	l, err := checkLayout(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	return walkPages(bytes.NewReader(b), l.pageSize, l.meta.pgid, l.meta.root, l.meta.freelist, maxWalkErrors), nil
}

// TestWalkPagesSound: the walk finds nothing wrong with a sound file, and
// Tx.Check (the walk, then bbolt's check) reports nothing.
func TestWalkPagesSound(t *testing.T) {
	path, good := buildFile(t, 300)
	errs, err := walkBytes(t, good)
	require.NoError(t, err)
	assert.Empty(t, errs)
	s, err := Open(path, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.View(func(tx *Tx) error {
		assert.Empty(t, tx.Check())
		return nil
	}))
}

// TestWalkPagesDamaged zeroes, and fills with garbage, every page of a
// file in turn. Every page the meta or the tree uses must be reported (the
// freelist by checkLayout, tree pages by the walk), and Tx.Check on a copy
// that opens must return the problems instead of panicking or faulting
// in bbolt's check goroutine.
func TestWalkPagesDamaged(t *testing.T) {
	path, good := buildFile(t, 300)
	ps := pageSizeOf(good)
	l, err := checkLayout(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	// The pages in use: reached by the walk, plus the freelist.
	w := &pageWalker{r: bytes.NewReader(good), ps: int64(ps), hwm: l.meta.pgid, seen: make([]uint64, (l.meta.pgid+63)/64)}
	w.tree(l.meta.root, "root", nil, nil, 0, maxWalkErrors)
	require.Empty(t, w.errs)
	dir := filepath.Dir(path)
	fills := map[string]func(p []byte){
		"zeroed":  func(p []byte) { clear(p) },
		"garbage": func(p []byte) { fillGarbage(p, 7) },
		"bad elements": func(p []byte) {
			// Keep the header, spoil the element table.
			for i := pageHeaderSize; i+16 <= len(p) && i < 256; i += 16 {
				binary.NativeEndian.PutUint32(p[i+4:], 0xFFFFFF00)
			}
		},
	}
	for name, fill := range fills {
		for id := 2; id < int(l.meta.pgid); id++ {
			used := w.seen[id/64]&(1<<(id%64)) != 0
			if !used && name != "zeroed" {
				continue
			}
			t.Run(fmt.Sprintf("%s/page%d", name, id), func(t *testing.T) {
				b := bytes.Clone(good)
				fill(b[id*ps : (id+1)*ps])
				errs, err := walkBytes(t, b)
				if err != nil {
					require.ErrorIs(t, err, ErrCorrupt)
					assert.Equal(t, l.meta.freelist, uint64(id), "only the freelist page fails the layout check")
					return
				}
				if used {
					require.NotEmpty(t, errs, "damage to tree page %d goes unreported", id)
					for _, e := range errs {
						require.ErrorIs(t, e, ErrCorrupt)
					}
				} else {
					assert.Empty(t, errs)
				}
				if id%7 != 0 && used {
					return // Tx.Check on a sample: it reopens the file
				}
				p := filepath.Join(dir, "damaged.mmdb")
				require.NoError(t, os.WriteFile(p, b, 0o600))
				s, err := Open(p, &Options{ReadOnly: true})
				if err != nil {
					require.ErrorIs(t, err, ErrCorrupt)
					return
				}
				defer s.Close()
				var problems []error
				err = s.View(func(tx *Tx) error { problems = tx.Check(); return nil })
				require.NoError(t, err)
				if used {
					assert.NotEmpty(t, problems)
				}
			})
		}
	}
}

// fillGarbage fills p with deterministic pseudo-random bytes.
func fillGarbage(p []byte, seed uint64) {
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
}

// TestCheckReportsBadTree builds trees that bbolt's own check would walk
// into unsafely: a child page id past the end, a cycle, unsorted keys.
func TestCheckReportsBadTree(t *testing.T) {
	_, good := buildFile(t, 300)
	ps := pageSizeOf(good)
	l, err := checkLayout(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	root := int(l.meta.root) * ps
	h := parsePageHeader(good[root:])
	require.Equal(t, uint16(flagLeaf), h.flags, "the root bucket's page is a leaf in this file")
	require.GreaterOrEqual(t, h.count, uint16(2))
	// The items bucket has its own tree; find its root through the
	// walker's view of the root page's elements.
	tests := []struct {
		name string
		edit func(b []byte)
		msg  string
	}{
		{"page says another id", func(b []byte) { binary.NativeEndian.PutUint64(b[root:], 9999) }, "says it is page"},
		{"unknown element flags", func(b []byte) { binary.NativeEndian.PutUint32(b[root+pageHeaderSize:], 7) }, "flags"},
		{"keys out of order", func(b []byte) {
			// Swap the first two element headers of the root page.
			e0 := bytes.Clone(b[root+16 : root+32])
			copy(b[root+16:root+32], b[root+32:root+48])
			copy(b[root+32:root+48], e0)
		}, ""},
		{"too many elements", func(b []byte) { binary.NativeEndian.PutUint16(b[root+10:], 0xFFFF) }, "overrun"},
		{"overflow past the end", func(b []byte) { binary.NativeEndian.PutUint32(b[root+12:], 1<<30) }, "overflows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.edit(b)
			errs, err := walkBytes(t, b)
			require.NoError(t, err)
			require.NotEmpty(t, errs)
			require.ErrorIs(t, errs[0], ErrCorrupt)
			assert.ErrorContains(t, errs[0], tc.msg)
		})
	}
}

// TestGuardRecoversFaults: a panic inside View or Update, as bbolt gives on
// a damaged page, is an error wrapping ErrCorrupt, and the store stays
// usable.
func TestGuardRecoversFaults(t *testing.T) {
	path, _ := buildFile(t, 3)
	s, err := Open(path, nil)
	require.NoError(t, err)
	defer s.Close()
	err = s.View(func(tx *Tx) error { panic("assertion failed: page 7") })
	require.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "assertion failed: page 7")
	err = s.Update(func(tx *Tx) error {
		if _, err := tx.AllocID("new"); err != nil {
			return err
		}
		keys := tx.Check()  // nil on a sound file
		_ = keys[len(keys)] // a runtime panic: index out of range
		return nil
	})
	require.ErrorIs(t, err, ErrCorrupt)
	require.NoError(t, s.View(func(tx *Tx) error {
		_, ok := tx.LookupID("new")
		assert.False(t, ok, "the panicking write was rolled back")
		return nil
	}))
	require.NoError(t, s.Update(func(tx *Tx) error { _, err := tx.AllocID("new"); return err }))
}

// TestPostingUnsorted: a stored bitmap that unmarshals but breaks
// roaring's invariants (an array container out of order) is ErrCorrupt
// naming the attribute, on read and on the write that would change it,
// where roaring's RunOptimize would panic.
func TestPostingUnsorted(t *testing.T) {
	path, _ := buildFile(t, 10)
	bm := roaring.BitmapOf(1, 2, 3)
	data, err := bm.ToBytes()
	require.NoError(t, err)
	// The three uint16 values end the encoding: reverse them.
	n := len(data)
	require.Equal(t, []byte{1, 0, 2, 0, 3, 0}, data[n-6:])
	copy(data[n-6:], []byte{3, 0, 2, 0, 1, 0})
	bdb, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	key, _ := EncodeValue("k1")
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(postBucketName("kind")).Put(key, data)
	}))
	require.NoError(t, bdb.Close())

	s, err := Open(path, nil)
	require.NoError(t, err)
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		_, err := tx.PostingEqual("kind", "k1")
		return err
	})
	require.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "posting kind")
	var d PostingDelta
	d.Update(77, nil, map[string]any{"kind": "k1"})
	err = s.Update(func(tx *Tx) error { return tx.ApplyPostings(&d) })
	require.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "posting kind")
	_, err = DecodeBitmap([]byte{0x3b, 0x30, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	assert.ErrorIs(t, err, ErrCorrupt)
}

// FuzzWalkPages: whatever the bytes of the file, checkLayout and the page
// walk return errors wrapping ErrCorrupt (or ErrNotDatabase), never panic,
// and read nothing outside the file.
func FuzzWalkPages(f *testing.F) {
	good := smallBolt(f)
	f.Add(good)
	ps := pageSizeOf(good)
	for id := 2; id*ps < len(good); id++ {
		b := bytes.Clone(good)
		fillGarbage(b[id*ps+16:(id+1)*ps], uint64(id))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		errs, err := walkBytes(t, b)
		if err != nil {
			if !assert.True(t, errorsIsAny(err, ErrCorrupt, ErrNotDatabase), err) {
				t.FailNow()
			}
			return
		}
		assert.LessOrEqual(t, len(errs), maxWalkErrors)
		for _, e := range errs {
			if !assert.ErrorIs(t, e, ErrCorrupt) {
				t.FailNow()
			}
		}
	})
}

// smallBolt writes a bbolt file of 1 KiB pages holding a branch page, a
// bucket with its own tree, an inline bucket and a nested one, trimmed to
// its high-water mark: a seed small enough for the fuzzers to mutate.
func smallBolt(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.db")
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		big, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		for i := range 60 {
			if err := big.Put(be32(uint32(i)), bytes.Repeat([]byte{byte(i)}, 20)); err != nil {
				return err
			}
		}
		inline, err := tx.CreateBucket([]byte("inline"))
		if err != nil {
			return err
		}
		if err := inline.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		nested, err := big.CreateBucket([]byte("zz-nested"))
		if err != nil {
			return err
		}
		return nested.Put([]byte("a"), []byte("b"))
	}))
	var size int64
	require.NoError(t, bdb.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }))
	require.NoError(t, bdb.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data[:size]
}

func TestSmallBoltWalks(t *testing.T) {
	b := smallBolt(t)
	errs, err := walkBytes(t, b)
	require.NoError(t, err)
	assert.Empty(t, errs)
	assert.Less(t, len(b), 16<<10)
}
