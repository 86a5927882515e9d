package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// The portable roaring format's constants (RoaringFormatSpec), as roaring
// reads them.
const (
	roaringCookieNoRuns    = 12346
	roaringCookie          = 12347
	roaringOffsetsFrom     = 4    // with runs, offsets from this many containers
	roaringArrayMax        = 4096 // the most values an array container holds
	roaringBitmapBytes     = 8192 // a bitmap container's bits
	roaringMaxContainerEnd = 65535
)

// errRoaringShort: a serialized bitmap ends before what its header says.
var errRoaringShort = errors.New("roaring: the bitmap is cut short")

// checkRoaring checks a serialized roaring bitmap as roaring's own
// Validate checks the bitmap it decodes to, and fails where its decoder
// would, in one pass over the bytes: keys strictly increasing, array
// containers of 1 to 4,096 strictly increasing values, bitmap containers
// whose bits number their cardinality, and run containers of at least one
// run, each within its block, sorted, apart and not touching. roaring's
// check of a run container compares every pair of its runs: a posting of
// 32,767 runs in one block took 2.2 s to check, and a value of many such
// blocks would hang a search (BenchmarkCheckRoaring). Bytes after the
// bitmap are ignored, as roaring's decoder ignores them.
func checkRoaring(b []byte) error {
	pos := 0
	next := func(n int) ([]byte, error) {
		if n < 0 || len(b)-pos < n {
			return nil, errRoaringShort
		}
		p := b[pos : pos+n]
		pos += n
		return p, nil
	}
	head, err := next(4)
	if err != nil {
		return err
	}
	cookie := binary.LittleEndian.Uint32(head)
	var size int
	var runs []byte
	switch {
	case cookie&0xffff == roaringCookie:
		size = int(cookie>>16) + 1
		if runs, err = next((size + 7) / 8); err != nil {
			return err
		}
	case cookie == roaringCookieNoRuns:
		n, err := next(4)
		if err != nil {
			return err
		}
		if s := binary.LittleEndian.Uint32(n); s <= 1<<16 {
			size = int(s)
		} else {
			return fmt.Errorf("roaring: %d containers, more than 65,536", s)
		}
	default:
		return fmt.Errorf("roaring: cookie %#x is not a roaring bitmap's", cookie)
	}
	keycard, err := next(4 * size)
	if err != nil {
		return err
	}
	if runs == nil || size >= roaringOffsetsFrom {
		if _, err := next(4 * size); err != nil { // offsets, unused
			return err
		}
	}
	prev := -1
	for i := range size {
		key := int(binary.LittleEndian.Uint16(keycard[4*i:]))
		card := int(binary.LittleEndian.Uint16(keycard[4*i+2:])) + 1
		if key <= prev {
			return fmt.Errorf("roaring: container %d's key %d after %d", i, key, prev)
		}
		prev = key
		switch {
		case runs != nil && runs[i/8]&(1<<(i%8)) != 0:
			err = checkRuns(next)
		case card > roaringArrayMax:
			err = checkBits(next, card)
		default:
			err = checkArray(next, card)
		}
		if err != nil {
			return fmt.Errorf("roaring: container %d (key %d): %w", i, key, err)
		}
	}
	return nil
}

// checkRuns checks a run container's runs, read through next.
func checkRuns(next func(int) ([]byte, error)) error {
	n, err := next(2)
	if err != nil {
		return err
	}
	nr := int(binary.LittleEndian.Uint16(n))
	if nr == 0 {
		return errors.New("no runs")
	}
	iv, err := next(4 * nr)
	if err != nil {
		return err
	}
	last := -2 // the last value of the run before
	for j := range nr {
		start := int(binary.LittleEndian.Uint16(iv[4*j:]))
		end := start + int(binary.LittleEndian.Uint16(iv[4*j+2:]))
		if end > roaringMaxContainerEnd {
			return fmt.Errorf("run %d ends past the block", j)
		}
		if start < last+2 {
			return fmt.Errorf("run %d at %d overlaps, touches or precedes the run before, which ends at %d", j, start, last)
		}
		last = end
	}
	return nil
}

// checkBits checks a bitmap container of card values, read through next.
func checkBits(next func(int) ([]byte, error), card int) error {
	words, err := next(roaringBitmapBytes)
	if err != nil {
		return err
	}
	ones := 0
	for w := 0; w < len(words); w += 8 {
		ones += bits.OnesCount64(binary.LittleEndian.Uint64(words[w:]))
	}
	if ones != card {
		return fmt.Errorf("a bitmap of %d values holds %d", card, ones)
	}
	return nil
}

// checkArray checks an array container of card values, read through next.
func checkArray(next func(int) ([]byte, error), card int) error {
	vs, err := next(2 * card)
	if err != nil {
		return err
	}
	prev := -1
	for j := range card {
		v := int(binary.LittleEndian.Uint16(vs[2*j:]))
		if v <= prev {
			return fmt.Errorf("value %d (%d) after %d", j, v, prev)
		}
		prev = v
	}
	return nil
}
