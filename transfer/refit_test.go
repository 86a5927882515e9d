package transfer

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/embedtest"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomPNGs writes n random 8x8 grey pictures named <prefix>-<i>.png.
func randomPNGs(t *testing.T, dir, prefix string, n int, seed uint64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.IntN(256))
		}
		var b bytes.Buffer
		require.NoError(t, png.Encode(&b, img))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", prefix, i)), b.Bytes(), 0o644))
	}
}

// assertEncodesAsStored checks that encoding id's file now gives its
// stored vector.
func assertEncodesAsStored(t *testing.T, db *mmdb.DB, id, file string) []float32 {
	t.Helper()
	it, err := db.Get(context.Background(), id)
	require.NoError(t, err)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	v, err := db.Encode(context.Background(), "pic", encoder.Input{Data: data})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, kernel.DotProduct(it.Vectors["pic"], v[0]), float32(0.99999), id)
	return it.Vectors["pic"]
}

func scalerOf(db *mmdb.DB, name string) *encoder.Scaler {
	for _, m := range db.Modalities() {
		if m.Name == name && m.Encoder != nil {
			return m.Encoder.Scaler
		}
	}
	return nil
}

// The first import fits the standardisation and later ones apply it; a
// refit fits it again on every file, re-encodes every stored vector in
// one transaction, or refuses naming the files that are gone.
func TestImportMediaRefit(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	randomPNGs(t, a, "a", 20, 1)
	randomPNGs(t, b, "b", 5, 2)
	randomPNGs(t, c, "c", 5, 3)
	db := openDB(t)
	def := &mmdb.Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage}}

	rep, err := ImportMedia(ctx, db, a, "pic", MediaOptions{Define: def})
	require.NoError(t, err)
	assert.Equal(t, 20, rep.Imported)
	first := scalerOf(db, "pic")
	require.NotNil(t, first)
	rep, err = ImportMedia(ctx, db, b, "pic", MediaOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Imported)
	assert.Equal(t, first, scalerOf(db, "pic"), "a later import applies the stored standardisation")
	before := assertEncodesAsStored(t, db, "a-3", filepath.Join(a, "a-3.png"))
	assertEncodesAsStored(t, db, "b-1", filepath.Join(b, "b-1.png"))

	rep, err = ImportMedia(ctx, db, c, "pic", MediaOptions{Refit: true})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Imported)
	assert.Equal(t, 25, rep.Reencoded)
	assert.Contains(t, rep.String(), "re-encoded 25 stored vectors")
	assert.NotEqual(t, first, scalerOf(db, "pic"))
	after := assertEncodesAsStored(t, db, "a-3", filepath.Join(a, "a-3.png"))
	assert.NotEqual(t, before, after, "re-encoded under the new standardisation")
	assertEncodesAsStored(t, db, "c-4", filepath.Join(c, "c-4.png"))

	require.NoError(t, os.Remove(filepath.Join(b, "b-2.png")))
	second := scalerOf(db, "pic")
	_, err = ImportMedia(ctx, db, c, "pic", MediaOptions{Refit: true})
	require.ErrorIs(t, err, ErrNoSource)
	assert.Contains(t, err.Error(), "b-2")
	assert.Contains(t, err.Error(), "1 cannot be")
	assert.Equal(t, second, scalerOf(db, "pic"), "a refused refit changes nothing")
	assertEncodesAsStored(t, db, "a-3", filepath.Join(a, "a-3.png"))
}

