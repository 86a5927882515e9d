package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
)

// MediaOptions tune ImportMedia.
type MediaOptions struct {
	Options
	// Exts are the file extensions to read (".wav"); others are ignored.
	// By default, those of the encoder's input: .wav for audio, .png,
	// .jpg and .jpeg for pictures.
	Exts []string
	// Define is the modality's definition, with its Encoder, for a
	// database that does not have it yet. It is defined only once every
	// file is encoded: a folder that cannot be encoded leaves the database
	// untouched.
	Define *mmdb.Modality
	// Refit fits the standardisation anew, on this folder's files and the
	// source files of every vector the modality holds (its "<modality>_file"
	// attribute), and stores it with every one of those vectors re-encoded,
	// in one transaction. It refuses, naming them, when source files are
	// gone. Without it, the standardisation fitted by the modality's first
	// import is applied unchanged, so the same file always gives the same
	// vector.
	Refit bool
	// Encoder, with Refit, is the modality's new encoder (replacing its
	// encoder, or giving one to a modality that has none).
	Encoder *encoder.Spec
}

// ErrNoSource: a refit needs a stored vector's source file, and it is
// not recorded or not readable.
var ErrNoSource = errors.New("transfer: source file missing")

// ImportMedia encodes every file under dir with the modality's encoder
// (mmdb.Modality.Encoder) and stores the vector as modality, one item per
// file: the ID is the path relative to dir without its extension, and the
// attribute "<modality>_file" (say "audio_file") holds the path, so that
// importing folders of different modalities into the same IDs keeps each
// one's source. An item that exists keeps its attributes and other
// vectors.
//
// The built-in encoders' features are standardised (encoder.Scaler): the
// first import fits the standardisation on its files (at least two) and
// stores it with the modality, in the same transaction as the vectors;
// later imports, and probes made from files at query time, apply it
// unchanged. See MediaOptions.Refit to fit it again.
//
// Files are read with encoder.ReadFile, up to encoder.MaxFileSize bytes.
// Paths that are not regular files (FIFOs, devices, sockets, and symbolic
// links to them) are never read: they are left out and counted in
// Report.Skipped, with or without SkipBad. Two files that give the same
// ID (c.wav and c.WAV, a.png and a.jpg) are an ErrBadRecord naming both,
// found before anything is encoded; with SkipBad the later one in path
// order is left out and counted. Files that cannot be encoded are an
// ErrBadRecord naming the file (with SkipBad, left out and counted).
func ImportMedia(ctx context.Context, db *mmdb.DB, dir, modality string, o MediaOptions) (Report, error) {
	rep := Report{File: dir}
	if o.Replace {
		return rep, fmt.Errorf("%w: %s: a media import merges each file's vector into its item (Replace would drop the item's other vectors)", ErrBadRecord, dir)
	}
	m, exists, err := mediaModality(db, modality, o)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", dir, err)
	}
	spec := m.Encoder
	if len(o.Exts) == 0 {
		o.Exts = defaultExts(spec.Input())
	}
	paths, pathIDs, err := mediaPaths(dir, o, &rep)
	if err != nil {
		return rep, err
	}
	raw, err := spec.Raw()
	if err != nil {
		return rep, fmt.Errorf("%s: modality %q: %w", dir, modality, err)
	}
	attr := modality + "_file"
	var ids, files []string
	var vecs [][]float32
	for i, p := range paths {
		v, err := encodeFile(ctx, raw, p)
		if errors.Is(err, encoder.ErrNotRegular) {
			rep.skip(fmt.Errorf("%s: skipped: %w", p, err))
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if !errors.Is(err, encoder.ErrInput) && !errors.Is(err, encoder.ErrRemote) {
				return rep, err // the file system's, not the file's
			}
			err = fmt.Errorf("%w: %s: %w", ErrBadRecord, p, err)
			if !o.SkipBad {
				return rep, err
			}
			rep.skip(err)
			continue
		}
		abs, err := filepath.Abs(p) // a refit finds it from any folder
		if err != nil {
			return rep, err
		}
		vecs = append(vecs, v)
		ids = append(ids, pathIDs[i])
		files = append(files, abs)
		if o.Progress != nil && i%100 == 0 {
			o.Progress(i, len(paths))
		}
	}
	items := make([]mmdb.Item, len(ids))
	for i := range ids {
		items[i] = mmdb.Item{ID: ids[i], Attrs: map[string]any{attr: files[i]}, Vectors: map[string][]float32{modality: vecs[i]}}
	}
	if o.Refit || !exists || spec.Standardizes() && spec.Scaler == nil {
		return refit(ctx, db, m, exists, items, raw, o, rep)
	}
	if spec.Scaler != nil {
		for _, it := range items {
			it.Vectors[modality] = spec.Scaler.Apply(it.Vectors[modality])
		}
	}
	return storeMedia(ctx, db, dir, modality, spec, items, o, rep)
}

