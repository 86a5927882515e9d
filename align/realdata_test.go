package align

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/internal/npy"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedData is the project's public test data, relative to this package.
const sharedData = "../../shared/data"

func needData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedData, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s is absent (%v): this test needs the shared data folder beside the repository", p, err)
	}
	return p
}

func loadCOCO(t testing.TB, file string) (img, txt [][]float32) {
	a, err := npy.ReadFile(needData(t, "coco500-clip/"+file))
	require.NoError(t, err)
	img, err = a.Rows(0)
	require.NoError(t, err)
	txt, err = a.Rows(1)
	require.NoError(t, err)
	return img, txt
}

// cocoCurve fits method on the first n of 400 training items and scores
// it on the 100 held-out ones, over the 5 ways to hold out 100 of 500,
// and returns the mean score.
func cocoCurve(t testing.TB, m Method, src, dst [][]float32, n int, o Options) Score {
	var mean Score
	for fold := range 5 {
		var train, test Pairs
		for i := range 500 {
			if i/100 == fold {
				test.X, test.Y = append(test.X, src[i]), append(test.Y, dst[i])
			} else if len(train.X) < n {
				train.X, train.Y = append(train.X, src[i]), append(train.Y, dst[i])
			}
		}
		var proj *Projection
		if m != "baseline" {
			var err error
			proj, err = Fit(context.Background(), m, train, o)
			require.NoError(t, err)
		}
		s := Evaluate(proj, test, 0)
		mean.R1 += s.R1 / 5
		mean.R5 += s.R5 / 5
		mean.R10 += s.R10 / 5
		mean.P10 += s.P10 / 5
		if proj != nil {
			mean.Params = proj.Params
		}
	}
	mean.Method = m
	return mean
}

// Why a map under Cosine leaves the target mean out of its bias: the same
// ridge fit with the mean kept (as it is for L2 targets) adds my.y to
// every target's score, a prior for the targets nearest the mean, and
// ranks worse. coco500 CLIP text -> image, 400 training pairs, the last
// 100 items held out.
func TestCentredOutputBeatsMeanKept(t *testing.T) {
	img, txt := loadCOCO(t, "features_clip.npy")
	train := Pairs{X: txt[:400], Y: img[:400]}
	test := Pairs{X: txt[400:], Y: img[400:]}
	score := func(m modality.Metric) Score {
		p, err := Fit(context.Background(), Ridge, train, Options{Metric: m, Lambdas: []float64{100}})
		require.NoError(t, err)
		return Evaluate(p, test, modality.Cosine) // ranked as the cosine index ranks
	}
	centred, kept := score(modality.Cosine), score(modality.L2)
	t.Logf("R@1 with the target mean left out %.3f, kept %.3f", centred.R1, kept.R1)
	require.Greater(t, centred.R1, kept.R1+0.1)
}

// Procrustes from 49 pairs in 512 dimensions (the 49 x 768 case on
// real vectors) works in the pairs' span, and what it learns there still
// ranks held-out CLIP text -> image far above chance (10/451 at R@10).
func TestProcrustesFewRealPairs(t *testing.T) {
	img, txt := loadCOCO(t, "features_clip.npy")
	train := Pairs{X: txt[:49], Y: img[:49]}
	test := Pairs{X: txt[49:], Y: img[49:]}
	proj, err := Fit(context.Background(), Procrustes, train, Options{})
	require.NoError(t, err)
	assert.Contains(t, proj.Params, "(the span of 49 pairs)")
	s := Evaluate(proj, test, modality.Cosine)
	t.Logf("%s held out: %v", proj.Params, s)
	assert.Greater(t, s.R10, 0.1)
}
