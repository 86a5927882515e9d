package hnsw

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// AddParallel adds vecs[i] under ids[i] from several goroutines (workers
// <= 0 means one per CPU): the bulk path for imports and rebuilds. Index
// implementations are safe for concurrent Adds; HNSW's per-node locks let
// the inserts proceed side by side. progress, if non-nil, is called now and
// then with the number of vectors added so far. It stops early when ctx is
// cancelled, and returns the first error. At the end, an index with a
// Repair method (HNSW) re-links any node the build left unreachable.
func AddParallel(ctx context.Context, idx Index, ids []uint32, vecs [][]float32, workers int, progress func(done int)) error {
	if len(ids) != len(vecs) {
		return fmt.Errorf("hnsw: %d ids for %d vectors", len(ids), len(vecs))
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	added := 0 // before the workers start
	if r, ok := idx.(interface{ Reserve(int) bool }); ok && len(ids) > 0 && !r.Reserve(len(ids)) {
		// An empty graph: its first vector goes in alone (it becomes the
		// codes' centre), then the rest are reserved for at once.
		if err := idx.Add(ids[0], vecs[0]); err != nil {
			return fmt.Errorf("id %d: %w", ids[0], err)
		}
		r.Reserve(len(ids) - 1)
		ids, vecs = ids[1:], vecs[1:]
		added = 1
	}
	workers = max(1, min(workers, len(ids)/64)) // tiny batches: not worth the goroutines
	var next, done atomic.Int64
	done.Store(int64(added))
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	const chunk = 32
	for range workers {
		wg.Go(func() {
			for {
				if ctx.Err() != nil {
					once.Do(func() { firstErr = ctx.Err() })
					return
				}
				start := int(next.Add(chunk)) - chunk
				if start >= len(ids) {
					return
				}
				end := min(start+chunk, len(ids))
				for i := start; i < end; i++ {
					if err := idx.Add(ids[i], vecs[i]); err != nil {
						once.Do(func() { firstErr = fmt.Errorf("id %d: %w", ids[i], err) })
						return
					}
				}
				d := done.Add(int64(end - start))
				if progress != nil && (d/chunk)%64 == 0 {
					progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	if r, ok := idx.(interface{ Repair() int }); ok && workers > 1 && ctx.Err() == nil {
		// Concurrent inserts prune each other's lists and can leave a
		// node no link leads to; one check finds any, and they are
		// re-linked. (A one-worker batch, a small Put, is left to the
		// periodic check: a pass over the whole graph per small write
		// would make writes cost in the graph's size.)
		r.Repair()
	}
	if firstErr == nil && progress != nil {
		progress(added + len(ids))
	}
	return firstErr
}
