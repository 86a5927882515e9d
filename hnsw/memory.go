package hnsw

import "unsafe"

// mapEntryBytes is what MemoryBytes counts for each entry of a Go map of
// uint32 keys: 8 bytes of key and value, a control byte, and the room a
// map keeps free (between 1/8 and about half of its slots).
const mapEntryBytes = 14

// MemoryBytes is about how many bytes the graph holds in memory: its slot
// arrays as allocated (room reserved for later nodes included), the
// upper-layer link blocks, the ID map (estimated at 14 bytes an entry),
// the free list and the reachability check's scratch. What a search
// borrows for its duration is not counted.
func (h *HNSW) MemoryBytes() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var n int64
	n += 4*int64(cap(h.vecs)+cap(h.centre)+cap(h.ids)+cap(h.links0)+cap(h.deleted)) + int64(cap(h.rows)+cap(h.levels))
	n += 8*int64(cap(h.upper)) + h.upperBytes.Load() + int64(unsafe.Sizeof(h.nodeMu))
	h.slotMu.Lock()
	n += h.slotOf.bytes() + 4*int64(cap(h.free))
	h.slotMu.Unlock()
	h.scratch.Lock()
	n += int64(cap(h.scratch.seen)) + 4*int64(cap(h.scratch.indeg)+cap(h.scratch.order)+cap(h.scratch.lost))
	h.scratch.Unlock()
	return n
}

// VectorsInMemory reports whether the graph keeps its float32 vectors
// (false with a Config.Source).
func (h *HNSW) VectorsInMemory() bool { return !h.lowMem() }

// MemoryBytes is about how many bytes the index holds in memory: its
// graph's (HNSW.MemoryBytes) and the key maps (estimated as the graph's).
func (m *Multi) MemoryBytes() int64 {
	g := m.graph()
	n := g.MemoryBytes()
	m.mu.RLock()
	defer m.mu.RUnlock()
	n += 4*int64(cap(m.owner)+cap(m.free)) + int64(len(m.keys))*(mapEntryBytes+int64(unsafe.Sizeof([]uint32(nil)))) + m.sizes.bytes()
	for _, ks := range m.keys {
		n += 4 * int64(cap(ks))
	}
	return n
}

// VectorsInMemory reports true: a Multi index keeps its vectors.
func (m *Multi) VectorsInMemory() bool { return true }
