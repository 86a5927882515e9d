#include "textflag.h"

// func dotU8Asm(a *float32, c *uint8, n int) float32
//
// With AVX2 and FMA: widens 8 bytes at a time to int32 (VPMOVZXBD),
// converts them to float32 and multiplies-adds them with the query's
// floats; four accumulators, 32 components a round, then 8 at a time, then
// one at a time. Without: one component at a time in SSE2, which every
// amd64 CPU has.
TEXT ·dotU8Asm(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ c+8(FP), DI
	MOVQ n+16(FP), CX
	CMPB ·hasAVX2FMA(SB), $0
	JE   sse
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JL   loop8
	VPMOVZXBD (DI), Y4
	VPMOVZXBD 8(DI), Y5
	VPMOVZXBD 16(DI), Y6
	VPMOVZXBD 24(DI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ $128, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JL   reduce
	VPMOVZXBD (DI), Y4
	VCVTDQ2PS Y4, Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ $32, SI
	ADDQ $8, DI
	SUBQ $8, CX
	JMP  loop8

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0

tail:
	TESTQ CX, CX
	JE    done
	MOVBLZX (DI), AX
	VCVTSI2SSL AX, X1, X1
	VFMADD231SS (SI), X1, X0
	ADDQ $4, SI
	INCQ DI
	DECQ CX
	JMP  tail

done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

sse:
	XORPS X0, X0

sseloop:
	TESTQ CX, CX
	JE    ssedone
	MOVBLZX (DI), AX
	CVTSL2SS AX, X1
	MULSS (SI), X1
	ADDSS X1, X0
	ADDQ $4, SI
	INCQ DI
	DECQ CX
	JMP  sseloop

ssedone:
	MOVSS X0, ret+24(FP)
	RET
