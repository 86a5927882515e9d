package hnsw

// slotMap maps callers' IDs to slots. IDs that are dense, as the
// database's are (given out in order from 1), go in an array indexed by ID:
// 4 bytes an ID, where a Go map takes about 14 bytes an entry. IDs far
// past the array (a sparse or random ID space) go in a map beside it.
type slotMap struct {
	dense  []uint32          // ID -> slot+1; 0: none
	sparse map[uint32]uint32 // IDs at or past len(dense)
	n      int
	grows  int // growTo calls, for tests
}

// denseSlack is how far past the count of IDs held an ID may lie and
// still grow the array: up to twice the count, plus this.
const denseSlack = 1024

// newSlotMap returns an empty map with room for about n dense IDs.
func newSlotMap(n int) slotMap {
	return slotMap{dense: make([]uint32, 0, n+1)}
}

func (m *slotMap) len() int { return m.n }

func (m *slotMap) get(id uint32) (uint32, bool) {
	if int64(id) < int64(len(m.dense)) {
		if s := m.dense[id]; s != 0 {
			return s - 1, true
		}
		return 0, false
	}
	s, ok := m.sparse[id]
	return s, ok
}

// set maps id to slot, replacing what id had.
func (m *slotMap) set(id, slot uint32) {
	if int64(id) >= int64(len(m.dense)) && int64(id) < 2*int64(m.n)+denseSlack {
		m.growTo(int(id) + 1)
	}
	if int64(id) < int64(len(m.dense)) {
		if m.dense[id] == 0 {
			m.n++
		}
		m.dense[id] = slot + 1
		return
	}
	if m.sparse == nil {
		m.sparse = map[uint32]uint32{}
	}
	if _, ok := m.sparse[id]; !ok {
		m.n++
	}
	m.sparse[id] = slot
}

// growTo lengthens the array to at least n IDs, and at least doubles it
// (so that IDs counting up grow it a logarithmic number of times), and
// moves the map's IDs it now covers into it.
func (m *slotMap) growTo(n int) {
	m.grows++
	old := len(m.dense)
	n = max(n, 2*old, 64)
	if n <= cap(m.dense) {
		m.dense = m.dense[:n]
	} else {
		m.dense = append(m.dense[:cap(m.dense)], make([]uint32, n-cap(m.dense))...)
		m.dense = m.dense[:cap(m.dense)]
	}
	clear(m.dense[old:])
	for id, s := range m.sparse {
		if int64(id) < int64(len(m.dense)) {
			m.dense[id] = s + 1
			delete(m.sparse, id)
		}
	}
}

// del removes id and reports whether it was there.
func (m *slotMap) del(id uint32) bool {
	if int64(id) < int64(len(m.dense)) {
		if m.dense[id] == 0 {
			return false
		}
		m.dense[id] = 0
		m.n--
		return true
	}
	if _, ok := m.sparse[id]; !ok {
		return false
	}
	delete(m.sparse, id)
	m.n--
	return true
}

// each calls fn for every ID and its slot.
func (m *slotMap) each(fn func(id, slot uint32)) {
	for id, s := range m.dense {
		if s != 0 {
			fn(uint32(id), s-1)
		}
	}
	for id, s := range m.sparse {
		fn(id, s)
	}
}

// bytes is about how much memory the map holds.
func (m *slotMap) bytes() int64 {
	return 4*int64(cap(m.dense)) + int64(len(m.sparse))*mapEntryBytes
}
