package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func naiveDotI16U8(q []int16, c []uint8) int64 {
	var s int64
	for i := range q {
		s += int64(q[i]) * int64(c[i])
	}
	return s
}

// kernelPaths returns the code paths this machine can run, each as the
// values of hasAVX2FMA and hasVNNI to set: VNNI, AVX2 alone and the
// portable loop, as far as the CPU has them.
func kernelPaths() []struct{ avx2, vnni bool } {
	paths := []struct{ avx2, vnni bool }{{false, false}}
	if hasAVX2FMA {
		paths = append(paths, struct{ avx2, vnni bool }{true, false})
		if hasVNNI {
			paths = append(paths, struct{ avx2, vnni bool }{true, true})
		}
	}
	return paths
}

// TestDotI16U8MatchesNaive checks the single and four-row integer kernels
// against an int64 sum on every length up to 70 (tail only, the 16 and 32
// steps, both) and the dimensions in use, on every path the CPU has, with
// random values and with components at ±QueryMax against codes of 255
// (mixed signs here; TestDotI16U8WorstCase takes one sign throughout, the
// largest sum there is).
func TestDotI16U8MatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lens := []int{}
	for n := 0; n <= 70; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 96, 128, 130, 512, 768, 1536, 4096)
	for _, p := range kernelPaths() {
		savedAVX2, savedVNNI := hasAVX2FMA, hasVNNI
		hasAVX2FMA, hasVNNI = p.avx2, p.vnni
		for _, n := range lens {
			for _, extreme := range []bool{false, true} {
				lim := QueryMax(n)
				q := make([]int16, n)
				var cs [4][]uint8
				for k := range 4 {
					cs[k] = make([]uint8, n+k) // longer than q: only len(q) is read
				}
				for i := range q {
					if extreme {
						q[i] = int16(lim)
						if i%7 == 3 {
							q[i] = -int16(lim)
						}
					} else {
						q[i] = int16(r.IntN(2*int(lim)+1) - int(lim))
					}
					for k := range 4 {
						cs[k][i] = uint8(r.IntN(256))
						if extreme {
							cs[k][i] = 255
						}
					}
				}
				var four [4]int32
				DotI16U8x4(q, cs[0], cs[1], cs[2], cs[3], &four)
				for k := range 4 {
					want := naiveDotI16U8(q, cs[k])
					assert.Equal(t, want, int64(four[k]), "avx2=%v vnni=%v n=%d extreme=%v row %d: four rows", p.avx2, p.vnni, n, extreme, k)
					assert.Equal(t, want, int64(DotI16U8(q, cs[k])), "avx2=%v vnni=%v n=%d extreme=%v row %d: one row", p.avx2, p.vnni, n, extreme, k)
				}
			}
		}
		hasAVX2FMA, hasVNNI = savedAVX2, savedVNNI
	}
}

// TestDotI16U8WorstCase puts every component at +QueryMax or -QueryMax
// and every code at 255, the largest sum a quantized query can form, on
// every path, at lengths on both sides of where QueryMax starts to shrink
// and up to where it reaches 1: the int32 sums must be exact.
func TestDotI16U8WorstCase(t *testing.T) {
	for _, p := range kernelPaths() {
		savedAVX2, savedVNNI := hasAVX2FMA, hasVNNI
		hasAVX2FMA, hasVNNI = p.avx2, p.vnni
		for _, n := range []int{16, 32, 48, 256, 257, 258, 259, 1024, 4096, 4114, 4115, 8191, 65536, 1 << 20, 8421504} {
			lim := QueryMax(n)
			require.Positive(t, lim, "n=%d", n)
			c := make([]uint8, n)
			for i := range c {
				c[i] = 255
			}
			for _, sign := range []int16{1, -1} {
				q := make([]int16, n)
				for i := range q {
					q[i] = sign * int16(lim)
				}
				want := int64(sign) * int64(lim) * 255 * int64(n)
				var four [4]int32
				DotI16U8x4(q, c, c, c, c, &four)
				assert.Equal(t, want, int64(DotI16U8(q, c)), "avx2=%v vnni=%v n=%d sign %d: one row", p.avx2, p.vnni, n, sign)
				assert.Equal(t, [4]int32{int32(want), int32(want), int32(want), int32(want)}, four, "avx2=%v vnni=%v n=%d sign %d: four rows", p.avx2, p.vnni, n, sign)
			}
		}
		hasAVX2FMA, hasVNNI = savedAVX2, savedVNNI
	}
}

// TestQuantizeQueryNonFinite: a NaN or an infinity (which the database
// refuses before a search) gives integers within QueryMax on every path,
// whatever they are.
func TestQuantizeQueryNonFinite(t *testing.T) {
	for _, p := range kernelPaths() {
		saved := hasAVX2FMA
		hasAVX2FMA = p.avx2
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			for _, at := range []int{0, 7, 15, 16} {
				a := randVec(rand.New(rand.NewPCG(1, uint64(at))), 17)
				a[at] = bad
				q := make([]int16, len(a))
				s := QuantizeQuery(a, q)
				assert.False(t, math.IsNaN(float64(s)), "avx2=%v %v at %d: scale NaN", p.avx2, bad, at)
				for i, x := range q {
					assert.LessOrEqual(t, int32(x), QueryMax(len(a)), "avx2=%v %v at %d: component %d", p.avx2, bad, at, i)
					assert.GreaterOrEqual(t, int32(x), -QueryMax(len(a)), "avx2=%v %v at %d: component %d", p.avx2, bad, at, i)
				}
			}
		}
		hasAVX2FMA = saved
	}
}

