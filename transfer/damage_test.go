package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/stretchr/testify/require"
)

// The modalities of the damage test's databases.
var (
	damageVec   = mmdb.Modality{Name: "v", Dim: 4, Metric: mmdb.L2}
	damageAudio = mmdb.Modality{Name: "audio", Dim: encoder.MFCC{}.Dim(), Metric: mmdb.Cosine, Encoder: unitScaled(encoder.KindMFCC, encoder.MFCC{}.Dim())}
	damageImage = mmdb.Modality{Name: "image", Dim: encoder.Image{}.Dim(), Metric: mmdb.Cosine, Encoder: unitScaled(encoder.KindImage, encoder.Image{}.Dim())}
)

// unitScaled is a built-in encoder with a standardisation that changes
// nothing, as if fitted already: imports of one file then store it as
// encoded.
func unitScaled(k encoder.Kind, dim int) *encoder.Spec {
	sc := &encoder.Scaler{Mean: make([]float32, dim), Std: make([]float32, dim)}
	for i := range sc.Std {
		sc.Std[i] = 1
	}
	return &encoder.Spec{Kind: k, Scaler: sc}
}

// variant is one input of the damage test.
type variant struct {
	name string
	data []byte
}

// damage returns many damaged copies of valid: truncations at many
// offsets (every one in the first 64 bytes, where the headers are),
// single bit flips at a spread of offsets (a fixed seed; half of them in
// the first 64 bytes), and the extra variants given.
func damage(valid []byte, seed uint64, extra ...variant) []variant {
	var out []variant
	seen := map[int]bool{}
	cut := func(n int) {
		if n >= 0 && n < len(valid) && !seen[n] {
			seen[n] = true
			out = append(out, variant{fmt.Sprintf("truncated at %d", n), valid[:n]})
		}
	}
	for n := range 64 {
		cut(n)
	}
	for i := range 24 {
		cut(64 + (len(valid)-64)*i/24)
	}
	cut(len(valid) - 1)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range 64 {
		at := rng.IntN(len(valid))
		if i%2 == 0 {
			at = rng.IntN(min(64, len(valid)))
		}
		bit := rng.IntN(8)
		b := bytes.Clone(valid)
		b[at] ^= 1 << bit
		out = append(out, variant{fmt.Sprintf("bit %d of byte %d flipped", bit, at), b})
	}
	return append(out, extra...)
}

// importer runs one import of data into db.
type importer func(ctx context.Context, t *testing.T, db *mmdb.DB, data []byte, o Options) (Report, error)

// mediaImporter writes data as the one file of a folder and imports it.
func mediaImporter(name, modality string) importer {
	return func(ctx context.Context, t *testing.T, db *mmdb.DB, data []byte, o Options) (Report, error) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
		return ImportMedia(ctx, db, dir, modality, MediaOptions{Options: o, Exts: []string{filepath.Ext(name)}})
	}
}