// mediaModality is the modality an import encodes for, with the encoder
// it uses, and whether the database has it yet.
func mediaModality(db *mmdb.DB, name string, o MediaOptions) (mmdb.Modality, bool, error) {
	var m *mmdb.Modality
	for _, x := range db.Modalities() {
		if x.Name == name {
			m = &x
		}
	}
	exists := m != nil
	if !exists {
		if o.Define == nil || o.Define.Name != name {
			return mmdb.Modality{}, false, fmt.Errorf("%w: %q (give MediaOptions.Define to define it)", mmdb.ErrUnknownModality, name)
		}
		d := o.Define.WithDefaults()
		m = &d
	}
	if o.Refit && o.Encoder != nil {
		spec := *o.Encoder
		spec.Scaler = nil
		m.Encoder = &spec
	}
	if m.Encoder == nil {
		return *m, exists, fmt.Errorf("%w: modality %q has no encoder (its vectors were given by callers): define it with one, or refit with one, which re-encodes its stored vectors from their files", mmdb.ErrNoEncoder, name)
	}
	if in := m.Encoder.Input(); in == encoder.InputText {
		return *m, exists, fmt.Errorf("%w: modality %q encodes text, not media files: import its vectors, or probe it with text", mmdb.ErrInvalidQuery, name)
	}
	if err := m.Validate(); err != nil {
		return *m, exists, err
	}
	return *m, exists, nil
}

func defaultExts(in encoder.InputKind) []string {
	if in == encoder.InputAudio {
		return []string{".wav"}
	}
	return []string{".png", ".jpg", ".jpeg"}
}

// mediaPaths lists the files under dir with one of o.Exts, in path
// order, and the ID each gives; two files of one ID are an error (with
// SkipBad, the later one is skipped).
func mediaPaths(dir string, o MediaOptions, rep *Report) (paths, ids []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(o.Exts, strings.ToLower(filepath.Ext(p))) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("%w: no %s files under %s", ErrBadRecord, strings.Join(o.Exts, "/"), dir)
	}
	slices.Sort(paths)
	claimed := map[string]string{}
	kept := paths[:0:0]
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil, nil, err
		}
		id := strings.TrimSuffix(filepath.ToSlash(rel), filepath.Ext(rel))
		if !utf8.ValidString(id) || len(id) > mmdb.MaxIDLen {
			err := fmt.Errorf("%w: %s: the ID %q is not valid UTF-8 of at most %d bytes", ErrBadRecord, p, id, mmdb.MaxIDLen)
			if !o.SkipBad {
				return nil, nil, err
			}
			rep.skip(err)
			continue
		}
		if first, ok := claimed[id]; ok {
			err := fmt.Errorf("%w: %s and %s both give the ID %q", ErrBadRecord, first, p, id)
			if !o.SkipBad {
				return nil, nil, err
			}
			rep.skip(err)
			continue
		}
		claimed[id] = p
		kept = append(kept, p)
		ids = append(ids, id)
	}
	return kept, ids, nil
}

// encodeFile reads and encodes one file.
func encodeFile(ctx context.Context, enc encoder.Encoder, p string) ([]float32, error) {
	data, err := encoder.ReadFile(p)
	if err != nil {
		return nil, err
	}
	out, err := enc.Encode(ctx, []encoder.Input{{Data: data}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// storeMedia stores items in batches, each only while the modality's
// encoder is still spec (the one that made them): a refit meanwhile makes
// the import fail with mmdb.ErrChanged rather than mix standardisations.
func storeMedia(ctx context.Context, db *mmdb.DB, dir, modality string, spec *encoder.Spec, items []mmdb.Item, o MediaOptions, rep Report) (Report, error) {
	write := func(ctx context.Context, its ...mmdb.Item) error { return db.MergeEncoded(ctx, modality, spec, its...) }
	for s := 0; s < len(items); s += o.batch() {
		batch := items[s:min(len(items), s+o.batch())]
		n, err := putWith(ctx, write, batch, o.SkipBad, func(i int, err error) {
			rep.skip(fmt.Errorf("%s: %w", batch[i].Attrs[batchAttr(batch[i])], err))
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", dir, err)
		}
		rep.Imported += n
		if o.Progress != nil {
			o.Progress(rep.Imported, len(items))
		}
	}
	return rep, nil
}

// batchAttr is the name of a media item's one attribute (its file).
func batchAttr(it mmdb.Item) string {
	for k := range it.Attrs {
		return k
	}
	return ""
}
