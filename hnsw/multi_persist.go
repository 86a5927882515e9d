package hnsw

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/mmdb-go/mmdb/modality"
)

const (
	multiMagic   = "MMMV"
	multiVersion = 1
)

// Save implements Index. The format (version 1, little-endian) is: magic
// "MMMV", version, aggregation, dim, keys handed out, the number of sets,
// then per set (in ID order) its ID, its size and its keys; the free-key
// count and list; the graph's own frame (HNSW.Save) with its length; and a
// CRC-32C of it all.
func (m *Multi) Save(w io.Writer) error {
	m.writers.Lock()
	defer m.writers.Unlock()
	m.mu.RLock()
	g := m.g
	ids := m.owners(nil)
	f := newFrame(multiMagic, multiVersion, 24+8*len(ids)+4*(m.nodes+len(m.free)))
	f.u32(uint32(m.agg))
	f.u32(uint32(m.dim))
	f.u32(uint32(len(m.owner)))
	f.u32(uint32(len(ids)))
	for _, id := range ids {
		f.u32(id)
		f.u32(uint32(len(m.keys[id])))
		f.u32s(m.keys[id])
	}
	f.u32(uint32(len(m.free)))
	f.u32s(m.free)
	m.mu.RUnlock()
	// The graph's frame is written straight into this one, after its
	// length: one copy of a large graph fewer than through a buffer.
	at := len(f.buf)
	f.u64(0)
	if err := g.Save(f); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(f.buf[at:], uint64(len(f.buf)-at-8))
	return f.writeTo(w)
}

// Load implements Index. Every count and key is checked against the
// graph, so damaged input is an error wrapping ErrFormat.
func (m *Multi) Load(r io.Reader) error {
	fr, err := openFrame(r, multiMagic, multiVersion)
	if err != nil {
		return err
	}
	agg, dim, handed, nsets := modality.Multi(fr.u32()), int(fr.u32()), fr.u32(), uint64(fr.u32())
	if fr.err != nil {
		return fr.err
	}
	if agg != m.agg || dim != m.dim {
		return fmt.Errorf("%w: saved %v sets of dim %d, index has %v of dim %d", ErrFormat, agg, dim, m.agg, m.dim)
	}
	if nsets > uint64(len(fr.b))/12 || uint64(handed) > uint64(len(fr.b))/4 {
		return fmt.Errorf("%w: %d sets and %d keys cannot fit in %d bytes", ErrFormat, nsets, handed, len(fr.b))
	}
	owner := make([]uint32, handed)
	for k := range owner {
		owner[k] = noOwner
	}
	seen := make([]bool, handed)
	keys := make(map[uint32][]uint32, nsets)
	nodes := 0
	take := func(k uint32) error {
		if k >= handed || seen[k] {
			return fmt.Errorf("%w: key %d out of range or given twice", ErrFormat, k)
		}
		seen[k] = true
		return nil
	}
	for range nsets {
		id, n := fr.u32(), uint64(fr.u32())
		if fr.err == nil && (n == 0 || n > modality.MaxSet) {
			return fmt.Errorf("%w: set of %d vectors", ErrFormat, n)
		}
		ks := fr.u32s(n)
		if fr.err != nil {
			return fr.err
		}
		if keys[id] != nil || id == noOwner {
			return fmt.Errorf("%w: ID %d has two sets, or is reserved", ErrFormat, id)
		}
		for _, k := range ks {
			if err := take(k); err != nil {
				return err
			}
			owner[k] = id
		}
		keys[id] = ks
		nodes += len(ks)
	}
	free := fr.u32s(uint64(fr.u32()))
	for _, k := range free {
		if err := take(k); err != nil {
			return err
		}
	}
	graph := fr.bytes(fr.u64())
	if err := fr.done(); err != nil {
		return err
	}
	g := NewHNSW(m.dim, m.graph().metric, m.graph().cfg)
	if err := g.Load(bytes.NewBuffer(graph)); err != nil {
		return err
	}
	// Every key handed out is in one set or free (Save runs with no Add
	// half done), and the graph holds exactly the sets' keys.
	if nodes+len(free) != int(handed) || g.Len() != nodes {
		return fmt.Errorf("%w: %d keys handed out, the sets hold %d and %d are free; the graph holds %d", ErrFormat, handed, nodes, len(free), g.Len())
	}
	for _, ks := range keys {
		for _, k := range ks {
			if _, ok := g.slotOf.get(k); !ok {
				return fmt.Errorf("%w: key %d of ID %d is not in the graph", ErrFormat, k, owner[k])
			}
		}
	}
	m.writers.Lock()
	defer m.writers.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	var sizes setSizes
	for id, ks := range keys {
		sizes.set(id, len(ks))
	}
	m.g, m.owner, m.keys, m.sizes, m.free, m.nodes = g, owner, keys, sizes, free, nodes
	return nil
}
