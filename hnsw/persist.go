package hnsw

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/mmdb-go/mmdb/modality"
)

const (
	hnswMagic = "MMHN"
	// hnswVersion 2 added the centre and the rows of byte codes; version
	// 1 files load, with slot 0's vector as the centre and their rows
	// computed at load.
	hnswVersion = 2
	// linksVersion is version 2 without the vectors and the rows: what
	// SaveLinks writes.
	linksVersion = 3
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
	h.slotMu.Lock()
	used := h.used
	size := 52 + 4*len(h.free) + 4*len(h.centre) + 8*used
	version := uint32(hnswVersion)
	if vectors {
		size += 4 * used * (h.dim + h.m0 + 1)
		if h.rows != nil {
			size += used * h.rowSize
		}
	} else {
		// Version 3 writes each layer-0 block as its count and the
		// links it holds, not the whole block, and the vectors of
		// tombstones only.
		version = linksVersion
		for s := range used {
			size += 4 * (1 + int(h.links0[s*(h.m0+1)]))
		}
		size += 4 * h.dim * h.tombstones
	}
	for s := range used {
		size += 4 * len(h.upper[s])
	}
	f := newFrame(hnswMagic, version, size)
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
	for s := range used {
		lv := uint32(h.levels[s])
		if h.deleted[s] != 0 {
			lv |= 1 << 31
		}
		f.u32(h.ids[s])
		f.u32(lv)
	}
	if vectors {
		f.f32s(h.vecs[:used*h.dim])
		f.u32s(h.links0[:used*(h.m0+1)])
	} else {
		for s := range used {
			b := h.links0[s*(h.m0+1) : (s+1)*(h.m0+1)]
			f.u32s(b[:1+b[0]])
		}
	}
	for s := range used {
		if h.levels[s] > 0 {
			f.u32s(h.upper[s])
		}
	}
	if !vectors {
		// A tombstone's vector is in no store, and walks still go
		// through it: it is saved so a reload walks as before.
		free := make([]bool, used)
		for _, s := range h.free {
			free[s] = true
		}
		for s := range used {
			if h.deleted[s] != 0 && !free[s] {
				f.f32s(h.vecs[s*h.dim : (s+1)*h.dim])
			}
		}
	}
	switch {
	case !vectors:
	case h.rows != nil:
		f.u32(uint32(h.rowSize))
		f.bytes(h.rows[:used*h.rowSize])
	default:
		f.u32(0)
	}
	h.slotMu.Unlock()
	h.mu.RUnlock()
	return f.writeTo(w)
}

// Load implements Index. The saved dimension and metric must match the
// index's; M and the ef settings are taken from the data. Every count,
// level and link is checked, so damaged input is an error wrapping
// ErrFormat, never a panic or an out-of-range walk later. A *bytes.Buffer
// is parsed in place, without a copy of the whole input; Load keeps no
// reference to its bytes.
func (h *HNSW) Load(r io.Reader) error {
	_, err := h.load(r, nil)
	return err
}

// LoadLinks implements LinkSaver. It also loads what Save wrote, whose
// vectors are in the file (vec is not called then).
func (h *HNSW) LoadLinks(r io.Reader, vec func(id uint32, dst []float32) bool) ([]uint32, error) {
	return h.load(r, vec)
}

