package storage

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logModel is what the change log must hold: the sequence number of the
// last change ever logged, and the entries not yet trimmed.
type logModel struct {
	seq     uint64
	entries []LogEntry
}

func (m *logModel) trim(upTo uint64) {
	m.entries = slices.DeleteFunc(m.entries, func(e LogEntry) bool { return e.Seq <= upTo })
}

func (m *logModel) first() uint64 {
	if len(m.entries) == 0 {
		return 0
	}
	return m.entries[0].Seq
}

func (m *logModel) after(seq uint64) []LogEntry {
	out := []LogEntry{}
	for _, e := range m.entries {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out
}

func logAfter(t *testing.T, tx *Tx, after uint64) []LogEntry {
	t.Helper()
	out := []LogEntry{}
	require.NoError(t, tx.ForEachLog(after, func(e LogEntry) error {
		out = append(out, e)
		return nil
	}))
	return out
}

// propStore opens a fresh store for a property test; reopen closes and
// opens it again.
type propStore struct {
	t    *testing.T
	path string
	s    *Store
}

func newPropStore(t *testing.T) *propStore {
	p := &propStore{t: t, path: filepath.Join(t.TempDir(), "log.mmdb")}
	p.reopen()
	t.Cleanup(func() { p.s.Close() })
	return p
}

func (p *propStore) reopen() {
	if p.s != nil {
		require.NoError(p.t, p.s.Close())
	}
	s, err := Open(p.path, &Options{NoSync: true})
	require.NoError(p.t, err)
	p.s = s
}

var propMods = []string{"image", "text", "audio", ""}

// appendLog logs k random changes in tx, checking each sequence number.
func appendLog(t *testing.T, r *rand.Rand, tx *Tx, m *logModel, k int) {
	t.Helper()
	for range k {
		e := LogEntry{ID: r.Uint32(), Op: []byte{OpPut, OpDelete}[r.IntN(2)], Modality: propMods[r.IntN(len(propMods))]}
		seq, err := tx.logChange(e.ID, e.Modality, e.Op)
		require.NoError(t, err)
		require.Equal(t, m.seq+1, seq, "sequence numbers count up from the last ever logged")
		m.seq, e.Seq = seq, seq
		m.entries = append(m.entries, e)
	}
}

// trimPoint picks a trim bound: nothing, below the log, inside it, its
// end, past it.
func trimPoint(r *rand.Rand, m *logModel) uint64 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return m.first() - min(m.first(), 1)
	case 2:
		return m.seq
	case 3:
		return m.seq + uint64(r.IntN(5))
	case 4:
		return math.MaxUint64
	}
	if len(m.entries) == 0 {
		return m.seq
	}
	return m.entries[r.IntN(len(m.entries))].Seq
}

// TestLogTrimProp: after random runs of logChange and TrimLog (several per
// transaction, some transactions rolled back, the file sometimes
// reopened), Seq is the last change ever logged, FirstLogSeq the oldest
// kept, and ForEachLog(after) returns exactly the kept entries past after,
// in order.
func TestLogTrimProp(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 13))
	p := newPropStore(t)
	m := &logModel{}
	errRollback := errors.New("roll back")
	check := func(step int) {
		require.NoError(t, p.s.View(func(tx *Tx) error {
			require.Equal(t, m.seq, tx.Seq(), "step %d", step)
			require.Equal(t, m.first(), tx.FirstLogSeq(), "step %d", step)
			require.Equal(t, m.after(0), logAfter(t, tx, 0), "step %d", step)
			for _, after := range []uint64{m.first(), m.first() + 1, m.seq, m.seq - min(m.seq, 3), m.seq + 1, uint64(r.IntN(int(m.seq) + 2))} {
				require.Equal(t, m.after(after), logAfter(t, tx, after), "step %d: after %d", step, after)
			}
			return nil
		}))
	}
	for step := range 250 {
		switch op := r.IntN(10); {
		case op < 4: // log
			require.NoError(t, p.s.Update(func(tx *Tx) error {
				appendLog(t, r, tx, m, 1+r.IntN(6))
				return nil
			}))
		case op < 6: // trim
			upTo := trimPoint(r, m)
			require.NoError(t, p.s.Update(func(tx *Tx) error { return tx.TrimLog(upTo) }))
			m.trim(upTo)
		case op < 8: // both in one transaction
			require.NoError(t, p.s.Update(func(tx *Tx) error {
				appendLog(t, r, tx, m, 1+r.IntN(4))
				upTo := trimPoint(r, m)
				m.trim(upTo)
				if err := tx.TrimLog(upTo); err != nil {
					return err
				}
				appendLog(t, r, tx, m, r.IntN(3))
				require.Equal(t, m.first(), tx.FirstLogSeq(), "inside the transaction")
				return nil
			}))
		case op < 9: // a transaction that fails leaves no trace
			saved := logModel{m.seq, slices.Clone(m.entries)}
			err := p.s.Update(func(tx *Tx) error {
				appendLog(t, r, tx, m, 1+r.IntN(4))
				if err := tx.TrimLog(trimPoint(r, m)); err != nil {
					return err
				}
				return errRollback
			})
			require.ErrorIs(t, err, errRollback)
			*m = saved
		default:
			p.reopen()
		}
		check(step)
	}
	assert.Greater(t, m.seq, uint64(200), "the run logged enough changes")
}

