package mmdb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/stretchr/testify/require"
)

// BenchmarkFSDDSets compares, on the Free Spoken Digit Dataset, two ways
// of storing a recording's MFCC features: pooled into one 96-d vector (8
// stretches of time x 12 coefficients, laid end to end: the MFCC
// encoder's output), and the same 96 values as a set of 8 vectors of 12-d,
// one a stretch of time, scored by late interaction (MaxSim, and MaxPair
// beside it). Each speaker in turn is unseen: the database holds the other
// five speakers' 2,500 recordings, standardised by a scaler fitted on them
// (the modality's encoder carries it), and each of the unseen speaker's
// 500 recordings is a query, encoded through the database's own encoder
// (DB.Encode). Precision@10 is the share of the exact top 10 that say the
// same digit (within audio: no alignment involved). It logs the mean over
// the six speakers and the worst one:
//
//	go test -run '^$' -bench '^BenchmarkFSDDSets$' -benchtime 1x .
func BenchmarkFSDDSets(b *testing.B) {
	needData(b, "fsdd/recordings")
	recs, err := dataset.FSDD(sharedData)
	require.NoError(b, err)
	wavs := make([][]byte, len(recs))
	raw := make([][]float32, len(recs))
	var mfcc encoder.MFCC
	for i, r := range recs {
		wavs[i], err = os.ReadFile(r.Path)
		require.NoError(b, err)
		f, err := os.Open(r.Path)
		require.NoError(b, err)
		raw[i], err = mfcc.EncodeWAV(f)
		f.Close()
		require.NoError(b, err)
	}
	kinds := []struct {
		name string
		mod  Modality
	}{
		{"pooled 96-d, cosine", Modality{Name: "pooled", Metric: Cosine}},
		{"pooled 96-d, l2", Modality{Name: "pooled", Metric: L2}},
		{"8 x 12-d set, maxsim cosine", Modality{Name: "segs", Metric: Cosine, Multi: MaxSim}},
		{"8 x 12-d set, maxsim l2", Modality{Name: "segs", Metric: L2, Multi: MaxSim}},
		{"8 x 12-d set, maxpair cosine", Modality{Name: "segs", Metric: Cosine, Multi: MaxPair}},
	}
	for range b.N {
		for _, kind := range kinds {
			var sum, worst float64 = 0, 1
			speakers := dataset.Speakers(recs)
			for _, held := range speakers {
				p := fsddFold(b, recs, wavs, raw, kind.mod, held)
				sum += p
				worst = min(worst, p)
			}
			b.Logf("%-30s precision@10 %.3f (worst speaker %.3f)", kind.name, sum/float64(len(speakers)), worst)
		}
	}
}

// fsddFold is one unseen speaker's precision@10 for modality m.
func fsddFold(b *testing.B, recs []dataset.Recording, wavs [][]byte, raw [][]float32, m Modality, held string) float64 {
	var train [][]float32
	for i, r := range recs {
		if r.Speaker != held {
			train = append(train, raw[i])
		}
	}
	sc, err := encoder.FitScaler(train)
	require.NoError(b, err)
	m.Encoder = &encoder.Spec{Kind: encoder.KindMFCC, Scaler: sc}
	db, err := Open(filepath.Join(b.TempDir(), "fsdd.mmdb"), &Options{NoSync: true})
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.DefineModality(m))
	var items []Item
	var queries []int
	for i, r := range recs {
		if r.Speaker == held {
			queries = append(queries, i)
			continue
		}
		v, err := db.Encode(ctx, m.Name, encoder.Input{Data: wavs[i]})
		require.NoError(b, err)
		items = append(items, Item{ID: fmt.Sprintf("%d-%d", r.Digit, i), Attrs: map[string]any{"digit": r.Digit}, Vectors: map[string][]float32{m.Name: v[0]}})
	}
	require.NoError(b, db.Put(ctx, items...))
	hit, total := 0, 0
	for _, i := range queries {
		v, err := db.Encode(ctx, m.Name, encoder.Input{Data: wavs[i]})
		require.NoError(b, err)
		if m.IsMulti() {
			require.Len(b, v[0], 96, "a set of 8 segments of 12 coefficients")
		}
		hits, err := db.Search(ctx, Query{Target: m.Name, K: 10, Exact: true, Probes: []Probe{{Modality: m.Name, Vector: v[0]}}})
		require.NoError(b, err)
		for _, h := range hits {
			if h.Attrs["digit"] == int64(recs[i].Digit) {
				hit++
			}
		}
		total += 10
	}
	return float64(hit) / float64(total)
}