func TestDotI16U8ShortRowPanics(t *testing.T) {
	q := make([]int16, 32)
	short := make([]uint8, 31)
	long := make([]uint8, 32)
	var out [4]int32
	assert.Panics(t, func() { DotI16U8(q, short) })
	assert.Panics(t, func() { DotI16U8x4(q, long, long, short, long, &out) })
}

// TestQuantizeQuery checks the scale and the rounding, on the assembly
// path and the portable one: every component
// within half a step of its value, the largest at QueryMax, and the
// degenerate queries (zero, too small for a normal step, at float32's
// largest values) finite.
func TestQuantizeQuery(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	big := randVec(r, 128)
	for i := range big {
		big[i] *= 1e37
	}
	tiny := randVec(r, 128)
	for i := range tiny {
		tiny[i] *= 1e-42
	}
	cases := []struct {
		name string
		a    []float32
		zero bool // expect s == 0
	}{
		{"empty", nil, true},
		{"zero", make([]float32, 16), true},
		{"normal 128", randVec(r, 128), false},
		{"normal 3", randVec(r, 3), false},
		{"normal 13", randVec(r, 13), false},
		{"normal 1536", randVec(r, 1536), false},
		{"one component", []float32{-2.5}, false},
		{"max float32", []float32{math.MaxFloat32, -math.MaxFloat32, 1}, false},
		{"large", big, false},
		{"subnormal", tiny, true},
		{"step not normal", []float32{3e-34, -1e-34, 2e-35}, true},
	}
	for _, p := range kernelPaths() {
		savedAVX2 := hasAVX2FMA
		hasAVX2FMA = p.avx2
		for _, tc := range cases {
			t.Run(fmt.Sprintf("avx2=%v/%s", p.avx2, tc.name), func(t *testing.T) {
				q := make([]int16, len(tc.a))
				s := QuantizeQuery(tc.a, q)
				require.False(t, math.IsNaN(float64(s)) || math.IsInf(float64(s), 0), "scale %v", s)
				if tc.zero {
					assert.Zero(t, s)
					assert.Equal(t, make([]int16, len(tc.a)), q)
					return
				}
				require.Positive(t, s)
				lim := QueryMax(len(tc.a))
				top := int16(0)
				for i, v := range tc.a {
					assert.LessOrEqual(t, int32(q[i]), lim, "component %d", i)
					assert.GreaterOrEqual(t, int32(q[i]), -lim, "component %d", i)
					top = max(top, q[i], -q[i])
					// Within half a step, up to float32 rounding of the step.
					got := float64(s) * float64(q[i])
					assert.InDelta(t, float64(v), got, 0.5*float64(s)*(1+1e-5)+1e-6*math.Abs(float64(v)), "component %d", i)
				}
				assert.Equal(t, lim, int32(top), "the largest component is at QueryMax")
			})
		}
		hasAVX2FMA = savedAVX2
	}
}

// TestQueryMax checks the bound that keeps the integer sums in int32.
func TestQueryMax(t *testing.T) {
	for _, n := range []int{0, 1, 128, 257, 258, 512, 4096, 1 << 20, 1 << 24} {
		lim := int64(QueryMax(n))
		assert.LessOrEqual(t, lim, int64(math.MaxInt16), "n=%d", n)
		assert.LessOrEqual(t, int64(max(n, 1))*lim*255, int64(math.MaxInt32), "n=%d", n)
		if n > 0 && n <= 257 {
			assert.Equal(t, int64(math.MaxInt16), lim, "n=%d", n)
		}
	}
	assert.Zero(t, QueryMax(1<<24))
}

// BenchmarkQuery16 compares the integer kernel with the float one it
// replaces on a walk, four 128-d and 512-d rows a call, on this CPU's
// best path and, where it has VNNI, on AVX2 alone.
func BenchmarkQuery16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{128, 512} {
		a := randVec(r, n)
		q := make([]int16, n)
		QuantizeQuery(a, q)
		var cs [4][]uint8
		for k := range cs {
			cs[k] = make([]uint8, n)
			for i := range cs[k] {
				cs[k][i] = uint8(r.IntN(256))
			}
		}
		b.Run("quantize/"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				QuantizeQuery(a, q)
			}
		})
		b.Run("float/"+itoa(n), func(b *testing.B) {
			var out [4]float32
			for b.Loop() {
				DotU8x4(a, cs[0], cs[1], cs[2], cs[3], &out)
			}
		})
		b.Run("int16/"+itoa(n), func(b *testing.B) {
			var out [4]int32
			for b.Loop() {
				DotI16U8x4(q, cs[0], cs[1], cs[2], cs[3], &out)
			}
		})
		if hasVNNI {
			b.Run("int16-avx2/"+itoa(n), func(b *testing.B) {
				hasVNNI = false
				defer func() { hasVNNI = true }()
				var out [4]int32
				for b.Loop() {
					DotI16U8x4(q, cs[0], cs[1], cs[2], cs[3], &out)
				}
			})
		}
	}
}