func (h *HNSW) load(r io.Reader, vec func(id uint32, dst []float32) bool) ([]uint32, error) {
	fr, version, err := openFrameVersions(r, hnswMagic, 1, linksVersion)
	if err != nil {
		return nil, err
	}
	inline := version < linksVersion // the vectors are in the file
	if !inline && vec == nil {
		return nil, fmt.Errorf("%w: saved without its vectors (SaveLinks): load it with LoadLinks", ErrFormat)
	}
	dim, metric := int(fr.u32()), modality.Metric(fr.u32())
	m, efc, efs := int(fr.u32()), int(fr.u32()), int(fr.u32())
	used64, entry := fr.u64(), fr.u64()
	if fr.err != nil {
		return nil, fr.err
	}
	if dim != h.dim || metric != h.metric {
		return nil, fmt.Errorf("%w: saved dim %d metric %v, index has dim %d metric %v", ErrFormat, dim, metric, h.dim, h.metric)
	}
	if m < 2 || m > 1024 || efc <= 0 || efc > maxEf || efs <= 0 || efs > maxEf {
		return nil, fmt.Errorf("%w: M %d, efConstruction %d, efSearch %d out of range", ErrFormat, m, efc, efs)
	}
	if used64 > uint64(len(fr.b))/4 { // each slot takes at least 4 bytes
		return nil, fmt.Errorf("%w: %d slots cannot fit in %d bytes", ErrFormat, used64, len(fr.b))
	}
	// Version 2 holds every slot's whole link block, so the graph's
	// arrays are bounded by the input; version 3 holds only the links in
	// use, and a crafted M would size the blocks at up to 8 KB a slot.
	// Their room is bounded by the input instead: 64 times it, and 1 MiB.
	if !inline && used64*uint64(4*(2*m+1)) > 64*uint64(len(fr.b))+1<<20 {
		return nil, fmt.Errorf("%w: %d slots of M %d in %d bytes", ErrFormat, used64, m, len(fr.b))
	}
	used := int(used64)
	nfree := uint64(fr.u32())
	free := fr.u32s(nfree)
	var centre []float32
	if version >= 2 {
		nc := fr.u32()
		if fr.err == nil && nc != 0 && int(nc) != dim {
			return nil, fmt.Errorf("%w: centre of %d values for dim %d", ErrFormat, nc, dim)
		}
		centre = fr.f32s(uint64(nc))
		for _, x := range centre {
			if !finite(x) {
				return nil, fmt.Errorf("%w: centre holds %v", ErrFormat, x)
			}
		}
	}
	meta := fr.u32s(2 * used64)
	m0 := 2 * m
	// The vectors and layer-0 links must fit in what is left before the
	// graph's arrays are sized for them.
	inFile := uint64(1) // version 3: at least a count a block
	if inline {
		inFile = uint64(dim + m0 + 1)
	}
	if fr.err == nil && !fr.need(4*used64*inFile) {
		return nil, fr.err
	}
	if fr.err != nil {
		return nil, fr.err
	}
	n := NewHNSW(dim, metric, Config{M: m, EfConstruction: efc, EfSearch: efs, Seed: h.cfg.Seed ^ used64, Float32Walk: h.cfg.Float32Walk})
	n.grow(used)
	n.used = used
	n.slotOf = make(map[uint32]uint32, used)
	// Read straight into the graph's arrays: one copy each.
	if inline {
		fr.f32sInto(n.vecs[:used*dim])
		fr.u32sInto(n.links0[:used*(m0+1)])
	} else {
		for s := 0; s < used && fr.err == nil; s++ {
			b := n.links0[s*(m0+1) : (s+1)*(m0+1)]
			c := fr.u32()
			if c > uint32(m0) {
				return nil, fmt.Errorf("%w: link count %d over capacity %d", ErrFormat, c, m0)
			}
			b[0] = c
			fr.u32sInto(b[1 : 1+c])
		}
	}
	if fr.err != nil {
		return nil, fr.err
	}
	n.free = free
	isFree := make([]bool, used)
	for _, s := range free {
		if int(s) >= used || isFree[s] {
			return nil, fmt.Errorf("%w: bad free slot %d", ErrFormat, s)
		}
		isFree[s] = true
	}
	// A link on layer l must lead to a live slot that reaches layer l, or
	// a later walk would index past the target's blocks.
	checkBlock := func(b []uint32, l int) error {
		if c := n.capAt(l); int(b[0]) > c {
			return fmt.Errorf("%w: link count %d over capacity %d", ErrFormat, b[0], c)
		}
		for _, t := range b[1 : 1+b[0]] {
			if int(t) >= used || isFree[t] || int(n.levels[t]) < l {
				return fmt.Errorf("%w: bad link to slot %d on layer %d", ErrFormat, t, l)
			}
		}
		return nil
	}
	for s := range used {
		id, lv := meta[2*s], meta[2*s+1]
		level := int(lv &^ (1 << 31))
		if level > maxLevel {
			return nil, fmt.Errorf("%w: slot %d has level %d", ErrFormat, s, level)
		}
		n.ids[s], n.levels[s] = id, uint8(level)
		if lv&(1<<31) != 0 {
			n.deleted[s] = 1
			if !isFree[s] {
				n.tombstones++
			}
		} else {
			if isFree[s] {
				return nil, fmt.Errorf("%w: free slot %d is live", ErrFormat, s)
			}
			if _, dup := n.slotOf[id]; dup {
				return nil, fmt.Errorf("%w: ID %d is live in two slots", ErrFormat, id)
			}
			n.slotOf[id] = uint32(s)
		}
		if level > 0 {
			n.upper[s] = fr.u32s(uint64(level * (m + 1)))
			if fr.err != nil {
				return nil, fr.err
			}
		}
	}
	var saved []bool
	if !inline {
		saved = make([]bool, used)
		for s := range used {
			if n.deleted[s] != 0 && !isFree[s] {
				v := n.vecs[s*dim : (s+1)*dim]
				fr.f32sInto(v)
				for _, x := range v {
					if !finite(x) {
						return nil, fmt.Errorf("%w: a tombstone's vector holds %v", ErrFormat, x)
					}
				}
				saved[s] = true
			}
		}
	}
	var rows []byte
	if version == hnswVersion {
		rs := uint64(fr.u32())
		if fr.err == nil && rs != 0 && (rs != uint64(n.rowSize) || len(centre) != dim) {
			return nil, fmt.Errorf("%w: rows of %d bytes for dim %d", ErrFormat, rs, dim)
		}
		if rs != 0 {
			rows = fr.bytes(rs * used64)
		}
	}
	if err := fr.done(); err != nil {
		return nil, err
	}
	for s := range used {
		for l := 0; l <= int(n.levels[s]); l++ {
			if err := checkBlock(n.block(uint32(s), l), l); err != nil {
				return nil, err
			}
		}
	}
	var missing []uint32
	if !inline {
		if missing, err = n.fillVectors(vec, isFree, saved); err != nil {
			return nil, err
		}
	}
	if n.rows != nil {
		switch {
		case len(centre) == dim:
			n.centre = centre
		case used > 0:
			// Version 1, or saved under Float32Walk: slot 0 holds the
			// first vector the graph was given, unless its slot was
			// reused; any vector of the data serves.
			n.centre = append([]float32(nil), n.vecs[:dim]...)
		}
		if len(rows) == used*n.rowSize && used > 0 {
			copy(n.rows, rows)
			if err := n.checkScales(used); err != nil {
				return nil, err
			}
		} else {
			n.quantizeAll(used)
		}
	}
	if es := uint32(entry); es != noNode {
		if int(es) >= used || isFree[es] || int(entry>>32) != int(n.levels[es]) {
			return nil, fmt.Errorf("%w: bad entry point", ErrFormat)
		}
	} else if len(n.slotOf) > 0 {
		return nil, fmt.Errorf("%w: no entry point for %d nodes", ErrFormat, len(n.slotOf))
	}
	n.entry.Store(entry)

	h.mu.Lock()
	defer h.mu.Unlock()
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	h.cfg, h.m, h.m0, h.ml, h.rowSize, h.centre = n.cfg, n.m, n.m0, n.ml, n.rowSize, n.centre
	h.codeLines, h.vecLines, h.blockLines0, h.blockLinesUp = n.codeLines, n.vecLines, n.blockLines0, n.blockLinesUp
	h.vecs, h.rows, h.ids, h.levels, h.links0, h.upper, h.deleted, h.nodeMu = n.vecs, n.rows, n.ids, n.levels, n.links0, n.upper, n.deleted, n.nodeMu
	h.entry.Store(entry)
	h.slotOf, h.used, h.free, h.tombstones = n.slotOf, n.used, n.free, n.tombstones
	h.outgrown.Store(h.outgrowsCache())
	h.rng = rand.New(rand.NewPCG(h.cfg.Seed, used64))
	return missing, nil
}

