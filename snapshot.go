package mmdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mmdb-go/mmdb/internal/storage"
	bolt "go.etcd.io/bbolt"
)

// Snapshot writes a consistent copy of the database to path while writes
// go on. It first checkpoints the indexes, so the copy opens without
// rebuilding any (at most the few changes committed meanwhile are
// replayed from the log). The copy is written to a temporary file beside
// path, synced, and renamed into place: path holds either the old file or
// the complete new one, never a partial copy.
//
// The destination must not be the database's own file (by any name: a
// link or another spelling of the path is recognised by file identity):
// that fails with ErrSameFile; nor a file another process holds open as a
// database (ErrLocked). Temporary files that a killed snapshot left
// beside path are removed.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("mmdb: snapshot: %s is a directory", path)
		}
		if own, err := os.Stat(db.Path()); err == nil && os.SameFile(fi, own) {
			return fmt.Errorf("mmdb: snapshot: %s: %w; choose another path", path, ErrSameFile)
		}
		if storage.InUse(path) {
			return fmt.Errorf("mmdb: snapshot: %s is open in another process (%w): replacing it would lose that process's writes", path, ErrLocked)
		}
	}
	tmp, err := storage.CreateTemp(path)
	if err != nil {
		return fmt.Errorf("mmdb: snapshot: %w", err)
	}
	dir := filepath.Dir(path)
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := db.SnapshotTo(ctx, tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("mmdb: snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mmdb: snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mmdb: snapshot: %w", err)
	}
	ok = true
	return storage.SyncDir(dir)
}

// SnapshotTo writes a consistent copy of the database to w, as Snapshot
// does, and returns the number of bytes written.
func (db *DB) SnapshotTo(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !db.readOnly {
		if err := db.Checkpoint(ctx); err != nil {
			return 0, fmt.Errorf("mmdb: snapshot: %w", err)
		}
	} else if _, err := db.readNames(); err != nil {
		return 0, err
	}
	var n int64
	err := db.store.Bolt().View(func(tx *bolt.Tx) error {
		var err error
		var done int64
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w, progress: db.opts.Progress, total: tx.Size(), done: &done})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("mmdb: snapshot: %w", err)
	}
	return n, nil
}

// ctxWriter stops a long copy when its context is cancelled, and reports
// progress in bytes to Options.Progress.
type ctxWriter struct {
	ctx      context.Context
	w        io.Writer
	progress func(stage string, done, total int)
	total    int64
	done     *int64
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	if c.progress != nil {
		if c.done == nil {
			return n, err // not reachable: WriteTo copies the struct once
		}
		*c.done += int64(n)
		c.progress("snapshot (bytes)", int(*c.done), int(c.total))
	}
	return n, err
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Overwrite allows replacing an existing file at the destination. The
	// destination must not be open.
	Overwrite bool
}

// ErrExists: Restore's destination exists and Overwrite was not set.
var ErrExists = errors.New("destination exists")

// ErrSameFile: Snapshot's destination is the database's own file, which
// the copy would replace under the open database.
var ErrSameFile = errors.New("destination is the open database file")

// Restore copies a snapshot to dst, ready to Open. The snapshot is checked
// in full first (it must open, and Check must find no problem: a damaged
// snapshot fails with ErrCorrupt listing what Check found); the copy is
// written beside dst, synced, and renamed into place. It refuses to
// replace an existing dst unless opts.Overwrite is set, and refuses a dst
// that another process has open.
func Restore(snapshot, dst string, opts *RestoreOptions) error {
	if opts == nil {
		opts = &RestoreOptions{}
	}
	if err := checkSnapshot(snapshot); err != nil {
		return fmt.Errorf("mmdb: restore: %s: %w", snapshot, err)
	}
	if fi, err := os.Stat(dst); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("mmdb: restore: %s is a directory", dst)
		}
		if !opts.Overwrite {
			return fmt.Errorf("mmdb: restore: %s: %w (RestoreOptions.Overwrite, or restore --force, replaces it)", dst, ErrExists)
		}
		// Refuse to swap the file under a process that has it open.
		b, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("mmdb: restore: %s is in use or unreadable: %w", dst, err)
		}
		b.Close()
	}
	src, err := os.Open(snapshot)
	if err != nil {
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	defer src.Close()
	dir := filepath.Dir(dst)
	tmp, err := storage.CreateTemp(dst)
	if err != nil {
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("mmdb: restore: %w", err)
	}
	return storage.SyncDir(dir)
}

// checkSnapshot opens a snapshot read-only and runs Check on it.
func checkSnapshot(path string) error {
	db, err := Open(path, &Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := db.Check(context.Background())
	if err != nil {
		return err
	}
	if !rep.OK() {
		shown := rep.Problems[:min(len(rep.Problems), 5)]
		return fmt.Errorf("%w: check found %d problems: %s", ErrCorrupt, len(rep.Problems), strings.Join(shown, "; "))
	}
	return nil
}
