package mmdb

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/embedtest"
	"github.com/mmdb-go/mmdb/query"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newEmbedServer is a stand-in server whose model "clip-test" embeds a
// text as vecs gives it (unknown texts: the first axis); other models are
// refused by an empty answer.
func newEmbedServer(t *testing.T, vecs map[string][]float32) *embedtest.Server {
	return embedtest.New(t, func(model string, x any) []float32 {
		if model != "clip-test" {
			return nil
		}
		if v, ok := vecs[fmt.Sprint(x)]; ok {
			return v
		}
		return []float32{1, 0, 0, 0}
	})
}

func textSpec(url string) *encoder.Spec {
	return &encoder.Spec{Kind: encoder.KindOpenAI, Remote: &encoder.Remote{URL: url, Model: "clip-test", Input: encoder.InputText, KeyEnv: "MMDB_TEST_KEY"}}
}

// A text probe goes to the modality's embeddings server, and its vector
// searches like any other: here the caption space is the photos', so the
// photo whose vector the server gives the sentence comes first. The
// request carries the model, the text and the key from the environment;
// a 503 is retried; the plan shows the encode step.
func TestSearchWithText(t *testing.T) {
	t.Setenv("MMDB_TEST_KEY", "sk-test")
	srv := newEmbedServer(t, map[string][]float32{"a brown dog": {0, 1, 0, 0}, "a red car": {0, 0, 1, 0}})
	srv.FailFirst = 1
	caption := Modality{Name: "caption", Dim: 4, Metric: Cosine, Space: "clip", Encoder: textSpec(srv.URL)}
	db, path := openTest(t, imgMod, caption)
	require.NoError(t, db.Put(ctx,
		Item{ID: "dog", Vectors: map[string][]float32{"image": {0, 1, 0.1, 0}}},
		Item{ID: "car", Vectors: map[string][]float32{"image": {0, 0.1, 1, 0}}},
		Item{ID: "sky", Vectors: map[string][]float32{"image": {1, 0, 0, 0.1}}}))

	hits, err := db.Search(ctx, Query{Target: "image", K: 2, Probes: []Probe{{Modality: "caption", Text: "a brown dog"}}})
	require.NoError(t, err)
	require.Len(t, hits, 2)
	assert.Equal(t, "dog", hits[0].ID)
	assert.Equal(t, int32(2), srv.Requests(), "one 503, retried once")
	in, auth := srv.Request(1)
	assert.Equal(t, []any{"a brown dog"}, in)
	assert.Equal(t, "Bearer sk-test", auth)

	res, err := db.Query(ctx, "EXPLAIN ANALYZE SEARCH image NEAR caption 'a red car' LIMIT 1")
	require.NoError(t, err)
	assert.Equal(t, "car", res.Hits[0].ID)
	assert.Contains(t, res.String(), `probe caption (text "a red car", weight 1): direct route`)
	assert.Contains(t, res.String(), "encode: openai(url="+srv.URL+" model=clip-test input=text key=$MMDB_TEST_KEY)")
	assert.Contains(t, res.String(), "step encode caption")

	// Encode batches: three texts, one request.
	before := srv.Requests()
	vecs, err := db.Encode(ctx, "caption", encoder.Input{Text: "a brown dog"}, encoder.Input{Text: "a red car"}, encoder.Input{Text: "x"})
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{0, 1, 0, 0}, {0, 0, 1, 0}, {1, 0, 0, 0}}, vecs)
	assert.Equal(t, before+1, srv.Requests())

	// Several targets: the text is encoded once.
	before = srv.Requests()
	hits, err = db.Search(ctx, Query{Targets: []string{"image", "caption"}, K: 1, Probes: []Probe{{Modality: "caption", Text: "a red car"}}})
	require.NoError(t, err)
	assert.Equal(t, "car", hits[0].ID)
	assert.Equal(t, before+1, srv.Requests())

	// The encoder is in the file: it survives a reopen, and no key is
	// stored in it.
	require.NoError(t, db.Close())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "sk-test")
	db2, err := Open(path, nil)
	require.NoError(t, err)
	defer db2.Close()
	m := db2.Modalities()[1]
	require.NotNil(t, m.Encoder)
	assert.Equal(t, *textSpec(srv.URL).Remote, *m.Encoder.Remote)
}

