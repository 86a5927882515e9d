package kernel

import "golang.org/x/sys/cpu"

// hasVNNI is read by the assembly: with AVX-512 (BW) and its VNNI
// extension the integer kernels take 32 components an instruction
// (VPDPWSSD on 512-bit registers) instead of AVX2's 16.
var hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// The integer kernels of query16_amd64.s: AVX2 at least (the callers
// check hasAVX2FMA); n is a positive multiple of 16.

//go:noescape
func dotI16U8Asm(q *int16, c *uint8, n int) int32

//go:noescape
func dotI16U8x4Asm(q *int16, c0, c1, c2, c3 *uint8, n int, out *[4]int32)

//go:noescape
func maxAbsAsm(a *float32, n int) float32

//go:noescape
func quantizeQueryAsm(a *float32, q *int16, n int, inv float32, lim int32)