// Damaged inputs of every kind the imports read (truncated, bit-flipped,
// claiming huge sizes) end in success or an error: no panic, no hang, no
// huge allocation, and never a NaN or Inf vector in the database.
func TestImportDamagedInputs(t *testing.T) {
	ctx := context.Background()
	kinds := []struct {
		name  string
		valid []byte
		extra []variant
		run   importer
	}{
		{"JSONL", validJSONL(t), hugeJSONL(), func(ctx context.Context, t *testing.T, db *mmdb.DB, data []byte, o Options) (Report, error) {
			return ImportJSONL(ctx, db, bytes.NewReader(data), "x.jsonl", o)
		}},
		{"NPY", validNPY(), hugeNPY(), func(ctx context.Context, t *testing.T, db *mmdb.DB, data []byte, o Options) (Report, error) {
			return ImportNPY(ctx, db, bytes.NewReader(data), "x.npy", "v", nil, o)
		}},
		{"WAV", validWAV(t), hugeWAV(validWAV(t)), mediaImporter("x.wav", "audio")},
		{"PNG", validPNG(t), hugePNG(validPNG(t)), mediaImporter("x.png", "image")},
		{"JPEG", validJPEG(t), hugeJPEG(validJPEG(t)), mediaImporter("x.jpg", "image")},
		{"Parquet", validParquet(t), hugeParquet(validParquet(t)), func(ctx context.Context, t *testing.T, db *mmdb.DB, data []byte, o Options) (Report, error) {
			path := filepath.Join(t.TempDir(), "x.parquet")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			return ImportParquet(ctx, db, f, path, o)
		}},
	}
	for k, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			// The valid file imports.
			db := openDB(t, damageVec, damageAudio, damageImage)
			rep, err := kind.run(ctx, t, db, kind.valid, Options{})
			require.NoError(t, err)
			require.Positive(t, rep.Imported)

			failed := 0
			variants := damage(kind.valid, uint64(k), kind.extra...)
			for i, v := range variants {
				db := openDB(t, damageVec, damageAudio, damageImage)
				o := Options{SkipBad: i%2 == 1}
				var rep Report
				err := runGuarded(t, v.name, func() (err error) {
					rep, err = kind.run(ctx, t, db, v.data, o)
					return err
				})
				if err != nil || rep.Skipped > 0 {
					failed++
				}
				requireFiniteItems(t, db, v.name)
			}
			t.Logf("%d damaged %s files, %d refused or skipped", len(variants), kind.name, failed)
		})
	}
}

// runGuarded runs an import, failing the test if it panics, hangs (10 s)
// or allocates more than 256 MiB; it returns the import's error.
func runGuarded(t *testing.T, name string, f func() error) error {
	t.Helper()
	type result struct {
		err      error
		panicked any
		alloc    uint64
	}
	done := make(chan result, 1)
	go func() {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var r result
		defer func() {
			r.panicked = recover()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			r.alloc = after.TotalAlloc - before.TotalAlloc
			done <- r
		}()
		r.err = f()
	}()
	select {
	case r := <-done:
		require.Nil(t, r.panicked, "%s: the import panicked", name)
		require.Less(t, r.alloc, uint64(256<<20), "%s: the import allocated %d bytes", name, r.alloc)
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the import hangs", name)
		return nil
	}
}

// requireFiniteItems fails if any stored vector holds NaN or Inf.
func requireFiniteItems(t *testing.T, db *mmdb.DB, name string) {
	t.Helper()
	for it, err := range db.Items(context.Background()) {
		require.NoError(t, err)
		for m, v := range it.Vectors {
			for j, x := range v {
				require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "%s: item %s %s[%d] is %v", name, it.ID, m, j, x)
			}
		}
	}
}

// --- valid files and their huge-size variants -----------------------------

func validJSONL(t *testing.T) []byte {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, `{"id":"i%d","attrs":{"n":%d,"s":"x%d"},"vectors":{"v":[%d,0.5,-1.25,3]}}`+"\n", i, i, i, i+1)
	}
	return []byte(b.String())
}

func hugeJSONL() []variant {
	return []variant{
		{"vector of 100000 values", []byte(`{"id":"a","vectors":{"v":[` + strings.Repeat("1,", 99999) + `1]}}`)},
		{"number overflowing float32", []byte(`{"id":"a","vectors":{"v":[1e39,1,1,1]}}`)},
		{"deep nesting", []byte(`{"id":"a","attrs":{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`)},
	}
}

// rawNPY hand-writes a version 1.0 .npy file.
func rawNPY(descr, shape string, data []byte) []byte {
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	return append(append(b, h...), data...)
}

func validNPY() []byte {
	data := make([]byte, 0, 8*4*4)
	for i := range 8 * 4 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i)-3.5))
	}
	return rawNPY("<f4", "(8, 4)", data)
}

func hugeNPY() []variant {
	return []variant{
		{"shape (2^40, 4)", rawNPY("<f4", "(1099511627776, 4)", make([]byte, 64))},
		{"shape (2^26, 4)", rawNPY("<f4", "(67108864, 4)", make([]byte, 64))},
		{"shape (2^31, 2^31)", rawNPY("<f4", "(2147483648, 2147483648)", make([]byte, 64))},
		{"negative shape", rawNPY("<f4", "(-8, 4)", make([]byte, 64))},
		{"NaN rows", rawNPY("<f4", "(2, 4)", binary.LittleEndian.AppendUint32(make([]byte, 28), math.Float32bits(float32(math.NaN()))))},
	}
}

