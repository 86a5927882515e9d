//go:build !unix

package encoder

import "testing"

// specialFiles has no FIFOs or /dev/zero to make here.
func specialFiles(t *testing.T, dir string) []struct {
	name, path string
	want       error
	size       int
} {
	return nil
}
