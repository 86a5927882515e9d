// Package coder adapts github.com/coder/hnsw v0.6.1 to mmdb's hnsw.Index,
// as a measured baseline for the engine benchmark (internal/bench) only:
// the database never uses it, and no program but the benchmark links it.
//
// As released, coder/hnsw's search keeps a result heap of size k rather
// than ef, so recall stays near 0.1-0.4 whatever ef is, and it panics on
// updates and on searches after deletes (see ARCHITECTURE.md). So this
// adapter never routes an update or a delete to it: re-adding an ID fails
// with ErrUnsupported, and deletes are filtered out of results here.
package coder

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	coderhnsw "github.com/coder/hnsw"
	"github.com/mmdb-go/mmdb/hnsw"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// ErrUnsupported: the engine cannot do what was asked.
var ErrUnsupported = errors.New("coder: not supported by this engine")

// Distance functions registered by name, since coder's Export stores the
// distance function's registered name.
func negDot(a, b []float32) float32      { return -kernel.DotProduct(a, b) }
func oneMinusDot(a, b []float32) float32 { return 1 - kernel.DotProduct(a, b) }

func init() {
	coderhnsw.RegisterDistanceFunc("mmdb-neg-dot", negDot)
	coderhnsw.RegisterDistanceFunc("mmdb-one-minus-dot", oneMinusDot)
	coderhnsw.RegisterDistanceFunc("mmdb-l2sq", kernel.L2Sq)
}

// Coder is a coder/hnsw graph behind hnsw.Index. It is safe for
// concurrent use, but serialises every call.
type Coder struct {
	mu      sync.RWMutex
	g       *coderhnsw.Graph[uint32]
	dim     int
	metric  modality.Metric
	dist    func(a, b []float32) float32
	vecs    map[uint32][]float32 // live vectors, for Vector and exact scans
	deleted map[uint32]bool
}

var _ hnsw.Index = (*Coder)(nil)

// New returns an empty coder/hnsw graph with M = cfg.M and a default ef
// of cfg.EfSearch (hnsw.DefaultM and hnsw.DefaultEfSearch when zero).
// Other fields of cfg do not apply.
func New(dim int, metric modality.Metric, cfg hnsw.Config) *Coder {
	if cfg.M <= 0 {
		cfg.M = hnsw.DefaultM
	}
	if cfg.EfSearch <= 0 {
		cfg.EfSearch = hnsw.DefaultEfSearch
	}
	g := coderhnsw.NewGraph[uint32]()
	g.M = max(cfg.M, 2)
	g.EfSearch = cfg.EfSearch
	c := &Coder{g: g, dim: dim, metric: metric, vecs: map[uint32][]float32{}, deleted: map[uint32]bool{}}
	switch metric {
	case modality.L2:
		g.Distance = kernel.L2Sq
	case modality.Dot:
		g.Distance = negDot
	default:
		g.Distance = oneMinusDot
	}
	c.dist = g.Distance
	return c
}

// Add implements hnsw.Index; an ID already added (even if deleted) gives
// ErrUnsupported, since coder/hnsw panics on re-adds.
func (c *Coder) Add(id uint32, vec []float32) error {
	if len(vec) != c.dim {
		return fmt.Errorf("%w: %d, want %d", hnsw.ErrDimension, len(vec), c.dim)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.vecs[id]; ok || c.deleted[id] {
		return fmt.Errorf("%w: coder/hnsw cannot update ID %d", ErrUnsupported, id)
	}
	v := append([]float32(nil), vec...)
	c.vecs[id] = v
	c.g.Add(coderhnsw.MakeNode(id, v))
	return nil
}

// Delete implements hnsw.Index by filtering: the node stays in coder's
// graph.
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

// byDist orders results closest first, ties by ID.
func byDist(a, b hnsw.Result) int {
	return cmp.Or(cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.ID, b.ID))
}

// Search implements hnsw.Index. Ef is passed to coder/hnsw's EfSearch,
// which (as released) does not change its results. Deleted and disallowed
// IDs are dropped after coder's search, so fewer than k may come back.
func (c *Coder) Search(q []float32, k int, opts hnsw.SearchOptions) []hnsw.Result {
	if k <= 0 || len(q) != c.dim {
		return nil
	}
	c.mu.Lock() // coder's Search reads EfSearch, which we set per call
	defer c.mu.Unlock()
	if opts.Exact {
		all := make([]hnsw.Result, 0, len(c.vecs))
		for id, v := range c.vecs {
			if allowed(opts, id) {
				all = append(all, hnsw.Result{ID: id, Dist: c.dist(q, v)})
			}
		}
		slices.SortFunc(all, byDist)
		return all[:min(k, len(all)):min(k, len(all))]
	}
	if c.g.Len() == 0 {
		return nil
	}
	if opts.Ef > 0 {
		c.g.EfSearch = opts.Ef
	}
	nodes := c.g.Search(q, k)
	out := make([]hnsw.Result, 0, len(nodes))
	for _, n := range nodes {
		if c.deleted[n.Key] || !allowed(opts, n.Key) {
			continue
		}
		out = append(out, hnsw.Result{ID: n.Key, Dist: c.dist(q, n.Value)})
	}
	slices.SortFunc(out, byDist)
	return out
}

