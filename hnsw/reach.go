package hnsw

import (
	"slices"
	"sync/atomic"
)

// reach marks the slots a search can reach from the entry point: the
// nodes reachable on the top layer from the entry point, then on each
// layer below the nodes reachable from every node reached above, down to
// layer 0, the way a search descends (with a beam wide enough). Tombstones
// are walked through, as searches walk them. It returns, per slot below
// used, whether it was reached and how many layer-0 links from reached
// nodes point at it. One pass over the reached nodes' links per layer, no
// distances: linear in the graph. mu must be held (shared is enough) and
// no insert, delete or re-link may run, or the answer describes no single
// moment. The slices are h.scratch's (whose lock the caller holds), valid
// until the next check.
func (h *HNSW) reach(used int) (seen []bool, indeg []uint32) {
	r := &h.scratch
	seen = slices.Grow(r.seen[:0], used)[:used]
	indeg = slices.Grow(r.indeg[:0], used)[:used]
	clear(seen)
	clear(indeg)
	r.seen, r.indeg = seen, indeg
	ep := h.entry.Load()
	if uint32(ep) == noNode || int(uint32(ep)) >= used {
		return seen, indeg
	}
	order := append(r.order[:0], uint32(ep))
	defer func() { r.order = order[:0] }()
	seen[uint32(ep)] = true
	for l := int(ep >> 32); l >= 0; l-- {
		// Every node reached so far reaches layer l: a layer-l link only
		// leads to nodes of level l or more.
		for i := 0; i < len(order); i++ {
			s := order[i]
			if int(h.levels[s]) < l {
				continue
			}
			b := h.block(s, l)
			n := atomic.LoadUint32(&b[0])
			for j := uint32(1); j <= n; j++ {
				t := atomic.LoadUint32(&b[j])
				if int(t) >= used {
					continue
				}
				if l == 0 {
					indeg[t]++
				}
				if !seen[t] {
					seen[t] = true
					order = append(order, t)
				}
			}
		}
	}
	return seen, indeg
}

// unreachableSlots returns the live slots that reach does not reach, with
// the layer-0 in-degrees it counted and the number of live slots. The
// same locking as reach; lost is h.scratch's too.
func (h *HNSW) unreachableSlots() (lost []uint32, seen []bool, indeg []uint32, live int) {
	h.slotMu.Lock()
	used := h.used
	h.slotMu.Unlock()
	seen, indeg = h.reach(used)
	lost = h.scratch.lost[:0]
	defer func() { h.scratch.lost = lost[:0] }()
	for s := range uint32(used) {
		if !h.isDead(s) {
			live++
			if !seen[s] {
				lost = append(lost, s)
			}
		}
	}
	return lost, seen, indeg, live
}

// Unreachable implements Index: the IDs of the live nodes that no search
// can reach, following links from the entry point down the layers (see
// Repair). Empty on a healthy graph. It is one breadth-first walk over the
// links, linear in the graph and computing no distances; it blocks writers
// while it runs, searches go on.
func (h *HNSW) Unreachable() []uint32 {
	h.writers.Lock()
	defer h.writers.Unlock()
	h.mu.RLock()
	defer h.mu.RUnlock()
	defer h.dropScratch()
	h.scratch.Lock()
	defer h.scratch.Unlock()
	lost, _, _, _ := h.unreachableSlots()
	ids := make([]uint32, len(lost))
	for i, s := range lost {
		ids[i] = h.ids[s]
	}
	return ids
}

// maxRepairPasses bounds Repair's rounds of check and re-link: re-linking
// prunes other nodes' lists, which can cut a node off in turn, so each
// round ends with a fresh check.
const maxRepairPasses = 4

// Repair re-links every live node that Unreachable would report, and
// returns how many re-links it made (0 on a healthy graph, where the cost
// is one check). A node is re-linked the way it was inserted: its
// neighbours are searched for from the entry point on each of its
// layers, merged into its own lists, and linked back to it with the usual
// pruning; if no reachable neighbour keeps the link on layer 0, the
// closest one takes it in place of its least needed link. Add and Delete
// wait while it runs; searches go on. Compaction and AddParallel call it
// by themselves.
func (h *HNSW) Repair() (relinked int) {
	h.writers.Lock()
	defer h.writers.Unlock()
	h.mu.RLock()
	defer h.mu.RUnlock()
	defer h.dropScratch()
	return h.repairLocked()
}

// dropScratch lets go of the checks' working memory (about 9 bytes a
// node) after a check asked for, as at load (Repair, Unreachable): a
// graph only searched does not keep it. Writes take it back at their
// first check.
func (h *HNSW) dropScratch() {
	h.scratch.Lock()
	defer h.scratch.Unlock()
	h.scratch.seen, h.scratch.indeg, h.scratch.order, h.scratch.lost = nil, nil, nil, nil
}

// checkEvery is the least number of writes between the checks that Add
// and Delete run by themselves; on a graph of more than 8*checkEvery live
// nodes, an eighth of them.
const checkEvery = 256

// maybeRepairLocked runs Repair's check, and its re-links if any, once
// the writes since the last check pass checkEvery and an eighth of the
// live nodes. A delete's re-linking and an insert's pruning can take a
// node's last in-link; this bounds how long it stays unreachable, at the
// cost of one pass over the links every live/8 writes (amortized: a few
// link reads per write). Called by Add and Delete with mu held shared;
// other writers go on meanwhile, so the check may flag a node that a
// concurrent write was moving links of: re-linking it is harmless.
func (h *HNSW) maybeRepairLocked() {
	if h.sinceCheck.Add(1) < max(checkEvery, h.checkAt.Load()) || !h.checking.CompareAndSwap(false, true) {
		return
	}
	h.repairLocked()
	h.checking.Store(false)
}