// Raw content that cannot become a probe fails before any search, with
// an error that names the modality and the cause.
func TestProbeErrors(t *testing.T) {
	t.Setenv("MMDB_TEST_KEY", "sk-test")
	srv := newEmbedServer(t, map[string][]float32{"five": {1, 2, 3, 4, 5}})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String()
	dead.Close() // nothing listens there now
	unfitted := Modality{Name: "audio", Metric: Cosine, Encoder: &encoder.Spec{Kind: encoder.KindMFCC}}
	db, _ := openTest(t, imgMod, txtMod, unfitted,
		Modality{Name: "caption", Dim: 4, Metric: Cosine, Space: "clip", Encoder: textSpec(srv.URL)},
		Modality{Name: "offline", Dim: 4, Metric: Cosine, Space: "clip", Encoder: textSpec(deadURL)},
		Modality{Name: "nokey", Dim: 4, Metric: Cosine, Space: "clip", Encoder: &encoder.Spec{Kind: encoder.KindOpenAI,
			Remote: &encoder.Remote{URL: srv.URL, Model: "clip-test", Input: encoder.InputText, KeyEnv: "MMDB_TEST_UNSET_KEY"}}},
		Modality{Name: "pic", Metric: Cosine, Encoder: unitImage()})
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"image": {1, 0, 0, 0}}}))
	dir := t.TempDir()
	notMedia := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notMedia, []byte("not a picture"), 0o644))

	tests := []struct {
		name  string
		probe Probe
		err   error
		msg   []string
	}{
		{"no encoder", Probe{Modality: "text", Text: "a dog"}, ErrNoEncoder, []string{`"text" has no encoder`}},
		{"not fitted yet", Probe{Modality: "audio", File: notMedia}, ErrNoEncoder, []string{`"audio"`, "not fitted", "import some first"}},
		{"text for a file encoder", Probe{Modality: "pic", Text: "hello"}, ErrInvalidQuery, []string{`"pic" encodes image files, not text`}},
		{"file for a text encoder", Probe{Modality: "caption", File: notMedia}, ErrInvalidQuery, []string{`"caption" encodes text, not files`}},
		{"missing file", Probe{Modality: "caption", File: filepath.Join(dir, "gone.png")}, ErrInvalidQuery, []string{"gone.png", "no such file"}},
		{"two sources", Probe{Modality: "caption", Text: "a", ItemID: "a"}, ErrInvalidQuery, []string{"more than one of"}},
		{"wrong dimension", Probe{Modality: "caption", Text: "five"}, ErrInvalidQuery, []string{`"caption"`, "got 5 values", "wants 4"}},
		{"unreachable server", Probe{Modality: "offline", Text: "a dog"}, ErrInvalidQuery, []string{`"offline"`, "connection refused"}},
		{"key not set", Probe{Modality: "nokey", Text: "a dog"}, encoder.ErrInput, []string{`"nokey"`, "MMDB_TEST_UNSET_KEY is not set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Requests()
			_, err := db.Search(ctx, Query{Target: "image", Probes: []Probe{tc.probe}})
			require.ErrorIs(t, err, tc.err)
			for _, m := range tc.msg {
				assert.Contains(t, err.Error(), m)
			}
			if tc.name != "wrong dimension" {
				assert.Equal(t, before, srv.Requests(), "refused before any request")
			}
		})
	}
	// A picture for an image encoder whose file is a WAV is the encoder's
	// error, named.
	wavLike := filepath.Join(dir, "x.png")
	require.NoError(t, os.WriteFile(wavLike, []byte("RIFF\x00\x00\x00\x00WAVEfmt "), 0o644))
	_, err = db.Search(ctx, Query{Target: "pic", Probes: []Probe{{Modality: "pic", File: wavLike}}})
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), `"pic"`)
	assert.Contains(t, err.Error(), "looks like WAV audio")
}

// unitImage is the image encoder with a standardisation that changes
// nothing.
func unitImage() *encoder.Spec {
	d := encoder.Image{}.Dim()
	sc := &encoder.Scaler{Mean: make([]float32, d), Std: make([]float32, d)}
	for i := range sc.Std {
		sc.Std[i] = 1
	}
	return &encoder.Spec{Kind: encoder.KindImage, Scaler: sc}
}

