package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
)

// MediaOptions tune ImportMedia.
type MediaOptions struct {
	Options
	// Exts are the file extensions to read (".wav"); others are ignored.
	Exts []string
	// Standardize z-scores the features over the files imported (the
	// built-in extractors give dimensions of very different scales).
	Standardize bool
	// BeforeStore, if set, runs once every file is encoded and before
	// anything is stored (to define the modality, say): a folder that
	// cannot be encoded leaves the database untouched.
	BeforeStore func() error
}

// ImportMedia encodes every file under dir with enc and stores the vector
// as modality, one item per file: the ID is the path relative to dir
// without its extension, and the attribute "<modality>_file" (say
// "audio_file") holds the path, so that importing folders of different
// modalities into the same IDs keeps each one's source. An item that
// exists keeps its attributes and other vectors.
//
// Files are read with encoder.ReadFile, up to encoder.MaxFileSize bytes.
// Paths that are not regular files (FIFOs, devices, sockets, and symbolic
// links to them) are never read: they are left out and counted in
// Report.Skipped, with or without SkipBad. Two files that give the same
// ID (c.wav and c.WAV, a.png and a.jpg) are an ErrBadRecord naming both,
// found before anything is encoded; with SkipBad the later one in path
// order is left out and counted. Files that cannot be encoded are an
// ErrBadRecord naming the file (with SkipBad, left out and counted).
func ImportMedia(ctx context.Context, db *mmdb.DB, dir, modality string, enc encoder.Encoder, o MediaOptions) (Report, error) {
	rep := Report{File: dir}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(o.Exts, strings.ToLower(filepath.Ext(p))) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if len(paths) == 0 {
		return rep, fmt.Errorf("%w: no %s files under %s", ErrBadRecord, strings.Join(o.Exts, "/"), dir)
	}
	slices.Sort(paths)
	// One file per ID: a second would overwrite the first.
	claimed := map[string]string{}
	pathIDs := make([]string, 0, len(paths))
	kept := paths[:0:0]
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return rep, err
		}
		id := strings.TrimSuffix(filepath.ToSlash(rel), filepath.Ext(rel))
		if first, ok := claimed[id]; ok {
			err := fmt.Errorf("%w: %s and %s both give the ID %q", ErrBadRecord, first, p, id)
			if !o.SkipBad {
				return rep, err
			}
			rep.skip(err)
			continue
		}
		claimed[id] = p
		kept = append(kept, p)
		pathIDs = append(pathIDs, id)
	}
	paths = kept
	attr := modality + "_file"
	var ids, files []string
	var vecs [][]float32
	for i, p := range paths {
		data, err := encoder.ReadFile(p)
		switch {
		case errors.Is(err, encoder.ErrNotRegular):
			rep.skip(fmt.Errorf("%s: skipped: %w", p, err))
			continue
		case err != nil && !errors.Is(err, encoder.ErrInput): // the file system's, not the file's
			return rep, err
		case err == nil:
			var out [][]float32
			if out, err = enc.Encode(ctx, []encoder.Input{{Data: data}}); err == nil {
				vecs = append(vecs, out[0])
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			err = fmt.Errorf("%w: %s: %w", ErrBadRecord, p, err)
			if !o.SkipBad {
				return rep, err
			}
			rep.skip(err)
			continue
		}
		ids = append(ids, pathIDs[i])
		files = append(files, p)
		if o.Progress != nil && i%100 == 0 {
			o.Progress(i, len(paths))
		}
	}
	if o.Standardize && len(vecs) > 1 {
		sc, err := encoder.FitScaler(vecs)
		if err != nil {
			return rep, err
		}
		for i, v := range vecs {
			vecs[i] = sc.Apply(v)
		}
	}
	if o.BeforeStore != nil {
		if err := o.BeforeStore(); err != nil {
			return rep, err
		}
	}
	for s := 0; s < len(ids); s += o.batch() {
		var batch []mmdb.Item
		for i := s; i < min(len(ids), s+o.batch()); i++ {
			batch = append(batch, mmdb.Item{ID: ids[i], Attrs: map[string]any{attr: files[i]}, Vectors: map[string][]float32{modality: vecs[i]}})
		}
		n, err := putBatch(ctx, db, batch, o.Replace, o.SkipBad, func(i int, err error) {
			rep.skip(fmt.Errorf("%s: %w", files[s+i], err))
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", dir, err)
		}
		rep.Imported += n
		if o.Progress != nil {
			o.Progress(rep.Imported, len(ids))
		}
	}
	return rep, nil
}
