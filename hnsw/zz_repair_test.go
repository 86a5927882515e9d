package hnsw

import (
	"context"
	"testing"
	"time"

	"github.com/mmdb-go/mmdb/modality"
)

func TestZZRepairStall(t *testing.T) {
	const dim = 16
	var vecs [][]float32
	for i, s := range []struct {
		n     int
		shift float32
	}{{300, 0}, {900, 6}, {3000, 14}, {9000, 30}} {
		vecs = append(vecs, shifted(s.n, dim, s.shift, uint64(40+i))...)
	}
	ids := make([]uint32, len(vecs))
	for i := range ids {
		ids[i] = uint32(i)
	}
	for _, c := range []struct{ low, auto, par bool }{{true, true, true}, {true, false, true}, {true, true, false}, {true, false, false}} {
		low := c.low
		var idx Index = NewHNSW(dim, modality.L2, Config{Seed: 1, EfConstruction: 40})
		if low {
			idx = newSourced(dim, modality.L2, Config{Seed: 1, EfConstruction: 40})
		}
		if !c.auto {
			noAutoCentre(idx)
		}
		g := graphOf(idx)
		t0 := time.Now()
		if c.par {
			if err := AddParallel(context.Background(), idx, ids, vecs, 4, nil); err != nil {
				t.Fatal(err)
			}
		} else {
			fill(t, idx, vecs)
		}
		build := time.Since(t0)
		t1 := time.Now()
		lost := len(g.Unreachable())
		rel := g.Repair()
		t.Logf("%+v: build %v (relinks during %d), unreachable %d, Repair %d relinks in %v", c, build, g.relinks.Load()-int64(rel), lost, rel, time.Since(t1))
	}
}