// TestLogEmptyAndErrors: a new store has no log; TrimLog on it is a no-op;
// trimming everything keeps Seq, so numbering never restarts; an error
// from ForEachLog's callback stops the walk and is returned.
func TestLogEmptyAndErrors(t *testing.T) {
	p := newPropStore(t)
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		assert.Equal(t, uint64(0), tx.Seq())
		assert.Equal(t, uint64(0), tx.FirstLogSeq())
		assert.Empty(t, logAfter(t, tx, 0))
		require.NoError(t, tx.TrimLog(10))
		for i := range 5 {
			_, err := tx.logChange(uint32(i), "m", OpPut)
			require.NoError(t, err)
		}
		return tx.TrimLog(5)
	}))
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		assert.Equal(t, uint64(5), tx.Seq(), "trimming keeps the last sequence number")
		assert.Equal(t, uint64(0), tx.FirstLogSeq())
		seq, err := tx.logChange(9, "m", OpDelete)
		require.NoError(t, err)
		assert.Equal(t, uint64(6), seq)
		_, err = tx.logChange(10, "n", OpPut)
		return err
	}))
	stop := errors.New("stop")
	require.NoError(t, p.s.View(func(tx *Tx) error {
		var seen []uint64
		err := tx.ForEachLog(0, func(e LogEntry) error {
			seen = append(seen, e.Seq)
			return stop
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, []uint64{6}, seen, "the walk stopped at the first error")
		assert.Equal(t, []LogEntry{{Seq: 7, ID: 10, Op: OpPut, Modality: "n"}}, logAfter(t, tx, 6))
		return nil
	}))
}

// TestLogAfterTheLastSequence: ForEachLog(after) gives the entries with
// sequence number > after; for after = MaxUint64 it computed after+1 = 0
// and returned the whole log.
func TestLogAfterTheLastSequence(t *testing.T) {
	p := newPropStore(t)
	require.NoError(t, p.s.Update(func(tx *Tx) error {
		_, err := tx.logChange(1, "m", OpPut)
		return err
	}))
	require.NoError(t, p.s.View(func(tx *Tx) error {
		assert.Empty(t, logAfter(t, tx, math.MaxUint64))
		return nil
	}))
}

// --- checkpoint staleness ------------------------------------------------------

// judge is loadIndex's verdict on a checkpoint covering change seq (the
// root's checkpoint.go), from the storage facts alone: "stale" when
// changes after it are no longer in the log, "beyond" when it covers
// changes never logged, "fresh" when the log past it can be replayed.
func judge(tx *Tx, seq uint64) string {
	if first := tx.FirstLogSeq(); seq < tx.Seq() && (first == 0 || first > seq+1) {
		return "stale"
	}
	if seq > tx.Seq() {
		return "beyond"
	}
	return "fresh"
}

// replayable is what "fresh" must mean: the log past seq is exactly the
// changes seq+1 .. Seq, none missing.
func replayable(t *testing.T, tx *Tx, seq uint64) bool {
	if seq > tx.Seq() {
		return false
	}
	es := logAfter(t, tx, seq)
	if uint64(len(es)) != tx.Seq()-seq {
		return false
	}
	for i, e := range es {
		if e.Seq != seq+1+uint64(i) {
			return false
		}
	}
	return true
}

type ckpt struct {
	seq   uint64
	graph []byte
}