// SetEncoder never leaves vectors made two ways: a new standardisation
// must come with every stored vector re-encoded; it lands with them in
// one transaction, survives a reopen, and drops the alignments fitted on
// the old vectors.
func TestSetEncoder(t *testing.T) {
	spec := unitImage()
	db, path := openTest(t, Modality{Name: "pic", Metric: Cosine, Encoder: spec}, Modality{Name: "other", Dim: 2, Metric: Cosine})
	d := spec.Dim()
	vec := func(i int) []float32 {
		v := make([]float32, d)
		v[i] = 1
		return v
	}
	require.NoError(t, db.Put(ctx,
		Item{ID: "a", Vectors: map[string][]float32{"pic": vec(0), "other": {1, 0}}},
		Item{ID: "b", Vectors: map[string][]float32{"pic": vec(1), "other": {0, 1}}}))
	require.NoError(t, db.SetAlignment(Alignment{From: "other", To: "pic", W: identityish(2, d), Bias: make([]float32, d)}))

	refit := *spec
	refit.Scaler = &encoder.Scaler{Mean: make([]float32, d), Std: make([]float32, d)}
	for i := range refit.Scaler.Std {
		refit.Scaler.Std[i] = 2
	}
	err := db.SetEncoder(ctx, "pic", &refit, Item{ID: "a", Vectors: map[string][]float32{"pic": vec(2)}})
	require.ErrorIs(t, err, ErrModalityConflict)
	assert.Contains(t, err.Error(), `item "b" holds a vector made by the stored encoder`)
	got, err := db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, vec(0), got.Vectors["pic"], "nothing of a refused change is stored")

	require.NoError(t, db.SetEncoder(ctx, "pic", &refit,
		Item{ID: "a", Vectors: map[string][]float32{"pic": vec(2)}}, Item{ID: "b", Vectors: map[string][]float32{"pic": vec(3)}}))
	st, err := db.Stats()
	require.NoError(t, err)
	assert.Empty(t, st.Alignments, "the map was fitted on the old vectors")
	got, err = db.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, vec(2), got.Vectors["pic"])
	assert.Equal(t, []float32{1, 0}, got.Vectors["other"], "merged: the other modality kept")

	// The same spec again needs no vectors; another encoder is refused by
	// DefineModality.
	require.NoError(t, db.SetEncoder(ctx, "pic", &refit))
	err = db.DefineModality(Modality{Name: "pic", Dim: d, Metric: Cosine, Encoder: &encoder.Spec{Kind: encoder.KindImage, Image: &encoder.Image{Orientations: 18, Stride: 4}}})
	require.ErrorIs(t, err, ErrModalityConflict)
	require.NoError(t, db.DefineModality(Modality{Name: "pic", Dim: d, Metric: Cosine}), "no encoder given: the stored one stands")

	require.NoError(t, db.Close())
	db2, err := Open(path, nil)
	require.NoError(t, err)
	defer db2.Close()
	m := db2.Modalities()[0]
	require.NotNil(t, m.Encoder)
	assert.Equal(t, refit.Scaler, m.Encoder.Scaler)
	assert.True(t, strings.HasSuffix(m.Encoder.String(), " standardised"), m.Encoder.String())
}

func identityish(from, to int) [][]float32 {
	w := make([][]float32, to)
	for i := range w {
		w[i] = make([]float32, from)
		if i < from {
			w[i][i] = 1
		}
	}
	return w
}

// A probe encoded before a refit of its modality is not searched as if
// made the new way: the search fails with ErrChanged.
func TestProbeOvertakenByRefit(t *testing.T) {
	spec := unitImage()
	db, _ := openTest(t, Modality{Name: "pic", Metric: Cosine, Encoder: spec})
	d := spec.Dim()
	v := make([]float32, d)
	v[0] = 1
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"pic": v}}))
	file := filepath.Join(t.TempDir(), "x.png")
	require.NoError(t, os.WriteFile(file, pngFile(t), 0o644))
	p, err := db.plan(ctx, Query{Target: "pic", Probes: []Probe{{Modality: "pic", File: file}}}, false)
	require.NoError(t, err)
	require.NoError(t, db.stillEncoded(p))
	refit := *spec
	refit.Scaler = &encoder.Scaler{Mean: make([]float32, d), Std: slices.Repeat([]float32{2}, d)}
	require.NoError(t, db.SetEncoder(ctx, "pic", &refit, Item{ID: "a", Vectors: map[string][]float32{"pic": v}}))
	require.ErrorIs(t, db.stillEncoded(p), ErrChanged)
}

