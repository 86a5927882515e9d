//go:build unix

package transfer

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A FIFO named p.wav (reading it would wait for a writer forever) and a
// symbolic link to /dev/zero named z.wav (reading it never ends) are
// skipped, counted and reported, with or without SkipBad; the regular
// files are imported.
func TestImportMediaSkipsSpecialFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"a.wav": validWAV(t), "b.wav": validWAV(t)})
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "p.wav"), 0o644))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(dir, "z.wav")))
	for _, skipBad := range []bool{false, true} {
		db := openDB(t, damageAudio)
		var rep Report
		err := runGuarded(t, "special files", func() (err error) {
			rep, err = ImportMedia(ctx, db, dir, "audio", MediaOptions{Options: Options{SkipBad: skipBad}, Exts: []string{".wav"}})
			return err
		})
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Imported)
		assert.Equal(t, 2, db.Count())
		assert.Equal(t, 2, rep.Skipped)
		require.Len(t, rep.Errors, 2)
		assert.Contains(t, rep.Errors[0], filepath.Join(dir, "p.wav"))
		assert.Contains(t, rep.Errors[0], "FIFO")
		assert.Contains(t, rep.Errors[1], filepath.Join(dir, "z.wav"))
		assert.Contains(t, rep.Errors[1], "device")
	}
}
