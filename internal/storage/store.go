package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mmdb-go/mmdb/modality"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the on-disk format this build writes. Files with a
// higher version were written by a newer mmdb and are refused rather than
// misread.
const FormatVersion = 1

const magic = "mmdb"

// pageSize is the page size of a new file (an existing file keeps the one
// it was created with). bbolt's default is the OS page, 4 KiB, where a
// 512-d vector (2 KiB and a header) takes a page of its own: at 16 KiB
// seven fit a page, and a file of 20,200 x 512 shrank from 2.08x the raw
// vectors to 1.23x. The cost is larger page writes: single-item Puts run
// at 0.88x the rate (BENCHMARKS.md, Writes).
var pageSize = 16 << 10 // a variable for tests only

var (
	bucketMeta  = []byte("meta")
	bucketIDs   = []byte("ids")
	bucketItems = []byte("items")
	keyMagic    = []byte("magic")
	keyVersion  = []byte("version")
	keyNextID   = []byte("nextid")
	keySchema   = []byte("schema")
)

// Sentinel errors.
var (
	// ErrNotDatabase: the file exists but is not an mmdb database.
	ErrNotDatabase = errors.New("not an mmdb database")
	// ErrVersion: the file was written by a newer format version.
	ErrVersion = errors.New("unsupported format version")
	// ErrCorrupt: the file is damaged: cut short, a page or meta page that
	// fails its checks, or a stored value that does not decode.
	ErrCorrupt = errors.New("corrupt data")
	// ErrLocked: another process (or another handle in this one) has the
	// file open, and the lock was not released within Options.Timeout.
	ErrLocked = errors.New("database is locked by another process")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("mmdb: database is closed")
	// ErrIDSpace: all 2^32-1 internal IDs have been handed out.
	ErrIDSpace = errors.New("internal ID space exhausted")
)

// Options configure Open.
type Options struct {
	// Timeout is how long to wait for another process's lock on the file.
	// Zero waits forever, as bbolt does.
	Timeout time.Duration
	// NoSync skips fsync after each commit. Much faster bulk loads; a power
	// failure (not a process crash) may lose the latest commits.
	NoSync bool
	// ReadOnly opens the file with a shared lock and refuses writes.
	ReadOnly bool
}

// Store is an open database file.
type Store struct {
	bolt *bolt.DB
	path string
}

