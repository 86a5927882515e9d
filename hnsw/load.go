package hnsw

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/mmdb-go/mmdb/modality"
)

// Loading what persist.go saves: every version this build reads.

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
	inline := version < 3 // the vectors are in the file
	if !inline && vec == nil {
		return nil, fmt.Errorf("%w: saved without its vectors (SaveLinks): load it with LoadLinks", ErrFormat)
	}
	n, entry, centre, err := h.loadHeader(fr, version)
	if err != nil {
		return nil, err
	}
	if n.streamsCodes() && len(centre) == n.dim {
		n.centre = centre // else the first vector read (encodeRead)
	}
	used := n.used
	var meta []uint32
	if version == linksVersion {
		meta, err = n.readPacked(fr)
	} else {
		meta, err = n.readBlocks(fr, inline)
	}
	if err != nil {
		return nil, err
	}
	isFree := make([]bool, used)
	for _, s := range n.free {
		if int(s) >= used || isFree[s] {
			return nil, fmt.Errorf("%w: bad free slot %d", ErrFormat, s)
		}
		isFree[s] = true
	}
	if err := n.loadNodes(meta, isFree); err != nil {
		return nil, err
	}
	if n.streamsCodes() {
		// Before any row is encoded (the tombstones' next).
		n.checkCentre(func(slots []uint32, dst []float32, found []bool) {
			for i, s := range slots {
				found[i] = vec(n.ids[s], dst[i*n.dim:(i+1)*n.dim])
			}
		})
	}
	var saved []bool
	if !inline {
		if saved, err = n.readTombstones(fr, isFree); err != nil {
			return nil, err
		}
	}
	var rows []byte
	if version == hnswVersion {
		rs := uint64(fr.u32())
		if fr.err == nil && rs != 0 && (rs != uint64(n.rowSize) || len(centre) != n.dim) {
			return nil, fmt.Errorf("%w: rows of %d bytes for dim %d", ErrFormat, rs, n.dim)
		}
		if rs != 0 {
			rows = fr.bytes(rs * uint64(used))
		}
	}
	if err := fr.done(); err != nil {
		return nil, err
	}
	if err := n.checkBlocks(isFree); err != nil {
		return nil, err
	}
	var missing []uint32
	if !inline {
		if missing, err = n.fillVectors(vec, isFree, saved); err != nil {
			return nil, err
		}
	}
	if err := n.loadCodes(centre, rows); err != nil {
		return nil, err
	}
	if es := uint32(entry); es != noNode {
		if int(es) >= used || isFree[es] || int(entry>>32) != int(n.levels[es]) {
			return nil, fmt.Errorf("%w: bad entry point", ErrFormat)
		}
	} else if n.slotOf.len() > 0 {
		return nil, fmt.Errorf("%w: no entry point for %d nodes", ErrFormat, n.slotOf.len())
	}
	n.entry.Store(entry)
	if n.lowMem() {
		n.vecs = nil // they served to compute the codes
	}
	h.adopt(n)
	return missing, nil
}

