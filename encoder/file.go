package encoder

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxFileSize is the largest media file ReadFile reads, and the most
// ReadWAV reads from its reader: 128 MiB.
const MaxFileSize = 128 << 20

// ErrNotRegular: a path names something other than a regular file (a
// directory, a FIFO, a device, a socket, or a symbolic link to one), which
// ReadFile does not read: a FIFO would block, and a device such as
// /dev/zero never ends.
var ErrNotRegular = errors.New("encoder: not a regular file")

// ReadFile reads a media file for encoding, following symbolic links. A
// path that is not a regular file fails with ErrNotRegular without being
// read, and a file larger than MaxFileSize fails with ErrInput after
// reading MaxFileSize+1 bytes at most. Other errors are the file system's.
func ReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(fi.Mode()))
	}
	// The open does not block if the path became a FIFO since the Stat;
	// the Stat of the open file then catches it.
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit (MaxFileSize)", ErrInput, path, fi.Size(), MaxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize { // it grew since the Stat
		return nil, fmt.Errorf("%w: %s is over the %d-byte limit (MaxFileSize)", ErrInput, path, MaxFileSize)
	}
	return b, nil
}

// kind names a file mode's type for error messages.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "non-regular file (" + m.Type().String() + ")"
}
