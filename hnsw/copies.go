package hnsw

import (
	"bytes"
	"slices"
	"sync/atomic"
)

// Copies of one vector (the same image stored under many items, the
// embedding of an empty caption) are the graph's worst case: the
// heuristic never prunes one copy for another, as nothing is closer to a
// copy than the node it is a copy of, and every search for a copy's
// neighbours finds the same oldest copies first (equal distances are
// ordered by slot). selectNeighbours gives copies at most half of a list
// and the rest to other nodes, so a walk that enters the copies can leave
// them; hangCopy gives every new copy an in-link that no prune took.

// copyOf reports whether slot holds base's vector: the same float32
// values, or in a graph without them, the same codes. The first value is
// compared before the rest, so telling two different vectors apart costs
// one read of each, mostly.
func (h *HNSW) copyOf(base, slot uint32) bool {
	if base == slot || h.dim == 0 {
		return false
	}
	if h.lowMem() {
		o, p := int(base)*h.rowSize, int(slot)*h.rowSize
		a, b := h.rows[o:o+h.rowSize], h.rows[p:p+h.rowSize]
		return a[0] == b[0] && bytes.Equal(a, b)
	}
	a, b := h.vec(base), h.vec(slot)
	return a[0] == b[0] && slices.Equal(a, b)
}

// hangCopyVisits bounds the copies hangCopy looks through for one with
// room.
const hangCopyVisits = 1024

// hangCopy makes sure a newly inserted node that is a copy of some of its
// layer-0 neighbours (neigh) has a layer-0 in-link. Its neighbours link
// back to it, but a full list holding its share of copies keeps them
// (addLink), and a link from another node is pruned by the next copy that
// node meets (only one copy passes the heuristic there). Unless a copy
// among its neighbours links to it, it looks, from those copies along
// links between copies, for a live copy whose layer-0 list has room, and
// appends the node there, which takes no link from anyone. The copies it
// walks are reached (the search found the first of them), so the node is.
// sc's visited set and scratch serve the walk: it makes no garbage.
func (h *HNSW) hangCopy(slot uint32, neigh []Result, sc *searcher) {
	queue := sc.hang[:0]
	defer func() { sc.hang = queue[:0] }()
	for _, n := range neigh {
		if !h.isDead(n.ID) && h.copyOf(slot, n.ID) {
			queue = append(queue, n.ID)
		}
	}
	if len(queue) == 0 {
		return // not a copy: the heuristic's links are as usual
	}
	for _, n := range queue {
		if h.linksTo(n, slot) {
			return
		}
	}
	vis := &sc.vis
	vis.reset(len(h.ids))
	vis.visit(slot)
	for _, n := range queue {
		vis.visit(n)
	}
	var lbuf [64]uint32
	for i := 0; i < len(queue) && i < hangCopyVisits; i++ {
		n := queue[i]
		lock := h.nodeLock(n)
		lock.Lock()
		b := h.block(n, 0)
		cnt := int(b[0])
		if cnt < h.m0 {
			atomic.StoreUint32(&b[cnt+1], slot)
			atomic.StoreUint32(&b[0], uint32(cnt+1))
			lock.Unlock()
			return
		}
		links := append(lbuf[:0], b[1:cnt+1]...)
		lock.Unlock()
		for _, t := range links {
			if int(t) < len(h.ids) && vis.visit(t) && !h.isDead(t) && h.copyOf(slot, t) {
				queue = append(queue, t)
			}
		}
	}
}

// copiesIn counts the copies of base's vector among links.
func (h *HNSW) copiesIn(base uint32, links []uint32) int {
	n := 0
	for _, t := range links {
		if h.copyOf(base, t) {
			n++
		}
	}
	return n
}

// replaceAmongCopies is replaceLink for a list (b, node n's on layer l,
// whose lock is held) that holds copies of n's vector, when d, one of its
// links, was deleted; rest holds n's other links with their distances.
// The heuristic
// run again over n's links and d's (dn) would keep half a list of copies
// and refill it in hash order, dropping copies that may hold another
// copy's only in-link: deleting a thousand of 2,000 copies left 692 of the
// rest unreachable. Instead, a copy d gives its place to one of its own
// copy links that n lacks; failing that, n keeps every copy it has and the
// heuristic chooses among the other candidates for the places left.
func (h *HNSW) replaceAmongCopies(n, d uint32, dn []uint32, l int, b []uint32, rest []Result) {
	cnt := int(b[0])
	if h.copyOf(n, d) {
		for _, s := range dn {
			if s != n && s != d && !h.isDead(s) && h.copyOf(n, s) && !slices.Contains(b[1:cnt+1], s) {
				for i := 1; i <= cnt; i++ {
					if b[i] == d {
						atomic.StoreUint32(&b[i], s)
						return
					}
				}
			}
		}
	}
	var kept, others []Result
	for _, c := range rest {
		if h.copyOf(n, c.ID) {
			kept = append(kept, c)
		} else {
			others = append(others, c)
		}
	}
	buf := h.getPairBuf()
	defer putPairBuf(buf)
	nq := h.nodeQuery(n, buf)
	for _, s := range dn {
		if s == n || s == d || h.isDead(s) || h.copyOf(n, s) || slices.ContainsFunc(rest, func(r Result) bool { return r.ID == s }) {
			continue
		}
		others = append(others, Result{ID: s, Dist: h.qdist(&nq, s)})
	}
	sortLinks(others, n)
	h.writeBlock(b, h.selectNeighbours(n, kept, others, h.capAt(l)))
}
