package hnsw

// keyMin is a min-heap of beam keys (beamKey): the candidate queue of a
// filtered walk. Ordering two keys is one integer comparison, and a sift
// moves a hole instead of swapping.
type keyMin []uint64

func (h *keyMin) push(k uint64) {
	s := append(*h, k)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p] <= k {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = k
	*h = s
}

func (h *keyMin) pop() uint64 {
	s := *h
	top := s[0]
	n := len(s) - 1
	x := s[n]
	s = s[:n]
	*h = s
	if n == 0 {
		return top
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r] < s[l] {
			c = r
		}
		if x <= s[c] {
			break
		}
		s[i] = s[c]
		i = c
	}
	s[i] = x
	return top
}

// keyMax is a bounded max-heap of beam keys: the results of a filtered
// walk, the worst on top.
type keyMax []uint64

// offer adds k if the heap holds fewer than n keys or k beats the worst.
func (h *keyMax) offer(k uint64, n int) {
	s := *h
	if len(s) < n {
		s = append(s, k)
		i := len(s) - 1
		for i > 0 {
			p := (i - 1) / 2
			if s[p] >= k {
				break
			}
			s[i] = s[p]
			i = p
		}
		s[i] = k
		*h = s
		return
	}
	if k >= s[0] {
		return
	}
	s.siftDown(0, k)
}

// siftDown places k at the hole i and sifts it down.
func (s keyMax) siftDown(i int, k uint64) {
	n := len(s)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r] > s[l] {
			c = r
		}
		if k >= s[c] {
			break
		}
		s[i] = s[c]
		i = c
	}
	s[i] = k
}

// pop removes the worst key.
func (h *keyMax) pop() uint64 {
	s := *h
	top := s[0]
	n := len(s) - 1
	x := s[n]
	*h = s[:n]
	if n > 0 {
		(*h).siftDown(0, x)
	}
	return top
}
