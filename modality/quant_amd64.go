package modality

import "golang.org/x/sys/cpu"

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotU8AVX2(a *float32, c *uint8, n int) float32

func dotU8(a []float32, c []uint8) float32 {
	if hasAVX2FMA {
		return dotU8AVX2(&a[0], &c[0], len(a))
	}
	return dotU8Go(a, c)
}