// loadHeader reads what saveHeader wrote, checks it against h and against
// the input's size, and returns a graph with room for the saved slots.
func (h *HNSW) loadHeader(fr *frameReader, version uint32) (n *HNSW, entry uint64, centre []float32, err error) {
	dim, metric := int(fr.u32()), modality.Metric(fr.u32())
	m, efc, efs := int(fr.u32()), int(fr.u32()), int(fr.u32())
	used64, entry := fr.u64(), fr.u64()
	if fr.err != nil {
		return nil, 0, nil, fr.err
	}
	if dim != h.dim || metric != h.metric {
		return nil, 0, nil, fmt.Errorf("%w: saved dim %d metric %v, index has dim %d metric %v", ErrFormat, dim, metric, h.dim, h.metric)
	}
	if m < 2 || m > 1024 || efc <= 0 || efc > maxEf || efs <= 0 || efs > maxEf {
		return nil, 0, nil, fmt.Errorf("%w: M %d, efConstruction %d, efSearch %d out of range", ErrFormat, m, efc, efs)
	}
	if used64 > uint64(len(fr.b))/4 { // a slot takes 4 bytes or more
		return nil, 0, nil, fmt.Errorf("%w: %d slots cannot fit in %d bytes", ErrFormat, used64, len(fr.b))
	}
	// Versions 1 and 2 hold every slot's whole link block, so the graph's
	// arrays are bounded by the input; later ones hold only the links in
	// use, and a crafted M would size the blocks at up to 8 KB a slot.
	// Their room is bounded by the input instead: 64 times it, and 1 MiB.
	if version >= 3 && used64*uint64(4*(2*m+1)) > 64*uint64(len(fr.b))+1<<20 {
		return nil, 0, nil, fmt.Errorf("%w: %d slots of M %d in %d bytes", ErrFormat, used64, m, len(fr.b))
	}
	free := fr.u32s(uint64(fr.u32()))
	if version >= 2 {
		nc := fr.u32()
		if fr.err == nil && nc != 0 && int(nc) != dim {
			return nil, 0, nil, fmt.Errorf("%w: centre of %d values for dim %d", ErrFormat, nc, dim)
		}
		centre = fr.f32s(uint64(nc))
		for _, x := range centre {
			if !finite(x) {
				return nil, 0, nil, fmt.Errorf("%w: centre holds %v", ErrFormat, x)
			}
		}
	}
	// What versions 1 to 3 hold for each slot must fit in what is left
	// before the graph's arrays are sized for them: its ID and level, its
	// vector and whole layer-0 block (1 and 2), or its link count (3).
	// Version 4's fields are checked as they are unpacked.
	var perSlot uint64
	switch version {
	case 1, 2:
		perSlot = 8 + 4*uint64(dim+2*m+1)
	case 3:
		perSlot = 12
	}
	if fr.err == nil && !fr.need(used64*perSlot) {
		return nil, 0, nil, fr.err
	}
	if fr.err != nil {
		return nil, 0, nil, fr.err
	}
	used := int(used64)
	n = NewHNSW(dim, metric, Config{M: m, EfConstruction: efc, EfSearch: efs, Seed: h.cfg.Seed ^ used64, Float32Walk: h.cfg.Float32Walk, Source: h.cfg.Source})
	n.resize(used) // exactly: a graph loads at its saved size
	if n.lowMem() && version < 3 {
		// Versions 1 and 2 hold the vectors inline: they are read in to
		// compute the codes, then let go. Later versions' are encoded as
		// they are read, one at a time (streamCodes).
		n.vecs = make([]float32, used*dim)
	}
	n.used = used
	n.free = free
	n.slotOf = newSlotMap(used)
	return n, entry, centre, nil
}

// readBlocks reads versions 1 to 3's slots: the IDs and levels (meta,
// two values a slot), the vectors when inline, the layer-0 blocks (whole
// in versions 1 and 2, cut to their count in 3) and the upper blocks.
func (n *HNSW) readBlocks(fr *frameReader, inline bool) (meta []uint32, err error) {
	meta = fr.u32s(2 * uint64(n.used)) // loadHeader checked the sizes
	if fr.err != nil {
		return nil, fr.err
	}
	if inline {
		fr.f32sInto(n.vecs[:n.used*n.dim])
		fr.u32sInto(n.links0[:n.used*(n.m0+1)])
	} else {
		for s := 0; s < n.used && fr.err == nil; s++ {
			b := n.block(uint32(s), 0)
			c := fr.u32()
			if c > uint32(n.m0) {
				return nil, fmt.Errorf("%w: link count %d over capacity %d", ErrFormat, c, n.m0)
			}
			b[0] = c
			fr.u32sInto(b[1 : 1+c])
		}
	}
	for s := 0; s < n.used && fr.err == nil; s++ {
		level := int(meta[2*s+1] &^ (1 << 31))
		if level > maxLevel {
			return nil, fmt.Errorf("%w: slot %d has level %d", ErrFormat, s, level)
		}
		if level > 0 {
			n.setUpper(uint32(s), fr.u32s(uint64(level*(n.m+1))))
		}
	}
	return meta, fr.err
}

