//go:build !amd64

package hnsw

import "unsafe"

// prefetchRows is a no-op where we have no prefetch instruction.
func prefetchRows(base unsafe.Pointer, stride uintptr, lines int, slots []uint32) {}

// prefetchLines is a no-op where we have no prefetch instruction.
func prefetchLines(p unsafe.Pointer, lines int) {}