// fillVectors takes the vectors of a graph's live nodes, loaded without
// them, from vec; has marks the slots whose vector is already in place
// (the tombstones', saved in the file). A live node vec has none for is
// returned in missing, and takes the vector of the first node it links to
// on layer 0 that has one (zeros if none does): the caller must see it
// deleted or replaced by the log before any search.
func (n *HNSW) fillVectors(vec func(id uint32, dst []float32) bool, isFree, has []bool) (missing []uint32, err error) {
	for s := range n.used {
		if isFree[s] || n.deleted[s] != 0 {
			continue
		}
		dst := n.vecs[s*n.dim : (s+1)*n.dim]
		if !vec(n.ids[s], dst) {
			missing = append(missing, n.ids[s])
			continue
		}
		for _, x := range dst {
			if !finite(x) {
				return nil, fmt.Errorf("%w: item %d: its stored vector holds %v", ErrFormat, n.ids[s], x)
			}
		}
		has[s] = true
	}
	for s := range n.used {
		if has[s] || isFree[s] {
			continue
		}
		b := n.block(uint32(s), 0)
		for _, t := range b[1 : 1+b[0]] {
			if has[t] {
				copy(n.vecs[s*n.dim:(s+1)*n.dim], n.vecs[int(t)*n.dim:(int(t)+1)*n.dim])
				break
			}
		}
	}
	return missing, nil
}
