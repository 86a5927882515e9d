package kernel

// Four-row kernels. A graph search scores every unvisited neighbour of the
// node it expands against one query; scoring them four at a time loads the
// query once per four rows, runs four independent sums the CPU overlaps,
// and pays one horizontal reduction and one call for all four. On an AVX2
// machine with 128-d rows that is 1.8-2.0x less time per float32 row and
// 1.4x per byte row than one call a row (BenchmarkBatch). vek has no
// multi-row kernel, nor a squared L2 (its Distance takes a square root), so
// these are assembly of ours.

// L2Sq4 writes the squared Euclidean distances from a to b0..b3 into out;
// each b must be at least as long as a.
func L2Sq4(a, b0, b1, b2, b3 []float32, out *[4]float32) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n] // panics, as it should, if one is short
	body := batchBody(n)
	if body > 0 {
		l2Sq4Asm(&a[0], &b0[0], &b1[0], &b2[0], &b3[0], body, out)
	} else {
		*out = [4]float32{}
	}
	if body < n {
		a = a[body:]
		out[0] += l2Go(a, b0[body:])
		out[1] += l2Go(a, b1[body:])
		out[2] += l2Go(a, b2[body:])
		out[3] += l2Go(a, b3[body:])
	}
}

// Dot4 writes the inner products of a with b0..b3 into out; each b must be
// at least as long as a.
func Dot4(a, b0, b1, b2, b3 []float32, out *[4]float32) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	body := batchBody(n)
	if body > 0 {
		dot4Asm(&a[0], &b0[0], &b1[0], &b2[0], &b3[0], body, out)
	} else {
		*out = [4]float32{}
	}
	if body < n {
		a = a[body:]
		out[0] += dotGo(a, b0[body:])
		out[1] += dotGo(a, b1[body:])
		out[2] += dotGo(a, b2[body:])
		out[3] += dotGo(a, b3[body:])
	}
}

// DotU8x4 writes the four sums DotU8(a, c0..c3) would into out, up to
// float32 rounding: unlike the float32 kernels it sums in another order
// than DotU8, which is fine for what scores codes (a walk's approximate
// distances, re-scored exactly). Each c must be at least as long as a.
func DotU8x4(a []float32, c0, c1, c2, c3 []uint8, out *[4]float32) {
	n := len(a)
	c0, c1, c2, c3 = c0[:n], c1[:n], c2[:n], c3[:n]
	body := batchBody(n)
	if body > 0 {
		dotU8x4Asm(&a[0], &c0[0], &c1[0], &c2[0], &c3[0], body, out)
	} else {
		*out = [4]float32{}
	}
	if body < n {
		a = a[body:]
		out[0] += dotU8Go(a, c0[body:])
		out[1] += dotU8Go(a, c1[body:])
		out[2] += dotU8Go(a, c2[body:])
		out[3] += dotU8Go(a, c3[body:])
	}
}

// batchBody is how many of n components the assembly takes: the multiple
// of 8 below n on an AVX2 machine, none elsewhere.
func batchBody(n int) int {
	if !hasAVX2FMA {
		return 0
	}
	return n &^ 7
}
