package transfer

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
)

// maxNamed caps the items an error names.
const maxNamed = 5

// refit stores items (raw vectors of modality m) with m's encoder spec in
// one transaction, fitting the standardisation first when the encoder
// standardises: on the items and, with o.Refit, on every vector m holds,
// re-encoded from its source file and stored again in the same
// transaction. A new modality is defined first, without a
// standardisation, so a failed import leaves none behind.
func refit(ctx context.Context, db *mmdb.DB, m mmdb.Modality, exists bool, items []mmdb.Item, raw encoder.Encoder, o MediaOptions, rep Report) (Report, error) {
	var old []mmdb.Item
	if exists {
		var err error
		if old, err = reencodeStored(ctx, db, m.Name, items, raw, o.Refit); err != nil {
			return rep, fmt.Errorf("%s: %w", rep.File, err)
		}
	}
	all := append(items[:len(items):len(items)], old...)
	spec := *m.Encoder
	spec.Scaler = nil
	if spec.Standardizes() {
		sc, err := fitScaler(m.Name, all)
		if err != nil {
			return rep, fmt.Errorf("%w: %s: %v", ErrBadRecord, rep.File, err)
		}
		spec.Scaler = sc
		for _, it := range all {
			it.Vectors[m.Name] = sc.Apply(it.Vectors[m.Name])
		}
	}
	if !exists {
		def := m
		unfitted := spec
		unfitted.Scaler = nil
		def.Encoder = &unfitted
		if err := db.DefineModality(def); err != nil {
			return rep, err
		}
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

// fitScaler fits the standardisation of modality name on the raw vectors
// of items, refusing what cannot be fitted: fewer than two files, or
// files that all give the same features (each would standardise to zero).
func fitScaler(name string, items []mmdb.Item) (*encoder.Scaler, error) {
	if len(items) < 2 {
		return nil, fmt.Errorf("fitting the standardisation of modality %q takes at least 2 files, and there are %d", name, len(items))
	}
	vecs := make([][]float32, len(items))
	same := true
	for i, it := range items {
		vecs[i] = it.Vectors[name]
		same = same && slices.Equal(vecs[i], vecs[0])
	}
	if same {
		return nil, fmt.Errorf("all %d files give modality %q the same features: a standardisation fitted on them would make every vector zero", len(items), name)
	}
	return encoder.FitScaler(vecs)
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
