package kernel

// The four-row kernels of batch_amd64.s: AVX2 and FMA only (the callers
// check hasAVX2FMA); n is a positive multiple of 8.

//go:noescape
func dotU8x4Asm(a *float32, c0, c1, c2, c3 *uint8, n int, out *[4]float32)

//go:noescape
func l2Sq4Asm(a, b0, b1, b2, b3 *float32, n int, out *[4]float32)

//go:noescape
func dot4Asm(a, b0, b1, b2, b3 *float32, n int, out *[4]float32)

//go:noescape
func l2SqAsm(a, b *float32, n int) float32

//go:noescape
func dotAsm(a, b *float32, n int) float32