// A modality without an encoder (an older import, or vectors given by
// callers) takes media only through a refit that gives it one; one with
// an encoder but vectors stored without a standardisation is refused
// without a refit.
func TestImportMediaModalityWithoutEncoder(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "p")
	randomPNGs(t, dir, "p", 6, 4)
	d := encoder.Image{}.Dim()
	db := openDB(t, mmdb.Modality{Name: "pic", Dim: d, Metric: mmdb.Cosine})
	old := make([]float32, d)
	old[0] = 1
	require.NoError(t, db.Put(ctx, mmdb.Item{ID: "p-0", Attrs: map[string]any{"pic_file": filepath.Join(dir, "p-0.png")}, Vectors: map[string][]float32{"pic": old}}))

	_, err := ImportMedia(ctx, db, dir, "pic", MediaOptions{})
	require.ErrorIs(t, err, mmdb.ErrNoEncoder)
	assert.Contains(t, err.Error(), `modality "pic" has no encoder`)

	rep, err := ImportMedia(ctx, db, dir, "pic", MediaOptions{Refit: true, Encoder: &encoder.Spec{Kind: encoder.KindImage}})
	require.NoError(t, err)
	assert.Equal(t, 6, rep.Imported, "p-0 is in the folder: imported, not re-encoded")
	assertEncodesAsStored(t, db, "p-0", filepath.Join(dir, "p-0.png"))

	// Defined with an encoder, but holding a vector given by a caller:
	// a first fit would leave it made another way.
	db2 := openDB(t, mmdb.Modality{Name: "pic", Metric: mmdb.Cosine, Encoder: &encoder.Spec{Kind: encoder.KindImage}})
	require.NoError(t, db2.Put(ctx, mmdb.Item{ID: "given", Vectors: map[string][]float32{"pic": old}}))
	_, err = ImportMedia(ctx, db2, dir, "pic", MediaOptions{})
	require.ErrorIs(t, err, mmdb.ErrModalityConflict)
	assert.Contains(t, err.Error(), "holds 1 vectors made under no stored standardisation")
	_, err = ImportMedia(ctx, db2, dir, "pic", MediaOptions{Refit: true})
	require.ErrorIs(t, err, ErrNoSource)
	assert.Contains(t, err.Error(), "given (no pic_file attribute)")
}

// The schema side file carries the encoder and its standardisation: the
// vectors exported and imported into another database compare with what
// that database encodes from the same files. A database whose modality
// is standardised otherwise refuses the file.
func TestSchemaFileCarriesEncoder(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	randomPNGs(t, dir, "p", 8, 5)
	src := openDB(t)
	_, err := ImportMedia(ctx, src, dir, "pic", MediaOptions{Define: &mmdb.Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage}}})
	require.NoError(t, err)
	out := filepath.Join(tmp, "items.jsonl")
	require.NoError(t, WriteSchemaFile(src, out+".schema.json"))
	f, err := os.Create(out)
	require.NoError(t, err)
	_, err = ExportJSONL(ctx, src, f, nil)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	dst := openDB(t)
	require.NoError(t, ApplySchemaFile(dst, out+".schema.json"))
	f, err = os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	_, err = ImportJSONL(ctx, dst, f, out, Options{})
	require.NoError(t, err)
	assert.Equal(t, scalerOf(src, "pic"), scalerOf(dst, "pic"))
	assertEncodesAsStored(t, dst, "p-5", filepath.Join(dir, "p-5.png"))

	other := openDB(t)
	_, err = ImportMedia(ctx, other, filepath.Join(tmp, "p"), "pic", MediaOptions{Define: &mmdb.Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage, Image: &encoder.Image{Size: 8}}}})
	require.NoError(t, err)
	randomPNGs(t, filepath.Join(tmp, "q"), "q", 8, 6)
	_, err = ImportMedia(ctx, other, filepath.Join(tmp, "q"), "pic", MediaOptions{Refit: true})
	require.NoError(t, err)
	err = ApplySchemaFile(other, out+".schema.json")
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "standardised differently here and in the file")

	// A schema file that does not say how its vectors were made is
	// refused for a modality whose encoder makes them.
	bare := filepath.Join(tmp, "bare.schema.json")
	require.NoError(t, os.WriteFile(bare, []byte(`{"modalities":[{"name":"pic","dim":136,"metric":"cosine"}]}`), 0o644))
	err = ApplySchemaFile(other, bare)
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "does not say how its vectors were made")
}

// assertAllEncodeAsStored checks every stored vector of modality pic
// against its source file.
func assertAllEncodeAsStored(t *testing.T, db *mmdb.DB) {
	t.Helper()
	n := 0
	for it, err := range db.Items(context.Background()) {
		require.NoError(t, err)
		if it.Vectors["pic"] == nil {
			continue
		}
		n++
		assertEncodesAsStored(t, db, it.ID, it.Attrs["pic_file"].(string))
	}
	assert.Positive(t, n)
}