func pngFile(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 4)
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// NoFileProbes refuses file probes; bytes still work. A remote model
// change is refused for a modality that shares its space with another
// model's.
func TestNoFileProbesAndSharedSpaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.mmdb")
	db, err := Open(path, &Options{NoFileProbes: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(Modality{Name: "pic", Metric: Cosine, Encoder: unitImage()}))
	require.NoError(t, db.Put(ctx, Item{ID: "a", Vectors: map[string][]float32{"pic": slices.Repeat([]float32{1}, 136)}}))
	file := filepath.Join(t.TempDir(), "x.png")
	require.NoError(t, os.WriteFile(file, pngFile(t), 0o644))
	_, err = db.Query(ctx, "SEARCH pic NEAR pic FILE "+query.Quote(file))
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), "NoFileProbes")
	_, err = db.Search(ctx, Query{Target: "pic", Probes: []Probe{{Modality: "pic", Data: pngFile(t)}}})
	require.NoError(t, err)

	remote := func(model string, in encoder.InputKind) *encoder.Spec {
		return &encoder.Spec{Kind: encoder.KindOpenAI, Remote: &encoder.Remote{URL: "http://127.0.0.1:9", Model: model, Input: in}}
	}
	require.NoError(t, db.DefineModality(Modality{Name: "photo", Dim: 4, Metric: Cosine, Space: "clip", Encoder: remote("clip-b", encoder.InputImage)}))
	require.NoError(t, db.DefineModality(Modality{Name: "caption", Dim: 4, Metric: Cosine, Space: "clip", Encoder: remote("clip-b", encoder.InputText)}))
	err = db.SetEncoder(ctx, "caption", remote("clip-l", encoder.InputText))
	require.ErrorIs(t, err, ErrModalityConflict)
	assert.Contains(t, err.Error(), `shares space "clip" with "photo", made by model "clip-b"`)
	err = db.DefineModality(Modality{Name: "caption2", Dim: 4, Metric: Cosine, Space: "clip", Encoder: remote("clip-l", encoder.InputText)})
	require.ErrorIs(t, err, ErrModalityConflict)
}

// Defining a modality again may move its remote server (same model) and
// give a standardisation to one that holds no vectors yet; another
// standardisation for one that holds vectors is a conflict.
func TestRedefineEncoder(t *testing.T) {
	remote := func(url string) *encoder.Spec {
		return &encoder.Spec{Kind: encoder.KindOpenAI, Remote: &encoder.Remote{URL: url, Model: "m", Input: encoder.InputText}}
	}
	db, _ := openTest(t, Modality{Name: "cap", Dim: 4, Metric: Cosine, Encoder: remote("http://a:1")})
	require.NoError(t, db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"cap": {1, 0, 0, 0}}}))
	require.NoError(t, db.DefineModality(Modality{Name: "cap", Dim: 4, Metric: Cosine, Encoder: remote("http://b:2")}))
	assert.Equal(t, "http://b:2", db.Modalities()[0].Encoder.Remote.URL, "the server moved; the vectors stand")

	spec := &encoder.Spec{Kind: encoder.KindImage}
	require.NoError(t, db.DefineModality(Modality{Name: "pic", Encoder: spec}))
	fitted := unitImage()
	require.NoError(t, db.DefineModality(Modality{Name: "pic", Encoder: fitted}), "no vectors yet: the standardisation is taken")
	assert.Equal(t, fitted.Scaler, db.Modalities()[1].Encoder.Scaler)
	require.NoError(t, db.Put(ctx, Item{ID: "x", Vectors: map[string][]float32{"pic": slices.Repeat([]float32{1}, 136)}}))
	other := unitImage()
	other.Scaler.Std[0] = 2
	err := db.DefineModality(Modality{Name: "pic", Encoder: other})
	require.ErrorIs(t, err, ErrModalityConflict)
	assert.Contains(t, err.Error(), "standardised differently, and it holds vectors")
	require.NoError(t, db.DefineModality(Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage}}), "no standardisation given: the stored one stands")
	assert.Equal(t, fitted.Scaler, db.Modalities()[1].Encoder.Scaler)
}
