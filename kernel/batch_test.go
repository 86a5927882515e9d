package kernel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBatchMatchesSingle checks the four-row kernels against the naive
// single-row sums, and the float32 ones bit for bit against L2Sq and
// DotProduct, on every length up to 40 (empty, tail only, body only,
// both) and the dimensions in use, on the assembly path and, where the CPU
// has it, the portable one too.
func TestBatchMatchesSingle(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	lens := []int{}
	for n := 0; n <= 40; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 96, 128, 130, 512, 768)
	paths := []bool{hasAVX2FMA}
	if hasAVX2FMA {
		paths = append(paths, false)
	}
	for _, asm := range paths {
		saved := hasAVX2FMA
		hasAVX2FMA = asm
		for _, n := range lens {
			a := randVec(r, n)
			var bs [4][]float32
			var cs [4][]uint8
			for k := range 4 {
				bs[k] = randVec(r, n+k) // longer than a: only len(a) is read
				cs[k] = make([]uint8, n+k)
				for i := range cs[k] {
					cs[k][i] = uint8(r.IntN(256))
				}
			}
			var l2, dot, u8 [4]float32
			L2Sq4(a, bs[0], bs[1], bs[2], bs[3], &l2)
			Dot4(a, bs[0], bs[1], bs[2], bs[3], &dot)
			DotU8x4(a, cs[0], cs[1], cs[2], cs[3], &u8)
			for k := range 4 {
				// Bit for bit what the single-row kernels give.
				assert.Equal(t, L2Sq(a, bs[k]), l2[k], "asm=%v n=%d row %d: L2Sq4 against L2Sq", asm, n, k)
				assert.Equal(t, DotProduct(a, bs[k]), dot[k], "asm=%v n=%d row %d: Dot4 against DotProduct", asm, n, k)
				tol := 1e-5 * (1 + math.Sqrt(float64(n)))
				assert.InDelta(t, naiveL2(a, bs[k][:n]), l2[k], tol*float64(1+naiveL2(a, bs[k][:n])), "asm=%v n=%d row %d l2", asm, n, k)
				assert.InDelta(t, naiveDot(a, bs[k][:n]), dot[k], tol*(1+math.Abs(float64(naiveDot(a, bs[k][:n])))), "asm=%v n=%d row %d dot", asm, n, k)
				want := naiveDotU8(a, cs[k][:n])
				assert.InDelta(t, want, u8[k], tol*(1+math.Abs(want)), "asm=%v n=%d row %d u8", asm, n, k)
			}
		}
		hasAVX2FMA = saved
	}
}

func TestBatchShortRowPanics(t *testing.T) {
	a, long := make([]float32, 8), make([]float32, 8)
	var out [4]float32
	assert.Panics(t, func() { L2Sq4(a, long, long, long, make([]float32, 7), &out) })
	assert.Panics(t, func() { Dot4(a, make([]float32, 7), long, long, long, &out) })
	c := make([]uint8, 8)
	assert.Panics(t, func() { DotU8x4(a, c, c, make([]uint8, 7), c, &out) })
}

// BenchmarkBatch: nanoseconds per row, four rows a call against one row a
// call, on rows that fit in cache.
//
//	go test -run '^$' -bench Batch ./kernel
func BenchmarkBatch(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	const rows = 256
	for _, n := range []int{128, 512} {
		a := randVec(r, n)
		bs := make([][]float32, rows)
		cs := make([][]uint8, rows)
		for k := range rows {
			bs[k] = randVec(r, n)
			cs[k] = make([]uint8, n)
		}
		var out [4]float32
		perRow := func(b *testing.B, calls, rowsPerCall int) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls*rowsPerCall), "ns/row")
		}
		cases := []struct {
			name string
			four bool
			run  func(k int)
		}{
			{"l2/single", false, func(k int) { out[0] = L2Sq(a, bs[k]) }},
			{"l2/four", true, func(k int) { L2Sq4(a, bs[k], bs[k+1], bs[k+2], bs[k+3], &out) }},
			{"dot/single", false, func(k int) { out[0] = DotProduct(a, bs[k]) }},
			{"dot/four", true, func(k int) { Dot4(a, bs[k], bs[k+1], bs[k+2], bs[k+3], &out) }},
			{"u8/single", false, func(k int) { out[0] = DotU8(a, cs[k]) }},
			{"u8/four", true, func(k int) { DotU8x4(a, cs[k], cs[k+1], cs[k+2], cs[k+3], &out) }},
		}
		for _, c := range cases {
			b.Run(c.name+"/"+itoa(n), func(b *testing.B) {
				step := 1
				if c.four {
					step = 4
				}
				i := 0
				for b.Loop() {
					c.run((i * step) % rows)
					i++
				}
				perRow(b, i, step)
			})
		}
	}
}
