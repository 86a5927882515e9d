//go:build !amd64

package kernel

func dotU8x4Asm(a *float32, c0, c1, c2, c3 *uint8, n int, out *[4]float32) {
	panic("kernel: no assembly on this architecture")
}

func l2Sq4Asm(a, b0, b1, b2, b3 *float32, n int, out *[4]float32) {
	panic("kernel: no assembly on this architecture")
}

func dot4Asm(a, b0, b1, b2, b3 *float32, n int, out *[4]float32) {
	panic("kernel: no assembly on this architecture")
}

func l2SqAsm(a, b *float32, n int) float32 {
	panic("kernel: no assembly on this architecture")
}

func dotAsm(a, b *float32, n int) float32 {
	panic("kernel: no assembly on this architecture")
}

func dotI16U8Asm(q *int16, c *uint8, n int) int32 {
	panic("kernel: no assembly on this architecture")
}

func dotI16U8x4Asm(q *int16, c0, c1, c2, c3 *uint8, n int, out *[4]int32) {
	panic("kernel: no assembly on this architecture")
}

func maxAbsAsm(a *float32, n int) float32 {
	panic("kernel: no assembly on this architecture")
}

func quantizeQueryAsm(a *float32, q *int16, n int, inv float32, lim int32) {
	panic("kernel: no assembly on this architecture")
}
