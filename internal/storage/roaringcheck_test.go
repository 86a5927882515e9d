package storage

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/require"
)

// roaringAccepts is what checkRoaring stands for: roaring decodes b and
// its Validate passes, without a panic.
func roaringAccepts(b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	bm := roaring.New()
	if _, err := bm.FromUnsafeBytes(b); err != nil {
		return false
	}
	return bm.Validate() == nil
}

// roaringSeeds are serialized bitmaps of every container kind: arrays,
// bitmaps, runs (optimized), an empty one, several blocks.
func roaringSeeds(t testing.TB) [][]byte {
	r := rand.New(rand.NewPCG(4, 4))
	var out [][]byte
	add := func(bm *roaring.Bitmap) {
		b, err := bm.ToBytes()
		require.NoError(t, err)
		out = append(out, b)
	}
	add(roaring.New())
	add(roaring.BitmapOf(1, 5, 70_000))
	dense := roaring.New()
	for i := range uint32(9000) {
		dense.Add(i * 3)
	}
	add(dense)
	runs := roaring.New()
	runs.AddRange(100, 90_000)
	runs.AddRange(200_000, 200_003)
	runs.RunOptimize()
	add(runs)
	many := roaring.New()
	for i := range uint32(2000) {
		many.AddRange(uint64(i)*5, uint64(i)*5+3)
	}
	many.RunOptimize()
	add(many)
	mixed := roaring.New()
	for range 5000 {
		mixed.Add(r.Uint32N(1 << 20))
	}
	mixed.AddRange(1<<20, 1<<20+70_000)
	mixed.RunOptimize()
	add(mixed)
	return out
}

// checkRoaring agrees with roaring's decoder and Validate on valid
// bitmaps of every container kind, and on each of them damaged one byte at
// a time and cut short.
func TestCheckRoaringAgreesWithValidate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i, b := range roaringSeeds(t) {
		require.NoError(t, checkRoaring(b), "seed %d", i)
		require.True(t, roaringAccepts(b), "seed %d", i)
		for range 600 {
			d := append([]byte(nil), b...)
			switch r.IntN(3) {
			case 0:
				d[r.IntN(len(d))] ^= byte(1 << r.IntN(8))
			case 1:
				d[r.IntN(len(d))] = byte(r.Uint32())
			default:
				d = d[:r.IntN(len(d))]
			}
			require.Equal(t, roaringAccepts(d), checkRoaring(d) == nil, "seed %d damaged: %x", i, d)
		}
	}
}

// Runs that overlap, touch, come out of order, pass the block's end, or
// are none, in a hand-written run container: checkRoaring refuses each, as
// roaring's Validate does.
func TestCheckRoaringRuns(t *testing.T) {
	runsBitmap := func(runs ...[2]uint16) []byte {
		b := binary.LittleEndian.AppendUint32(nil, roaringCookie) // 1 container
		b = append(b, 1)                                          // it is a run container
		b = binary.LittleEndian.AppendUint16(b, 0)                // key
		b = binary.LittleEndian.AppendUint16(b, 0)                // cardinality - 1 (unused)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(runs)))
		for _, iv := range runs {
			b = binary.LittleEndian.AppendUint16(b, iv[0])
			b = binary.LittleEndian.AppendUint16(b, iv[1])
		}
		return b
	}
	tests := []struct {
		name string
		runs [][2]uint16
		ok   bool
	}{
		{"apart", [][2]uint16{{0, 2}, {5, 0}, {7, 10}}, true},
		{"to the block's end", [][2]uint16{{65_000, 535}}, true},
		{"none", nil, false},
		{"touching", [][2]uint16{{0, 2}, {3, 1}}, false},
		{"overlapping", [][2]uint16{{0, 5}, {3, 1}}, false},
		{"out of order", [][2]uint16{{10, 1}, {0, 1}}, false},
		{"equal", [][2]uint16{{4, 1}, {4, 1}}, false},
		{"past the block's end", [][2]uint16{{65_000, 536}}, false},
	}
	for _, tt := range tests {
		b := runsBitmap(tt.runs...)
		require.Equal(t, tt.ok, checkRoaring(b) == nil, tt.name)
		require.Equal(t, tt.ok, roaringAccepts(b), tt.name)
	}
}

// FuzzCheckRoaring: checkRoaring accepts exactly what roaring's decoder
// and Validate accept, and never panics.
func FuzzCheckRoaring(f *testing.F) {
	for _, b := range roaringSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := checkRoaring(b) == nil, roaringAccepts(b); got != want {
			t.Fatalf("checkRoaring accepts: %v, roaring: %v", got, want)
		}
	})
}

// BenchmarkCheckRoaring: a run container of 32,767 runs of one value
// (the most a block holds; written by hand, as roaring itself would store
// those values as a bitmap), checked by checkRoaring and by roaring's
// decoder and Validate, which compares every pair of runs; and a posting
// of 60,000 IDs in runs of 3, 2,000 runs in each of 10 blocks (which
// roaring keeps as runs), as items written in small groups make.
//
//	go test -run '^$' -bench CheckRoaring -benchtime 3x ./internal/storage
func BenchmarkCheckRoaring(b *testing.B) {
	most := binary.LittleEndian.AppendUint32(nil, roaringCookie)
	most = append(most, 1)
	most = binary.LittleEndian.AppendUint16(most, 0)
	most = binary.LittleEndian.AppendUint16(most, 0)
	most = binary.LittleEndian.AppendUint16(most, 32_767)
	for i := range uint16(32_767) {
		most = binary.LittleEndian.AppendUint16(most, 2*i)
		most = binary.LittleEndian.AppendUint16(most, 0)
	}
	groups := roaring.New()
	for block := range uint64(10) {
		for i := range uint64(2000) {
			start := block<<16 + i*32
			groups.AddRange(start, start+3)
		}
	}
	groups.RunOptimize()
	grouped, err := groups.ToBytes()
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		data []byte
	}{{"runs=32767", most}, {"groups-of-3", grouped}} {
		b.Run(c.name+"/checkRoaring", func(b *testing.B) {
			for b.Loop() {
				if err := checkRoaring(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Validate", func(b *testing.B) {
			for b.Loop() {
				if !roaringAccepts(c.data) {
					b.Fatal("refused")
				}
			}
		})
	}
}
