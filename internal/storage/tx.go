package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb/align"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction on the store. Slices it returns are copies and stay
// valid after the transaction ends, except where a method says otherwise.
type Tx struct {
	tx *bolt.Tx
}

func vecBucketName(mod string) []byte { return []byte("vec/" + mod) }

// Schema returns the stored modalities in definition order.
func (t *Tx) Schema() ([]modality.Modality, error) {
	return decodeSchema(t.tx.Bucket(bucketMeta).Get(keySchema))
}

// DefineModality appends m to the schema and creates its vector bucket.
// The caller checks for conflicts with existing definitions.
func (t *Tx) DefineModality(m modality.Modality) error {
	ms, err := t.Schema()
	if err != nil {
		return err
	}
	if _, err := t.tx.CreateBucketIfNotExists(vecBucketName(m.Name)); err != nil {
		return err
	}
	return t.putSchema(append(ms, m))
}

// ReplaceModality stores m in place of the modality of its name (to keep
// a new encoder state); the caller checks that the change is allowed.
func (t *Tx) ReplaceModality(m modality.Modality) error {
	ms, err := t.Schema()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ms, func(o modality.Modality) bool { return o.Name == m.Name })
	if i < 0 {
		return fmt.Errorf("%w: schema: no modality %q to replace", ErrCorrupt, m.Name)
	}
	ms[i] = m
	return t.putSchema(ms)
}

func (t *Tx) putSchema(ms []modality.Modality) error {
	recs := make([]modalityRecord, len(ms))
	for i, m := range ms {
		recs[i] = toRecord(m)
	}
	b, err := msgpack.Marshal(recs)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketMeta).Put(keySchema, b)
}

// LookupID returns the internal ID of an external ID.
func (t *Tx) LookupID(ext string) (uint32, bool) {
	v := t.tx.Bucket(bucketIDs).Get([]byte(ext))
	if len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// NextID returns the next internal ID that AllocID would hand out.
func (t *Tx) NextID() uint32 {
	return binary.BigEndian.Uint32(t.tx.Bucket(bucketMeta).Get(keyNextID))
}

// AllocID maps ext to a fresh internal ID.
func (t *Tx) AllocID(ext string) (uint32, error) {
	id := t.NextID()
	if id == math.MaxUint32 {
		return 0, ErrIDSpace
	}
	if err := t.tx.Bucket(bucketMeta).Put(keyNextID, be32(id+1)); err != nil {
		return 0, err
	}
	if err := t.tx.Bucket(bucketIDs).Put([]byte(ext), be32(id)); err != nil {
		return 0, err
	}
	return id, nil
}

// PutRecord stores the record of internal ID id.
func (t *Tx) PutRecord(id uint32, r Record) error {
	b, err := EncodeRecord(r)
	if err != nil {
		return err
	}
	items := t.tx.Bucket(bucketItems)
	items.FillPercent = appendFill
	return items.Put(be32(id), b)
}

// appendFill is the page fill for buckets keyed by internal ID. Those keys
// only grow, so pages are never split by an insert in the middle, and
// bbolt's default of half-full pages would double the file for nothing.
// Full pages: 30 vectors of 128-d fit a 16 KiB page, where 0.95 left room
// for 29 (a record that grows in place splits its page, as at any fill).
const appendFill = 1.0

// Record reads the record of internal ID id.
func (t *Tx) Record(id uint32) (Record, bool, error) {
	b := t.tx.Bucket(bucketItems).Get(be32(id))
	if b == nil {
		return Record{}, false, nil
	}
	r, err := DecodeRecord(b)
	return r, err == nil, err
}

// DeleteItem removes an item's record, its ID mapping and every vector it
// has in the given modalities.
func (t *Tx) DeleteItem(id uint32, ext string, mods []string) error {
	if err := t.tx.Bucket(bucketItems).Delete(be32(id)); err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketIDs).Delete([]byte(ext)); err != nil {
		return err
	}
	for _, m := range mods {
		if err := t.DeleteVector(m, id); err != nil {
			return err
		}
	}
	return nil
}

// PutVector stores v as item id's vector of modality mod, and logs the
// change.
func (t *Tx) PutVector(mod string, id uint32, v []float32) error {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return fmt.Errorf("storage: no bucket for modality %q", mod)
	}
	b.FillPercent = appendFill
	if err := b.Put(be32(id), EncodeVector(v)); err != nil {
		return err
	}
	_, err := t.logChange(id, mod, OpPut)
	return err
}

