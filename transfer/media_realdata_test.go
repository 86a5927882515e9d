package transfer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sharedData = "../../shared/data"

func needData(t testing.TB, rel string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedData, rel)); err != nil {
		t.Skipf("%s not found (%v): the shared data folder sits beside the repository", rel, err)
	}
}

// The end-to-end check on real media. Recordings and pictures are
// imported from folders (the speaker theo in a second folder, after the
// standardisation was fitted on the others); pairs carry a picture and a
// recording of one digit; ALIGN learns image -> audio by digit; then
// digit pictures written from rows never imported search theo's
// recordings by file: SEARCH audio NEAR image FILE '...'.
func TestSearchWithRawPicturesFindsUnheardSpeaker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: encodes 3,000 recordings")
	}
	needData(t, "digits/digits.csv.gz")
	needData(t, "fsdd/recordings")
	ctx := context.Background()
	digits, err := dataset.Digits(sharedData)
	require.NoError(t, err)
	recs, err := dataset.FSDD(sharedData)
	require.NoError(t, err)
	const held = "theo"
	tmp := t.TempDir()
	pairAudio, pairImage, heldAudio, probes := filepath.Join(tmp, "pa"), filepath.Join(tmp, "pi"), filepath.Join(tmp, "ha"), filepath.Join(tmp, "probes")
	for _, d := range []string{pairAudio, pairImage, heldAudio, probes} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	var imgBy, audBy [10][]int
	for i, d := range digits {
		if i%5 != 0 { // rows i%5 == 0 are never imported: they are the probes
			imgBy[d.Label] = append(imgBy[d.Label], i)
		}
	}
	attrs := map[string]map[string]any{}
	for i, r := range recs {
		if r.Speaker == held {
			id := fmt.Sprintf("%d_%s_%d", r.Digit, r.Speaker, r.Take)
			require.NoError(t, os.Symlink(mustAbs(t, r.Path), filepath.Join(heldAudio, id+".wav")))
			attrs[id] = map[string]any{"digit": r.Digit, "speaker": r.Speaker}
		} else {
			audBy[r.Digit] = append(audBy[r.Digit], i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range 3000 {
		c, id := k%10, fmt.Sprintf("pair-%d", k)
		i, a := imgBy[c][rng.IntN(len(imgBy[c]))], audBy[c][rng.IntN(len(audBy[c]))]
		writeDigit(t, filepath.Join(pairImage, id+".png"), digits[i])
		require.NoError(t, os.Symlink(mustAbs(t, recs[a].Path), filepath.Join(pairAudio, id+".wav")))
		attrs[id] = map[string]any{"digit": c, "speaker": recs[a].Speaker}
	}

	db := openDB(t)
	define := func(name string, k encoder.Kind) MediaOptions {
		return MediaOptions{Define: &mmdb.Modality{Name: name, Metric: mmdb.Cosine, Encoder: &encoder.Spec{Kind: k}}}
	}
	for _, imp := range []struct {
		dir, modality string
		o             MediaOptions
		n             int
	}{
		{pairAudio, "audio", define("audio", encoder.KindMFCC), 3000},
		{pairImage, "image", define("image", encoder.KindImage), 3000},
		{heldAudio, "audio", MediaOptions{}, 500}, // applies the standardisation fitted on the others
	} {
		rep, err := ImportMedia(ctx, db, imp.dir, imp.modality, imp.o)
		require.NoError(t, err)
		require.Equal(t, imp.n, rep.Imported)
	}
	var labelled []mmdb.Item
	for id, a := range attrs {
		labelled = append(labelled, mmdb.Item{ID: id, Attrs: a})
	}
	require.NoError(t, db.Merge(ctx, labelled...))

	rep, err := db.Align(ctx, "image", "audio", &mmdb.AlignOptions{Label: "digit"})
	if err != nil {
		require.ErrorIs(t, err, mmdb.ErrNoGain) // the pivot won: searches pivot
	}
	t.Logf("ALIGN image TO audio BY digit:\n%s", rep)

	var prec float64
	n := 0
	for i, d := range digits {
		if i%5 != 0 {
			continue
		}
		p := filepath.Join(probes, fmt.Sprintf("digit-%d.png", i))
		writeDigit(t, p, d)
		res, err := db.Query(ctx, fmt.Sprintf("SEARCH audio NEAR image FILE '%s' WHERE speaker = '%s' LIMIT 10", p, held))
		require.NoError(t, err)
		require.Len(t, res.Hits, 10)
		right := 0
		for _, h := range res.Hits {
			if attrs[h.ID]["digit"] == d.Label {
				right++
			}
		}
		prec += float64(right) / 10
		n++
	}
	prec /= float64(n)
	t.Logf("SEARCH audio NEAR image FILE: precision@10 on speaker %s's recordings, %d pictures never imported: %.3f", held, n, prec)
	assert.GreaterOrEqual(t, prec, 0.75)

	ex, err := db.Query(ctx, fmt.Sprintf("EXPLAIN ANALYZE SEARCH audio NEAR image FILE '%s' LIMIT 3", filepath.Join(probes, "digit-0.png")))
	require.NoError(t, err)
	assert.Contains(t, ex.String(), "encode: image(size=8 orientations=8 cell=4 stride=2) standardised")
	assert.Contains(t, ex.String(), "step encode image")

	// The same files give the same vectors: imported from another folder,
	// or encoded at query time.
	again := filepath.Join(tmp, "again")
	require.NoError(t, os.Mkdir(again, 0o755))
	for k := range 10 {
		data, err := os.ReadFile(filepath.Join(pairImage, fmt.Sprintf("pair-%d.png", k)))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(again, fmt.Sprintf("copy-%d.png", k)), data, 0o644))
	}
	_, err = ImportMedia(ctx, db, again, "image", MediaOptions{})
	require.NoError(t, err)
	for k := range 10 {
		orig, err := db.Get(ctx, fmt.Sprintf("pair-%d", k))
		require.NoError(t, err)
		cp, err := db.Get(ctx, fmt.Sprintf("copy-%d", k))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, kernel.DotProduct(orig.Vectors["image"], cp.Vectors["image"]), float32(0.99999), "pair-%d imported again", k)
		data, err := os.ReadFile(filepath.Join(pairAudio, fmt.Sprintf("pair-%d.wav", k)))
		require.NoError(t, err)
		v, err := db.Encode(ctx, "audio", encoder.Input{Data: data})
		require.NoError(t, err)
		assert.GreaterOrEqual(t, kernel.DotProduct(orig.Vectors["audio"], v[0]), float32(0.99999), "pair-%d's recording encoded at query time", k)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

func writeDigit(t *testing.T, path string, d dataset.Digit) {
	b, err := d.PNG()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}
