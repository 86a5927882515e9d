package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// A bounds-checked walk of a bbolt file's B-tree pages. bbolt's own
// Tx.Check follows page ids and element offsets through unsafe pointers in
// a goroutine of its own: on a damaged page it reads outside its mapping
// and the process dies with a fault that cannot be recovered. This walk
// reads every page with ReadAt, checks every id, offset and length before
// using it, and reports what it finds as errors wrapping ErrCorrupt.

// maxWalkErrors bounds the problems one walk reports; past it the file is
// plainly broken and the rest would be noise.
const maxWalkErrors = 100

// maxTreeDepth bounds the nesting of pages and buckets the walk follows. A
// sound file is a few levels deep; this only stops runaway recursion.
const maxTreeDepth = 256

type pageWalker struct {
	r    io.ReaderAt
	ps   int64
	hwm  uint64   // pages below it are in use
	seen []uint64 // bitset of pages reached
	errs []error
}

// walkPages walks the B-tree of the bbolt file r from the root bucket's
// root page: every page id must lie below the high-water mark hwm, no page
// may be reached twice, page headers must name their own id and a branch
// or leaf type, every element and key must lie within its page's span,
// keys must be in order within each page and between a branch and its
// children, and every bucket value must be well formed. freelist is the
// freelist page (its pages count as reached) or noFreelist. It stops after
// maxErrs problems (at most maxWalkErrors).
func walkPages(r io.ReaderAt, pageSize int64, hwm, root, freelist uint64, maxErrs int) []error {
	w := &pageWalker{r: r, ps: pageSize, hwm: hwm, seen: make([]uint64, (hwm+63)/64)}
	if maxErrs <= 0 || maxErrs > maxWalkErrors {
		maxErrs = maxWalkErrors
	}
	w.mark(0)
	w.mark(1)
	if freelist != noFreelist && freelist < hwm {
		if h, err := w.header(freelist); err == nil {
			for i := uint64(0); i <= uint64(h.overflow) && freelist+i < hwm; i++ {
				w.mark(freelist + i)
			}
		}
	}
	w.tree(root, "root bucket", nil, nil, 0, maxErrs)
	return w.errs
}

func (w *pageWalker) fail(maxErrs int, format string, args ...any) {
	if len(w.errs) < maxErrs {
		w.errs = append(w.errs, corruptf(format, args...))
	}
}

// mark records page id as reached and reports whether it was already.
func (w *pageWalker) mark(id uint64) (again bool) {
	word, bit := id/64, uint64(1)<<(id%64)
	again = w.seen[word]&bit != 0
	w.seen[word] |= bit
	return again
}

func (w *pageWalker) header(id uint64) (pageHeader, error) {
	var b [pageHeaderSize]byte
	if _, err := w.r.ReadAt(b[:], int64(id)*w.ps); err != nil {
		return pageHeader{}, err
	}
	return parsePageHeader(b[:]), nil
}

// pageBytes is one page's span: the first page read whole, the overflow
// read only where an element points into it.
type pageBytes struct {
	r    io.ReaderAt
	base int64 // file offset of the page
	span uint64
	head []byte
}

// at returns n bytes at offset off of the span, or false if they lie
// outside it or cannot be read.
func (p *pageBytes) at(off, n uint64) ([]byte, bool) {
	if off > p.span || n > p.span-off {
		return nil, false
	}
	if off+n <= uint64(len(p.head)) {
		return p.head[off : off+n], true
	}
	if p.r == nil {
		return nil, false
	}
	b := make([]byte, n)
	if _, err := p.r.ReadAt(b, p.base+int64(off)); err != nil {
		return nil, false
	}
	return b, true
}

// tree checks the page id of a bucket's B-tree (and, through its leaves,
// the buckets nested in it). Its keys must lie in [lo, hi) (nil: open).
func (w *pageWalker) tree(id uint64, where string, lo, hi []byte, depth, maxErrs int) {
	if len(w.errs) >= maxErrs {
		return
	}
	if depth > maxTreeDepth {
		w.fail(maxErrs, "%s: page %d: pages nest deeper than %d", where, id, maxTreeDepth)
		return
	}
	if id < 2 || id >= w.hwm {
		w.fail(maxErrs, "%s: page %d outside pages 2..%d", where, id, w.hwm-1)
		return
	}
	h, err := w.header(id)
	if err != nil {
		w.fail(maxErrs, "%s: page %d: %v", where, id, err)
		return
	}
	if h.id != id {
		w.fail(maxErrs, "%s: page %d says it is page %d", where, id, h.id)
		return
	}
	if uint64(h.overflow) >= w.hwm-id {
		w.fail(maxErrs, "%s: page %d overflows by %d pages past the last page %d", where, id, h.overflow, w.hwm-1)
		return
	}
	for i := uint64(0); i <= uint64(h.overflow); i++ {
		if w.mark(id + i) {
			w.fail(maxErrs, "%s: page %d is reached twice", where, id+i)
			return
		}
	}
	span := (uint64(h.overflow) + 1) * uint64(w.ps)
	head := make([]byte, w.ps)
	if _, err := w.r.ReadAt(head, int64(id)*w.ps); err != nil {
		w.fail(maxErrs, "%s: page %d: %v", where, id, err)
		return
	}
	p := &pageBytes{r: w.r, base: int64(id) * w.ps, span: span, head: head}
	switch h.flags {
	case flagBranch:
		w.branch(p, h, id, where, lo, hi, depth, maxErrs)
	case flagLeaf:
		w.leaf(p, h, fmt.Sprintf("%s: page %d", where, id), lo, hi, depth, maxErrs, false)
	default:
		w.fail(maxErrs, "%s: page %d has page flags %#x, not a branch or leaf", where, id, h.flags)
	}
}