// DeleteVector removes item id's vector of modality mod, if it has one,
// and logs the change.
func (t *Tx) DeleteVector(mod string, id uint32) error {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil || b.Get(be32(id)) == nil {
		return nil
	}
	if err := b.Delete(be32(id)); err != nil {
		return err
	}
	_, err := t.logChange(id, mod, OpDelete)
	return err
}

// Vector returns item id's vector of modality mod (a multi-vector
// modality's set, laid end to end). A stored value that cannot be a
// vector (not whole float32s, or longer than modality.MaxSetValues) reads
// as absent; ForEachVector reports it.
func (t *Tx) Vector(mod string, id uint32) ([]float32, bool) {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return nil, false
	}
	v := b.Get(be32(id))
	if v == nil || !vectorSized(v) {
		return nil, false
	}
	return DecodeVector(v), true
}

// vectorCursor returns a cursor over modality mod's vector bucket, or nil
// when it has none. Reads through one cursor allocate nothing: a bucket's
// Get makes a new cursor each time, about 190 bytes of garbage a vector
// when a graph loads or a search reads its vectors back.
func (t *Tx) vectorCursor(mod string) *bolt.Cursor {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return nil
	}
	return b.Cursor()
}

// vectorIn decodes the vector stored under id into dst, through c (a
// vectorCursor, or nil), and reports whether it is stored with dst's
// length.
func vectorIn(c *bolt.Cursor, id uint32, dst []float32) bool {
	if c == nil {
		return false
	}
	var key [4]byte
	binary.BigEndian.PutUint32(key[:], id)
	k, v := c.Seek(key[:])
	if !bytes.Equal(k, key[:]) || len(v) != 4*len(dst) {
		return false
	}
	decodeInto(dst, v)
	return true
}

// VectorsInto decodes the vectors of modality mod stored under ids into
// dst, len(dst)/len(ids) values each in the order of ids, and sets
// found[i] to whether ids[i] has one of that length.
func (t *Tx) VectorsInto(mod string, ids []uint32, dst []float32, found []bool) {
	if len(ids) == 0 {
		return
	}
	c := t.vectorCursor(mod)
	dim := len(dst) / len(ids)
	for i, id := range ids {
		found[i] = vectorIn(c, id, dst[i*dim:(i+1)*dim])
	}
}

// vectorReader returns a function that decodes the vector of modality
// mod stored under an ID into dst, and reports whether it is stored with
// dst's length; one cursor serves every call, for reading many in one
// transaction (a graph loading).
func (t *Tx) vectorReader(mod string) func(id uint32, dst []float32) bool {
	c := t.vectorCursor(mod)
	return func(id uint32, dst []float32) bool { return vectorIn(c, id, dst) }
}

// ScanVectors calls fn with every stored vector of modality mod that has
// dim values, in internal-ID order; v is reused between calls.
func (t *Tx) ScanVectors(mod string, dim int, fn func(id uint32, v []float32)) {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return
	}
	v := make([]float32, dim)
	c := b.Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		if len(k) == 4 && len(raw) == 4*dim {
			decodeInto(v, raw)
			fn(binary.BigEndian.Uint32(k), v)
		}
	}
}

// ForEachVector calls fn for every stored vector of modality mod in
// internal-ID order. vec is a fresh copy that fn may keep.
func (t *Tx) ForEachVector(mod string, fn func(id uint32, vec []float32) error) error {
	return t.forEachRawVector(mod, func(id uint32, raw []byte) error { return fn(id, DecodeVector(raw)) })
}

// forEachRawVector calls fn for every stored vector of modality mod in
// internal-ID order, as its raw bytes (valid during the transaction), after
// checking the key and the value's size.
func (t *Tx) forEachRawVector(mod string, fn func(id uint32, raw []byte) error) error {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 4 || !vectorSized(v) {
			return fmt.Errorf("%w: vec/%s key %x: a %d-byte key and a %d-byte vector", ErrCorrupt, mod, k, len(k), len(v))
		}
		return fn(binary.BigEndian.Uint32(k), v)
	})
}