// TestCheckpointStalenessProp: over random histories of logged changes,
// checkpoints (PutCheckpoint at the current Seq, as DB.Checkpoint does),
// trims (the database's policy, up to the oldest checkpoint, or anywhere)
// and reopens: Checkpoint returns the last graph and sequence number put;
// PutCheckpoint and TrimLog leave each other's data alone; judge says
// "fresh" exactly when the log past the checkpoint is complete; and under
// the database's trimming policy every checkpoint stays fresh.
func TestCheckpointStalenessProp(t *testing.T) {
	for _, policy := range []bool{true, false} {
		t.Run(fmt.Sprintf("policy trims only=%v", policy), func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 8))
			p := newPropStore(t)
			m := &logModel{}
			ckpts := map[string]ckpt{}
			mods := propMods[:3]
			verdicts := map[string]int{}
			for step := range 200 {
				switch op := r.IntN(10); {
				case op < 4:
					require.NoError(t, p.s.Update(func(tx *Tx) error {
						appendLog(t, r, tx, m, 1+r.IntN(5))
						return nil
					}))
				case op < 7: // checkpoint some modalities, then trim
					require.NoError(t, p.s.Update(func(tx *Tx) error {
						for _, mod := range mods {
							if r.IntN(2) == 0 {
								continue
							}
							c := ckpt{m.seq, []byte(fmt.Sprintf("graph of %s at %d", mod, m.seq))}
							require.NoError(t, tx.PutCheckpoint(mod, c.seq, c.graph))
							ckpts[mod] = c
						}
						require.Equal(t, m.seq, tx.Seq(), "PutCheckpoint logs nothing")
						upTo := trimPoint(r, m)
						if policy {
							upTo = m.seq // DB.checkpointLocked: the oldest checkpoint, 0 for a modality without one
							for _, mod := range mods {
								upTo = min(upTo, ckpts[mod].seq)
							}
						}
						m.trim(upTo)
						return tx.TrimLog(upTo)
					}))
				case op < 9:
					upTo := trimPoint(r, m)
					if policy {
						upTo = 0
					}
					require.NoError(t, p.s.Update(func(tx *Tx) error { return tx.TrimLog(upTo) }))
					m.trim(upTo)
				default:
					p.reopen()
				}
				require.NoError(t, p.s.View(func(tx *Tx) error {
					require.Equal(t, m.after(0), logAfter(t, tx, 0), "step %d: checkpoints leave the log alone", step)
					for _, mod := range mods {
						g, seq, ok := tx.Checkpoint(mod)
						want, has := ckpts[mod]
						require.Equal(t, has, ok, "step %d: %s", step, mod)
						if !has {
							continue
						}
						require.Equal(t, want.seq, seq, "step %d: %s", step, mod)
						require.Equal(t, want.graph, g, "step %d: %s", step, mod)
						v := judge(tx, seq)
						verdicts[v]++
						require.Equal(t, replayable(t, tx, seq), v == "fresh", "step %d: %s at %d, log %d..%d", step, mod, seq, tx.FirstLogSeq(), tx.Seq())
						if policy {
							require.Equal(t, "fresh", v, "step %d: the trimming policy made %s's checkpoint at %d stale (log %d..%d)", step, mod, seq, tx.FirstLogSeq(), tx.Seq())
						}
					}
					// The rule, for sequence numbers around the log's ends and
					// a few inside it.
					f := m.first()
					for _, seq := range []uint64{0, f - min(f, 2), f - min(f, 1), f, f + 1, uint64(r.IntN(int(m.seq) + 1)), m.seq - min(m.seq, 1), m.seq, m.seq + 1, m.seq + 2} {
						require.Equal(t, replayable(t, tx, seq), judge(tx, seq) == "fresh", "step %d: seq %d, log %d..%d", step, seq, tx.FirstLogSeq(), tx.Seq())
					}
					return nil
				}))
			}
			assert.Positive(t, verdicts["fresh"])
			if !policy {
				assert.Positive(t, verdicts["stale"], "random trims made some checkpoint stale")
			}
		})
	}
}

