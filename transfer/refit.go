package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
)

// maxNamed caps the items an error names.
const maxNamed = 5

// refit fits modality m's standardisation on the raw vectors of items
// and, with o.Refit, of every vector m holds, re-encoded from its source
// file; then stores it with every vector it standardised, in one
// transaction (a new modality is defined first).
func refit(ctx context.Context, db *mmdb.DB, m mmdb.Modality, exists bool, items []mmdb.Item, raw encoder.Encoder, o MediaOptions, rep Report) (Report, error) {
	var old []mmdb.Item
	if exists {
		var err error
		if old, err = reencodeStored(ctx, db, m.Name, items, raw, o.Refit); err != nil {
			return rep, fmt.Errorf("%s: %w", rep.File, err)
		}
	}
	all := append(items[:len(items):len(items)], old...)
	if len(all) < 2 {
		return rep, fmt.Errorf("%w: %s: fitting the standardisation of modality %q takes at least 2 files, and there are %d", ErrBadRecord, rep.File, m.Name, len(all))
	}
	vecs := make([][]float32, len(all))
	for i, it := range all {
		vecs[i] = it.Vectors[m.Name]
	}
	sc, err := encoder.FitScaler(vecs)
	if err != nil {
		return rep, err
	}
	spec := *m.Encoder
	spec.Scaler = sc
	m.Encoder = &spec
	for _, it := range all {
		it.Vectors[m.Name] = sc.Apply(it.Vectors[m.Name])
	}
	if !exists {
		if err := db.DefineModality(m); err != nil {
			return rep, err
		}
		return storeMedia(ctx, db, rep.File, items, o, rep)
	}
	write := func(ctx context.Context, its ...mmdb.Item) error { return db.SetEncoder(ctx, m.Name, &spec, its...) }
	n, err := putWith(ctx, write, all, o.SkipBad, func(i int, err error) {
		rep.skip(fmt.Errorf("%s: %w", all[i].ID, err))
	})
	if err != nil {
		return rep, fmt.Errorf("%s: %w", rep.File, err)
	}
	rep.Reencoded = len(old)
	rep.Imported = n - len(old)
	return rep, nil
}

// reencodeStored encodes again, with raw, the source file of every vector
// of modality name that items do not replace. Without refit there must
// be none: vectors made under no stored standardisation cannot be kept
// beside ones made under a new one.
func reencodeStored(ctx context.Context, db *mmdb.DB, name string, items []mmdb.Item, raw encoder.Encoder, refit bool) ([]mmdb.Item, error) {
	given := make(map[string]bool, len(items))
	for _, it := range items {
		given[it.ID] = true
	}
	attr := name + "_file"
	var old []mmdb.Item
	var missing []string
	held := 0
	for it, err := range db.Items(ctx) {
		if err != nil {
			return nil, err
		}
		if it.Vectors[name] == nil || given[it.ID] {
			continue
		}
		held++
		if !refit {
			continue
		}
		path, _ := it.Attrs[attr].(string)
		if path == "" {
			missing = append(missing, fmt.Sprintf("%s (no %s attribute)", it.ID, attr))
			continue
		}
		v, err := encodeFile(ctx, raw, path)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			missing = append(missing, fmt.Sprintf("%s (%v)", it.ID, err))
			continue
		}
		old = append(old, mmdb.Item{ID: it.ID, Vectors: map[string][]float32{name: v}})
	}
	if !refit && held > 0 {
		return nil, fmt.Errorf("%w: modality %q holds %d vectors made under no stored standardisation (an older import, or given by callers); refit to re-encode them from their files", mmdb.ErrModalityConflict, name, held)
	}
	if len(missing) > 0 {
		named := missing[:min(len(missing), maxNamed)]
		return nil, fmt.Errorf("%w: a refit of modality %q re-encodes every stored vector from its file, and %d cannot be: %s", ErrNoSource, name, len(missing), strings.Join(named, "; "))
	}
	return old, nil
}