// ForEachRecord calls fn for every item with internal ID >= from, in
// internal-ID order, until fn returns false or an error.
func (t *Tx) ForEachRecord(from uint32, fn func(id uint32, r Record) (bool, error)) error {
	c := t.tx.Bucket(bucketItems).Cursor()
	var d recordDecoder
	for k, v := c.Seek(be32(from)); k != nil; k, v = c.Next() {
		if len(k) != 4 {
			return fmt.Errorf("%w: items key %x", ErrCorrupt, k)
		}
		r, err := d.decode(v)
		if err != nil {
			return fmt.Errorf("item %d: %w", binary.BigEndian.Uint32(k), err)
		}
		more, err := fn(binary.BigEndian.Uint32(k), r)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// vectorSized reports whether a stored vector's length is one a modality
// could have: whole float32s, at most modality.MaxSetValues of them (a
// set of a multi-vector modality; one vector is at most modality.MaxDim).
func vectorSized(v []byte) bool {
	return len(v)%4 == 0 && len(v) <= 4*max(modality.MaxDim, modality.MaxSetValues)
}

// ForEachID calls fn for every entry of the external -> internal ID map.
func (t *Tx) ForEachID(fn func(ext string, id uint32) error) error {
	return t.tx.Bucket(bucketIDs).ForEach(func(k, v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("%w: ids entry %q", ErrCorrupt, k)
		}
		return fn(string(k), binary.BigEndian.Uint32(v))
	})
}

// Check verifies the file's pages and returns every problem found. It
// first walks the B-tree with bounds-checked reads of the file (see
// walkPages), reporting damaged pages as errors wrapping ErrCorrupt; only
// when that walk finds the pages sound does it run bbolt's own check
// (free and unreachable pages), whose unsafe page reads would kill the
// process on a damaged page.
func (t *Tx) Check() []error {
	if errs := t.walk(); len(errs) > 0 {
		return errs
	}
	var errs []error
	for err := range t.tx.Check() {
		errs = append(errs, err)
	}
	return errs
}

// walk runs walkPages over the file as this transaction sees it.
func (t *Tx) walk() []error {
	f, err := os.Open(t.tx.DB().Path())
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return []error{err}
	}
	ps := int64(t.tx.DB().Info().PageSize)
	hwm := uint64(t.tx.Size() / ps)
	if t.tx.Size() > fi.Size() {
		return []error{corruptf("truncated: the file is %d bytes, its header says %d", fi.Size(), t.tx.Size())}
	}
	// The freelist page this transaction's meta names, when the meta on
	// disk is still this transaction's.
	freelist := noFreelist
	for _, off := range []int64{0, ps} {
		if m, ok := readMetaAt(f, fi.Size(), off); ok && m.valid() && m.txid == uint64(t.tx.ID()) && m.pgid == hwm {
			freelist = m.freelist
		}
	}
	return walkPages(f, ps, hwm, uint64(t.tx.Cursor().Bucket().Root()), freelist, maxWalkErrors)
}

// ForEachVectorID calls fn with the internal ID of every stored vector of
// modality mod, without reading the vectors.
func (t *Tx) ForEachVectorID(mod string, fn func(id uint32)) error {
	b := t.tx.Bucket(vecBucketName(mod))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 4 {
			return fmt.Errorf("%w: vec/%s key %x", ErrCorrupt, mod, k)
		}
		fn(binary.BigEndian.Uint32(k))
	}
	return nil
}

func alignBucketName(from, to string) []byte { return []byte("align/" + from + "/" + to) }

var keyAlignMap = []byte("map")

// AlignmentRecord is a stored projection from modality From to To: W has
// one row per To dimension; Report is what Align measured.
type AlignmentRecord struct {
	From   string        `msgpack:"from"`
	To     string        `msgpack:"to"`
	W      [][]float32   `msgpack:"w"`
	Bias   []float32     `msgpack:"b,omitempty"`
	Method string        `msgpack:"method,omitempty"`
	Report *align.Report `msgpack:"report,omitempty"`
	// Fitted is a serialised bitmap of the internal IDs of the items the
	// map was fitted on; empty for maps given whole.
	Fitted []byte `msgpack:"fitted,omitempty"`
	// Label is the attribute Align scored and fitted by, if any.
	Label string `msgpack:"label,omitempty"`
}