// An import that a refit overtakes fails with ErrChanged rather than store
// vectors under the old standardisation; a first import overtaken by
// another first import fails rather than store its own standardisation's
// vectors beside the other's. Every stored vector is its file's.
func TestImportsRacingARefit(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	randomPNGs(t, a, "a", 10, 1)
	randomPNGs(t, b, "b", 10, 2)
	randomPNGs(t, c, "c", 10, 3)
	def := &mmdb.Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage}}

	db := openDB(t)
	_, err := ImportMedia(ctx, db, a, "pic", MediaOptions{Define: def})
	require.NoError(t, err)
	refitted := false
	_, err = ImportMedia(ctx, db, b, "pic", MediaOptions{Options: Options{Progress: func(done, total int) {
		if !refitted { // while b is being encoded, c refits
			refitted = true
			_, err := ImportMedia(ctx, db, c, "pic", MediaOptions{Refit: true})
			require.NoError(t, err)
		}
	}}})
	require.ErrorIs(t, err, mmdb.ErrChanged)
	assertAllEncodeAsStored(t, db)

	db2 := openDB(t)
	nested := false
	_, err = ImportMedia(ctx, db2, a, "pic", MediaOptions{Define: def, Options: Options{Progress: func(done, total int) {
		if !nested {
			nested = true
			_, err := ImportMedia(ctx, db2, b, "pic", MediaOptions{Define: def})
			require.NoError(t, err)
		}
	}}})
	require.ErrorIs(t, err, mmdb.ErrModalityConflict)
	assertAllEncodeAsStored(t, db2)
}

// A first import whose files all give the same features cannot fit a
// standardisation: it fails, naming why, and leaves none behind; the
// source attribute is an absolute path, so a refit works from any folder.
func TestImportMediaDegenerateAndPaths(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	same := filepath.Join(tmp, "same")
	randomPNGs(t, same, "x", 1, 9)
	data, err := os.ReadFile(filepath.Join(same, "x-0.png"))
	require.NoError(t, err)
	for i := 1; i < 4; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(same, fmt.Sprintf("x-%d.png", i)), data, 0o644))
	}
	db := openDB(t)
	def := &mmdb.Modality{Name: "pic", Encoder: &encoder.Spec{Kind: encoder.KindImage}}
	_, err = ImportMedia(ctx, db, same, "pic", MediaOptions{Define: def})
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "all 4 files give modality \"pic\" the same features")
	assert.Nil(t, scalerOf(db, "pic"), "no standardisation left behind")
	assert.Zero(t, db.Count())

	rel := filepath.Join(tmp, "rel")
	randomPNGs(t, rel, "r", 3, 10)
	_, err = ImportMedia(ctx, db, rel, "pic", MediaOptions{Define: def})
	require.NoError(t, err)
	it, err := db.Get(ctx, "r-1")
	require.NoError(t, err)
	assert.True(t, filepath.IsAbs(it.Attrs["pic_file"].(string)), it.Attrs["pic_file"])
	_, err = ImportMedia(ctx, db, rel, "pic", MediaOptions{Options: Options{Replace: true}})
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "merges each file's vector")
}

// A refit of a modality whose encoder is a remote model re-encodes every
// stored vector with the new model, from its file, in one transaction.
func TestRefitRemoteEncoder(t *testing.T) {
	ctx := context.Background()
	srv := embedtest.New(t, func(model string, x any) []float32 {
		h := fnv.New32a()
		h.Write([]byte(model + fmt.Sprint(x)))
		s := h.Sum32()
		return []float32{float32(s & 255), float32(s >> 8 & 255), float32(s >> 16 & 255), 1}
	})
	spec := func(model string) *encoder.Spec {
		return &encoder.Spec{Kind: encoder.KindOpenAI, Remote: &encoder.Remote{URL: srv.URL, Model: model, Input: encoder.InputImage}}
	}
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	randomPNGs(t, a, "a", 4, 1)
	randomPNGs(t, b, "b", 3, 2)
	db := openDB(t)
	_, err := ImportMedia(ctx, db, a, "pic", MediaOptions{Define: &mmdb.Modality{Name: "pic", Dim: 4, Encoder: spec("A")}})
	require.NoError(t, err)
	assertAllEncodeAsStored(t, db)
	rep, err := ImportMedia(ctx, db, b, "pic", MediaOptions{Refit: true, Encoder: spec("B")})
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Imported)
	assert.Equal(t, 4, rep.Reencoded)
	assert.Equal(t, "B", db.Modalities()[0].Encoder.Remote.Model)
	assertAllEncodeAsStored(t, db)
}
