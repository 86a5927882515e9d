package hnsw

// Re-centring. The codes quantize x - centre, and the centre is the
// graph's first vector. A code distance's error grows with how far the
// query and the node lie from the centre, so data that drifts away from
// the first vector (a store that began with one odd item, then filled
// with another distribution) is scored on ever coarser codes. A graph
// that keeps its float32 vectors re-scores what its walk found and links
// on exact distances, and hardly notices; a graph with a Source links on
// codes, and lost recall: 32-d data shifted 5 from a first vector at the
// origin searched at recall@10 0.72 against 1.00 (TestRecentre).
//
// So the centre is checked against the data at the moments the codes are
// computed anyway (loading a file that holds no codes) and at each
// checkpoint (Recentre), on a sample of the live vectors. It moves to the
// sample's mean only when it is stale: farther from the mean than
// staleSpread times the data's spread. A first vector typical of the data
// lies about one spread from the mean, so an ordinary graph keeps its
// centre, and its codes and answers, across a save and a load.

// centreSample is how many live vectors the check reads, at most: evenly
// spaced slots, so a check costs the same at any size.
const centreSample = 1024

// staleSpread is how many times the data's spread (the mean squared
// distance of a vector from the mean) the squared distance between the
// centre and the mean may reach before the centre is stale. A code
// distance's error scales with about |q - centre|·|x - centre|, which for
// a typical q and x is the spread plus that squared distance: the mean as
// centre would make it 4 times smaller at this bound.
const staleSpread = 3

// slotReader reads the float32 vectors of slots into dst, dim values a
// slot, and sets found[i] to whether slots[i]'s was read.
type slotReader func(slots []uint32, dst []float32, found []bool)

// sampleSlots returns up to centreSample of the first used slots that live
// reports live, evenly spaced.
func sampleSlots(used int, live func(slot uint32) bool) []uint32 {
	step := max(1, used/centreSample)
	out := make([]uint32, 0, min(used, centreSample))
	for s := 0; s < used && len(out) < centreSample; s += step {
		if live(uint32(s)) {
			out = append(out, uint32(s))
		}
	}
	return out
}

// staleCentre reads the vectors of slots and returns their mean if the
// graph's centre is stale against them (staleSpread), else nil. Vectors
// that are not found or hold a value that is not finite are left out.
func (h *HNSW) staleCentre(slots []uint32, read slotReader) []float32 {
	if h.centre == nil || len(slots) == 0 {
		return nil
	}
	const batch = 64
	dst := make([]float32, batch*h.dim)
	found := make([]bool, batch)
	sum := make([]float64, h.dim) // of x - centre
	var sq float64                // of |x - centre|²
	cnt := 0
	for len(slots) > 0 {
		b := slots[:min(batch, len(slots))]
		slots = slots[len(b):]
		read(b, dst[:len(b)*h.dim], found[:len(b)])
		for i := range b {
			v := dst[i*h.dim : (i+1)*h.dim]
			if !found[i] || !allFinite(v) {
				continue
			}
			for j, x := range v {
				d := float64(x) - float64(h.centre[j])
				sum[j] += d
				sq += d * d
			}
			cnt++
		}
	}
	if cnt == 0 {
		return nil
	}
	var off float64 // |mean - centre|²
	for j := range sum {
		sum[j] /= float64(cnt)
		off += sum[j] * sum[j]
	}
	spread := sq/float64(cnt) - off
	if off <= staleSpread*max(spread, 0) {
		return nil
	}
	mean := make([]float32, h.dim)
	for j, d := range sum {
		mean[j] = float32(float64(h.centre[j]) + d)
	}
	if !allFinite(mean) {
		return nil
	}
	return mean
}

// checkCentre moves the centre of a graph being loaded, whose codes are
// about to be computed, to the mean of its live vectors if it is stale,
// and reports whether it moved.
func (n *HNSW) checkCentre(read slotReader) bool {
	live := func(s uint32) bool { return !n.isDead(s) }
	c := n.staleCentre(sampleSlots(n.used, live), read)
	if c != nil {
		n.centre = c
	}
	return c != nil
}

