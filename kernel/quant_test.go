package kernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func naiveDotU8(a []float32, c []uint8) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(c[i])
	}
	return s
}

func TestDotU8MatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Every length up to 70 exercises each path (32-wide, 8-wide, scalar
	// tail) and their joins; the longer ones are the dimensions in use.
	lens := []int{}
	for n := 1; n <= 70; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 96, 128, 136, 384, 512, 768, 1536)
	for _, n := range lens {
		a := randVec(r, n)
		c := make([]uint8, n+3) // longer than a: only len(a) is read
		for i := range c {
			c[i] = uint8(r.IntN(256))
		}
		want := naiveDotU8(a, c[:n])
		tol := 1e-5 * (1 + math.Abs(want)) * math.Sqrt(float64(n))
		assert.InDelta(t, want, DotU8(a, c), tol, "n=%d asm", n)
		assert.InDelta(t, want, dotU8Go(a, c), tol, "n=%d go", n)
		if hasAVX2FMA {
			// The assembly's SSE2 path, for CPUs without AVX2.
			hasAVX2FMA = false
			got := DotU8(a, c)
			hasAVX2FMA = true
			assert.InDelta(t, want, got, tol, "n=%d sse", n)
		}
	}
	assert.Zero(t, DotU8(nil, nil))
}

func TestDotU8ShortCodesPanic(t *testing.T) {
	assert.Panics(t, func() { DotU8(make([]float32, 8), make([]uint8, 7)) })
}

func TestQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name string
		x    []float32
	}{
		{"unit", randVec(r, 128)},
		{"sift-like", func() []float32 {
			v := make([]float32, 128)
			for i := range v {
				v[i] = float32(r.IntN(160))
			}
			return v
		}()},
		{"constant", []float32{2.5, 2.5, 2.5}},
		{"one", []float32{-7}},
		{"wide", []float32{-1e30, 0, 1e30}},
		{"widest", []float32{-3e38, 0, 3e38}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := make([]uint8, len(tc.x))
			lo, step := Quantize(tc.x, c)
			hi := tc.x[0]
			for _, v := range tc.x {
				hi = max(hi, v)
			}
			for i, v := range tc.x {
				// In float64: near ±3e38 the float32 reconstruction
				// itself would overflow.
				back := float64(lo) + float64(step)*float64(c[i])
				// Rounding error is at most half a step (plus float slack).
				assert.InDelta(t, float64(v), back, float64(step)*0.5001+1e-6*math.Abs(float64(v)), "i=%d", i)
			}
			if step > 0 {
				// The vector's own range spans the codes: its minimum
				// is code 0 and its maximum code 255.
				assert.Equal(t, uint8(0), slices.Min(c))
				assert.Equal(t, uint8(255), slices.Max(c))
			} else {
				assert.Equal(t, lo, hi, "step 0 only for a constant vector")
			}
		})
	}
}

func TestQuantizedDotApproximatesDot(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{32, 128, 512} {
		q, x := randVec(r, n), randVec(r, n)
		c := make([]uint8, n)
		lo, step := Quantize(x, c)
		var sum float32
		for _, v := range q {
			sum += v
		}
		approx := lo*sum + step*DotU8(q, c)
		exact := naiveDot(q, x)
		// Error per component is at most step/2, so |error| <= step/2*|q|_1.
		var l1 float64
		for _, v := range q {
			l1 += math.Abs(float64(v))
		}
		require.InDelta(t, exact, approx, float64(step)/2*l1+1e-4, "n=%d", n)
	}
}

func FuzzDotU8(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, float32(0.5))
	f.Fuzz(func(t *testing.T, c []byte, scale float32) {
		if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) || math.Abs(float64(scale)) > 1e6 {
			t.Skip()
		}
		a := make([]float32, len(c))
		for i := range a {
			a[i] = scale * float32(i%7-3)
		}
		want := naiveDotU8(a, c)
		tol := 1e-5 * (1 + math.Abs(want) + math.Abs(float64(scale))*255*float64(len(c)))
		if got := DotU8(a, c); math.Abs(float64(got)-want) > tol {
			t.Fatalf("n=%d: got %v want %v", len(c), got, want)
		}
	})
}

func BenchmarkDotU8(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{128, 512} {
		a := randVec(r, n)
		c := make([]uint8, n)
		Quantize(randVec(r, n), c)
		x := randVec(r, n)
		b.Run("u8-"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				DotU8(a, c)
			}
		})
		b.Run("u8go-"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				dotU8Go(a, c)
			}
		})
		b.Run("f32-"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				DotProduct(a, x)
			}
		})
	}
}

func BenchmarkQuantize(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	x := randVec(r, 128)
	c := make([]uint8, 128)
	for b.Loop() {
		Quantize(x, c)
	}
}
