package hnsw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	coder "github.com/coder/hnsw"
	"github.com/mmdb-go/mmdb/modality"
)

// ErrUnsupported: the engine cannot do what was asked.
var ErrUnsupported = errors.New("hnsw: not supported by this engine")

// Distance functions registered by name, since coder's Export stores the
// distance function's registered name.
func negDot(a, b []float32) float32      { return -modality.DotProduct(a, b) }
func oneMinusDot(a, b []float32) float32 { return 1 - modality.DotProduct(a, b) }

func init() {
	coder.RegisterDistanceFunc("mmdb-neg-dot", negDot)
	coder.RegisterDistanceFunc("mmdb-one-minus-dot", oneMinusDot)
	coder.RegisterDistanceFunc("mmdb-l2sq", modality.L2Sq)
}

// Coder adapts github.com/coder/hnsw v0.6.1 to Index, as a measured
// baseline only: as released its search keeps a result heap of size k
// rather than ef, so recall stays near 0.1 whatever ef is, and it panics
// on updates and on searches after deletes (see ARCHITECTURE.md). So this
// adapter never routes an update or a delete to it: re-adding an ID fails
// with ErrUnsupported, and deletes are filtered out of results here.
type Coder struct {
	mu      sync.RWMutex
	g       *coder.Graph[uint32]
	dim     int
	metric  modality.Metric
	dist    func(a, b []float32) float32
	vecs    map[uint32][]float32 // live vectors, for Vector and exact scans
	deleted map[uint32]bool
}

// NewCoder returns an empty coder/hnsw graph with M = cfg.M.
func NewCoder(dim int, metric modality.Metric, cfg Config) *Coder {
	cfg = cfg.withDefaults()
	g := coder.NewGraph[uint32]()
	g.M = cfg.M
	g.EfSearch = cfg.EfSearch
	c := &Coder{g: g, dim: dim, metric: metric, vecs: map[uint32][]float32{}, deleted: map[uint32]bool{}}
	switch metric {
	case modality.L2:
		g.Distance = modality.L2Sq
	case modality.Dot:
		g.Distance = negDot
	default:
		g.Distance = oneMinusDot
	}
	c.dist = g.Distance
	return c
}

// Add implements Index; an ID already added (even if deleted) gives
// ErrUnsupported, since coder/hnsw panics on re-adds.
func (c *Coder) Add(id uint32, vec []float32) error {
	if len(vec) != c.dim {
		return fmt.Errorf("%w: %d, want %d", ErrDimension, len(vec), c.dim)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.vecs[id]; ok || c.deleted[id] {
		return fmt.Errorf("%w: coder/hnsw cannot update ID %d", ErrUnsupported, id)
	}
	v := append([]float32(nil), vec...)
	c.vecs[id] = v
	c.g.Add(coder.MakeNode(id, v))
	return nil
}

// Delete implements Index by filtering: the node stays in coder's graph.
func (c *Coder) Delete(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.vecs[id]; !ok {
		return false
	}
	delete(c.vecs, id)
	c.deleted[id] = true
	return true
}

// Search implements Index. Ef is passed to coder/hnsw's EfSearch, which
// (as released) does not change its results. Deleted and disallowed IDs
// are dropped after coder's search, so fewer than k may come back.
func (c *Coder) Search(q []float32, k int, opts SearchOptions) []Result {
	if k <= 0 || len(q) != c.dim {
		return nil
	}
	c.mu.Lock() // coder's Search reads EfSearch, which we set per call
	defer c.mu.Unlock()
	if opts.Exact {
		h := make(maxHeap, 0, min(k, 1024)+1)
		for id, v := range c.vecs {
			if opts.Allow == nil || opts.Allow.Contains(id) {
				h.offer(Result{ID: id, Dist: c.dist(q, v)}, k)
			}
		}
		return h.sorted()
	}
	if c.g.Len() == 0 {
		return nil
	}
	if opts.Ef > 0 {
		c.g.EfSearch = opts.Ef
	}
	nodes := c.g.Search(q, k)
	out := make([]Result, 0, len(nodes))
	for _, n := range nodes {
		if c.deleted[n.Key] || (opts.Allow != nil && !opts.Allow.Contains(n.Key)) {
			continue
		}
		out = append(out, Result{ID: n.Key, Dist: c.dist(q, n.Value)})
	}
	sortResults(out)
	return out
}

// Vector implements Index.
func (c *Coder) Vector(id uint32) ([]float32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.vecs[id]
	return append([]float32(nil), v...), ok
}

// Len implements Index.
func (c *Coder) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.vecs)
}

// Unreachable implements Index. coder/hnsw's graph is not inspected: it
// always returns nil, which says nothing about the baseline's links.
func (c *Coder) Unreachable() []uint32 { return nil }

// Dim implements Index.
func (c *Coder) Dim() int { return c.dim }

// Metric implements Index.
func (c *Coder) Metric() modality.Metric { return c.metric }

const (
	coderMagic   = "MMCH"
	coderVersion = 1
)

// Save implements Index: coder's own Export, framed with the deleted IDs.
func (c *Coder) Save(w io.Writer) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var buf bytes.Buffer
	if err := c.g.Export(&buf); err != nil {
		return err
	}
	f := newFrame(coderMagic, coderVersion, 32+4*(len(c.deleted)+len(c.vecs))+buf.Len())
	f.u32(uint32(c.dim))
	f.u32(uint32(c.metric))
	del := make([]uint32, 0, len(c.deleted))
	for id := range c.deleted {
		del = append(del, id)
	}
	f.u64(uint64(len(del)))
	f.u32s(del)
	live := make([]uint32, 0, len(c.vecs))
	for id := range c.vecs {
		live = append(live, id)
	}
	f.u64(uint64(len(live)))
	f.u32s(live)
	f.u64(uint64(buf.Len()))
	f.buf = append(f.buf, buf.Bytes()...)
	return f.writeTo(w)
}

// Load implements Index. coder's Import is not hardened against damaged
// input, but the frame's checksum is verified before it runs, and a panic
// inside it is turned into an error.
func (c *Coder) Load(r io.Reader) (err error) {
	fr, err := openFrame(r, coderMagic, coderVersion)
	if err != nil {
		return err
	}
	dim, metric := int(fr.u32()), modality.Metric(fr.u32())
	del := fr.u32s(fr.u64())
	live := fr.u32s(fr.u64())
	n := fr.u64()
	if fr.err != nil {
		return fr.err
	}
	if dim != c.dim || metric != c.metric || n != uint64(len(fr.b)) {
		return fmt.Errorf("%w: saved dim %d metric %v, index has dim %d metric %v", ErrFormat, dim, metric, c.dim, c.metric)
	}
	fresh := NewCoder(c.dim, c.metric, Config{M: c.g.M, EfSearch: c.g.EfSearch})
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: coder/hnsw import panicked: %v", ErrFormat, p)
		}
	}()
	if err := fresh.g.Import(bytes.NewReader(fr.b)); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	for _, id := range del {
		fresh.deleted[id] = true
	}
	for _, id := range live {
		v, ok := fresh.g.Lookup(id)
		if !ok || len(v) != c.dim {
			return fmt.Errorf("%w: live ID %d missing from the graph", ErrFormat, id)
		}
		fresh.vecs[id] = v
	}
	c.mu.Lock()
	c.g, c.vecs, c.deleted = fresh.g, fresh.vecs, fresh.deleted
	c.mu.Unlock()
	return nil
}
