// Package kernel holds the distance kernels (dot product, squared L2, one
// row or four at a time: AVX2 assembly of ours where the CPU has it) and
// the byte quantisation the HNSW walk scores against (Quantize; a 16-bit
// query against the bytes in exact integer sums, QuantizeQuery and
// DotI16U8x4, on AVX2 or AVX-512 VNNI; the float32 query against them,
// DotU8).
package kernel

import "math"

// DotProduct returns the inner product of a and b; b must be at least as
// long as a (only len(a) values are read).
//
// On AVX2 machines it is an assembly kernel of ours (batch_amd64.s), which
// sums in exactly the order Dot4 does, so an inner product is the same
// float whichever of the two computed it: a graph walk scores four rows a
// call and an exact scan may score one, and a page cursor compares their
// distances. vek's kernel, which it replaced, sums in another order.
func DotProduct(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	body := batchBody(n)
	var s float32
	if body > 0 {
		s = dotAsm(&a[0], &b[0], body)
	}
	if body < n {
		s += dotGo(a[body:], b[body:])
	}
	return s
}

// L2Sq returns the squared Euclidean distance between a and b; b must be
// at least as long as a. On AVX2 machines it is an assembly kernel of
// ours, summing as L2Sq4 does (see DotProduct); vek has only the
// Euclidean distance, whose square root costs time and whose square is not
// the exact sum.
func L2Sq(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	body := batchBody(n)
	var s float32
	if body > 0 {
		s = l2SqAsm(&a[0], &b[0], body)
	}
	if body < n {
		s += l2Go(a[body:], b[body:])
	}
	return s
}

// dotGo is the portable kernel. The loop is unrolled by eight into four
// independent accumulators: Go's compiler does not vectorise, but
// independent sums let the CPU overlap the floating-point adds, 2.2-3.0x
// faster than a plain loop (BenchmarkDot).
func dotGo(a, b []float32) float32 {
	n := len(a)
	b = b[:n] // hoist the bounds check out of the loop
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0]*bb[0] + aa[4]*bb[4]
		s1 += aa[1]*bb[1] + aa[5]*bb[5]
		s2 += aa[2]*bb[2] + aa[6]*bb[6]
		s3 += aa[3]*bb[3] + aa[7]*bb[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// l2Go is the portable squared-L2 kernel, unrolled like dotGo.
func l2Go(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		d0, d1, d2, d3 := aa[0]-bb[0], aa[1]-bb[1], aa[2]-bb[2], aa[3]-bb[3]
		d4, d5, d6, d7 := aa[4]-bb[4], aa[5]-bb[5], aa[6]-bb[6], aa[7]-bb[7]
		s0 += d0*d0 + d4*d4
		s1 += d1*d1 + d5*d5
		s2 += d2*d2 + d6*d6
		s3 += d3*d3 + d7*d7
	}
	for ; i < n; i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// Norm returns the Euclidean length of v, accumulated in float64 so that
// normalising does not lose precision on long vectors.
func Norm(v []float32) float32 { return float32(Norm64(v)) }

// Norm64 is the Euclidean length of v, summed in float64 (no overflow or
// underflow for float32 inputs).
func Norm64(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// Normalize scales v in place to unit length and reports whether it could
// (a zero vector is left as it is).
func Normalize(v []float32) bool {
	n := Norm64(v)
	if n == 0 {
		return false
	}
	for i, x := range v {
		v[i] = float32(float64(x) / n) // in float64: 1/n may overflow float32
	}
	return true
}
