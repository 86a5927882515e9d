package kernel

// Quantized vectors: each float32 component stored as one byte, on a scale
// of the vector's own: x[i] ≈ Lo + Step*float32(c[i]). A quarter of the
// memory, so a graph walk fetches a quarter of the bytes per distance; the
// query stays float32 (asymmetric distance), so the only rounding is the
// stored side's, at most Step/2 per component. (Distances computed from
// norms can lose more: hnsw quantizes vectors relative to a centre for
// that reason.)

// Quantize writes x's codes into c (len(c) >= len(x)) and returns the scale:
// x[i] ≈ lo + step*float32(c[i]). A constant vector has step 0.
func Quantize(x []float32, c []uint8) (lo, step float32) {
	if len(x) == 0 {
		return 0, 0
	}
	lo, hi := x[0], x[0]
	for _, v := range x {
		// Plain comparisons: the min and max builtins also order NaNs,
		// which costs 3x here and vectors are finite by now.
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if hi <= lo {
		clear(c[:len(x)])
		return lo, 0
	}
	step = hi/255 - lo/255 // not (hi-lo)/255, which overflows for ±3e38
	inv := 1 / step
	c = c[:len(x)]
	for i, v := range x {
		// (v-lo)*inv is in [0, 255] up to rounding; +0.5 and truncation
		// round it to nearest, without math.Round's float64 detour
		// (Load quantizes every vector).
		f := (v-lo)*inv + 0.5
		if f >= 255 {
			f = 255
		}
		c[i] = uint8(int32(f))
	}
	return lo, step
}

// DotU8 returns sum a[i]*float32(c[i]) over len(a); c must be at least as
// long as a. With Quantize's scale, a·x ≈ lo*sum(a) + step*DotU8(a, c).
//
// On AVX2 machines it is an assembly kernel of ours: no maintained Go
// library offers a byte-by-float kernel (vek and gonum are float-only).
func DotU8(a []float32, c []uint8) float32 {
	return dotU8(a, c[:len(a)]) // panics, as it should, if c is short
}

// dotU8Go is the portable kernel, unrolled into four accumulators like
// dotGo.
func dotU8Go(a []float32, c []uint8) float32 {
	n := len(a)
	c = c[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		aa := a[i : i+4 : i+4]
		cc := c[i : i+4 : i+4]
		s0 += aa[0] * float32(cc[0])
		s1 += aa[1] * float32(cc[1])
		s2 += aa[2] * float32(cc[2])
		s3 += aa[3] * float32(cc[3])
	}
	for ; i < n; i++ {
		s0 += a[i] * float32(c[i])
	}
	return (s0 + s1) + (s2 + s3)
}
