package hnsw

// maxHeap is a bounded max-heap on Dist, then ID: it keeps the k smallest
// results seen, with the worst of them on top so it can be evicted in
// O(log k). Equal distances are ordered by ID, so which of several tied
// results a search keeps does not depend on k, and pages of an exact
// search neither repeat nor miss tied items.
// Hand-written rather than container/heap to avoid interface calls on the
// search path.
type maxHeap []Result

func (h *maxHeap) push(r Result) {
	*h = append(*h, r)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !worse(s[i], s[p]) {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *maxHeap) pop() Result {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	*h = s[:n]
	siftDownMax(s[:n], 0)
	return top
}

func siftDownMax(s []Result, i int) {
	n := len(s)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && worse(s[r], s[l]) {
			c = r
		}
		if !worse(s[c], s[i]) {
			return
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
}

// offer adds r if the heap holds fewer than k results or r beats the worst.
func (h *maxHeap) offer(r Result, k int) {
	if len(*h) < k {
		h.push(r)
		return
	}
	if worse((*h)[0], r) {
		(*h)[0] = r
		siftDownMax(*h, 0)
	}
}

// worse orders results: farther, or as far with a larger ID.
func worse(a, b Result) bool {
	return a.Dist > b.Dist || a.Dist == b.Dist && a.ID > b.ID
}

// sorted empties the heap into a slice ordered closest first.
func (h *maxHeap) sorted() []Result {
	out := make([]Result, len(*h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = h.pop()
	}
	return out
}
