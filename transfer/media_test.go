package transfer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/encoder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeFiles writes name -> contents under dir, making folders as needed.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
}

// Two files that give the same ID would overwrite each other: without
// SkipBad the import fails naming both and stores nothing; with it, the
// later file is skipped and counted.
func TestImportMediaDuplicateIDs(t *testing.T) {
	wavData, pngData, jpegData := validWAV(t), validPNG(t), validJPEG(t)
	tests := []struct {
		name     string
		files    map[string][]byte
		exts     []string
		enc      encoder.Encoder
		modality string
		id       string
		dup      [2]string // the two files, in path order
		imported int
	}{
		{"c.wav and c.WAV", map[string][]byte{"b.wav": wavData, "c.wav": wavData, "c.WAV": wavData}, []string{".wav"},
			encoder.MFCC{}, "audio", "c", [2]string{"c.WAV", "c.wav"}, 2},
		{"a.png and a.jpg", map[string][]byte{"a.png": pngData, "a.jpg": jpegData}, []string{".png", ".jpg"},
			encoder.Image{}, "image", "a", [2]string{"a.jpg", "a.png"}, 1},
		{"in a sub-folder", map[string][]byte{"s/x.jpeg": jpegData, "s/x.png": pngData, "x.png": pngData}, []string{".png", ".jpeg"},
			encoder.Image{}, "image", "s/x", [2]string{"s/x.jpeg", "s/x.png"}, 2},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			first, second := filepath.Join(dir, tc.dup[0]), filepath.Join(dir, tc.dup[1])

			db := openDB(t, damageAudio, damageImage)
			rep, err := ImportMedia(ctx, db, dir, tc.modality, MediaOptions{Exts: tc.exts})
			require.ErrorIs(t, err, ErrBadRecord)
			assert.Contains(t, err.Error(), first)
			assert.Contains(t, err.Error(), second)
			assert.Contains(t, err.Error(), `"`+tc.id+`"`)
			assert.Zero(t, rep.Imported)
			assert.Zero(t, db.Count(), "nothing is stored")

			db = openDB(t, damageAudio, damageImage)
			rep, err = ImportMedia(ctx, db, dir, tc.modality, MediaOptions{Options: Options{SkipBad: true}, Exts: tc.exts})
			require.NoError(t, err)
			assert.Equal(t, tc.imported, rep.Imported)
			assert.Equal(t, tc.imported, db.Count())
			assert.Equal(t, 1, rep.Skipped)
			require.Len(t, rep.Errors, 1)
			assert.Contains(t, rep.Errors[0], first)
			assert.Contains(t, rep.Errors[0], second)
			it, err := db.Get(ctx, tc.id)
			require.NoError(t, err)
			assert.Equal(t, first, it.Attrs[tc.modality+"_file"], "the first file in path order is kept")
		})
	}
}

// Importing a folder of WAVs as "audio" and one of PNGs as "image" into
// the same IDs keeps both sources: audio_file and image_file.
func TestImportMediaFileAttributePerModality(t *testing.T) {
	ctx := context.Background()
	audioDir, imageDir := t.TempDir(), t.TempDir()
	writeFiles(t, audioDir, map[string][]byte{"one.wav": validWAV(t), "two.wav": validWAV(t)})
	writeFiles(t, imageDir, map[string][]byte{"one.png": validPNG(t), "two.png": validPNG(t)})
	db := openDB(t, damageAudio, damageImage)
	rep, err := ImportMedia(ctx, db, audioDir, "audio", MediaOptions{Exts: []string{".wav"}})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Imported)
	rep, err = ImportMedia(ctx, db, imageDir, "image", MediaOptions{Exts: []string{".png"}})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Imported)
	for _, id := range []string{"one", "two"} {
		it, err := db.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, map[string]any{
			"audio_file": filepath.Join(audioDir, id+".wav"),
			"image_file": filepath.Join(imageDir, id+".png"),
		}, it.Attrs)
		assert.Len(t, it.Vectors["audio"], damageAudio.Dim)
		assert.Len(t, it.Vectors["image"], damageImage.Dim)
	}
}

// A file over encoder.MaxFileSize is a bad record, found without reading
// it: an error naming it, or with SkipBad a counted skip.
func TestImportMediaFileTooLarge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"a.wav": validWAV(t)})
	big := filepath.Join(dir, "big.wav")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(encoder.MaxFileSize+1)) // sparse: nothing is written
	require.NoError(t, f.Close())

	db := openDB(t, damageAudio)
	_, err = ImportMedia(ctx, db, dir, "audio", MediaOptions{Exts: []string{".wav"}})
	require.ErrorIs(t, err, ErrBadRecord)
	require.ErrorIs(t, err, encoder.ErrInput)
	assert.Contains(t, err.Error(), big)
	assert.Contains(t, err.Error(), "MaxFileSize")

	rep, err := ImportMedia(ctx, db, dir, "audio", MediaOptions{Options: Options{SkipBad: true}, Exts: []string{".wav"}})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Imported)
	assert.Equal(t, 1, rep.Skipped)
}

// Hostile files among the media are refused, named, without the
// allocation their headers ask for (the damage test has many more).
func TestImportMediaHostileFiles(t *testing.T) {
	ctx := context.Background()
	png := hugePNG(validPNG(t))[0].data // IHDR claiming 60000x60000
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"a.png": validPNG(t), "b.png": png})
	db := openDB(t, damageImage)
	var rep Report
	err := runGuarded(t, "60000x60000 PNG", func() (err error) {
		rep, err = ImportMedia(ctx, db, dir, "image", MediaOptions{Options: Options{SkipBad: true}, Exts: []string{".png"}})
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Imported)
	require.Len(t, rep.Errors, 1)
	assert.Contains(t, rep.Errors[0], filepath.Join(dir, "b.png"))
	assert.Contains(t, rep.Errors[0], "MaxPixels")

	// TIFF bytes in a .png file are refused naming the format.
	writeFiles(t, dir, map[string][]byte{"b.png": []byte("II*\x00\x08\x00\x00\x00" + strings.Repeat("\x00", 64))})
	db = openDB(t, damageImage)
	_, err = ImportMedia(ctx, db, dir, "image", MediaOptions{Exts: []string{".png"}})
	require.ErrorIs(t, err, ErrBadRecord)
	assert.Contains(t, err.Error(), "TIFF")
	assert.Zero(t, db.Count())
}
