package hnsw

import (
	"io"
	"math/bits"
)

const (
	hnswMagic = "MMHN"
	// hnswVersion 2 added the centre and the rows of byte codes; version
	// 1 files load, with slot 0's vector as the centre and their rows
	// computed at load.
	hnswVersion = 2
	// linksVersion is what SaveLinks writes: version 2 without the
	// vectors of live nodes and the rows, and with the IDs, levels and
	// links bit-packed (version 3 wrote them as 32-bit values, and still
	// loads).
	linksVersion = 4
)

// Save implements Index. The format (version 2, little-endian) is: magic
// "MMHN", version, dim, metric, M, efConstruction, efSearch, used slots,
// entry point, free-slot count and list; the centre's length (0 or dim)
// and values; then per slot its ID and level (bit 31: tombstone); all
// vectors; all layer-0 blocks; the upper-layer blocks of each slot with a
// level above 0; the row size (0 under Float32Walk) and the rows of byte
// codes; and a CRC-32C of it all. Loading is a few bulk copies: nothing is
// recomputed. (Version 1 had no centre and no rows: Load quantizes its
// vectors again, on every core.)
func (h *HNSW) Save(w io.Writer) error { return h.save(w, true) }

// SaveLinks implements LinkSaver: Save's format (as version 3) without the
// vectors of live nodes and the rows of codes, which LoadLinks computes
// again, and with each layer-0 block cut to the links it holds. The
// vectors of tombstones are kept: no store has them, and walks still go
// through them, so a graph loaded back walks as the one saved.
func (h *HNSW) SaveLinks(w io.Writer) error { return h.save(w, false) }

func (h *HNSW) save(w io.Writer, vectors bool) error {
	h.writers.Lock()
	defer h.writers.Unlock()
	h.mu.RLock()
	var vecs []float32
	if vectors && h.lowMem() {
		// Read from the source before slotMu is taken: a source's scan
		// calls back into the graph, which takes slotMu (scanSource).
		// The writers' lock keeps the slots as they are meanwhile.
		h.slotMu.Lock()
		used := h.used
		h.slotMu.Unlock()
		vecs = h.readVectors(used)
	}
	h.slotMu.Lock()
	var f *frameWriter
	if vectors {
		f = h.saveFull(vecs)
	} else {
		f = h.saveLinks()
	}
	// Searches go on while the bytes are written, and so may a Reserve.
	h.slotMu.Unlock()
	h.mu.RUnlock()
	return f.writeTo(w)
}

// saveFull lays out version 2 (Save); save holds the locks. vecs holds a
// graph with a Source's vectors (readVectors); nil: the graph's own.
func (h *HNSW) saveFull(vecs []float32) *frameWriter {
	used := h.used
	size := 52 + 4*len(h.free) + 4*len(h.centre) + 8*used + 4*used*(h.dim+h.m0+1)
	if h.rows != nil {
		size += used * h.rowSize
	}
	for s := range used {
		size += 4 * len(h.upperOf(uint32(s)))
	}
	f := newFrame(hnswMagic, hnswVersion, size)
	h.saveHeader(f, used)
	for s := range used {
		lv := uint32(h.levels[s])
		if h.isDead(uint32(s)) {
			lv |= 1 << 31
		}
		f.u32(h.ids[s])
		f.u32(lv)
	}
	if vecs == nil {
		vecs = h.vecs[:used*h.dim]
	}
	f.f32s(vecs)
	f.u32s(h.links0[:used*(h.m0+1)])
	for s := range used {
		if h.levels[s] > 0 {
			f.u32s(h.upperOf(uint32(s)))
		}
	}
	if h.rows != nil {
		f.u32(uint32(h.rowSize))
		f.bytes(h.rows[:used*h.rowSize])
	} else {
		f.u32(0)
	}
	return f
}

// saveHeader writes what every version starts with: the settings, the
// slot count, the entry point, the free slots and the centre.
func (h *HNSW) saveHeader(f *frameWriter, used int) {
	f.u32(uint32(h.dim))
	f.u32(uint32(h.metric))
	f.u32(uint32(h.m))
	f.u32(uint32(h.cfg.EfConstruction))
	f.u32(uint32(h.cfg.EfSearch))
	f.u64(uint64(used))
	f.u64(h.entry.Load())
	f.u32(uint32(len(h.free)))
	f.u32s(h.free)
	f.u32(uint32(len(h.centre)))
	f.f32s(h.centre)
}

// saveLinks writes version 4 (SaveLinks): after the header, bit-packed
// arrays (codec.go), each in the fewest bits its largest value needs: the
// slots' IDs (after their width), their levels (bit 5: tombstone), the
// link count of every block (each slot's layer 0, then the upper layers
// of each slot with a level above 0, lowest first), and all the links in
// that order (after their width); then the vectors of tombstones. save
// holds the locks.
func (h *HNSW) saveLinks() *frameWriter {
	used := h.used
	ids, levels := h.ids[:used], make([]uint32, used)
	var counts, links []uint32
	for s := range used {
		levels[s] = uint32(h.levels[s])
		if h.isDead(uint32(s)) {
			levels[s] |= tombBit
		}
		b := h.links0[s*(h.m0+1) : (s+1)*(h.m0+1)]
		counts = append(counts, b[0])
		links = append(links, b[1:1+b[0]]...)
	}
	for s := range used {
		for l := 1; l <= int(h.levels[s]); l++ {
			b := h.block(uint32(s), l)
			counts = append(counts, b[0])
			links = append(links, b[1:1+b[0]]...)
		}
	}
	var maxID uint32
	for _, id := range ids {
		maxID = max(maxID, id)
	}
	idw, lw := widthOf(maxID), widthOf(uint32(max(used, 1)-1)) // links < used
	cw := countWidth(h.m0)
	size := 64 + 4*len(h.free) + 4*len(h.centre) + 4*h.dim*h.tombstones + 5*packPad +
		(used*int(idw)+used*levelWidth+len(counts)*int(cw)+len(links)*int(lw))/8
	f := newFrame(hnswMagic, linksVersion, size)
	h.saveHeader(f, used)
	f.u32(uint32(idw))
	f.packed(ids, idw)
	f.packed(levels, levelWidth)
	f.packed(counts, cw)
	f.u32(uint32(lw))
	f.packed(links, lw)
	// A tombstone's vector is in no store, and walks still go through
	// it: it is saved so a reload walks as before.
	free := make([]bool, used)
	for _, s := range h.free {
		free[s] = true
	}
	for s := range used {
		if h.isDead(uint32(s)) && !free[s] {
			v, _ := h.slotVector(uint32(s), false)
			f.f32s(v)
		}
	}
	return f
}

// Version 4's fixed widths: a level (0 to 31) and its tombstone bit.
const (
	levelWidth = 6
	tombBit    = 1 << 5
)

// widthOf is the bits that hold values up to v (at least 1).
func widthOf(v uint32) uint { return uint(max(bits.Len32(v), 1)) }

// countWidth is the bits of a link count on a graph of layer-0 capacity m0.
func countWidth(m0 int) uint { return widthOf(uint32(m0)) }
