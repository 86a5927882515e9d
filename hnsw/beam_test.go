package hnsw

import (
	"fmt"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBeamMatchesHeaps checks that the beam walk expands what the two-heap
// walk of Algorithm 2 expands: on graphs with and without tombstones,
// walking on float32 vectors and on codes, every search returns the same
// results, in the same order, with the same distances. The data are
// random floats, so ties in distance, where the two may differ, do not
// occur.
func TestBeamMatchesHeaps(t *testing.T) {
	cases := []struct {
		name    string
		metric  modality.Metric
		n       int
		deleted int // every deleted-th ID is deleted after the build
		codes   bool
	}{
		{"cosine", modality.Cosine, 3000, 0, false},
		{"l2 with tombstones", modality.L2, 3000, 7, false},
		{"dot on codes with tombstones", modality.Dot, 3000, 3, true},
		{"cosine on codes", modality.Cosine, 2000, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := clustered(tc.n+50, 32, 20, 11)
			g := NewHNSW(32, tc.metric, Config{Seed: 3})
			for i, v := range data[:tc.n] {
				require.NoError(t, g.Add(uint32(i), v))
			}
			// Deletions below CompactAt keep their tombstones in the
			// graph, walked through and never returned.
			deleted := 0
			if tc.deleted > 0 {
				for id := 0; id < tc.n && float64(deleted+1) < CompactAt*float64(tc.n); id += tc.deleted {
					require.True(t, g.Delete(uint32(id)))
					deleted++
				}
				require.Positive(t, deleted)
			}
			if tc.codes {
				g.outgrown.Store(true)
			}
			require.Equal(t, tc.codes, g.walksOnCodes())
			all := roaring.New()
			all.AddRange(0, uint64(tc.n))
			for qi, q := range data[tc.n:] {
				for _, ef := range []int{1, 10, 64, 300} {
					k := min(10, ef)
					// An allow-list of every ID walks on the heaps.
					want := g.Search(q, k, SearchOptions{Ef: ef, Allow: all})
					got := g.Search(q, k, SearchOptions{Ef: ef})
					require.Equal(t, want, got, fmt.Sprintf("query %d, ef %d", qi, ef))
					assert.Len(t, got, k)
					for _, r := range got {
						assert.False(t, tc.deleted > 0 && int(r.ID)%tc.deleted == 0 && int(r.ID)/tc.deleted < deleted, "tombstone %d returned", r.ID)
					}
				}
			}
		})
	}
}
