package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
)

// The checks in this file read a bbolt file with plain, bounds-checked file
// reads before bbolt maps it. bbolt trusts its meta page: a file cut short
// or a damaged freelist page makes it read past the end of its mapping
// (SIGBUS) or trip an assertion, and neither can be recovered from
// reliably. The layout below is bbolt's (version 2), read independently.

// bbolt's on-disk constants.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	metaSize         = 64 // the meta struct after the page header
	metaSumSize      = 56 // the bytes the meta checksum covers
	elemSize         = 16 // a branch or leaf page element
	bucketHeaderSize = 16 // root u64, sequence u64

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafBucket   = 0x01

	noFreelist = ^uint64(0)

	// Page sizes bbolt could have written: it probes 1 KiB to 16 MiB.
	minPageSize = 1 << 10
	maxPageSize = 1 << 24
)

// boltMeta is a decoded bbolt meta page.
type boltMeta struct {
	magic, version, pageSize, flags uint32
	root, sequence, freelist, pgid  uint64
	txid, checksum                  uint64
	sum                             uint64 // the checksum computed over the bytes
}

// valid reports what bbolt's own Meta.Validate checks: magic, version and
// checksum.
func (m boltMeta) valid() bool {
	return m.magic == boltMagic && m.version == boltVersion && m.checksum == m.sum
}

// parseMeta decodes the meta page whose page header starts at b[0]; b
// holds at least pageHeaderSize+metaSize bytes. bbolt writes the meta in
// the machine's byte order.
func parseMeta(b []byte) boltMeta {
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(m[:metaSumSize])
	return boltMeta{
		magic:    e.Uint32(m[0:]),
		version:  e.Uint32(m[4:]),
		pageSize: e.Uint32(m[8:]),
		flags:    e.Uint32(m[12:]),
		root:     e.Uint64(m[16:]),
		sequence: e.Uint64(m[24:]),
		freelist: e.Uint64(m[32:]),
		pgid:     e.Uint64(m[40:]),
		txid:     e.Uint64(m[48:]),
		checksum: e.Uint64(m[56:]),
		sum:      h.Sum64(),
	}
}

// pageHeader is a decoded bbolt page header.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func parsePageHeader(b []byte) pageHeader {
	e := binary.NativeEndian
	return pageHeader{id: e.Uint64(b), flags: e.Uint16(b[8:]), count: e.Uint16(b[10:]), overflow: e.Uint32(b[12:])}
}

// fileLayout is what checkLayout learned of a sound file.
type fileLayout struct {
	size     int64    // the file's size in bytes
	pageSize int64    // bbolt's page size
	meta     boltMeta // the meta page bbolt will use
}

