#include "textflag.h"

// Integer kernels: a query of int16 against rows of bytes, exact int32
// sums. n is a positive multiple of 16 (the Go wrappers do the tail) and
// the machine has AVX2 (the wrappers check). With AVX-512 VNNI (hasVNNI)
// the body runs 32 components a step on 512-bit registers: VPMOVZXBW
// widens 32 bytes to words and VPDPWSSD multiplies them with the query's
// words and adds the pairs into 16 int32 lanes; the last 16 components,
// if any, and every step without VNNI, take AVX2's VPMOVZXBW, VPMADDWD and
// VPADDD on 256-bit registers. The 512-bit sums are folded into 256 bits
// before the first 256-bit (VEX) instruction, which clears a register's
// upper half. Exact integer sums do not depend on the order, so both paths
// and the portable one give the same numbers.

// func dotI16U8Asm(q *int16, c *uint8, n int) int32
TEXT ·dotI16U8Asm(SB), NOSPLIT, $0-28
	MOVQ  q+0(FP), SI
	MOVQ  c+8(FP), DI
	MOVQ  n+16(FP), CX
	XORQ  AX, AX
	VPXOR Y8, Y8, Y8
	CMPB  ·hasVNNI(SB), $0
	JE    one16
	VPXORD Z9, Z9, Z9

one32:
	LEAQ      32(AX), BX
	CMPQ      BX, CX
	JG        one32done
	VPMOVZXBW (DI)(AX*1), Z1
	VPDPWSSD  (SI)(AX*2), Z1, Z9
	MOVQ      BX, AX
	JMP       one32

one32done:
	VEXTRACTI64X4 $1, Z9, Y10
	VPADDD        Y10, Y9, Y8

one16:
	CMPQ      AX, CX
	JGE       onereduce
	VPMOVZXBW (DI)(AX*1), Y1
	VPMADDWD  (SI)(AX*2), Y1, Y1
	VPADDD    Y1, Y8, Y8
	ADDQ      $16, AX
	JMP       one16

onereduce:
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0x4E, X8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0xB1, X8, X9
	VPADDD       X9, X8, X8
	VMOVD        X8, AX
	MOVL         AX, ret+24(FP)
	VZEROUPPER
	RET

// func dotI16U8x4Asm(q *int16, c0, c1, c2, c3 *uint8, n int, out *[4]int32)
TEXT ·dotI16U8x4Asm(SB), NOSPLIT, $0-56
	MOVQ  q+0(FP), SI
	MOVQ  c0+8(FP), R8
	MOVQ  c1+16(FP), R9
	MOVQ  c2+24(FP), R10
	MOVQ  c3+32(FP), R11
	MOVQ  n+40(FP), CX
	MOVQ  out+48(FP), DX
	XORQ  AX, AX
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	CMPB  ·hasVNNI(SB), $0
	JE    four16
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

four32:
	LEAQ      32(AX), BX
	CMPQ      BX, CX
	JG        four32done
	VMOVDQU32 (SI)(AX*2), Z0
	VPMOVZXBW (R8)(AX*1), Z1
	VPMOVZXBW (R9)(AX*1), Z2
	VPMOVZXBW (R10)(AX*1), Z3
	VPMOVZXBW (R11)(AX*1), Z4
	VPDPWSSD  Z0, Z1, Z12
	VPDPWSSD  Z0, Z2, Z13
	VPDPWSSD  Z0, Z3, Z14
	VPDPWSSD  Z0, Z4, Z15
	MOVQ      BX, AX
	JMP       four32

four32done:
	VEXTRACTI64X4 $1, Z12, Y0
	VEXTRACTI64X4 $1, Z13, Y1
	VEXTRACTI64X4 $1, Z14, Y2
	VEXTRACTI64X4 $1, Z15, Y3
	VPADDD        Y0, Y12, Y8
	VPADDD        Y1, Y13, Y9
	VPADDD        Y2, Y14, Y10
	VPADDD        Y3, Y15, Y11

four16:
	CMPQ      AX, CX
	JGE       fourreduce
	VMOVDQU   (SI)(AX*2), Y0
	VPMOVZXBW (R8)(AX*1), Y1
	VPMOVZXBW (R9)(AX*1), Y2
	VPMOVZXBW (R10)(AX*1), Y3
	VPMOVZXBW (R11)(AX*1), Y4
	VPMADDWD  Y0, Y1, Y1
	VPMADDWD  Y0, Y2, Y2
	VPMADDWD  Y0, Y3, Y3
	VPMADDWD  Y0, Y4, Y4
	VPADDD    Y1, Y8, Y8
	VPADDD    Y2, Y9, Y9
	VPADDD    Y3, Y10, Y10
	VPADDD    Y4, Y11, Y11
	ADDQ      $16, AX
	JMP       four16

fourreduce:
	VPHADDD      Y9, Y8, Y8
	VPHADDD      Y11, Y10, Y10
	VPHADDD      Y10, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
	VMOVDQU      X8, (DX)
	VZEROUPPER
	RET

// func maxAbsAsm(a *float32, n int) float32
//
// The largest |a[i]|, 8 at a time (n a positive multiple of 8; a finite).
TEXT ·maxAbsAsm(SB), NOSPLIT, $0-20
	MOVQ     a+0(FP), SI
	MOVQ     n+8(FP), CX
	VPCMPEQD Y1, Y1, Y1
	VPSRLD   $1, Y1, Y1 // 0x7fffffff: clears the sign bit
	VXORPS   Y0, Y0, Y0
	XORQ     AX, AX

maxloop:
	CMPQ  AX, CX
	JGE   maxreduce
	VANDPS (SI)(AX*4), Y1, Y2
	VMAXPS Y2, Y0, Y0
	ADDQ  $8, AX
	JMP   maxloop

maxreduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+16(FP)
	RET

// func quantizeQueryAsm(a *float32, q *int16, n int, inv float32, lim int32)
//
// q[i] = a[i]*inv rounded to the nearest integer (ties to even), clamped
// to [-lim, lim], 8 at a time (n a positive multiple of 8).
TEXT ·quantizeQueryAsm(SB), NOSPLIT, $0-32
	MOVQ         a+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         n+16(FP), CX
	VBROADCASTSS inv+24(FP), Y0
	MOVL         lim+28(FP), AX
	VMOVD        AX, X1
	VPBROADCASTD X1, Y1
	VPXOR        Y2, Y2, Y2
	VPSUBD       Y1, Y2, Y2 // -lim
	XORQ         AX, AX

qloop:
	CMPQ         AX, CX
	JGE          qdone
	VMULPS       (SI)(AX*4), Y0, Y3
	VCVTPS2DQ    Y3, Y3
	VPMINSD      Y1, Y3, Y3
	VPMAXSD      Y2, Y3, Y3
	VEXTRACTI128 $1, Y3, X4
	VPACKSSDW    X4, X3, X3
	VMOVDQU      X3, (DI)(AX*2)
	ADDQ         $8, AX
	JMP          qloop

qdone:
	VZEROUPPER
	RET
