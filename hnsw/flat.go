package hnsw

import (
	"fmt"
	"io"
	"sync"

	"github.com/mmdb-go/mmdb/modality"
)

// Flat is an exact index: a linear scan over vectors stored contiguously.
type Flat struct {
	mu     sync.RWMutex
	dim    int
	metric modality.Metric
	ids    []uint32         // ids[i] owns vecs[i*dim:(i+1)*dim]
	vecs   []float32        // contiguous, for cache-friendly scans
	pos    map[uint32]int32 // id -> slot; not on the search path
}

// NewFlat returns an empty exact index.
func NewFlat(dim int, metric modality.Metric) *Flat {
	return &Flat{dim: dim, metric: metric, pos: map[uint32]int32{}}
}

// Add implements Index.
func (f *Flat) Add(id uint32, vec []float32) error {
	if len(vec) != f.dim {
		return fmt.Errorf("%w: %d, want %d", ErrDimension, len(vec), f.dim)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.pos[id]; ok {
		copy(f.vecs[int(p)*f.dim:], vec)
		return nil
	}
	f.pos[id] = int32(len(f.ids))
	f.ids = append(f.ids, id)
	f.vecs = append(f.vecs, vec...)
	return nil
}

// Delete implements Index. The last slot moves into the hole, so the
// arrays stay dense.
func (f *Flat) Delete(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pos[id]
	if !ok {
		return false
	}
	last := len(f.ids) - 1
	if int(p) != last {
		moved := f.ids[last]
		f.ids[p] = moved
		copy(f.vecs[int(p)*f.dim:(int(p)+1)*f.dim], f.vecs[last*f.dim:])
		f.pos[moved] = p
	}
	f.ids = f.ids[:last]
	f.vecs = f.vecs[:last*f.dim]
	delete(f.pos, id)
	return true
}

// Search implements Index; it is always exact.
func (f *Flat) Search(q []float32, k int, opts SearchOptions) []Result {
	if k <= 0 || len(q) != f.dim {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	h := make(maxHeap, 0, min(k, 1024)+1)
	d := f.dim
	for i, id := range f.ids {
		if (opts.Allow != nil && !opts.Allow.Contains(id)) || (opts.Filter != nil && !opts.Filter(id)) {
			continue
		}
		h.offer(Result{ID: id, Dist: f.metric.Distance(q, f.vecs[i*d:(i+1)*d])}, k)
	}
	return h.sorted()
}

// Vector implements Index.
func (f *Flat) Vector(id uint32) ([]float32, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	p, ok := f.pos[id]
	if !ok {
		return nil, false
	}
	return append([]float32(nil), f.vecs[int(p)*f.dim:(int(p)+1)*f.dim]...), true
}

// Len implements Index.
func (f *Flat) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.ids)
}

// Unreachable implements Index: a scan reaches every vector, so it is
// always nil.
func (f *Flat) Unreachable() []uint32 { return nil }

// Dim implements Index.
func (f *Flat) Dim() int { return f.dim }

// Metric implements Index.
func (f *Flat) Metric() modality.Metric { return f.metric }

const (
	flatMagic   = "MMFL"
	flatVersion = 1
)

// Save implements Index.
func (f *Flat) Save(w io.Writer) error {
	f.mu.RLock()
	fr := newFrame(flatMagic, flatVersion, 16+4*(len(f.ids)+len(f.vecs)))
	fr.u32(uint32(f.dim))
	fr.u32(uint32(f.metric))
	fr.u64(uint64(len(f.ids)))
	fr.u32s(f.ids)
	fr.f32s(f.vecs)
	f.mu.RUnlock()
	return fr.writeTo(w)
}

// Load implements Index.
func (f *Flat) Load(r io.Reader) error {
	fr, err := openFrame(r, flatMagic, flatVersion)
	if err != nil {
		return err
	}
	dim, metric, n := fr.u32(), modality.Metric(fr.u32()), fr.u64()
	if fr.err == nil && (int(dim) != f.dim || metric != f.metric) {
		return fmt.Errorf("%w: saved dim %d metric %v, index has dim %d metric %v", ErrFormat, dim, metric, f.dim, f.metric)
	}
	ids := fr.u32s(n)
	vecs := fr.f32s(n * uint64(dim))
	if err := fr.done(); err != nil {
		return err
	}
	pos := make(map[uint32]int32, n)
	for i, id := range ids {
		if _, dup := pos[id]; dup {
			return fmt.Errorf("%w: id %d appears twice", ErrFormat, id)
		}
		pos[id] = int32(i)
	}
	f.mu.Lock()
	f.ids, f.vecs, f.pos = ids, vecs, pos
	f.mu.Unlock()
	return nil
}