// allowed reports whether opts's allow-list and filter function both
// accept id.
func allowed(opts hnsw.SearchOptions, id uint32) bool {
	return (opts.Allow == nil || opts.Allow.Contains(id)) && (opts.Filter == nil || opts.Filter(id))
}

// Vector implements hnsw.Index.
func (c *Coder) Vector(id uint32) ([]float32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.vecs[id]
	return append([]float32(nil), v...), ok
}

// Len implements hnsw.Index.
func (c *Coder) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.vecs)
}

// Unreachable implements hnsw.Index. coder/hnsw's graph is not inspected:
// it always returns nil, which says nothing about the baseline's links.
func (c *Coder) Unreachable() []uint32 { return nil }

// Dim implements hnsw.Index.
func (c *Coder) Dim() int { return c.dim }

// Metric implements hnsw.Index.
func (c *Coder) Metric() modality.Metric { return c.metric }

// The saved form: magic, uint32 version, dim, metric, the deleted IDs and
// the live IDs (each a uint64 count, then uint32s), coder's own Export
// (a uint64 length, then its bytes), then a CRC-32C of everything before
// it; little-endian throughout.
const (
	magic   = "MMCH"
	version = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save implements hnsw.Index: coder's own Export, framed with the deleted
// IDs.
func (c *Coder) Save(w io.Writer) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var exp bytes.Buffer
	if err := c.g.Export(&exp); err != nil {
		return err
	}
	le := binary.LittleEndian
	b := make([]byte, 0, 40+4*(len(c.deleted)+len(c.vecs))+exp.Len())
	b = append(b, magic...)
	b = le.AppendUint32(b, version)
	b = le.AppendUint32(b, uint32(c.dim))
	b = le.AppendUint32(b, uint32(c.metric))
	b = le.AppendUint64(b, uint64(len(c.deleted)))
	for id := range c.deleted {
		b = le.AppendUint32(b, id)
	}
	b = le.AppendUint64(b, uint64(len(c.vecs)))
	for id := range c.vecs {
		b = le.AppendUint32(b, id)
	}
	b = le.AppendUint64(b, uint64(exp.Len()))
	b = append(b, exp.Bytes()...)
	b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	_, err := w.Write(b)
	return err
}

// reader parses a verified frame; the first shortfall sets err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = fmt.Errorf("%w: truncated payload", hnsw.ErrFormat)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// u32s reads a count, then that many uint32s; the count is checked
// against the bytes left before anything is allocated.
func (r *reader) u32s() []uint32 {
	n := r.u64()
	if r.err == nil && n > uint64(len(r.b))/4 {
		r.err = fmt.Errorf("%w: %d IDs cannot fit in %d bytes", hnsw.ErrFormat, n, len(r.b))
	}
	if r.err != nil {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.u32()
	}
	return out
}

// Load implements hnsw.Index. coder's Import is not hardened against
// damaged input, but the frame's checksum is verified before it runs, and
// a panic inside it is turned into an error.
func (c *Coder) Load(rd io.Reader) (err error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	if len(b) < len(magic)+8 {
		return fmt.Errorf("%w: %d bytes is too short", hnsw.ErrFormat, len(b))
	}
	if string(b[:len(magic)]) != magic {
		return fmt.Errorf("%w: magic %q, want %q", hnsw.ErrFormat, b[:len(magic)], magic)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch (truncated or corrupted)", hnsw.ErrFormat)
	}
	r := &reader{b: body[len(magic):]}
	if v := r.u32(); v != version {
		return fmt.Errorf("%w: format version %d, this build reads %d", hnsw.ErrFormat, v, version)
	}
	dim, metric := int(r.u32()), modality.Metric(r.u32())
	del := r.u32s()
	live := r.u32s()
	n := r.u64()
	if r.err != nil {
		return r.err
	}
	if dim != c.dim || metric != c.metric || n != uint64(len(r.b)) {
		return fmt.Errorf("%w: saved dim %d metric %v, index has dim %d metric %v", hnsw.ErrFormat, dim, metric, c.dim, c.metric)
	}
	c.mu.RLock()
	fresh := New(c.dim, c.metric, hnsw.Config{M: c.g.M, EfSearch: c.g.EfSearch})
	c.mu.RUnlock()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: coder/hnsw import panicked: %v", hnsw.ErrFormat, p)
		}
	}()
	if err := fresh.g.Import(bytes.NewReader(r.b)); err != nil {
		return fmt.Errorf("%w: %v", hnsw.ErrFormat, err)
	}
	for _, id := range del {
		fresh.deleted[id] = true
	}
	for _, id := range live {
		v, ok := fresh.g.Lookup(id)
		if !ok || len(v) != c.dim {
			return fmt.Errorf("%w: live ID %d missing from the graph", hnsw.ErrFormat, id)
		}
		fresh.vecs[id] = v
	}
	c.mu.Lock()
	c.g, c.vecs, c.deleted = fresh.g, fresh.vecs, fresh.deleted
	c.mu.Unlock()
	return nil
}
