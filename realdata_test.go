package mmdb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/internal/npy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedData is where the project's public test data lives, relative to the
// repository root (this package's directory).
const sharedData = "../shared/data"

func needData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedData, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s is absent (%v): this test needs the shared data folder beside the repository", p, err)
	}
	return p
}

// loadCOCO returns the 500 CLIP image and text embeddings of coco500-clip.
func loadCOCO(t testing.TB, file string) (img, txt [][]float32) {
	a, err := npy.ReadFile(needData(t, "coco500-clip/"+file))
	require.NoError(t, err)
	require.Equal(t, []int{2, 500, 512}, a.Shape)
	img, err = a.Rows(0)
	require.NoError(t, err)
	txt, err = a.Rows(1)
	require.NoError(t, err)
	return img, txt
}

func putCOCO(t testing.TB, db *DB, img, txt [][]float32) {
	// Batches of 50 are indexed on one goroutine, so the graph is the
	// same on every run and the tests comparing HNSW with exact search are
	// not at the mercy of a parallel build's rare unreachable node.
	for s := 0; s < len(img); s += 50 {
		var items []Item
		for i := s; i < min(len(img), s+50); i++ {
			items = append(items, Item{ID: fmt.Sprintf("coco-%03d", i), Attrs: map[string]any{"row": i},
				Vectors: map[string][]float32{"image": img[i], "text": txt[i]}})
		}
		require.NoError(t, db.Put(ctx, items...))
	}
}

// The exact retrieval figures of ../shared/data/coco500-clip/README.md must
// come out of the database unchanged: nothing in storage, normalisation or
// ranking may lose quality against exact search.
func TestCOCOEvaluateMatchesExactFigures(t *testing.T) {
	img, txt := loadCOCO(t, "features_clip.npy")
	clip := "clip-vit-b16"
	db, _ := openTest(t,
		Modality{Name: "image", Dim: 512, Metric: Cosine, Space: clip},
		Modality{Name: "text", Dim: 512, Metric: Cosine, Space: clip})
	putCOCO(t, db, img, txt)
	require.Equal(t, 500, db.Count())

	tests := []struct {
		probe, target    string
		r1, r5, r10, mrr float64
	}{
		{"text", "image", 0.506, 0.766, 0.862, 0.630},
		{"image", "text", 0.552, 0.808, 0.892, 0.667},
	}
	for _, tc := range tests {
		t.Run(tc.probe+"->"+tc.target, func(t *testing.T) {
			rep, err := db.Evaluate(ctx, tc.probe, tc.target, nil)
			require.NoError(t, err)
			t.Log(rep)
			assert.Equal(t, 500, rep.N)
			assert.InDelta(t, tc.r1, rep.Recall[1], 0.002)
			assert.InDelta(t, tc.r5, rep.Recall[5], 0.002)
			assert.InDelta(t, tc.r10, rep.Recall[10], 0.002)
			assert.InDelta(t, tc.mrr, rep.MRR, 0.002)
		})
	}

	// The search paths lose nothing against exact ranking: R@1/5/10 from
	// each text's own image's position among its hits, through the exact
	// scan and through the HNSW index at the default ef.
	for _, exact := range []bool{true, false} {
		found := map[int]int{}
		for i := range 500 {
			id := fmt.Sprintf("coco-%03d", i)
			hits, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{{Modality: "text", ItemID: id}}, K: 10, Exact: exact})
			require.NoError(t, err)
			require.Len(t, hits, 10)
			for rank, h := range hits {
				if h.ID == id {
					for _, k := range []int{1, 5, 10} {
						if rank < k {
							found[k]++
						}
					}
				}
			}
		}
		assert.InDelta(t, 0.506, float64(found[1])/500, 0.002, "exact=%v", exact)
		assert.InDelta(t, 0.766, float64(found[5])/500, 0.002, "exact=%v", exact)
		assert.InDelta(t, 0.862, float64(found[10])/500, 0.002, "exact=%v", exact)
	}
}

// The randomly initialised CLIP gives embeddings that carry no meaning: an
// honest database must report near-chance retrieval for them.
func TestCOCORandomEncoderIsNearChance(t *testing.T) {
	img, txt := loadCOCO(t, "features_clip_random.npy")
	db, _ := openTest(t,
		Modality{Name: "image", Dim: 512, Metric: Cosine, Space: "random"},
		Modality{Name: "text", Dim: 512, Metric: Cosine, Space: "random"})
	putCOCO(t, db, img, txt)
	rep, err := db.Evaluate(ctx, "text", "image", nil)
	require.NoError(t, err)
	t.Log(rep)
	assert.Less(t, rep.Recall[10], 0.1, "chance R@10 is 0.02")
}
