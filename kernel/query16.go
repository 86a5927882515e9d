package kernel

import "math"

// Integer scoring of byte codes. The walk's codes are unsigned bytes on a
// scale of their own row (Quantize); a query quantized to 16-bit integers
// on a scale of its own turns the code dot product into a sum of integer
// products, which the CPU multiplies and adds sixteen pairs an instruction
// (AVX2 VPMADDWD) or thirty-two (AVX-512 VNNI VPDPWSSD), where the float
// kernel (DotU8) widens, converts and multiplies-adds eight components in
// three. The sum is exact: the only rounding is the query's, at most half
// its step per component, against the codes' half a step of 255 (the
// query's scale has at least 2,000 steps a side below 4,096 components).

// QueryMax is the largest magnitude QuantizeQuery gives a component of a
// query of n components: 32,767, or less where n is so long that n
// products of it with 255 could overflow an int32. It is 0 past about
// 8.4 million components, where no such scale exists.
func QueryMax(n int) int32 {
	if n <= 0 {
		return math.MaxInt16
	}
	return int32(min(math.MaxInt16, (math.MaxInt32/255)/n))
}

// QuantizeQuery writes a's components as integers into q (len(q) >=
// len(a)) and returns their scale: a[i] ≈ s*float32(q[i]), |q[i]| <=
// QueryMax(len(a)), so no sum DotI16U8 forms with a byte row overflows.
// A zero query, or one whose largest component is so small (below about
// 2⁻¹²⁶·QueryMax, 3.9e-34 at 128 dimensions) that its step would not be
// a normal float32, gives s 0 and zero integers: the caller must then
// score the float32 query instead (DotU8), since its dot products with
// the codes can still be normal numbers. a must be finite: for a NaN or
// an infinity the integers are unspecified, but still within QueryMax.
func QuantizeQuery(a []float32, q []int16) (s float32) {
	q = q[:len(a)]
	body := 0
	if hasAVX2FMA {
		body = len(a) &^ 7
	}
	var big float32
	if body > 0 {
		big = maxAbsAsm(&a[0], body)
	}
	for _, v := range a[body:] {
		big = max(big, abs32(v))
	}
	lim := float32(QueryMax(len(a)))
	s = big / lim
	if lim == 0 || s < math.SmallestNonzeroFloat32*(1<<23) || math.IsInf(float64(s), 0) || s != s {
		clear(q)
		return 0
	}
	inv := lim / big
	if body > 0 {
		quantizeQueryAsm(&a[0], &q[0], body, inv, int32(lim))
	}
	for i := body; i < len(a); i++ {
		// Round to nearest; |f| <= lim up to rounding, clamped.
		f := a[i] * inv
		if f >= 0 {
			q[i] = int16(min(int32(f+0.5), int32(lim)))
		} else {
			q[i] = int16(max(int32(f-0.5), -int32(lim)))
		}
	}
	return s
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// DotI16U8 returns the sum of q[i]*c[i] over len(q), exactly; c must be at
// least as long as q. With q from QuantizeQuery (scale s) and c from
// Quantize (lo, step), a·x ≈ lo*sum(a) + step*s*DotI16U8(q, c).
func DotI16U8(q []int16, c []uint8) int32 {
	n := len(q)
	c = c[:n] // panics, as it should, if c is short
	body := query16Body(n)
	var s int32
	if body > 0 {
		s = dotI16U8Asm(&q[0], &c[0], body)
	}
	if body < n {
		s += dotI16U8Go(q[body:], c[body:])
	}
	return s
}

// DotI16U8x4 writes the sums DotI16U8(q, c0..c3) into out, four rows a
// call as DotU8x4 does; each c must be at least as long as q. The sums are
// exact, so they equal DotI16U8's.
func DotI16U8x4(q []int16, c0, c1, c2, c3 []uint8, out *[4]int32) {
	n := len(q)
	c0, c1, c2, c3 = c0[:n], c1[:n], c2[:n], c3[:n]
	body := query16Body(n)
	if body > 0 {
		dotI16U8x4Asm(&q[0], &c0[0], &c1[0], &c2[0], &c3[0], body, out)
	} else {
		*out = [4]int32{}
	}
	if body < n {
		q = q[body:]
		out[0] += dotI16U8Go(q, c0[body:])
		out[1] += dotI16U8Go(q, c1[body:])
		out[2] += dotI16U8Go(q, c2[body:])
		out[3] += dotI16U8Go(q, c3[body:])
	}
}

// query16Body is how many of n components the assembly takes: the
// multiple of 16 below n on an AVX2 machine, none elsewhere.
func query16Body(n int) int {
	if !hasAVX2FMA {
		return 0
	}
	return n &^ 15
}

// dotI16U8Go is the portable kernel.
func dotI16U8Go(q []int16, c []uint8) int32 {
	c = c[:len(q)]
	var s0, s1 int32
	i := 0
	for ; i+2 <= len(q); i += 2 {
		s0 += int32(q[i]) * int32(c[i])
		s1 += int32(q[i+1]) * int32(c[i+1])
	}
	if i < len(q) {
		s0 += int32(q[i]) * int32(c[i])
	}
	return s0 + s1
}
