//go:build unix

package encoder

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// specialFiles makes a FIFO and a symbolic link to /dev/zero under dir:
// reading either would hang or never end.
func specialFiles(t *testing.T, dir string) []struct {
	name, path string
	want       error
	size       int
} {
	fifo := filepath.Join(dir, "p.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	zero := filepath.Join(dir, "z.wav")
	require.NoError(t, os.Symlink("/dev/zero", zero))
	return []struct {
		name, path string
		want       error
		size       int
	}{
		{"FIFO", fifo, ErrNotRegular, 0},
		{"symlink to /dev/zero", zero, ErrNotRegular, 0},
	}
}