// PutAlignment stores r, replacing the projection between its modalities.
func (t *Tx) PutAlignment(r *AlignmentRecord) error {
	data, err := msgpack.Marshal(r)
	if err != nil {
		return err
	}
	b, err := t.tx.CreateBucketIfNotExists(alignBucketName(r.From, r.To))
	if err != nil {
		return err
	}
	return b.Put(keyAlignMap, data)
}

// DeleteAlignment removes the projection from probe to target, if any.
func (t *Tx) DeleteAlignment(from, to string) error {
	b := t.tx.Bucket(alignBucketName(from, to))
	if b == nil {
		return nil
	}
	return b.Delete(keyAlignMap)
}

// ForEachAlignment calls fn with every stored projection; a record that
// does not decode is ErrCorrupt.
func (t *Tx) ForEachAlignment(fn func(AlignmentRecord) error) error {
	return t.forEachAlign(keyAlignMap, func(data []byte) error {
		var r AlignmentRecord
		if err := Unmarshal(data, &r); err != nil {
			return fmt.Errorf("alignment: %w", err)
		}
		return fn(r)
	})
}

var keyAlignCalib = []byte("calib")

// CalibrationRecord is a stored set of query-time corrections for
// searches from Probe to Target: the centre, and the hubness correction's
// strength, bank (a serialised bitmap of internal IDs) and per-target
// hubness (IDs and Hub side by side).
type CalibrationRecord struct {
	Probe     string    `msgpack:"probe"`
	Target    string    `msgpack:"target"`
	Centre    []float32 `msgpack:"centre,omitempty"`
	Alpha     float64   `msgpack:"alpha"`
	K         int       `msgpack:"k"`
	Beta      float64   `msgpack:"beta,omitempty"`
	BankItems []byte    `msgpack:"bank"`
	IDs       []uint32  `msgpack:"ids"`
	Hub       []float32 `msgpack:"hub"`
	MeanHub   float32   `msgpack:"mean"`
}

// PutCalibration stores the corrections for searches from modality probe
// to target; a nil r deletes them.
func (t *Tx) PutCalibration(probe, target string, r *CalibrationRecord) error {
	b, err := t.tx.CreateBucketIfNotExists(alignBucketName(probe, target))
	if err != nil {
		return err
	}
	if r == nil {
		return b.Delete(keyAlignCalib)
	}
	data, err := msgpack.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(keyAlignCalib, data)
}

// ForEachCalibration calls fn with every stored calibration; a record that
// does not decode is ErrCorrupt.
func (t *Tx) ForEachCalibration(fn func(CalibrationRecord) error) error {
	return t.forEachAlign(keyAlignCalib, func(data []byte) error {
		var r CalibrationRecord
		if err := Unmarshal(data, &r); err != nil {
			return fmt.Errorf("calibration: %w", err)
		}
		return fn(r)
	})
}

// forEachAlign calls fn with the value under key in every alignment
// bucket that has one.
func (t *Tx) forEachAlign(key []byte, fn func(data []byte) error) error {
	return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if !bytes.HasPrefix(name, []byte("align/")) {
			return nil
		}
		if v := b.Get(key); v != nil {
			return fn(v)
		}
		return nil
	})
}

// DropModality removes modality name from the schema, with its vectors,
// its saved index and the alignments and calibrations to or from it; it reports false when there is no such modality. The
// caller holds the file to itself: every in-memory structure built on
// the schema is stale afterwards.
func (t *Tx) DropModality(name string) (bool, error) {
	ms, err := t.Schema()
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(ms, func(m modality.Modality) bool { return m.Name == name })
	if i < 0 {
		return false, nil
	}
	if err := t.putSchema(slices.Delete(ms, i, i+1)); err != nil {
		return false, err
	}
	drop := [][]byte{vecBucketName(name), indexBucketName(name)}
	err = t.tx.ForEach(func(b []byte, _ *bolt.Bucket) error {
		from, to, ok := strings.Cut(strings.TrimPrefix(string(b), "align/"), "/")
		if ok && strings.HasPrefix(string(b), "align/") && (from == name || to == name) {
			drop = append(drop, bytes.Clone(b))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, b := range drop {
		if t.tx.Bucket(b) != nil {
			if err := t.tx.DeleteBucket(b); err != nil {
				return false, err
			}
		}
	}
	// The log's entries for the modality stay: deleting them could move
	// the log's start past another modality's checkpoint (a needless
	// rebuild at the next Open), and replay reads what is stored, which
	// for a dropped modality is nothing.
	return true, nil
}
