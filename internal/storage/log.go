package storage

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The change log and index checkpoints.
//
// Every committed change to a vector appends one entry to the log bucket in
// the same transaction: key = sequence number (big-endian uint64), value =
// internal ID (uint32), op (1 put, 2 delete), modality name. Each modality's
// graph is saved under index/<modality> with the sequence number it covers.
// On open a graph is loaded and the log past its sequence number replayed,
// so only the changes since the last checkpoint cost any work. The log is
// trimmed up to the oldest checkpoint.

// Log operations.
const (
	OpPut    byte = 1
	OpDelete byte = 2
)

var (
	bucketLog   = []byte("log")
	keySeq      = []byte("seq")
	keyGraph    = []byte("graph")
	keyCoverSeq = []byte("seq")
)

func indexBucketName(mod string) []byte { return []byte("index/" + mod) }

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// Seq returns the sequence number of the last logged change.
func (t *Tx) Seq() uint64 {
	v := t.tx.Bucket(bucketMeta).Get(keySeq)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// logChange appends a change of item id's vector of modality mod and
// returns its sequence number. PutVector and DeleteVector call it: every
// vector change is logged in the transaction that makes it, and no caller
// can forget to.
func (t *Tx) logChange(id uint32, mod string, op byte) (uint64, error) {
	lb, err := t.tx.CreateBucketIfNotExists(bucketLog)
	if err != nil {
		return 0, err
	}
	seq := t.Seq() + 1
	v := make([]byte, 5, 5+len(mod))
	binary.BigEndian.PutUint32(v, id)
	v[4] = op
	v = append(v, mod...)
	lb.FillPercent = appendFill
	if err := lb.Put(be64(seq), v); err != nil {
		return 0, err
	}
	return seq, t.tx.Bucket(bucketMeta).Put(keySeq, be64(seq))
}

// LogEntry is one logged change.
type LogEntry struct {
	Seq      uint64
	ID       uint32
	Op       byte
	Modality string
}

// ForEachLog calls fn for every log entry with sequence number > after, in
// order.
func (t *Tx) ForEachLog(after uint64, fn func(LogEntry) error) error {
	lb := t.tx.Bucket(bucketLog)
	if lb == nil {
		return nil
	}
	if after == math.MaxUint64 {
		return nil // nothing comes after the last sequence number
	}
	c := lb.Cursor()
	for k, v := c.Seek(be64(after + 1)); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < 5 {
			return fmt.Errorf("%w: log entry %x", ErrCorrupt, k)
		}
		e := LogEntry{Seq: binary.BigEndian.Uint64(k), ID: binary.BigEndian.Uint32(v), Op: v[4], Modality: string(v[5:])}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// FirstLogSeq returns the oldest retained log entry's sequence number, or
// 0 when the log is empty.
func (t *Tx) FirstLogSeq() uint64 {
	lb := t.tx.Bucket(bucketLog)
	if lb == nil {
		return 0
	}
	k, _ := lb.Cursor().First()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// TrimLog deletes log entries with sequence numbers <= upTo.
func (t *Tx) TrimLog(upTo uint64) error {
	lb := t.tx.Bucket(bucketLog)
	if lb == nil {
		return nil
	}
	c := lb.Cursor()
	if k, _ := c.Last(); k == nil || len(k) == 8 && binary.BigEndian.Uint64(k) <= upTo {
		// Every entry goes (the usual checkpoint): dropping the bucket
		// frees its pages without loading and rewriting a node per
		// delete. The next change creates it again; the sequence number
		// is kept in the meta bucket.
		return t.tx.DeleteBucket(bucketLog)
	}
	for k, _ := c.First(); len(k) == 8 && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// PutCheckpoint stores a modality's serialised index and the sequence
// number it covers.
func (t *Tx) PutCheckpoint(mod string, seq uint64, graph []byte) error {
	b, err := t.tx.CreateBucketIfNotExists(indexBucketName(mod))
	if err != nil {
		return err
	}
	if err := b.Put(keyGraph, graph); err != nil {
		return err
	}
	return b.Put(keyCoverSeq, be64(seq))
}

// Checkpoint returns a modality's saved index and the sequence number it
// covers; ok is false when there is none. graph is only valid during the
// transaction.
func (t *Tx) Checkpoint(mod string) (graph []byte, seq uint64, ok bool) {
	b := t.tx.Bucket(indexBucketName(mod))
	if b == nil {
		return nil, 0, false
	}
	g, s := b.Get(keyGraph), b.Get(keyCoverSeq)
	if g == nil || len(s) != 8 {
		return nil, 0, false
	}
	return g, binary.BigEndian.Uint64(s), true
}

// ItemsEnd returns one past the highest internal ID an item record is
// stored under (0 with none): read off the bucket's last key, not taken
// from a counter the file holds.
func (t *Tx) ItemsEnd() uint64 {
	b := t.tx.Bucket(bucketItems)
	if b == nil {
		return 0
	}
	k, _ := b.Cursor().Last()
	if len(k) != 4 {
		return 0
	}
	return uint64(binary.BigEndian.Uint32(k)) + 1
}

// CountVectors returns how many vectors modality mod has stored.
func (t *Tx) CountVectors(mod string) int {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}

// HasVector reports whether item id has a vector of modality mod, without
// copying it.
func (t *Tx) HasVector(mod string, id uint32) bool {
	b := t.tx.Bucket(vecBucketName(mod))
	return b != nil && b.Get(be32(id)) != nil
}
