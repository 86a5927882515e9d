//go:build !unix

package storage

import "os"

// lockFile is a no-op where flock is not available.
func lockFile(*os.File) error { return nil }

// tryLockFile reports false where flock is not available: a temporary
// file is never known to be stale there, so none is removed.
func tryLockFile(*os.File) bool { return false }

// tryLockShared reports true where flock is not available: nothing is
// known to hold a file.
func tryLockShared(*os.File) bool { return true }