// readPacked reads version 4's slots (saveLinks) into the graph's blocks,
// and returns their IDs and levels as readBlocks does.
func (n *HNSW) readPacked(fr *frameReader) (meta []uint32, err error) {
	used := uint64(n.used)
	idw := uint(fr.u32())
	if fr.err != nil {
		return nil, fr.err
	}
	if !fr.fits(used, idw) {
		return nil, fmt.Errorf("%w: %d IDs of %d bits", ErrFormat, used, idw)
	}
	fr.unpackInto(n.ids[:used], idw)
	levels := make([]uint32, used)
	fr.unpackInto(levels, levelWidth)
	if fr.err != nil {
		return nil, fr.err
	}
	var upper uint64 // blocks above layer 0
	for _, lv := range levels {
		upper += uint64(lv &^ tombBit)
	}
	blocks, cw := used+upper, countWidth(n.m0)
	if !fr.fits(blocks, cw) {
		return nil, fmt.Errorf("%w: %d link counts do not fit", ErrFormat, blocks)
	}
	// The upper blocks' room is bounded as loadHeader bounds layer 0's.
	if upper*uint64(4*(n.m+1)) > 64*uint64(len(fr.b))+1<<20 {
		return nil, fmt.Errorf("%w: %d upper-layer blocks of M %d in %d bytes", ErrFormat, upper, n.m, len(fr.b))
	}
	for s, lv := range levels {
		if level := int(lv &^ tombBit); level > 0 {
			n.setUpper(uint32(s), make([]uint32, level*(n.m+1)))
		}
	}
	counts := make([]uint32, blocks)
	fr.unpackInto(counts, cw)
	var total uint64
	for _, c := range counts {
		total += uint64(c)
	}
	lw := uint(fr.u32())
	if fr.err != nil {
		return nil, fr.err // before total, unchecked yet, sizes anything
	}
	if !fr.fits(total, lw) {
		return nil, fmt.Errorf("%w: %d links of %d bits do not fit", ErrFormat, total, lw)
	}
	links := fr.stream(total, lw)
	if fr.err != nil {
		return nil, fr.err
	}
	meta = make([]uint32, 2*used)
	next := 0
	fill := func(s, l int) error {
		c := counts[next]
		if int(c) > n.capAt(l) {
			return fmt.Errorf("%w: link count %d over capacity %d", ErrFormat, c, n.capAt(l))
		}
		b := n.block(uint32(s), l)
		b[0] = c
		if !links.take(b[1 : 1+c]) {
			return fmt.Errorf("%w: fewer links than their counts", ErrFormat)
		}
		next++
		return nil
	}
	for s, lv := range levels {
		meta[2*s], meta[2*s+1] = n.ids[s], lv&^tombBit
		if lv&tombBit != 0 {
			meta[2*s+1] |= 1 << 31
		}
		if err := fill(s, 0); err != nil {
			return nil, err
		}
	}
	for s, lv := range levels {
		for l := 1; l <= int(lv&^tombBit); l++ {
			if err := fill(s, l); err != nil {
				return nil, err
			}
		}
	}
	return meta, nil
}

// loadNodes sets each slot's ID, level and tombstone flag from meta, and
// maps the live IDs to their slots. The readers have checked the levels.
func (n *HNSW) loadNodes(meta []uint32, isFree []bool) error {
	for s := range n.used {
		id, lv := meta[2*s], meta[2*s+1]
		n.ids[s], n.levels[s] = id, uint8(lv&^(1<<31))
		if lv&(1<<31) != 0 {
			n.setDead(uint32(s), true)
			if !isFree[s] {
				n.tombstones++
			}
			continue
		}
		if isFree[s] {
			return fmt.Errorf("%w: free slot %d is live", ErrFormat, s)
		}
		if _, dup := n.slotOf.get(id); dup {
			return fmt.Errorf("%w: ID %d is live in two slots", ErrFormat, id)
		}
		n.slotOf.set(id, uint32(s))
	}
	return nil
}