func validWAV(t *testing.T) []byte {
	path := filepath.Join(t.TempDir(), "x.wav")
	f, err := os.Create(path)
	require.NoError(t, err)
	e := wav.NewEncoder(f, 8000, 16, 1, 1)
	data := make([]int, 1600)
	for i := range data {
		data[i] = int(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	require.NoError(t, e.Write(&audio.IntBuffer{Data: data, Format: &audio.Format{NumChannels: 1, SampleRate: 8000}, SourceBitDepth: 16}))
	require.NoError(t, e.Close())
	require.NoError(t, f.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func hugeWAV(valid []byte) []variant {
	set := func(at int, v uint32) []byte {
		b := bytes.Clone(valid)
		binary.LittleEndian.PutUint32(b[at:], v)
		return b
	}
	list := []byte("LIST\x0c\x00\x00\x00INFOINAM\xf0\xff\xff\xff")
	return []variant{
		{"data chunk claiming 0xFFFFFFF0 bytes", set(40, 0xFFFFFFF0)},
		{"fmt chunk claiming 0xFFFFFFF0 bytes", set(16, 0xFFFFFFF0)},
		{"RIFF claiming 0xFFFFFFF0 bytes", set(4, 0xFFFFFFF0)},
		{"sample rate 0xFFFFFFFF", set(24, 0xFFFFFFFF)},
		{"LIST INFO entry claiming 4 GB", append(append(bytes.Clone(valid[:12]), list...), valid[12:]...)},
	}
}

func damagePicture() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := range 16 {
		for x := range 24 {
			img.Set(x, y, color.RGBA{uint8(10 * x), uint8(15 * y), uint8(x * y), 255})
		}
	}
	return img
}

func validPNG(t *testing.T) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, damagePicture()))
	return b.Bytes()
}

func hugePNG(valid []byte) []variant {
	// The IHDR chunk's data is bytes 16-28, its CRC 29-32.
	ihdr := func(w, h uint32) []byte {
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint32(b[16:], w)
		binary.BigEndian.PutUint32(b[20:], h)
		binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
		return b
	}
	return []variant{
		{"IHDR claiming 60000x60000", ihdr(60000, 60000)},
		{"IHDR claiming 2^31-1 x 2", ihdr(1<<31-1, 2)},
		{"IHDR claiming 7000x7000", ihdr(7000, 7000)},
	}
}

func validJPEG(t *testing.T) []byte {
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, damagePicture(), &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func hugeJPEG(valid []byte) []variant {
	sof := bytes.Index(valid, []byte{0xFF, 0xC0})
	if sof < 0 {
		return nil
	}
	dims := func(w, h uint16) []byte {
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint16(b[sof+5:], h)
		binary.BigEndian.PutUint16(b[sof+7:], w)
		return b
	}
	return []variant{
		{"SOF claiming 65535x65535", dims(65535, 65535)},
		{"SOF claiming 8000x8000", dims(8000, 8000)},
	}
}

func validParquet(t testing.TB) []byte {
	db, err := mmdb.Open(filepath.Join(t.TempDir(), "p.mmdb"), &mmdb.Options{NoSync: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(damageVec))
	ctx := context.Background()
	for i := range 8 {
		require.NoError(t, db.Put(ctx, mmdb.Item{ID: fmt.Sprint("p", i), Attrs: map[string]any{"n": i},
			Vectors: map[string][]float32{"v": {float32(i), 1, -2, 0.5}}}))
	}
	var b bytes.Buffer
	_, err = ExportParquet(ctx, db, &b, nil)
	require.NoError(t, err)
	return b.Bytes()
}

func hugeParquet(valid []byte) []variant {
	b := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(b[len(b)-8:], 0xFFFFFFF0)
	return []variant{{"footer claiming 0xFFFFFFF0 bytes", b}}
}