// repairLocked is Repair with mu held, shared or exclusively. Writers
// running meanwhile (maybeRepairLocked) make the checks approximate.
func (h *HNSW) repairLocked() (relinked int) {
	h.scratch.Lock()
	defer h.scratch.Unlock()
	h.sinceCheck.Store(0)
	var sc *searcher
	for range maxRepairPasses {
		lost, seen, indeg, live := h.unreachableSlots()
		h.checkAt.Store(int64(live / 8))
		if len(lost) == 0 {
			break
		}
		if sc == nil {
			sc = h.getSearcher()
			defer h.searchers.Put(sc)
		}
		for _, s := range lost {
			h.relink(s, seen, indeg, sc)
		}
		relinked += len(lost)
	}
	h.relinks.Add(int64(relinked))
	return relinked
}

// relink links slot u into the graph again; seen and indeg hold what the
// last check reached and the layer-0 in-degrees it counted, kept up to date
// for the links it forces. Slots added since the check (concurrent
// inserts) are past their ends and count as unreached, with no in-links.
func (h *HNSW) relink(u uint32, seen []bool, indeg []uint32, sc *searcher) {
	ep := h.entry.Load()
	if uint32(ep) == noNode || uint32(ep) == u {
		return
	}
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	uq := h.nodeQuery(u, buf)
	neigh := h.neighbours(uq.v, int(h.levels[u]), ep, u, sc)
	for l := len(neigh) - 1; l >= 0; l-- {
		// u's own links may still lead somewhere useful: keep the best of
		// them and of the new candidates.
		cands := append([]Result(nil), neigh[l]...)
		h.nodeLock(u).Lock()
		b := h.block(u, l)
		own := slices.Clone(b[1 : 1+b[0]])
		h.nodeLock(u).Unlock()
		for _, t := range own {
			if t != u && !h.isDead(t) && !slices.ContainsFunc(cands, func(r Result) bool { return r.ID == t }) {
				cands = append(cands, Result{ID: t, Dist: h.qdist(&uq, t)})
			}
		}
		sortLinks(cands, u)
		h.setLinks(u, l, h.selectNeighbours(u, nil, cands, h.capAt(l)))
	}
	for l := len(neigh) - 1; l >= 0; l-- {
		for _, n := range neigh[l] {
			h.addLink(n.ID, u, n.Dist, l)
		}
	}
	if len(neigh) == 0 || len(neigh[0]) == 0 {
		return // nothing live to link to
	}
	reached := func(n uint32) bool { return int(n) < len(seen) && seen[n] }
	for _, n := range neigh[0] {
		if reached(n.ID) && h.linksTo(n.ID, u) {
			mark(seen, u)
			return
		}
	}
	// Force the link from the closest reached neighbour: one that is
	// unreached itself (many copies of one vector prune each other's
	// links, and their closest neighbours are each other) would not help.
	// u is then reached, so the next copy can hang from it.
	for _, n := range neigh[0] {
		if reached(n.ID) {
			h.forceLink(n.ID, u, indeg)
			mark(seen, u)
			return
		}
	}
}

func mark(seen []bool, u uint32) {
	if int(u) < len(seen) {
		seen[u] = true
	}
}

// degree is indeg[t], 0 for a slot past its end.
func degree(indeg []uint32, t uint32) uint32 {
	if int(t) < len(indeg) {
		return indeg[t]
	}
	return 0
}

func addDegree(indeg []uint32, t uint32, d int) {
	if int(t) < len(indeg) && (d > 0 || indeg[t] > 0) {
		indeg[t] = uint32(int(indeg[t]) + d)
	}
}

// linksTo reports whether n links to u on layer 0.
func (h *HNSW) linksTo(n, u uint32) bool {
	h.nodeLock(n).Lock()
	defer h.nodeLock(n).Unlock()
	b := h.block(n, 0)
	return slices.Contains(b[1:1+b[0]], u)
}

// forceLink makes n link to u on layer 0 even though the heuristic would
// not keep it: in a free place if there is one, else in place of a link
// to a tombstone, else of the link whose target has the most other
// in-links (the farthest such on ties), so that no node is likely to be
// cut off in turn; the next check catches one that is.
func (h *HNSW) forceLink(n, u uint32, indeg []uint32) {
	h.nodeLock(n).Lock()
	defer h.nodeLock(n).Unlock()
	b := h.block(n, 0)
	cnt := int(b[0])
	if cnt < h.m0 {
		atomic.StoreUint32(&b[cnt+1], u)
		atomic.StoreUint32(&b[0], uint32(cnt+1))
		addDegree(indeg, u, 1)
		return
	}
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	nq := h.nodeQuery(n, buf)
	victim, vdeg, vdist := 0, uint32(0), float32(0)
	for i := 1; i <= cnt; i++ {
		t := b[i]
		if h.isDead(t) {
			victim = i
			break
		}
		deg, d := degree(indeg, t), h.qdist(&nq, t)
		if victim == 0 || deg > vdeg || (deg == vdeg && d > vdist) {
			victim, vdeg, vdist = i, deg, d
		}
	}
	addDegree(indeg, b[victim], -1)
	atomic.StoreUint32(&b[victim], u)
	addDegree(indeg, u, 1)
}