func (w *pageWalker) branch(p *pageBytes, h pageHeader, id uint64, where string, lo, hi []byte, depth, maxErrs int) {
	if h.count == 0 {
		w.fail(maxErrs, "%s: branch page %d has no elements", where, id)
		return
	}
	table, ok := p.at(pageHeaderSize, uint64(h.count)*elemSize)
	if !ok {
		w.fail(maxErrs, "%s: branch page %d: %d elements overrun the page", where, id, h.count)
		return
	}
	keys := make([][]byte, h.count)
	children := make([]uint64, h.count)
	e := binary.NativeEndian
	for i := range int(h.count) {
		el := table[i*elemSize:]
		pos, ksize := uint64(e.Uint32(el)), uint64(e.Uint32(el[4:]))
		children[i] = e.Uint64(el[8:])
		k, ok := p.at(pageHeaderSize+uint64(i)*elemSize+pos, ksize)
		if !ok || ksize == 0 {
			w.fail(maxErrs, "%s: branch page %d element %d: key of %d bytes at %d lies outside the page", where, id, i, ksize, pos)
			return
		}
		if !w.keyInOrder(fmt.Sprintf("%s: branch page %d", where, id), i, k, keys, lo, hi, maxErrs) {
			return
		}
		keys[i] = k
	}
	for i, c := range children {
		next := hi
		if i+1 < len(keys) {
			next = keys[i+1]
		}
		w.tree(c, where, keys[i], next, depth+1, maxErrs)
	}
}

// keyInOrder checks element i's key k against the keys before it and the
// range [lo, hi).
func (w *pageWalker) keyInOrder(where string, i int, k []byte, prev [][]byte, lo, hi []byte, maxErrs int) bool {
	switch {
	case i > 0 && bytes.Compare(prev[i-1], k) >= 0:
		w.fail(maxErrs, "%s: key %d (%x) is not after key %d (%x)", where, i, k, i-1, prev[i-1])
	case i == 0 && lo != nil && bytes.Compare(k, lo) < 0:
		w.fail(maxErrs, "%s: key %d (%x) is before its parent's key (%x)", where, i, k, lo)
	case hi != nil && bytes.Compare(k, hi) >= 0:
		w.fail(maxErrs, "%s: key %d (%x) is not before the parent's next key (%x)", where, i, k, hi)
	default:
		return true
	}
	return false
}

// leaf checks a leaf page's elements and the buckets they hold. inline is
// true for the page of an inline bucket, which holds no buckets.
func (w *pageWalker) leaf(p *pageBytes, h pageHeader, where string, lo, hi []byte, depth, maxErrs int, inline bool) {
	table, ok := p.at(pageHeaderSize, uint64(h.count)*elemSize)
	if !ok {
		w.fail(maxErrs, "%s: %d elements overrun the page", where, h.count)
		return
	}
	e := binary.NativeEndian
	keys := make([][]byte, h.count)
	for i := range int(h.count) {
		el := table[i*elemSize:]
		flags, pos := e.Uint32(el), uint64(e.Uint32(el[4:]))
		ksize, vsize := uint64(e.Uint32(el[8:])), uint64(e.Uint32(el[12:]))
		off := pageHeaderSize + uint64(i)*elemSize + pos
		k, ok := p.at(off, ksize)
		if !ok || ksize == 0 {
			w.fail(maxErrs, "%s: element %d: key of %d bytes at %d lies outside the page", where, i, ksize, pos)
			return
		}
		if vsize > p.span-(off+ksize) {
			w.fail(maxErrs, "%s: element %d: value of %d bytes lies outside the page", where, i, vsize)
			return
		}
		if !w.keyInOrder(where, i, k, keys, lo, hi, maxErrs) {
			return
		}
		keys[i] = k
		switch {
		case flags == 0: // a plain key and value
		case flags == leafBucket && inline:
			w.fail(maxErrs, "%s: element %d (%x): an inline bucket holds a bucket", where, i, k)
			return
		case flags == leafBucket:
			if vsize < bucketHeaderSize {
				w.fail(maxErrs, "%s: bucket %q: a %d-byte bucket header", where, k, vsize)
				return
			}
			v, ok := p.at(off+ksize, vsize)
			if !ok {
				w.fail(maxErrs, "%s: bucket %q: unreadable", where, k)
				return
			}
			w.bucket(v, fmt.Sprintf("%s / bucket %q", where, k), depth+1, maxErrs)
		default:
			w.fail(maxErrs, "%s: element %d (%x) has flags %#x", where, i, k, flags)
			return
		}
		if len(w.errs) >= maxErrs {
			return
		}
	}
}

// bucket checks a bucket value: its tree when it has a root page, else
// its inline page.
func (w *pageWalker) bucket(v []byte, where string, depth, maxErrs int) {
	if depth > maxTreeDepth {
		w.fail(maxErrs, "%s: buckets nest deeper than %d", where, maxTreeDepth)
		return
	}
	root := binary.NativeEndian.Uint64(v)
	if root != 0 {
		w.tree(root, where, nil, nil, depth, maxErrs)
		return
	}
	page := v[bucketHeaderSize:]
	if len(page) < pageHeaderSize {
		w.fail(maxErrs, "%s: inline bucket of %d bytes has no page header", where, len(page))
		return
	}
	h := parsePageHeader(page)
	if h.flags != flagLeaf {
		w.fail(maxErrs, "%s: inline bucket has page flags %#x, not a leaf", where, h.flags)
		return
	}
	p := &pageBytes{span: uint64(len(page)), head: page}
	w.leaf(p, h, where+" (inline)", nil, nil, depth, maxErrs, true)
}
