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
// back to it, but a full list keeps the copies it has (addLink), and a
// link from another node is pruned by the next copy that node meets (only
// one copy passes the heuristic there). Unless a copy among its neighbours
// links to it, it looks, from those copies along links between copies,
// for a copy whose layer-0 list has room, and appends the node there,
// which takes no link from anyone. The copies it walks are reached (the
// search found the first of them), so the node is.
func (h *HNSW) hangCopy(slot uint32, neigh []Result) {
	var queue []uint32
	for _, n := range neigh {
		if h.copyOf(slot, n.ID) {
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
	seen := map[uint32]bool{slot: true}
	for _, n := range queue {
		seen[n] = true
	}
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
		links := slices.Clone(b[1 : cnt+1])
		lock.Unlock()
		for _, t := range links {
			if !seen[t] && !h.isDead(t) && h.copyOf(slot, t) {
				seen[t] = true
				queue = append(queue, t)
			}
		}
	}
}