// allFinite reports whether every value of v is finite.
func allFinite(v []float32) bool {
	for _, x := range v {
		if !finite(x) {
			return false
		}
	}
	return true
}

// vecReader reads slots from the graph's own float32 vectors.
func (h *HNSW) vecReader(slots []uint32, dst []float32, found []bool) {
	for i, s := range slots {
		copy(dst[i*h.dim:(i+1)*h.dim], h.vec(s))
		found[i] = true
	}
}

// sourceReader reads slots from the graph's Source.
func (h *HNSW) sourceReader(slots []uint32, dst []float32, found []bool) {
	h.readSlots(slots, dst, found, nil)
}

// Recentre moves the centre of the codes to the mean of a sample of the
// live vectors if it has gone stale (see staleSpread), and re-encodes
// every node's codes around it; it reports whether it did. A graph with a
// Source reads the vectors from it, once (a scan where the source can);
// a tombstone, whose vector the source no longer holds, is re-encoded
// from its old codes. The sample is read while searches and writes go
// on; a re-encoding holds the graph exclusively, so they wait for it. The
// database calls it when it checkpoints. A graph that walks on float32
// vectors (Float32Walk) has no codes and does nothing.
func (h *HNSW) Recentre() bool {
	mean := h.staleMean()
	if mean == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	old := h.centre
	h.centre = mean
	if !h.lowMem() {
		h.quantizeAll(h.used)
		return true
	}
	h.reencode(old)
	return true
}

// staleMean returns the mean of a sample of the live vectors if the
// centre is stale against it, else nil. It holds mu shared.
func (h *HNSW) staleMean() []float32 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.rows == nil || h.centre == nil {
		return nil
	}
	h.slotMu.Lock()
	used := h.used
	h.slotMu.Unlock()
	read := h.vecReader
	if h.lowMem() {
		read = h.sourceReader
	}
	live := func(s uint32) bool { return !h.isDead(s) }
	return h.staleCentre(sampleSlots(used, live), read)
}

// reencode re-encodes the codes of a graph with a Source around its new
// centre: each live node's from its vector in the source, a tombstone's
// (or a node's the source lacks) from its codes around old, the centre
// they were encoded around. mu and slotMu are held.
func (h *HNSW) reencode(old []float32) {
	done := make([]bool, h.used)
	tmp := make([]float32, h.dim)
	encode := func(s uint32, v []float32) {
		h.quantize(s, v, tmp)
		done[s] = true
	}
	if sc, ok := h.cfg.Source.(VectorScanner); ok {
		sc.ScanVectors(h.dim, func(id uint32, v []float32) {
			if s, ok := h.slotOf.get(id); ok && !h.isDead(s) && allFinite(v) {
				encode(s, v)
			}
		})
	} else {
		const batch = 256
		dst := make([]float32, batch*h.dim)
		found := make([]bool, batch)
		slots := make([]uint32, 0, batch)
		for s := 0; s < h.used; s += batch {
			slots = slots[:0]
			for t := s; t < min(s+batch, h.used); t++ {
				if !h.isDead(uint32(t)) {
					slots = append(slots, uint32(t))
				}
			}
			h.sourceReader(slots, dst, found)
			for i, t := range slots {
				if v := dst[i*h.dim : (i+1)*h.dim]; found[i] && allFinite(v) {
					encode(t, v)
				}
			}
		}
	}
	free := make([]bool, h.used)
	for _, s := range h.free {
		free[s] = true
	}
	v := make([]float32, h.dim)
	for s := range h.used {
		if done[s] || free[s] {
			continue
		}
		codes, sc := h.row(uint32(s))
		for i, b := range codes {
			v[i] = sc.lo + sc.step*float32(b) + old[i]
		}
		h.quantize(uint32(s), v, tmp)
	}
}
