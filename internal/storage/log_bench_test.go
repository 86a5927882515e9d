package storage

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTrimLog measures a checkpoint's trim of a 50,000-entry log (a
// checkpoint's worth at the default CheckpointEvery): every entry, which
// drops the bucket, against all but the last, which deletes entry by
// entry, as every trim did before. The two alternate in each round and
// each is timed in its own transaction on a fresh copy of the log:
//
//	go test -run '^$' -bench TrimLog -benchtime 5x ./internal/storage
func BenchmarkTrimLog(b *testing.B) {
	const n = 50_000
	s, err := Open(filepath.Join(b.TempDir(), "trim.mmdb"), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill := func() uint64 {
		var last uint64
		if err := s.Update(func(tx *Tx) error {
			for i := range n {
				if last, err = tx.logChange(uint32(i), "v", OpPut); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		return last
	}
	trim := func(upTo uint64) time.Duration {
		t0 := time.Now()
		if err := s.Update(func(tx *Tx) error { return tx.TrimLog(upTo) }); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var all, each time.Duration
	for i := 0; b.Loop(); i++ {
		for _, whole := range []bool{i%2 == 0, i%2 != 0} {
			last := fill()
			if whole {
				all += trim(last)
			} else {
				each += trim(last - 1)
				trim(last) // empty again for the next fill
			}
		}
	}
	b.ReportMetric(all.Seconds()/float64(b.N), "trim-all-s")
	b.ReportMetric(each.Seconds()/float64(b.N), "trim-all-but-one-s")
}
