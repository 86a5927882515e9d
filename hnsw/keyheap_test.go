package hnsw

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyHeaps checks the filtered walk's heaps against sorting: keyMin
// pops in ascending order, keyMax keeps the n smallest keys offered and
// pops them largest first, for random keys with repeats.
func TestKeyHeaps(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, size := range []int{0, 1, 2, 7, 100, 1000} {
		for _, n := range []int{1, 3, 50} {
			keys := make([]uint64, size)
			for i := range keys {
				keys[i] = r.Uint64N(uint64(size)/2 + 1) // repeats
			}
			var mn keyMin
			var mx keyMax
			for _, k := range keys {
				mn.push(k)
				mx.offer(k, n)
			}
			sorted := slices.Sorted(slices.Values(keys))
			var popped []uint64
			for len(mn) > 0 {
				popped = append(popped, mn.pop())
			}
			if size > 0 {
				require.Equal(t, sorted, popped, "keyMin, %d keys", size)
			}
			want := sorted[:min(n, size)]
			var kept []uint64
			for len(mx) > 0 {
				kept = append(kept, mx.pop())
			}
			slices.Reverse(kept)
			if len(want) > 0 {
				require.Equal(t, want, kept, "keyMax of %d, %d keys", n, size)
			} else {
				require.Empty(t, kept)
			}
		}
	}
}

// TestBeamKeyOrder checks that beamKey orders results as worse does (but
// for -0, just before +0: a tie, kept so the distance comes back exact),
// that a NaN comes after every number, and that keyResult inverts it.
func TestBeamKeyOrder(t *testing.T) {
	dists := []float32{float32(math.Inf(-1)), -3.5, -1e-30, float32(math.Copysign(0, -1)), 0, 1e-30, 0.5, 2, float32(math.Inf(1))}
	var rs []Result
	for _, d := range dists {
		for _, id := range []uint32{0, 7, math.MaxUint32} {
			rs = append(rs, Result{ID: id, Dist: d})
		}
	}
	for _, a := range rs {
		back := keyResult(beamKey(a))
		assert.Equal(t, math.Float32bits(a.Dist), math.Float32bits(back.Dist), "round trip of %v", a)
		assert.Equal(t, a.ID, back.ID)
		for _, b := range rs {
			if a.Dist == 0 && b.Dist == 0 && math.Signbit(float64(a.Dist)) != math.Signbit(float64(b.Dist)) {
				assert.Equal(t, math.Signbit(float64(a.Dist)), beamKey(a) < beamKey(b), "-0 before +0: %v against %v", a, b)
				continue
			}
			assert.Equal(t, worse(a, b), beamKey(a) > beamKey(b), "%v against %v", a, b)
		}
	}
	for _, nan := range []uint32{0x7fc00000, 0xffc00000} {
		k := beamKey(Result{ID: 1, Dist: math.Float32frombits(nan)})
		assert.Greater(t, k, beamKey(Result{ID: math.MaxUint32, Dist: float32(math.Inf(1))}), "NaN %x after +Inf", nan)
	}
}
