package kernel

import (
	"github.com/viterin/vek/vek32"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"math/rand/v2"
)

func naiveDot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func naiveL2(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestKernelsMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 64, 100, 128, 512, 513} {
		a, b := randVec(r, n), randVec(r, n)
		tol := 1e-4 * float64(n+1)
		assert.InDelta(t, naiveDot(a, b), DotProduct(a, b), tol, "dot n=%d", n)
		assert.InDelta(t, naiveL2(a, b), L2Sq(a, b), tol, "l2 n=%d", n)
		assert.InDelta(t, naiveDot(a, b), dotGo(a, b), tol, "portable dot n=%d", n)
		assert.InDelta(t, naiveL2(a, b), l2Go(a, b), tol, "portable l2 n=%d", n)
		// b may be longer than a: only len(a) values count.
		assert.InDelta(t, naiveDot(a, b), DotProduct(a, append(b, 100)), tol)
	}
}

var sink float32

func benchKernel(b *testing.B, n int, f func(a, b []float32) float32) {
	r := rand.New(rand.NewPCG(3, 4))
	x, y := randVec(r, n), randVec(r, n)
	b.SetBytes(int64(8 * n))
	b.ResetTimer()
	for b.Loop() {
		sink += f(x, y)
	}
}

// The naive variants are the baseline the unrolled kernels are measured
// against: go test -bench 'Dot|L2' ./kernel
// "kernel" is what DotProduct and L2Sq run on this machine (our AVX2
// assembly where available), "vek" the library's AVX2 kernels they
// replaced (L2: its distance, squared), "unrolled" the portable Go
// fallback.
func BenchmarkDot(b *testing.B) {
	b.Logf("AVX2 and FMA: %v", hasAVX2FMA)
	for _, n := range []int{128, 512} {
		b.Run("kernel/"+itoa(n), func(b *testing.B) { benchKernel(b, n, DotProduct) })
		b.Run("vek/"+itoa(n), func(b *testing.B) { benchKernel(b, n, vek32.Dot) })
		b.Run("unrolled/"+itoa(n), func(b *testing.B) { benchKernel(b, n, dotGo) })
		b.Run("naive/"+itoa(n), func(b *testing.B) { benchKernel(b, n, naiveDot) })
	}
}

func BenchmarkL2(b *testing.B) {
	for _, n := range []int{128, 512} {
		b.Run("kernel/"+itoa(n), func(b *testing.B) { benchKernel(b, n, L2Sq) })
		b.Run("vek/"+itoa(n), func(b *testing.B) {
			benchKernel(b, n, func(x, y []float32) float32 { d := vek32.Distance(x, y); return d * d })
		})
		b.Run("unrolled/"+itoa(n), func(b *testing.B) { benchKernel(b, n, l2Go) })
		b.Run("naive/"+itoa(n), func(b *testing.B) { benchKernel(b, n, naiveL2) })
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
