package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/query"
	"github.com/mmdb-go/mmdb/transfer"
)

// shapes are the demo's media classes: a picture and a sound each.
var shapes = []struct{ name, sound string }{
	{"bars", "a low hum"}, {"columns", "a high whistle"}, {"ring", "a rising chirp"}, {"dots", "a hiss"},
}

// mediaTour writes pictures and recordings of four classes into
// dir/media, imports them into dir/media/media.mmdb as folders through the built-in encoders (the
// first import of each modality fits its standardisation and stores it),
// then searches with a picture and a recording made afresh, never
// imported: raw content in, items out.
func mediaTour(ctx context.Context, stdout io.Writer, dir string, sum *demoSummary) error {
	media := filepath.Join(dir, "media")
	pics, sounds := filepath.Join(media, "pictures"), filepath.Join(media, "sounds")
	// Only a folder an earlier demo made is replaced: never a user's.
	marker := filepath.Join(media, ".mmdb-demo")
	if _, err := os.Stat(media); err == nil {
		if _, err := os.Stat(marker); err != nil {
			return fmt.Errorf("%s exists and the demo did not make it: give --dir another folder", media)
		}
		if err := os.RemoveAll(media); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(media, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(marker, []byte("made by mmdb demo; the next demo replaces this folder\n"), 0o644); err != nil {
		return err
	}
	for _, d := range []string{pics, sounds} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	path := filepath.Join(media, "media.mmdb")
	db, err := mmdb.Open(path, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "  %s, from the folders %s and %s:\n", path, pics, sounds)
	rng := rand.New(rand.NewPCG(7, 7))
	var labels []mmdb.Item
	for k, s := range shapes {
		for i := range 12 { // pairs: a picture and a sound of one class
			id := fmt.Sprintf("%s-%02d", s.name, i)
			if err := writeShape(filepath.Join(pics, id+".png"), k, rng); err != nil {
				return err
			}
			if err := writeSound(filepath.Join(sounds, id+".wav"), k, rng); err != nil {
				return err
			}
			labels = append(labels, mmdb.Item{ID: id, Attrs: map[string]any{"shape": s.name}})
		}
		for i := range 6 { // sounds only
			id := fmt.Sprintf("%s-sound-%02d", s.name, i)
			if err := writeSound(filepath.Join(sounds, id+".wav"), k, rng); err != nil {
				return err
			}
			labels = append(labels, mmdb.Item{ID: id, Attrs: map[string]any{"shape": s.name}})
		}
	}
	for _, imp := range []struct {
		dir, modality string
		kind          encoder.Kind
	}{{pics, "picture", encoder.KindImage}, {sounds, "sound", encoder.KindMFCC}} {
		def := &mmdb.Modality{Name: imp.modality, Encoder: &encoder.Spec{Kind: imp.kind}}
		rep, err := transfer.ImportMedia(ctx, db, imp.dir, imp.modality, transfer.MediaOptions{Define: def})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %s\n", rep)
	}
	if err := db.Merge(ctx, labels...); err != nil {
		return err
	}
	probePic, probeSound := filepath.Join(media, "probe-columns.png"), filepath.Join(media, "probe-chirp.wav")
	if err := writeShape(probePic, 1, rng); err != nil {
		return err
	}
	if err := writeSound(probeSound, 2, rng); err != nil {
		return err
	}
	for _, q := range []struct{ key, title, stmt string }{
		{"picture-to-sound", "Sounds for a picture of columns drawn just now (a file, never imported):",
			fmt.Sprintf("SEARCH sound NEAR picture FILE %s LIMIT 5", query.Quote(probePic))},
		{"sound-to-picture", "Pictures for a rising chirp recorded just now:",
			fmt.Sprintf("SEARCH picture NEAR sound FILE %s LIMIT 5", query.Quote(probeSound))},
	} {
		fmt.Fprintf(stdout, "\n%s\n  EXPLAIN %s\n", q.title, q.stmt)
		ex, err := db.Query(ctx, "EXPLAIN "+q.stmt)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, indent(ex.Plans[0].String()))
		fmt.Fprintf(stdout, "  %s\n", q.stmt)
		res, err := db.Query(ctx, q.stmt)
		if err != nil {
			return err
		}
		sum.Searches[q.key] = hitIDs(res.Hits)
		if err := render(stdout, res, renderOptions{mode: "table"}); err != nil {
			return err
		}
	}
	return nil
}

// writeShape draws a 32x32 picture of class k (horizontal bars, vertical
// columns, a ring, dots) at a random phase, with noise.
func writeShape(path string, k int, rng *rand.Rand) error {
	const side = 32
	img := image.NewGray(image.Rect(0, 0, side, side))
	phase, period := rng.IntN(8), 6+rng.IntN(3)
	cx, cy, r := 16+rng.Float64()*4-2, 16+rng.Float64()*4-2, 9+rng.Float64()*3
	for y := range side {
		for x := range side {
			var on bool
			switch k {
			case 0:
				on = (y+phase)%period < period/2
			case 1:
				on = (x+phase)%period < period/2
			case 2:
				on = math.Abs(math.Hypot(float64(x)-cx, float64(y)-cy)-r) < 1.5
			default:
				on = (x+phase)%period < 2 && (y+phase)%period < 2
			}
			v := 30 + rng.Float64()*30
			if on {
				v = 200 + rng.Float64()*40
			}
			img.Pix[y*side+x] = uint8(v)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// writeSound records half a second at 8 kHz of class k (a low hum, a high
// whistle, a rising chirp, a hiss), pitch and loudness varied, with noise.
func writeSound(path string, k int, rng *rand.Rand) error {
	const rate, n = 8000, 4000
	f0, amp := 1+0.1*(rng.Float64()-0.5), 0.3+0.4*rng.Float64()
	data := make([]int, n)
	phase := 0.0
	for i := range data {
		t := float64(i) / rate
		var s float64
		switch k {
		case 0:
			s = math.Sin(2 * math.Pi * 180 * f0 * t)
		case 1:
			s = math.Sin(2 * math.Pi * 1500 * f0 * t)
		case 2:
			phase += 2 * math.Pi * (300 + 2400*t) * f0 / rate
			s = math.Sin(phase)
		default:
			s = rng.NormFloat64() * 0.5
		}
		data[i] = int(32767 * amp * (0.9*s + 0.02*rng.NormFloat64()) / 1.5)
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	e := wav.NewEncoder(fh, rate, 16, 1, 1)
	if err := e.Write(&audio.IntBuffer{Data: data, Format: &audio.Format{NumChannels: 1, SampleRate: rate}, SourceBitDepth: 16}); err != nil {
		fh.Close()
		return err
	}
	if err := e.Close(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
