#include "textflag.h"

// func prefetchRows(base unsafe.Pointer, stride uintptr, lines int, slots []uint32)
//
// For each slot, asks the CPU to start loading `lines` cache lines from
// base+slot*stride (PREFETCHT0: a hint that never faults, so rows past the
// end of an array cost nothing).
TEXT ·prefetchRows(SB), NOSPLIT, $0-48
	MOVQ base+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ lines+16(FP), DX
	MOVQ slots_base+24(FP), DI
	MOVQ slots_len+32(FP), CX

row:
	TESTQ CX, CX
	JE    done
	MOVL  (DI), AX
	IMULQ BX, AX
	ADDQ  SI, AX
	MOVQ  DX, R8

line:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	DECQ R8
	JG   line
	ADDQ $4, DI
	DECQ CX
	JMP  row

done:
	RET

// func prefetchLines(p unsafe.Pointer, lines int)
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ lines+8(FP), DX

next:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	DECQ DX
	JG   next
	RET