// readTombstones reads the tombstones' vectors (versions 3 and 4), and
// returns which slots have theirs in place.
func (n *HNSW) readTombstones(fr *frameReader, isFree []bool) ([]bool, error) {
	saved := make([]bool, n.used)
	tmp := n.readBuf()
	for s := range n.used {
		if !n.isDead(uint32(s)) || isFree[s] {
			continue
		}
		v := n.readInto(uint32(s), tmp)
		fr.f32sInto(v)
		if fr.err != nil {
			return nil, fr.err
		}
		for _, x := range v {
			if !finite(x) {
				return nil, fmt.Errorf("%w: a tombstone's vector holds %v", ErrFormat, x)
			}
		}
		n.encodeRead(uint32(s), v, tmp)
		saved[s] = true
	}
	return saved, nil
}

// checkBlocks checks every link: on layer l it must lead to a live slot
// that reaches layer l, or a later walk would index past the target's
// blocks.
func (n *HNSW) checkBlocks(isFree []bool) error {
	for s := range n.used {
		for l := 0; l <= int(n.levels[s]); l++ {
			b := n.block(uint32(s), l)
			if c := n.capAt(l); int(b[0]) > c {
				return fmt.Errorf("%w: link count %d over capacity %d", ErrFormat, b[0], c)
			}
			for _, t := range b[1 : 1+b[0]] {
				if int(t) >= n.used || isFree[t] || int(n.levels[t]) < l {
					return fmt.Errorf("%w: bad link to slot %d on layer %d", ErrFormat, t, l)
				}
			}
		}
	}
	return nil
}

// loadCodes sets the centre and the rows of byte codes: the saved ones
// (version 2), or computed from the vectors.
func (n *HNSW) loadCodes(centre []float32, rows []byte) error {
	if n.rows == nil {
		return nil
	}
	if n.streamsCodes() {
		// Encoded as they were read. A graph with no vector (empty, or
		// every slot free) keeps no centre: its first Add sets it, as in
		// a new graph.
		return nil
	}
	switch {
	case len(centre) == n.dim:
		n.centre = centre
	case n.used > 0:
		// Version 1, or saved under Float32Walk: slot 0 holds the
		// first vector the graph was given, unless its slot was
		// reused; any vector of the data serves.
		n.centre = append([]float32(nil), n.vecs[:n.dim]...)
	}
	if len(rows) == n.used*n.rowSize && n.used > 0 {
		copy(n.rows, rows)
		if err := n.checkScales(n.used); err != nil {
			return err
		}
		// Computed again from the vectors: the same codes, and the norm
		// term as it is now (files saved before 2026-12-03 hold another,
		// see scale). The file format has no mark of which term it holds,
		// so every version-2 file pays the encoding (about 0.6 µs a 128-d
		// vector, on all cores).
		n.quantizeAll(n.used)
		return nil
	}
	n.checkCentre(n.vecReader)
	n.quantizeAll(n.used)
	return nil
}

// adopt makes h the graph n, loaded.
func (h *HNSW) adopt(n *HNSW) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	h.cfg, h.m, h.m0, h.ml, h.rowSize, h.centre = n.cfg, n.m, n.m0, n.ml, n.rowSize, n.centre
	h.codeLines, h.vecLines, h.blockLines0, h.blockLinesUp = n.codeLines, n.vecLines, n.blockLines0, n.blockLinesUp
	h.vecs, h.rows, h.ids, h.levels, h.links0, h.upper, h.deleted = n.vecs, n.rows, n.ids, n.levels, n.links0, n.upper, n.deleted
	h.upperBytes.Store(n.upperBytes.Load())
	h.entry.Store(n.entry.Load())
	h.slotOf, h.used, h.free, h.tombstones = n.slotOf, n.used, n.free, n.tombstones
	h.outgrown.Store(h.outgrowsCache())
	h.rng = rand.New(rand.NewPCG(h.cfg.Seed, uint64(n.used)))
	h.sinceCentre.Store(0) // its centre was checked at load if it had no codes
	h.centreAt.Store(int64(n.slotOf.len()))
}

