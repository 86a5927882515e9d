package itemset

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mmdb-go/mmdb/fusion"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func vecs(mods ...bool) [][]float32 {
	out := make([][]float32, len(mods))
	for i, m := range mods {
		if m {
			out[i] = []float32{1}
		}
	}
	return out
}

func TestSet(t *testing.T) {
	s := New()
	s.AddModality()
	s.AddModality()
	s.Load(0, "a")
	s.Added([]Change{
		{ID: 1, Ext: "b", Vecs: vecs(true, false)},
		{ID: 3, Ext: "d", Vecs: vecs(true, true)},
		{ID: 2, Ext: "gone", Deleted: true}, // a delete is not mapped by Added
	})
	assert.Equal(t, 3, s.Size())
	assert.Equal(t, []uint32{0, 1, 3}, s.LiveIDs())
	assert.Equal(t, "", s.Name(2))
	assert.Equal(t, "", s.Name(99), "beyond the map")
	assert.Equal(t, []uint32{1, 3}, s.With(0).ToArray())
	assert.Equal(t, 1, s.WithCount(1))
	assert.Equal(t, []uint32{3}, s.WithBoth(0, 1).ToArray())
	with, live := s.WithAndLive(1)
	assert.Equal(t, []uint32{3}, with.ToArray())
	assert.Equal(t, []uint32{0, 1, 3}, live.ToArray())

	list := []fusion.Ranked{{ID: 3}, {ID: 2}, {ID: 0}, {ID: 1}}
	assert.Equal(t, []string{"d", "", "a", ""}, s.Names(list, 2), "stops after k live names")
	var seen []string
	s.EachName(list, func(r fusion.Ranked, name string) bool {
		seen = append(seen, fmt.Sprintf("%d=%s", r.ID, name))
		return r.ID != 0
	})
	assert.Equal(t, []string{"3=d", "2=", "0=a"}, seen, "stops when fn returns false")

	// Re-adding a live ID renames it without counting it twice.
	s.Added([]Change{{ID: 1, Ext: "b2", Vecs: vecs(false, true)}})
	assert.Equal(t, 3, s.Size())
	assert.Equal(t, "b2", s.Name(1))

	s.Removed([]Change{{ID: 3, Deleted: true}, {ID: 7, Deleted: true}}, [][2]uint32{{0, 3}, {1, 3}, {0, 1}})
	assert.Equal(t, 2, s.Size(), "an unknown deleted ID changes nothing")
	assert.Equal(t, "", s.Name(3))
	assert.Empty(t, s.With(0).ToArray())
	assert.Equal(t, []uint32{1}, s.With(1).ToArray())

	cp := s.Copy()
	assert.Equal(t, []string{"a", "b2", "", ""}, cp.ExtIDs)
	assert.Equal(t, 2, cp.Count)
	require.Len(t, cp.Has, 2)
	cp.Live.Add(42) // a copy: the set does not change
	assert.Equal(t, []uint32{0, 1}, s.LiveIDs())

	s.SetWith(0, s.LiveClone())
	assert.Equal(t, []uint32{0, 1}, s.With(0).ToArray())
}

// TestSetConcurrent runs readers beside a writer; under -race it checks
// that every method takes the lock it needs.
func TestSetConcurrent(t *testing.T) {
	s := New()
	s.AddModality()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range uint32(500) {
			s.Added([]Change{{ID: i, Ext: fmt.Sprint(i), Vecs: vecs(true)}})
			if i%3 == 0 {
				s.Removed([]Change{{ID: i, Deleted: true}}, [][2]uint32{{0, i}})
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint32(500) {
				_ = s.Name(i)
				_ = s.Names([]fusion.Ranked{{ID: i}}, 1)
				s.EachName([]fusion.Ranked{{ID: i}}, func(fusion.Ranked, string) bool { return true })
				_, _ = s.Size(), s.LiveIDs()
				_, _ = s.With(0), s.WithCount(0)
				_, _ = s.WithAndLive(0)
				_ = s.Copy()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 500-167, s.Size())
	assert.Equal(t, s.Size(), s.WithCount(0))
}
