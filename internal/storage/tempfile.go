package storage

import (
	"os"
	"path/filepath"
)

// CreateTemp creates the temporary file that Snapshot and Restore write
// before renaming it to path: ".<name>.tmp-*" beside it, held under an
// exclusive advisory lock while it is written. It first removes the
// temporary files of earlier copies to path that were killed before their
// rename (those no live process holds locked), so a killed snapshot does
// not leave a full-size file behind for good.
func CreateTemp(path string) (*os.File, error) {
	pattern := "." + filepath.Base(path) + ".tmp-*"
	RemoveStaleTemps(path)
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

// RemoveStaleTemps removes the temporary files of earlier copies to path
// (see CreateTemp) that no process holds locked.
func RemoveStaleTemps(path string) {
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
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

// InUse reports whether another open file holds path locked, as an open
// database does (bbolt locks its file with flock).
func InUse(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular() && !tryLockShared(f)
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
