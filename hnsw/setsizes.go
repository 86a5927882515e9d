package hnsw

import (
	"math"

	"github.com/RoaringBitmap/roaring/v2"
)

// setSizes maps a set's ID to its number of vectors (0: no set), in pages
// of sizePage IDs allocated as IDs are first used (and kept when their
// sets go), so that counting the sets an allow-list names and their
// vectors costs a slice read an ID: with a map lookup an ID it took 73% of
// a filtered set search at 50% of 25,000 sets allowed.
type setSizes struct {
	pages map[uint32]*[sizePage]uint16
}

// sizePage is how many IDs a page of setSizes holds (512 bytes).
const sizePage = 256

// set records that id's set has n vectors (0: id has none).
func (s *setSizes) set(id uint32, n int) {
	p := s.pages[id/sizePage]
	if p == nil {
		if n == 0 {
			return
		}
		if s.pages == nil {
			s.pages = map[uint32]*[sizePage]uint16{}
		}
		p = new([sizePage]uint16)
		s.pages[id/sizePage] = p
	}
	p[id%sizePage] = uint16(n)
}

// count returns how many of allow's IDs have a set, and the vectors of
// those sets; all is how many sets there are. It walks allow, or the
// pages when allow names more IDs than there are sets.
func (s *setSizes) count(allow *roaring.Bitmap, all int) (sets, vectors int) {
	if allow.GetCardinality() > uint64(all) {
		for pi, p := range s.pages {
			for j, n := range p {
				if n > 0 && allow.Contains(pi*sizePage+uint32(j)) {
					sets++
					vectors += int(n)
				}
			}
		}
		return sets, vectors
	}
	var buf [256]uint32
	cur, page := uint32(math.MaxUint32), (*[sizePage]uint16)(nil)
	it := allow.ManyIterator()
	for n := it.NextMany(buf[:]); n > 0; n = it.NextMany(buf[:]) {
		for _, id := range buf[:n] {
			if id/sizePage != cur {
				cur, page = id/sizePage, s.pages[id/sizePage]
			}
			if page != nil && page[id%sizePage] > 0 {
				sets++
				vectors += int(page[id%sizePage])
			}
		}
	}
	return sets, vectors
}

// bytes is about what s holds in memory.
func (s *setSizes) bytes() int64 {
	return int64(len(s.pages)) * (2*sizePage + 8 + mapEntryBytes)
}