// Open opens or creates the database file at path. An existing file is
// checked before anything is written to it: a file that is not an mmdb
// database, or that a newer format wrote, is refused with ErrNotDatabase or
// ErrVersion and left byte-for-byte as it was. A bbolt file that is cut
// short or whose meta or freelist pages are damaged is refused with
// ErrCorrupt before bbolt maps it.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	fi, statErr := os.Stat(path)
	existed := statErr == nil && fi.Size() > 0
	if statErr == nil && fi.IsDir() {
		return nil, fmt.Errorf("open %s: is a directory", path)
	}
	if !existed && opts.ReadOnly {
		return nil, fmt.Errorf("open %s: %w", path, os.ErrNotExist)
	}
	if existed {
		// bbolt trusts its meta and freelist pages: check them first.
		if err := checkFile(path, !opts.ReadOnly); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	var bdb *bolt.DB
	err := guard("opening the file", func() error {
		var err error
		bdb, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:  opts.Timeout,
			NoSync:   opts.NoSync,
			ReadOnly: opts.ReadOnly,
			PageSize: pageSize,
		})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		if existed && !errors.Is(err, os.ErrPermission) && !errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("open %s: %w (%v)", path, ErrNotDatabase, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{bolt: bdb, path: path}
	if existed {
		err = s.View(func(tx *Tx) error {
			// The file may have changed since checkFile read it: compare
			// the size the header claims with the file's again.
			if fi, err := os.Stat(path); err == nil && tx.tx.Size() > fi.Size() {
				return corruptf("truncated: the file is %d bytes, its header says %d", fi.Size(), tx.tx.Size())
			}
			return checkHeader(tx.tx)
		})
	} else {
		err = s.Update(func(tx *Tx) error { return initialise(tx.tx) })
	}
	if err != nil {
		bdb.Close()
		if !existed {
			os.Remove(path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func checkHeader(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || string(meta.Get(keyMagic)) != magic {
		return fmt.Errorf("%w: a bbolt file without mmdb's meta bucket", ErrNotDatabase)
	}
	v := meta.Get(keyVersion)
	if len(v) != 4 {
		return fmt.Errorf("%w: meta/version is %d bytes, want 4", ErrCorrupt, len(v))
	}
	if ver := binary.BigEndian.Uint32(v); ver > FormatVersion {
		return fmt.Errorf("%w: file has format %d, this build reads up to %d; upgrade mmdb", ErrVersion, ver, FormatVersion)
	}
	for _, b := range [][]byte{bucketIDs, bucketItems} {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("%w: bucket %q is missing", ErrCorrupt, b)
		}
	}
	// AllocID hands out meta/nextid: it must be above every stored item,
	// or a new item would overwrite an old one.
	next := meta.Get(keyNextID)
	if len(next) != 4 {
		return fmt.Errorf("%w: meta/nextid is %d bytes, want 4", ErrCorrupt, len(next))
	}
	if k, _ := tx.Bucket(bucketItems).Cursor().Last(); k != nil {
		if len(k) != 4 {
			return fmt.Errorf("%w: items key %x", ErrCorrupt, k)
		}
		if last, n := binary.BigEndian.Uint32(k), binary.BigEndian.Uint32(next); last >= n {
			return fmt.Errorf("%w: item %d is stored but meta/nextid is %d", ErrCorrupt, last, n)
		}
	}
	return nil
}

func initialise(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{bucketIDs, bucketItems} {
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	if err := meta.Put(keyMagic, []byte(magic)); err != nil {
		return err
	}
	if err := meta.Put(keyVersion, be32(FormatVersion)); err != nil {
		return err
	}
	return meta.Put(keyNextID, be32(0))
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error { return s.bolt.Close() }

// Bolt exposes the underlying bbolt handle for maintenance (snapshots,
// consistency checks). Ordinary reads and writes go through View and Update.
func (s *Store) Bolt() *bolt.DB { return s.bolt }

// View runs fn in a read-only transaction. A memory fault or a panic while
// it runs (bbolt reading a damaged page) gives an error wrapping
// ErrCorrupt instead of ending the process.
func (s *Store) View(fn func(*Tx) error) error {
	return closedErr(guard("a read", func() error {
		return s.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
	}))
}

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise: all of fn's writes land, or none. A memory
// fault or a panic while it runs or commits rolls it back and gives an
// error wrapping ErrCorrupt.
func (s *Store) Update(fn func(*Tx) error) error {
	return closedErr(guard("a write", func() error {
		return s.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
	}))
}

// closedErr reports bbolt's "not open" as ErrClosed: a call that raced
// with Close gets the same error as one made after it.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Schema is a convenience read of the stored modalities.
func (s *Store) Schema() ([]modality.Modality, error) {
	var out []modality.Modality
	err := s.View(func(tx *Tx) error {
		var err error
		out, err = tx.Schema()
		return err
	})
	return out, err
}

func be32(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

// decodeSchema reads the modality list, kept as msgpack. Every modality
// must be valid and named once; anything else is ErrCorrupt.
func decodeSchema(b []byte) ([]modality.Modality, error) {
	if b == nil {
		return nil, nil
	}
	var recs []modalityRecord
	if err := Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	ms := make([]modality.Modality, len(recs))
	names := make(map[string]bool, len(ms))
	for i, r := range recs {
		m, err := fromRecord(r)
		if err != nil {
			return nil, fmt.Errorf("%w: schema: %v", ErrCorrupt, err)
		}
		ms[i] = m
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%w: schema: %v", ErrCorrupt, err)
		}
		if names[m.Name] {
			return nil, fmt.Errorf("%w: schema: modality %q is defined twice", ErrCorrupt, m.Name)
		}
		names[m.Name] = true
	}
	return ms, nil
}
