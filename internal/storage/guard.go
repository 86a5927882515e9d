package storage

import (
	"fmt"
	"runtime/debug"
)

// guard runs fn with memory faults turned into panics (bbolt reads its
// pages through a memory map, and a damaged page can send it past the end
// of the file: SIGBUS or SIGSEGV, fatal by default), and turns any panic in
// fn into an error wrapping ErrCorrupt that says the file is damaged and
// what panicked. The previous fault setting is restored. bbolt rolls back
// a transaction whose function panics, so nothing half-done is committed.
func guard(what string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: the file is damaged: %s panicked: %v", ErrCorrupt, what, p)
		}
	}()
	return fn()
}