// TestCheckpointStalenessCases: the edges of the rule, step by step.
func TestCheckpointStalenessCases(t *testing.T) {
	p := newPropStore(t)
	update := func(fn func(tx *Tx) error) { require.NoError(t, p.s.Update(fn)) }
	logN := func(n int) {
		update(func(tx *Tx) error {
			for range n {
				if _, err := tx.logChange(1, "m", OpPut); err != nil {
					return err
				}
			}
			return nil
		})
	}
	steps := []struct {
		name    string
		do      func()
		ckSeq   uint64
		verdict string
		replay  []uint64 // sequence numbers ForEachLog(ckSeq) returns
	}{
		{"empty store, checkpoint at 0", func() { update(func(tx *Tx) error { return tx.PutCheckpoint("m", 0, []byte("g0")) }) }, 0, "fresh", nil},
		{"five changes after it", func() { logN(5) }, 0, "fresh", []uint64{1, 2, 3, 4, 5}},
		{"checkpoint at 5, log trimmed to it", func() {
			update(func(tx *Tx) error {
				if err := tx.PutCheckpoint("m", 5, []byte("g5")); err != nil {
					return err
				}
				return tx.TrimLog(5)
			})
		}, 5, "fresh", nil},
		{"a change after the empty log", func() { logN(1) }, 5, "fresh", []uint64{6}},
		{"an old checkpoint at 3 (log starts at 6)", func() { update(func(tx *Tx) error { return tx.PutCheckpoint("m", 3, []byte("g3")) }) }, 3, "stale", []uint64{6}},
		{"three more changes, checkpoint at 7", func() {
			logN(3)
			update(func(tx *Tx) error { return tx.PutCheckpoint("m", 7, []byte("g7")) })
		}, 7, "fresh", []uint64{8, 9}},
		{"trimmed to 7: still fresh", func() { update(func(tx *Tx) error { return tx.TrimLog(7) }) }, 7, "fresh", []uint64{8, 9}},
		{"trimmed to 8: change 8 is gone", func() { update(func(tx *Tx) error { return tx.TrimLog(8) }) }, 7, "stale", []uint64{9}},
		{"everything trimmed", func() { update(func(tx *Tx) error { return tx.TrimLog(math.MaxUint64) }) }, 7, "stale", nil},
		{"a checkpoint at the last change, log empty", func() { update(func(tx *Tx) error { return tx.PutCheckpoint("m", 9, []byte("g9")) }) }, 9, "fresh", nil},
		{"a checkpoint past the last change", func() { update(func(tx *Tx) error { return tx.PutCheckpoint("m", 10, []byte("g10")) }) }, 10, "beyond", nil},
		{"reopened", func() { p.reopen() }, 10, "beyond", nil},
	}
	for _, st := range steps {
		st.do()
		require.NoError(t, p.s.View(func(tx *Tx) error {
			g, seq, ok := tx.Checkpoint("m")
			require.True(t, ok, st.name)
			assert.Equal(t, st.ckSeq, seq, st.name)
			assert.Equal(t, fmt.Sprintf("g%d", st.ckSeq), string(g), st.name)
			assert.Equal(t, st.verdict, judge(tx, seq), "%s: log %d..%d", st.name, tx.FirstLogSeq(), tx.Seq())
			var got []uint64
			for _, e := range logAfter(t, tx, seq) {
				got = append(got, e.Seq)
			}
			assert.Equal(t, st.replay, got, st.name)
			_, _, ok = tx.Checkpoint("other")
			assert.False(t, ok, "a modality without a checkpoint")
			return nil
		}))
	}
}

// A damaged log key (not 8 bytes) does not make TrimLog fail: one after
// every entry stops the trim there, after the entries before it went
// (ForEachLog then reports the damage); one before them goes with a log
// trimmed whole.
func TestTrimLogStopsAtADamagedKey(t *testing.T) {
	for _, key := range [][]byte{{0x01}, {0x00}} {
		p := newPropStore(t)
		require.NoError(t, p.s.Update(func(tx *Tx) error {
			for i := range 5 {
				if _, err := tx.logChange(uint32(i), "m", OpPut); err != nil {
					return err
				}
			}
			return tx.tx.Bucket(bucketLog).Put(key, []byte("xxxxxm"))
		}))
		require.NoError(t, p.s.Update(func(tx *Tx) error { return tx.TrimLog(10) }), "key %x", key)
		require.NoError(t, p.s.View(func(tx *Tx) error {
			err := tx.ForEachLog(0, func(LogEntry) error { return nil })
			if key[0] == 0x01 {
				k, _ := tx.tx.Bucket(bucketLog).Cursor().First()
				assert.Equal(t, key, k, "the entries before the damaged key are trimmed")
				assert.ErrorIs(t, err, ErrCorrupt)
			} else {
				assert.Nil(t, tx.tx.Bucket(bucketLog), "the log is dropped whole")
				assert.NoError(t, err)
			}
			return nil
		}))
	}
}
