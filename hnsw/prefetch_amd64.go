package hnsw

import "unsafe"

// prefetchRows starts loading, for each slot, lines cache lines of the row
// at base+slot*stride. A graph walk scores every unvisited neighbour of a
// node; asking for all of their rows before scoring the first lets the
// memory system fetch them in parallel instead of one miss at a time.
// Go has no prefetch intrinsic, hence the assembly.
//
//go:noescape
func prefetchRows(base unsafe.Pointer, stride uintptr, lines int, slots []uint32)

// prefetchLines starts loading lines cache lines from p.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, lines int)
