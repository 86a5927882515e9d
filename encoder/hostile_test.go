package encoder

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/go-audio/wav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocated returns how many bytes f allocates (all goroutines: the
// thresholds used with it are far above any background noise).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// pngClaiming hand-writes a PNG whose header declares a w x h 8-bit grey
// picture, followed by a few bytes of pixel data only.
func pngClaiming(w, h uint32) []byte {
	var b bytes.Buffer
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	b.WriteString(pngMagic)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8] = 8 // bit depth; colour type 0 (grey), no interlace
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 64))
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}

// A small file that claims a huge picture is refused from its header,
// without allocating the picture (image.Decode allocated 3.6 GB for it).
func TestImageRefusesHugeHeader(t *testing.T) {
	tests := []struct {
		name string
		w, h uint32
	}{
		{"60000x60000", 60000, 60000},
		{"one pixel over the limit", MaxPixels + 1, 1},
		{"wide", 1 << 30, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pngClaiming(tc.w, tc.h)
			var err error
			n := allocated(func() { _, err = Image{}.Encode(context.Background(), []Input{{Data: data}}) })
			require.ErrorIs(t, err, ErrInput)
			assert.Contains(t, err.Error(), "MaxPixels")
			assert.Less(t, n, uint64(16<<20), "a %d-byte file made the decoder allocate %d bytes", len(data), n)
		})
	}
	// At the limit the header is accepted (the pixels are then missing).
	_, err := DecodeImage(pngClaiming(MaxPixels/10, 10))
	require.ErrorIs(t, err, ErrInput)
	assert.NotContains(t, err.Error(), "MaxPixels")
}

// Only PNG and JPEG are decoded, chosen by the bytes, not the name; other
// formats are refused naming what they look like (a GIF or TIFF must not
// reach a decoder some other package registered with image.Decode).
func TestImageRefusesOtherFormats(t *testing.T) {
	var g bytes.Buffer
	require.NoError(t, gif.Encode(&g, halvesGray(16, 16), nil))
	tiff := append([]byte("II*\x00\x08\x00\x00\x00"), make([]byte, 64)...)
	bmp := append([]byte("BM"), make([]byte, 64)...)
	webp := append([]byte("RIFF\x20\x00\x00\x00WEBPVP8 "), make([]byte, 64)...)
	tests := []struct {
		name, data, want string
	}{
		{"GIF", g.String(), "GIF"},
		{"TIFF little-endian", string(tiff), "TIFF"},
		{"TIFF big-endian", "MM\x00*" + string(tiff[4:]), "TIFF"},
		{"BMP", string(bmp), "BMP"},
		{"WebP", string(webp), "WebP"},
		{"WAV", string(rawWAV(1, 1, 8000, 16, nil, make([]byte, 400))), "WAV"},
		{"text", "definitely not a picture", "not a PNG or JPEG"},
		{"empty", "", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Image{}.Encode(context.Background(), []Input{{Data: []byte(tc.data)}})
			require.ErrorIs(t, err, ErrInput)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "only PNG and JPEG")
		})
	}
}

// wavWithChunk is a valid 16-bit mono WAV of one second with an extra
// chunk inserted before its fmt chunk.
func wavWithChunk(t *testing.T, extra []byte) []byte {
	t.Helper()
	x := sine(8000, 8000, 440, 0.5)
	data := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(int16(quantize(v, 16))))
	}
	f := rawWAV(1, 1, 8000, 16, nil, data)
	return append(append(append([]byte{}, f[:12]...), extra...), f[12:]...)
}

// No chunk size is trusted further than the bytes present: go-audio/wav
// allocated a LIST INFO entry's declared size (4 GB from a 16-byte
// chunk), and a data chunk may not declare more than MaxAudioFrames.
func TestReadWAVHostileSizes(t *testing.T) {
	good := wavWithChunk(t, nil)
	hugeData := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeData[40:], 0xFFFFFFF0)
	hugeFmt := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeFmt[16:], 0xFFFFFFF0)
	hugeRIFF := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeRIFF[4:], 0xFFFFFFF0)
	tests := []struct {
		name    string
		data    []byte
		want    string // "" for success
		samples int
	}{
		{"LIST INFO entry claiming 4 GB", wavWithChunk(t, []byte("LIST\x0c\x00\x00\x00INFOINAM\xf0\xff\xff\xff")), "", 8000},
		{"LIST chunk claiming 2 GB", wavWithChunk(t, []byte("LIST\xf0\xff\xff\x7fINFO")), "without a fmt chunk", 0},
		{"smpl chunk claiming 4 GB", wavWithChunk(t, []byte("smpl\xf0\xff\xff\xff")), "without a fmt chunk", 0},
		{"data chunk claiming 0xFFFFFFF0 bytes", hugeData, "MaxAudioFrames", 0},
		{"fmt chunk claiming 0xFFFFFFF0 bytes", hugeFmt, "without a data chunk", 0},
		{"RIFF size claiming 0xFFFFFFF0 bytes", hugeRIFF, "", 8000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				x   []float64
				err error
			)
			n := allocated(func() { x, _, err = ReadWAV(bytes.NewReader(tc.data)) })
			assert.Less(t, n, uint64(16<<20), "a %d-byte file made the decoder allocate %d bytes", len(tc.data), n)
			if tc.want != "" {
				require.ErrorIs(t, err, ErrInput)
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			require.NoError(t, err)
			assert.Len(t, x, tc.samples)
		})
	}
}