// fillVectors takes the vectors of a graph's live nodes, loaded without
// them, from vec; has marks the slots whose vector is already in place
// (the tombstones', saved in the file). A live node vec has none for is
// returned in missing, and takes the vector of the first node it links to
// on layer 0 that has one (zeros if none does): the caller must see it
// deleted or replaced by the log before any search.
func (n *HNSW) fillVectors(vec func(id uint32, dst []float32) bool, isFree, has []bool) (missing []uint32, err error) {
	tmp := n.readBuf()
	for s := range n.used {
		if isFree[s] || n.isDead(uint32(s)) {
			continue
		}
		dst := n.readInto(uint32(s), tmp)
		if !vec(n.ids[s], dst) {
			missing = append(missing, n.ids[s])
			continue
		}
		for _, x := range dst {
			if !finite(x) {
				return nil, fmt.Errorf("%w: item %d: its stored vector holds %v", ErrFormat, n.ids[s], x)
			}
		}
		n.encodeRead(uint32(s), dst, tmp)
		has[s] = true
	}
	for s := range n.used {
		if has[s] || isFree[s] {
			continue
		}
		n.stealVector(uint32(s), has, tmp)
	}
	return missing, nil
}

// Streaming the codes. A graph with a Source keeps no float32 vectors, and
// loading one from a file that holds none (versions 3 and 4) does not
// gather them either: each vector is encoded into its row as it is read,
// so loading peaks at the graph's own size, not at the vectors'.

// streamsCodes reports whether this graph, being loaded, encodes each
// vector as it is read (no float32 array was allocated for them).
func (n *HNSW) streamsCodes() bool { return n.vecs == nil && n.rows != nil }

// readBuf returns scratch for one vector when codes are streamed.
func (n *HNSW) readBuf() []float32 {
	if n.streamsCodes() {
		return make([]float32, 2*n.dim)
	}
	return nil
}

// readInto returns where slot's vector is read to: its place in the
// float32 array, or tmp's first half when codes are streamed.
func (n *HNSW) readInto(slot uint32, tmp []float32) []float32 {
	if n.streamsCodes() {
		return tmp[:n.dim]
	}
	return n.vec(slot)
}

// encodeRead encodes v, slot's vector just read into readInto's buffer,
// when codes are streamed. With no saved centre the first vector read
// becomes it: the first tombstone's, else the first live node's (where a
// graph loading its vectors whole takes slot 0's; any vector of the data
// serves, as in loadCodes).
func (n *HNSW) encodeRead(slot uint32, v, tmp []float32) {
	if !n.streamsCodes() {
		return
	}
	if n.centre == nil {
		n.centre = append([]float32(nil), v...)
	}
	n.quantize(slot, v, tmp[n.dim:])
}

// stealVector gives slot, whose vector the source lacks, the vector of the
// first node it links to on layer 0 that has one, or zeros (fillVectors).
// Streamed, the neighbour's row is copied: the codes of the same vector.
func (n *HNSW) stealVector(slot uint32, has []bool, tmp []float32) {
	b := n.block(slot, 0)
	for _, t := range b[1 : 1+b[0]] {
		if !has[t] {
			continue
		}
		if n.streamsCodes() {
			o, p := int(slot)*n.rowSize, int(t)*n.rowSize
			copy(n.rows[o:o+n.rowSize], n.rows[p:p+n.rowSize])
		} else {
			copy(n.vec(slot), n.vec(t))
		}
		return
	}
	// With no centre yet (no vector read at all), the row stays zero
	// rather than make zeros the centre for the graph's life.
	if n.streamsCodes() && n.centre != nil {
		clear(tmp[:n.dim])
		n.encodeRead(slot, tmp[:n.dim], tmp)
	}
}
