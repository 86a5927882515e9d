package hnsw

import (
	"math"
	"slices"
	"sync/atomic"
)

// linearInsert is the beam length up to which an entry finds its place
// by shifting from the end.
const linearInsert = 64

// Flags of a beam entry.
const (
	beamDone       uint8 = 1 << iota // its links were expanded
	beamIneligible                   // a tombstone: walked through, never returned
)

// beam is the sorted list a beam search works on: the closest nodes seen,
// ascending by distance then slot (the order of worse), each flagged as
// expanded or not, and as eligible for the results or not. It replaces
// the two heaps of Algorithm 2 when there is no allow-list: the next node
// to expand is the first unexpanded entry, and a neighbour enters by a
// short run of moves from the end (or a binary search and a copy in a
// long beam), which costs less than a push on one heap and an offer on
// the other: on sift5k the beam takes 0.91-0.97x the heaps' time at ef
// 16-128, and is level from ef 200 (BenchmarkBeamVsHeaps).
//
// An entry is one integer, the key of its result (beamKey), so ordering
// two entries is one comparison with no branch on ties.
//
// It keeps up to ef eligible entries, and the tombstones closer than the
// last of them; once it holds ef eligible entries, it ends with the
// farthest of them, the bound a neighbour must beat.
type beam struct {
	keys  []uint64
	flags []uint8
	elig  int // eligible entries
}

// beamKey maps a result to an integer that orders as worse does: the
// distance's bits made to sort as unsigned integers (sign bit set for
// non-negative numbers, every bit flipped for negative ones), then the
// slot. Two differences, neither a wrong order: -0 sorts just before +0
// (a tie, and the distance comes back exact), and a NaN after everything.
func beamKey(r Result) uint64 {
	d := r.Dist
	if d != d {
		return math.MaxUint32<<32 | uint64(r.ID) // NaN: farthest of all
	}
	b := math.Float32bits(d)
	if b>>31 != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return uint64(b)<<32 | uint64(r.ID)
}

// keyResult is the inverse of beamKey.
func keyResult(k uint64) Result {
	b := uint32(k >> 32)
	if b>>31 != 0 {
		b &^= 1 << 31
	} else {
		b = ^b
	}
	return Result{ID: uint32(k), Dist: math.Float32frombits(b)}
}

func (b *beam) reset() {
	b.keys, b.flags, b.elig = b.keys[:0], b.flags[:0], 0
}

// admits reports whether an entry with key k would enter.
func (b *beam) admits(k uint64, ef int) bool {
	return b.elig < ef || k < b.keys[len(b.keys)-1]
}

// insert adds the entry with key k (admitted) and returns its position.
// When that makes ef+1 eligible entries, the farthest eligible one and
// any tombstones after it leave.
func (b *beam) insert(k uint64, ineligible bool, ef int) int {
	var f uint8
	if ineligible {
		f = beamIneligible
	}
	b.keys = append(b.keys, k)
	b.flags = append(b.flags, f)
	ks, fl := b.keys, b.flags[:len(b.keys)]
	lo := len(ks) - 1
	if lo > linearInsert {
		lo, _ = slices.BinarySearch(ks[:lo], k)
		copy(ks[lo+1:], ks[lo:])
		copy(fl[lo+1:], fl[lo:])
	} else {
		for ; lo > 0 && ks[lo-1] > k; lo-- {
			ks[lo], fl[lo] = ks[lo-1], fl[lo-1]
		}
	}
	ks[lo], fl[lo] = k, f
	if ineligible {
		return lo
	}
	b.elig++
	n := len(ks)
	if b.elig > ef {
		n-- // the farthest entry is eligible: see beam
		b.elig--
	}
	if b.elig == ef {
		for fl[n-1]&beamIneligible != 0 {
			n--
		}
	}
	b.keys, b.flags = ks[:n], fl[:n]
	return lo
}

// next returns the first unexpanded entry at or after i, or len.
func (b *beam) next(i int) int {
	for i < len(b.flags) && b.flags[i]&beamDone != 0 {
		i++
	}
	return i
}

// searchBeam is searchLayer without an allow-list, on a beam instead of
// two heaps: the same walk (up to ties in distance, it expands the same
// nodes in the same order and returns the same results).
func (h *HNSW) searchBeam(q *query, eps []Result, ef, l int, skipDeleted bool, sc *searcher) []Result {
	vis := &sc.vis
	vis.reset(len(h.ids))
	bm := &sc.beam
	bm.reset()
	ineligible := func(s uint32) bool {
		return skipDeleted && h.isDead(s)
	}
	for _, e := range eps {
		if k := beamKey(e); vis.visit(e.ID) && bm.admits(k, ef) {
			bm.insert(k, ineligible(e.ID), ef)
		}
	}
	for i := bm.next(0); i < len(bm.keys); {
		c := uint32(bm.keys[i])
		bm.flags[i] |= beamDone
		if j := bm.next(i + 1); j < len(bm.keys) {
			// The likely next node to expand: its links are read after
			// this node's neighbours are scored.
			h.prefetchBlock(uint32(bm.keys[j]), l)
		}
		b := h.block(c, l)
		n := atomic.LoadUint32(&b[0])
		nb := sc.unvisited(b[1 : n+1])
		h.prefetch(q, nb)
		ds := sc.distsFor(len(nb))
		h.qdists(q, nb, ds)
		from := i + 1
		for k, e := range nb {
			if key := beamKey(Result{ID: e, Dist: ds[k]}); bm.admits(key, ef) {
				if p := bm.insert(key, ineligible(e), ef); p < from {
					from = p
				}
			}
		}
		i = bm.next(from)
	}
	out := sc.out[:0]
	for k, key := range bm.keys {
		if bm.flags[k]&beamIneligible == 0 {
			out = append(out, keyResult(key))
		}
	}
	sc.out = out
	return out
}

// unvisited marks the slots of links visited and returns those that were
// not, in sc.nb. links is a link block's list, read with atomic loads.
func (sc *searcher) unvisited(links []uint32) []uint32 {
	if cap(sc.nb) < len(links) {
		sc.nb = make([]uint32, 0, len(links))
	}
	nb := sc.nb[:len(links)]
	stamp, gen := sc.vis.stamp, sc.vis.gen
	// Branch-free: whether a neighbour was visited is not predictable, so
	// each is written to nb and only the unvisited ones are kept: a
	// search on sift5k at ef 56 took 0.88x the time of one that branched
	// (a throwaway A/B, BENCHMARKS.md).
	n := 0
	for k := range links {
		e := atomic.LoadUint32(&links[k])
		nb[n] = e
		fresh := stamp[e] != gen
		stamp[e] = gen
		if fresh {
			n++
		}
	}
	sc.nb = nb[:n]
	return sc.nb
}