// The decoded length is capped: a recording over MaxAudioFrames is
// refused (ReadWAV decoded it whole before), and so is a rate over
// MaxSampleRate. A data chunk of size 0xFFFFFFFF, which streaming writers
// leave, runs to the end of the file.
func TestReadWAVCaps(t *testing.T) {
	long := rawWAV(1, 1, 8000, 8, nil, bytes.Repeat([]byte{128}, MaxAudioFrames+2))
	_, _, err := ReadWAV(bytes.NewReader(long))
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "MaxAudioFrames")

	atCap := rawWAV(1, 2, 8000, 8, nil, bytes.Repeat([]byte{128}, 2*MaxAudioFrames))
	x, _, err := ReadWAV(bytes.NewReader(atCap))
	require.NoError(t, err)
	assert.Len(t, x, MaxAudioFrames)

	fast := rawWAV(1, 1, MaxSampleRate+1, 16, nil, make([]byte, 40000))
	_, _, err = ReadWAV(bytes.NewReader(fast))
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "MaxSampleRate")
	_, err = MFCC{}.EncodeSamples(make([]float64, 40000), MaxSampleRate+1)
	require.ErrorIs(t, err, ErrInput)

	stream := wavWithChunk(t, nil)
	binary.LittleEndian.PutUint32(stream[4:], 0xFFFFFFFF)
	binary.LittleEndian.PutUint32(stream[40:], 0xFFFFFFFF)
	x, rate, err := ReadWAV(bytes.NewReader(stream))
	require.NoError(t, err)
	assert.Equal(t, 8000, rate)
	assert.Len(t, x, 8000)
}

// ReadWAV decodes what go-audio/wav, the reference it replaced, decodes
// from well-formed files.
func TestReadWAVMatchesGoAudio(t *testing.T) {
	for _, bits := range []int{8, 16, 24, 32} {
		for _, chans := range []int{1, 2, 3} {
			x := sine(500*chans, 8000, 300, 0.7)
			data := make([]int, len(x))
			for i, v := range x {
				data[i] = quantize(v, bits)
			}
			file := encodeWAV(t, data, 8000, bits, chans)
			got, rate, err := ReadWAV(bytes.NewReader(file))
			require.NoError(t, err)
			require.Equal(t, 8000, rate)
			d := wav.NewDecoder(bytes.NewReader(file))
			buf, err := d.FullPCMBuffer()
			require.NoError(t, err)
			require.Len(t, got, len(buf.Data)/chans, "%d bits, %d channels", bits, chans)
			off := 0.0
			if bits == 8 {
				off = 128
			}
			for i := range got {
				var s float64
				for c := range chans {
					s += float64(buf.Data[i*chans+c]) - off
				}
				require.Equal(t, s/float64(chans)/math.Ldexp(1, bits-1), got[i], "%d bits, %d channels, frame %d", bits, chans, i)
			}
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a.wav")
	require.NoError(t, os.WriteFile(good, []byte("RIFF"), 0o644))
	big := filepath.Join(dir, "big.wav")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxFileSize+1)) // sparse: nothing is written
	require.NoError(t, f.Close())
	link := filepath.Join(dir, "link.wav")
	require.NoError(t, os.Symlink(good, link))
	tests := []struct {
		name, path string
		want       error
		size       int
	}{
		{"regular", good, nil, 4},
		{"symlink to a regular file", link, nil, 4},
		{"over MaxFileSize", big, ErrInput, 0},
		{"directory", dir, ErrNotRegular, 0},
		{"missing", filepath.Join(dir, "nope.wav"), os.ErrNotExist, 0},
	}
	tests = append(tests, specialFiles(t, dir)...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadFile(tc.path)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Contains(t, err.Error(), tc.path)
				return
			}
			require.NoError(t, err)
			assert.Len(t, b, tc.size)
		})
	}
}

// FuzzReadWAV: whatever the bytes, ReadWAV returns samples in [-1, 1) at a
// rate it accepts, or ErrInput; it never panics.
func FuzzReadWAV(f *testing.F) {
	f.Add(rawWAV(1, 1, 8000, 16, nil, make([]byte, 64)))
	f.Add(rawWAV(1, 2, 44100, 24, nil, make([]byte, 66)))
	f.Add(rawWAV(1, 1, 8000, 8, nil, []byte{1, 2, 3}))
	f.Add(rawWAV(0xFFFE, 1, 8000, 24, append([]byte{22, 0, 24, 0, 4, 0, 0, 0, 1}, make([]byte, 15)...), make([]byte, 30)))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVELIST\x0c\x00\x00\x00INFOINAM\xf0\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, rate, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			require.ErrorIs(t, err, ErrInput)
			return
		}
		require.Positive(t, rate)
		require.LessOrEqual(t, rate, MaxSampleRate)
		require.LessOrEqual(t, len(x), MaxAudioFrames)
		for _, v := range x {
			require.True(t, v >= -1 && v < 1, "sample %v", v)
		}
		if v, err := (MFCC{}).EncodeSamples(x, rate); err == nil {
			requireFinite(t, v)
		}
	})
}

// FuzzDecodeImage: whatever the bytes, DecodeImage returns a picture of at
// most MaxPixels, or ErrInput; it never panics.
func FuzzDecodeImage(f *testing.F) {
	f.Add(pngClaiming(4, 4))
	f.Add(pngClaiming(60000, 60000))
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	require.NoError(f, gif.Encode(&b, img, nil))
	f.Add(b.Bytes())
	f.Add([]byte("II*\x00\x08\x00\x00\x00"))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInput)
			return
		}
		r := img.Bounds()
		require.LessOrEqual(t, int64(r.Dx())*int64(r.Dy()), int64(MaxPixels))
		requireFinite(t, Image{}.EncodeImage(img))
	})
}