// readMetaAt reads the meta page at off, reporting false when the file
// holds too few bytes there.
func readMetaAt(r io.ReaderAt, size, off int64) (boltMeta, bool) {
	if off < 0 || off > size-(pageHeaderSize+metaSize) {
		return boltMeta{}, false
	}
	var b [pageHeaderSize + metaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	return parseMeta(b[:]), true
}

// corruptf returns an error wrapping ErrCorrupt that says the file is
// damaged.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: damaged file: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// checkLayout validates the meta pages of the bbolt file r (size bytes)
// as bbolt will use them, and the freelist page the chosen meta names. A
// file without bbolt's magic in either meta page gives ErrNotDatabase; a
// bbolt file that is truncated or damaged gives ErrCorrupt saying how.
func checkLayout(r io.ReaderAt, size int64) (fileLayout, error) {
	// Find the page size as bbolt does: from the first meta page if it is
	// valid, else from the second, probed at every page size bbolt allows.
	var ps int64
	sawMagic := false
	m0, ok := readMetaAt(r, size, 0)
	sawMagic = ok && m0.magic == boltMagic
	if ok && m0.valid() {
		ps = int64(m0.pageSize)
	} else {
		for off := int64(minPageSize); off <= maxPageSize; off <<= 1 {
			m, ok := readMetaAt(r, size, off)
			if !ok {
				break
			}
			sawMagic = sawMagic || m.magic == boltMagic
			if m.valid() {
				ps = int64(m.pageSize)
				break
			}
		}
	}
	if ps == 0 {
		if !sawMagic {
			return fileLayout{}, fmt.Errorf("%w: no bbolt meta page", ErrNotDatabase)
		}
		if size < 2*minPageSize {
			return fileLayout{}, corruptf("truncated to %d bytes, less than two pages", size)
		}
		return fileLayout{}, corruptf("both meta pages fail their checksum")
	}
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return fileLayout{}, corruptf("meta page gives page size %d", ps)
	}
	if size < 2*ps {
		return fileLayout{}, corruptf("truncated to %d bytes, less than its two %d-byte meta pages", size, ps)
	}
	m0, _ = readMetaAt(r, size, 0)
	m1, _ := readMetaAt(r, size, ps)
	// bbolt uses the valid meta with the higher transaction ID.
	a, b := m0, m1
	if m1.txid > m0.txid {
		a, b = m1, m0
	}
	var m boltMeta
	switch {
	case a.valid():
		m = a
	case b.valid():
		m = b
	default:
		return fileLayout{}, corruptf("both meta pages fail their checksum")
	}
	if int64(m.pageSize) != ps {
		return fileLayout{}, corruptf("meta pages disagree on the page size (%d and %d)", ps, m.pageSize)
	}
	pages := uint64(size / ps)
	if m.pgid > pages {
		return fileLayout{}, corruptf("truncated: the file is %d bytes, its header says %d pages of %d (%d bytes)", size, m.pgid, ps, m.pgid*uint64(ps))
	}
	if m.pgid < 3 {
		return fileLayout{}, corruptf("meta page says the file has %d pages", m.pgid)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fileLayout{}, corruptf("root page %d outside pages 2..%d", m.root, m.pgid-1)
	}
	l := fileLayout{size: size, pageSize: ps, meta: m}
	if m.freelist == noFreelist {
		return l, nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid || m.freelist == m.root {
		return fileLayout{}, corruptf("freelist page %d outside pages 2..%d", m.freelist, m.pgid-1)
	}
	if err := checkFreelist(r, ps, m); err != nil {
		return fileLayout{}, err
	}
	return l, nil
}

// checkFreelist validates the freelist page: its header, that its count
// fits in its pages, and that every page it lists is one that could be
// free (2 .. high-water mark, each once).
func checkFreelist(r io.ReaderAt, ps int64, m boltMeta) error {
	var hb [pageHeaderSize + 8]byte
	if _, err := r.ReadAt(hb[:], int64(m.freelist)*ps); err != nil {
		return corruptf("freelist page %d: %v", m.freelist, err)
	}
	h := parsePageHeader(hb[:])
	if h.flags != flagFreelist {
		return corruptf("freelist page %d has page flags %#x", m.freelist, h.flags)
	}
	if h.id != m.freelist {
		return corruptf("freelist page %d says it is page %d", m.freelist, h.id)
	}
	if uint64(h.overflow) >= m.pgid-m.freelist {
		return corruptf("freelist page %d overflows by %d pages past the last page %d", m.freelist, h.overflow, m.pgid-1)
	}
	span := (uint64(h.overflow) + 1) * uint64(ps)
	start, count := uint64(pageHeaderSize), uint64(h.count)
	if h.count == 0xFFFF {
		count = binary.NativeEndian.Uint64(hb[pageHeaderSize:])
		start += 8
	}
	if count > (span-start)/8 {
		return corruptf("freelist page %d claims %d free pages, its %d bytes hold at most %d", m.freelist, count, span, (span-start)/8)
	}
	if count > m.pgid {
		return corruptf("freelist page %d claims %d free pages of %d", m.freelist, count, m.pgid)
	}
	if count == 0 {
		return nil
	}
	buf := make([]byte, count*8)
	if _, err := r.ReadAt(buf, int64(m.freelist)*ps+int64(start)); err != nil {
		return corruptf("freelist page %d: %v", m.freelist, err)
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = binary.NativeEndian.Uint64(buf[8*i:])
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id < 2 || id >= m.pgid {
			return corruptf("freelist lists page %d, outside pages 2..%d", id, m.pgid-1)
		}
		if i > 0 && ids[i-1] == id {
			return corruptf("freelist lists page %d twice", id)
		}
	}
	return nil
}

// checkFile runs checkLayout on the file at path, and when the file keeps
// no freelist and is opened for writing (bbolt then rebuilds the freelist
// by walking every page, in a goroutine where a damaged page is fatal), the
// page walk too.
func checkFile(path string, writable bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	l, err := checkLayout(f, fi.Size())
	if err != nil {
		return err
	}
	if writable && l.meta.freelist == noFreelist {
		if errs := walkPages(f, l.pageSize, l.meta.pgid, l.meta.root, noFreelist, 1); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	return nil
}
