package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/internal/npy"
	"github.com/mmdb-go/mmdb/query"
)

// heldDigits is the number of digits (the last rows) the real demo never
// stores: one of them is its raw picture probe.
const heldDigits = 7

// runRealDemo is the demo on the shared data folder: coco500's CLIP photos
// and captions (one space), handwritten digits as pixel features and
// spoken digits as MFCCs (a space each), paired by digit.
func runRealDemo(ctx context.Context, stdout, stderr io.Writer, data, dir string) error {
	a, err := npy.ReadFile(filepath.Join(data, "coco500-clip", "features_clip.npy"))
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	photos, err := a.Rows(0)
	if err != nil {
		return err
	}
	captions, err := a.Rows(1)
	if err != nil {
		return err
	}
	digits, err := dataset.Digits(data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	recs, err := dataset.FSDD(data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	path := filepath.Join(dir, "demo.mmdb")
	os.Remove(path)
	db, err := mmdb.Open(path, &mmdb.Options{Progress: progressFunc(stderr)})
	if err != nil {
		return err
	}
	defer db.Close()
	// Drawings and recordings are encoded from their files (each digit
	// written as the PNG a scanner would give), as imports and probes do;
	// the standardisations fitted here are stored with the modalities, so
	// a picture or a recording given at query time encodes the same way.
	var img encoder.Image
	var mfcc encoder.MFCC
	draw := make([][]float32, len(digits))
	for i, d := range digits {
		file, err := d.PNG()
		if err != nil {
			return err
		}
		v, err := img.Encode(ctx, []encoder.Input{{Data: file}})
		if err != nil {
			return err
		}
		draw[i] = v[0]
	}
	speech := make([][]float32, len(recs))
	for i, r := range recs {
		f, err := os.Open(r.Path)
		if err != nil {
			return err
		}
		speech[i], err = mfcc.EncodeWAV(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
	}
	ds, _ := encoder.FitScaler(draw)
	ss, _ := encoder.FitScaler(speech)
	for _, m := range []mmdb.Modality{
		{Name: "photo", Dim: 512, Metric: mmdb.Cosine, Space: "clip-vit-b16"},
		{Name: "caption", Dim: 512, Metric: mmdb.Cosine, Space: "clip-vit-b16"},
		{Name: "drawing", Metric: mmdb.Cosine, Space: "pixels-hog", Encoder: &encoder.Spec{Kind: encoder.KindImage, Scaler: ds}},
		{Name: "speech", Metric: mmdb.Cosine, Space: "mfcc96", Encoder: &encoder.Spec{Kind: encoder.KindMFCC, Scaler: ss}},
	} {
		if err := db.DefineModality(m); err != nil {
			return err
		}
	}
	var items []mmdb.Item
	for i := range photos {
		items = append(items, mmdb.Item{ID: fmt.Sprintf("coco-%03d", i), Attrs: map[string]any{"set": "coco"},
			Vectors: map[string][]float32{"photo": photos[i], "caption": captions[i]}})
	}
	// Each recording becomes an item; the first 2,400 also carry a drawing
	// of the same digit (the pairs Align learns from); the held-out speaker
	// "theo" has speech only. The last heldDigits digits and one of theo's
	// recordings are never stored: they are the raw probes.
	byDigit := map[int][]int{}
	for i, d := range digits[:len(digits)-heldDigits] {
		byDigit[d.Label] = append(byDigit[d.Label], i)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	heldRec := -1
	for i, r := range recs {
		if r.Speaker == "theo" && r.Digit == 7 && heldRec < 0 {
			heldRec = i
			continue
		}
		it := mmdb.Item{ID: fmt.Sprintf("%d_%s_%d", r.Digit, r.Speaker, r.Take), Attrs: map[string]any{"set": "fsdd", "digit": r.Digit, "speaker": r.Speaker},
			Vectors: map[string][]float32{"speech": ss.Apply(speech[i])}}
		if r.Speaker != "theo" {
			d := byDigit[r.Digit][rng.IntN(len(byDigit[r.Digit]))]
			it.Vectors["drawing"] = ds.Apply(draw[d])
		}
		items = append(items, it)
	}
	for i, d := range digits[:len(digits)-heldDigits] {
		items = append(items, mmdb.Item{ID: fmt.Sprintf("digit-%04d", i), Attrs: map[string]any{"set": "digits", "digit": d.Label},
			Vectors: map[string][]float32{"drawing": ds.Apply(draw[i])}})
	}
	if err := db.Put(ctx, items...); err != nil {
		return err
	}
	st, err := db.Stats()
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, statsText(st))

	show := func(title, stmt string) (*mmdb.Result, error) {
		fmt.Fprintf(stdout, "\n%s\n  %s\n", title, stmt)
		res, err := db.Query(ctx, stmt)
		if err != nil {
			return nil, err
		}
		return res, render(stdout, res, renderOptions{mode: "table"})
	}
	if _, err := show("Text-to-image on CLIP: photos for the caption of coco-007", "SEARCH photo NEAR caption OF 'coco-007' LIMIT 5"); err != nil {
		return err
	}
	rep, err := db.Evaluate(ctx, "caption", "photo", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nEvaluate: %s\n", rep)
	// The pairs are made by digit, not one to one: align by the label.
	// Whether a map beats pivoting through the pairs is measured; when it
	// does not, nothing is stored and searches pivot.
	res, err := db.Query(ctx, "ALIGN drawing TO speech BY digit")
	if err != nil && !errors.Is(err, mmdb.ErrNoGain) {
		return err
	}
	fmt.Fprintf(stdout, "\nALIGN drawing TO speech BY digit (pairs by digit; speaker theo held out):\n%s", res.Report)
	if err != nil {
		fmt.Fprintln(stdout, "(no map stored: searches from drawings to speech pivot through the pairs)")
	}
	if _, err := show("Image-to-audio: recordings by theo (never heard by the alignment) for a drawing of a 3",
		fmt.Sprintf("EXPLAIN SEARCH speech NEAR drawing OF 'digit-%04d' WHERE speaker = 'theo' LIMIT 10", byDigit[3][0])); err != nil {
		return err
	}
	if _, err := show("", fmt.Sprintf("SEARCH speech NEAR drawing OF 'digit-%04d' WHERE speaker = 'theo' LIMIT 10", byDigit[3][0])); err != nil {
		return err
	}
	// Raw content in hand: a digit written as a PNG file and a recording,
	// neither of them stored, encoded at query time.
	probe := len(digits) - heldDigits
	for i := probe; i < len(digits); i++ {
		if digits[i].Label == 3 {
			probe = i
		}
	}
	file, err := digits[probe].PNG()
	if err != nil {
		return err
	}
	pic := filepath.Join(dir, fmt.Sprintf("digit-%d.png", digits[probe].Label))
	if err := os.WriteFile(pic, file, 0o644); err != nil {
		return err
	}
	if _, err := show(fmt.Sprintf("A picture in hand: recordings by theo for %s (a digit %d never stored), encoded at query time", pic, digits[probe].Label),
		fmt.Sprintf("EXPLAIN ANALYZE SEARCH speech NEAR drawing FILE %s WHERE speaker = 'theo' LIMIT 5", query.Quote(pic))); err != nil {
		return err
	}
	if _, err := show("", fmt.Sprintf("SEARCH speech NEAR drawing FILE %s WHERE speaker = 'theo' LIMIT 5", query.Quote(pic))); err != nil {
		return err
	}
	if _, err := show(fmt.Sprintf("A recording in hand: drawings for %s (theo saying %d, never stored)", recs[heldRec].Path, recs[heldRec].Digit),
		fmt.Sprintf("SEARCH drawing NEAR speech FILE %s LIMIT 5", query.Quote(recs[heldRec].Path))); err != nil {
		return err
	}
	if _, err := show("Fused: photos near caption coco-007 and photo coco-008",
		"SEARCH photo NEAR caption OF 'coco-007', photo OF 'coco-008' FUSE rrf LIMIT 5"); err != nil {
		return err
	}
	snap := filepath.Join(dir, "demo-snapshot.mmdb")
	os.Remove(snap)
	if err := db.Snapshot(ctx, snap); err != nil {
		return err
	}
	again, err := mmdb.Open(snap, &mmdb.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer again.Close()
	fmt.Fprintf(stdout, "\nSnapshot written to %s and reopened: %d items\n", snap, again.Count())
	return nil
}
