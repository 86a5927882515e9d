package kernel

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasAVX2FMA is read by the assembly: without AVX2 and FMA it takes a
// scalar SSE loop.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotU8Asm(a *float32, c *uint8, n int) float32

// dotU8 is one call into assembly, so it inlines into DotU8 and DotU8
// into its callers: a walk computes it hundreds of times per search.
// len(c) == len(a) here; with both empty the assembly loops zero times.
func dotU8(a []float32, c []uint8) float32 {
	return dotU8Asm(unsafe.SliceData(a), unsafe.SliceData(c), len(a))
}
