package mmdb

import (
	"context"
	"fmt"
	"os"

	"github.com/mmdb-go/mmdb/internal/storage"
)

// DropModality removes modality name from the database file at path:
// every vector of it, its index, and the alignments and calibrations to
// or from it, in one transaction. Items keep their attributes and their
// other vectors. The modality's position in the schema orders what an
// open DB holds in memory, so this works on the file while no DB serves
// it: it takes the file's lock as Open does, and fails with ErrLocked
// after Options.Timeout while the file is open (close a DB of this
// process first). A name the schema lacks is ErrUnknownModality.
func DropModality(ctx context.Context, path, name string, o *Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.ReadOnly {
		return fmt.Errorf("mmdb: drop modality: %w: the file is opened read-only", ErrInvalidQuery)
	}
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("mmdb: drop modality: %w", err) // never create a file
	} else if fi.Size() == 0 {
		return fmt.Errorf("mmdb: drop modality: %s is empty, not a database", path)
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait as long as it takes
	}
	st, err := storage.Open(path, &storage.Options{Timeout: timeout, NoSync: opts.NoSync})
	if err != nil {
		return fmt.Errorf("mmdb: drop modality: %w", err)
	}
	var found bool
	err = st.Update(func(tx *storage.Tx) error {
		var err error
		found, err = tx.DropModality(name)
		return err
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("mmdb: drop modality %q: %w", name, err)
	case !found:
		return fmt.Errorf("mmdb: drop modality: %w: %q", ErrUnknownModality, name)
	}
	return nil
}
