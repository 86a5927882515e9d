package mmdb

import (
	"os"
	"path/filepath"
)

// createTemp creates the temporary file that Snapshot and Restore write
// before renaming it to path: ".<name>.tmp-*" beside it, held under an
// exclusive advisory lock while it is written. It first removes the
// temporary files of earlier copies to path that were killed before their
// rename (those no live process holds locked), so a killed snapshot does
// not leave a full-size file behind for good.
func createTemp(path string) (*os.File, error) {
	pattern := "." + filepath.Base(path) + ".tmp-*"
	removeStaleTemps(filepath.Join(filepath.Dir(path), pattern))
	f, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// removeStaleTemps removes the files matching glob that no process holds
// locked.
func removeStaleTemps(glob string) {
	names, _ := filepath.Glob(glob)
	for _, name := range names {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && tryLockFile(f) {
			os.Remove(name)
		}
		f.Close()
	}
}

// inUse reports whether another open file holds path locked, as an open
// database does (bbolt locks its file with flock).
func inUse(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular() && !tryLockShared(f)
}
