package hnsw

// Re-centring. The codes quantize x - centre, each row on its own scale
// (its values' range over 255), and the centre is the graph's first
// vector. Data that lies away from it, by a different offset on each axis
// (a store that began with one odd item, then filled with another
// distribution), makes every row's values span those offsets, so the
// step grows and the codes coarsen. A graph that keeps its float32
// vectors re-scores what its walk found and links on exact distances, and
// hardly notices; a graph with a Source links on codes, and lost recall:
// 32-d data 5 standard-normal offsets from a first vector at -3 searched
// at recall@10 0.90 against 1.00 re-centred, while a search read back a
// fixed number of its nodes. It now reads back those the codes' error
// leaves in doubt (rescoreFromSource), so a stale centre costs reads,
// about 6 times as many a search, more than recall (TestRecentre); and
// recall where a search reads few (0.78 against 0.97 at ef 10,
// TestLowMemoryFollowsDrift). (How the L2 estimate uses the codes
// mattered more still, see scale.)
//
// So the centre is checked against the data as the graph grows (each time
// the inserts since the last check reach the live nodes counted then: at
// 64, 128, 256... nodes in a build, so links are chosen on good codes
// early), at the moments the codes are computed anyway (loading a file
// that holds no codes: SaveLinks wrote it) and at each checkpoint
// (Recentre: deletes and partial replacements move the data without
// growing the graph), on a sample of the live vectors. It moves to the
// sample's mean only when it is stale (staleSpread). A first vector
// typical of the data lies about one spread from the mean, so an ordinary
// graph keeps its centre, and its codes and answers, across a save and a
// load. A file that holds codes (Save) keeps its centre; a file with no
// centre at all (saved under Float32Walk) takes the first vector read, as
// before.

// centreSample is how many live vectors the check reads, at most: evenly
// spaced slots, so a check costs the same at any size.
const centreSample = 1024

// staleSpread is how many times the data's spread (the mean squared
// distance of a vector from the mean) the squared distance between the
// centre and the mean may reach before the centre is stale. A row's step
// is the range of its x - centre over 255, so an offset between centre
// and data that differs across axes widens every row's range, and the
// rounding with it (the L2 estimate's error is 2(q - x)·e, see scale).
// With the mean as centre the range is the data's own. Data that drifts
// steadily along one direction from its first vector tends to 3 times
// (the variance of a uniform spread is a third of its half-range
// squared), so the bound sits below that. A typical first vector of
// d-dimensional Gaussian data exceeds it with the chance that a
// chi-square of d degrees exceeds 2d: about 15 graphs in 100 at 1-d and
// 2-d, 4 at 8-d, 1 in 1,000 at 32-d, practically none above (a simulation
// agreed; they re-centre once: the mean is then the centre, and stays).
const staleSpread = 2

// minCentreCheck is the fewest inserts between the checks Add runs.
const minCentreCheck = 64

// maybeRecentre runs Recentre once the inserts since the last check reach
// the live nodes counted then (at least minCentreCheck): a check each time
// the graph doubles, a few vector reads an insert amortized, and, when the
// centre is stale, a re-encoding of every row, each looked up in a
// Source by its ID (amortized a row or two an insert even if the data
// drifted at every doubling). Add calls it before taking mu.
func (h *HNSW) maybeRecentre() {
	if h.sinceCentre.Add(1) < max(minCentreCheck, h.centreAt.Load()) || !h.recentring.CompareAndSwap(false, true) {
		return
	}
	defer h.recentring.Store(false)
	h.sinceCentre.Store(0)
	h.centreAt.Store(int64(h.Len()))
	h.recentre(false)
}

// slotReader reads the float32 vectors of slots into dst, dim values a
// slot, and sets found[i] to whether slots[i]'s was read.
type slotReader func(slots []uint32, dst []float32, found []bool)

// sampleSlots returns the live slots among centreSample evenly spaced
// over the first used (all of them when there are fewer), which live
// reports.
func sampleSlots(used int, live func(slot uint32) bool) []uint32 {
	k := min(used, centreSample)
	out := make([]uint32, 0, k)
	for i := range k {
		if s := uint32(i * used / k); live(s) {
			out = append(out, s)
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
// Source reads the sample from it, and then, to re-encode, every live
// vector once more (in one scan where the source can); a tombstone, whose
// vector the source no longer holds, is re-encoded from its old codes.
// The sample is read while searches and writes go on (about 1 ms); a
// re-encoding holds the graph exclusively, so they wait for it: 8 ms at
// 20k x 128 keeping the vectors, 29 ms reading them from a source held in
// memory (BenchmarkRecentre), so about 0.4 s and 1.4 s a million. The
// database calls it when it checkpoints, and Add as the graph grows. A
// graph that walks on float32 vectors (Float32Walk) has no codes and does
// nothing.
func (h *HNSW) Recentre() bool { return h.recentre(true) }

// recentre is Recentre; scan lets a graph with a VectorScanner source
// re-encode from one scan of it. Add's checks look each vector up
// instead: while a store's graph is being built (a rebuild, a replay), it
// holds a fraction of what a scan would read.
func (h *HNSW) recentre(scan bool) bool {
	mean, old := h.staleMean()
	if mean == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.centre) != len(old) || &h.centre[0] != &old[0] {
		return false // loaded anew meanwhile: the sample was of another graph
	}
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	h.centre = mean
	if !h.lowMem() {
		h.quantizeAll(h.used)
		return true
	}
	h.reencode(old, scan)
	return true
}

// staleMean returns the mean of a sample of the live vectors if the
// centre is stale against it, else nil, and the centre it judged. It
// holds mu shared.
func (h *HNSW) staleMean() (mean, centre []float32) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.rows == nil || len(h.centre) == 0 {
		return nil, nil
	}
	h.slotMu.Lock()
	used := h.used
	h.slotMu.Unlock()
	read := h.vecReader
	if h.lowMem() {
		read = h.sourceReader
	}
	live := func(s uint32) bool { return !h.isDead(s) }
	return h.staleCentre(sampleSlots(used, live), read), h.centre
}

// reencode re-encodes the codes of a graph with a Source around its new
// centre: each live node's from its vector in the source (in one scan if
// scan is set and the source can), a tombstone's (or a node's the source
// lacks) from its codes around old, the centre they were encoded around.
// mu and slotMu are held.
func (h *HNSW) reencode(old []float32, scan bool) {
	done := make([]bool, h.used)
	tmp := make([]float32, h.dim)
	encode := func(s uint32, v []float32) {
		h.quantize(s, v, tmp)
		done[s] = true
	}
	if sc, ok := h.cfg.Source.(VectorScanner); ok && scan {
		sc.ScanVectors(h.dim, func(id uint32, v []float32) {
			if s, ok := h.slotOf.get(id); ok && len(v) == h.dim && !h.isDead(s) && allFinite(v) {
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
