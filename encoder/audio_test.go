package encoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- WAV helpers ---------------------------------------------------------

// quantize maps x in [-1, 1] to an integer PCM sample of the given depth;
// 8-bit samples are unsigned (offset 128), the others signed.
func quantize(x float64, bits int) int {
	full := math.Ldexp(1, bits-1)
	v := math.Round(x * full)
	v = math.Max(-full, math.Min(full-1, v))
	if bits == 8 {
		return int(v) + 128
	}
	return int(v)
}

// encodeWAV writes interleaved integer samples as an integer-PCM WAV file
// with github.com/go-audio/wav and returns its bytes.
func encodeWAV(t *testing.T, data []int, rate, bits, chans int) []byte {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.wav")
	require.NoError(t, err)
	defer f.Close()
	e := wav.NewEncoder(f, rate, bits, chans, 1)
	buf := &audio.IntBuffer{
		Data:           data,
		Format:         &audio.Format{NumChannels: chans, SampleRate: rate},
		SourceBitDepth: bits,
	}
	require.NoError(t, e.Write(buf))
	require.NoError(t, e.Close())
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	return b
}

// monoWAV quantizes mono float samples and encodes them.
func monoWAV(t *testing.T, x []float64, rate, bits int) []byte {
	t.Helper()
	data := make([]int, len(x))
	for i, v := range x {
		data[i] = quantize(v, bits)
	}
	return encodeWAV(t, data, rate, bits, 1)
}

// rawWAV hand-writes a canonical RIFF/WAVE file: a fmt chunk with any
// format code (plus optional extension bytes) and a data chunk.
func rawWAV(format uint16, chans, rate, bits int, ext, data []byte) []byte {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	fmtSize := 16 + len(ext)
	b.WriteString("RIFF")
	le(uint32(4 + 8 + fmtSize + 8 + len(data)))
	b.WriteString("WAVE")
	b.WriteString("fmt ")
	le(uint32(fmtSize))
	le(format)
	le(uint16(chans))
	le(uint32(rate))
	blockAlign := chans * bits / 8
	le(uint32(rate * blockAlign))
	le(uint16(blockAlign))
	le(uint16(bits))
	b.Write(ext)
	b.WriteString("data")
	le(uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// sine returns n samples of amp*sin(2*pi*freq*t) at rate Hz.
func sine(n, rate int, freq, amp float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
	}
	return x
}

func peak(x []float64) float64 {
	var p float64
	for _, v := range x {
		p = math.Max(p, math.Abs(v))
	}
	return p
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func requireFinite(t *testing.T, v []float32) {
	t.Helper()
	for i, x := range v {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "value %d is %v", i, x)
	}
}

// --- ReadWAV ---------------------------------------------------------------

func TestReadWAVDepthsAndRates(t *testing.T) {
	depths := []int{8, 16, 24, 32}
	rates := []int{8000, 16000, 44100}
	for _, bits := range depths {
		for _, rate := range rates {
			t.Run(fmt.Sprintf("%dbit/%dHz", bits, rate), func(t *testing.T) {
				// 250 Hz for 0.1 s: a whole number of cycles at each rate's
				// nearest sample, and a sample at (or next to) each crest.
				n := rate / 10
				want := sine(n, rate, 250, 0.5)
				got, gotRate, err := ReadWAV(bytes.NewReader(monoWAV(t, want, rate, bits)))
				require.NoError(t, err)
				require.Equal(t, rate, gotRate)
				require.Len(t, got, n)
				// One quantization step of the depth, plus rounding.
				tol := math.Ldexp(1, -(bits-1)) + 1e-9
				for i := range want {
					require.InDelta(t, want[i], got[i], tol, "sample %d", i)
					require.GreaterOrEqual(t, got[i], -1.0)
					require.Less(t, got[i], 1.0)
				}
				assert.InDelta(t, 0.5, peak(got), tol+1e-3)
			})
		}
	}
}

func TestReadWAV8BitIsUnsigned(t *testing.T) {
	// 0 -> -1, 128 -> 0 (silence), 255 -> 127/128.
	got, _, err := ReadWAV(bytes.NewReader(encodeWAV(t, []int{0, 64, 128, 192, 255}, 8000, 8, 1)))
	require.NoError(t, err)
	want := []float64{-1, -0.5, 0, 0.5, 127.0 / 128}
	require.Len(t, got, len(want))
	for i := range want {
		assert.InDelta(t, want[i], got[i], 1e-12, "sample %d", i)
	}
}

func TestReadWAVExtremes(t *testing.T) {
	tests := []struct {
		bits     int
		min, max int
	}{
		{16, math.MinInt16, math.MaxInt16},
		{24, -1 << 23, 1<<23 - 1},
		{32, math.MinInt32, math.MaxInt32},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.bits), func(t *testing.T) {
			got, _, err := ReadWAV(bytes.NewReader(encodeWAV(t, []int{tc.min, 0, tc.max}, 8000, tc.bits, 1)))
			require.NoError(t, err)
			require.Len(t, got, 3)
			assert.Equal(t, -1.0, got[0])
			assert.Equal(t, 0.0, got[1])
			assert.Less(t, got[2], 1.0)
			assert.InDelta(t, 1.0, got[2], math.Ldexp(1, -(tc.bits-1))+1e-12)
		})
	}
}

func TestReadWAVStereoAveraged(t *testing.T) {
	const rate, n = 16000, 1600
	x := sine(n, rate, 440, 0.5)
	tests := []struct {
		name        string
		left, right func(float64) float64
		want        func(float64) float64
	}{
		{"opposite phase cancels", func(v float64) float64 { return v }, func(v float64) float64 { return -v }, func(float64) float64 { return 0 }},
		{"same signal passes", func(v float64) float64 { return v }, func(v float64) float64 { return v }, func(v float64) float64 { return v }},
		{"one silent channel halves", func(v float64) float64 { return v }, func(float64) float64 { return 0 }, func(v float64) float64 { return v / 2 }},
	}
	for _, bits := range []int{8, 16, 24} {
		for _, tc := range tests {
			t.Run(strconv.Itoa(bits)+"bit/"+tc.name, func(t *testing.T) {
				data := make([]int, 0, 2*n)
				for _, v := range x {
					data = append(data, quantize(tc.left(v), bits), quantize(tc.right(v), bits))
				}
				got, gotRate, err := ReadWAV(bytes.NewReader(encodeWAV(t, data, rate, bits, 2)))
				require.NoError(t, err)
				require.Equal(t, rate, gotRate)
				require.Len(t, got, n, "one mono sample per stereo frame")
				tol := math.Ldexp(1, -(bits-1)) + 1e-9
				for i, v := range x {
					require.InDelta(t, tc.want(v), got[i], tol, "sample %d", i)
				}
			})
		}
	}
}

func TestReadWAVRejects(t *testing.T) {
	valid := monoWAV(t, sine(800, 8000, 440, 0.5), 8000, 16)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	floatData := make([]byte, 4*800)
	for i, v := range sine(800, 8000, 440, 0.5) {
		binary.LittleEndian.PutUint32(floatData[4*i:], math.Float32bits(float32(v)))
	}
	// WAVE_FORMAT_EXTENSIBLE whose sub-format is IEEE float.
	floatGUID := []byte{0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
	ext := append([]byte{22, 0, 32, 0, 4, 0, 0, 0}, floatGUID...)

	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"random bytes", random},
		{"text", []byte("this is not a WAV file at all, just some text")},
		{"RIFF but not WAVE", append([]byte("RIFF\x10\x00\x00\x00AVI "), make([]byte, 64)...)},
		{"truncated in RIFF header", valid[:8]},
		{"truncated after WAVE", valid[:12]},
		{"truncated in fmt chunk", valid[:24]},
		{"truncated before data chunk", valid[:36]},
		{"IEEE float (format 3)", rawWAV(3, 1, 8000, 32, nil, floatData)},
		{"extensible IEEE float", rawWAV(0xFFFE, 1, 8000, 32, ext, floatData)},
		{"A-law (format 6)", rawWAV(6, 1, 8000, 8, nil, make([]byte, 800))},
		{"PCM of 12 bits", rawWAV(1, 1, 8000, 12, nil, make([]byte, 1600))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadWAV(bytes.NewReader(tc.data))
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInput), "want ErrInput, got %v", err)

			// And through the Encoder interface, with the input's index.
			_, err = MFCC{}.Encode(context.Background(), []Input{{Data: valid}, {Data: tc.data}})
			require.ErrorIs(t, err, ErrInput)
			require.Contains(t, err.Error(), "input 1")
		})
	}
}

func TestReadWAVFloatErrorNamesFormat(t *testing.T) {
	_, _, err := ReadWAV(bytes.NewReader(rawWAV(3, 1, 8000, 32, nil, make([]byte, 3200))))
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "format 3")
}

func TestReadWAVHandWrittenPCM(t *testing.T) {
	// The hand-written header agrees with go-audio's encoder for PCM.
	x := sine(400, 8000, 300, 0.5)
	data := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(int16(quantize(v, 16))))
	}
	got, rate, err := ReadWAV(bytes.NewReader(rawWAV(1, 1, 8000, 16, nil, data)))
	require.NoError(t, err)
	require.Equal(t, 8000, rate)
	require.Len(t, got, len(x))
	for i := range x {
		require.InDelta(t, x[i], got[i], 1.0/32768+1e-9)
	}
}

func TestReadWAVExtensiblePCM(t *testing.T) {
	// The doc promises 24-bit integer PCM and "more channels", which the
	// WAV specification stores as WAVE_FORMAT_EXTENSIBLE (0xFFFE) with a
	// PCM sub-format GUID; common tools (sox, ffmpeg) write 24-bit files
	// this way.
	pcmGUID := []byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
	ext := append([]byte{22, 0, 24, 0, 4, 0, 0, 0}, pcmGUID...)
	x := sine(800, 8000, 440, 0.5)
	data := make([]byte, 0, 3*len(x))
	for _, v := range x {
		data = append(data, audio.Int32toInt24LEBytes(int32(quantize(v, 24)))...)
	}
	got, _, err := ReadWAV(bytes.NewReader(rawWAV(0xFFFE, 1, 8000, 24, ext, data)))
	if err != nil {
		t.Fatal("fixed bug came back: encoder/audio.go:87 rejects WAVE_FORMAT_EXTENSIBLE (0xFFFE) files whose sub-format is integer PCM, " +
			"although the MFCC doc (audio.go:24-25) says 24-bit and multi-channel integer PCM is read: " + err.Error())
	}
	require.Len(t, got, len(x))
	for i := range x {
		require.InDelta(t, x[i], got[i], math.Ldexp(1, -23)+1e-9)
	}
}

func TestReadWAVOddDataChunkPadByte(t *testing.T) {
	// RIFF pads a chunk of odd size with one zero byte that its size does
	// not count. The samples end at the size, not at the pad byte.
	tests := []struct {
		name string
		bits int
		data []byte // the samples, then the pad byte
		want []float64
	}{
		{"8-bit, 3 samples", 8, []byte{128, 192, 64, 0}, []float64{0, 0.5, -0.5}},
		{"24-bit, 3 samples", 24, []byte{0, 0, 0x40, 0, 0, 0xC0, 0, 0, 0x20, 0}, []float64{0.5, -0.5, 0.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := rawWAV(1, 1, 8000, tc.bits, nil, tc.data)
			// The data chunk's size field (bytes 40-43) excludes the pad.
			binary.LittleEndian.PutUint32(file[40:], uint32(len(tc.data)-1))
			got, _, err := ReadWAV(bytes.NewReader(file))
			require.NoError(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("fixed bug came back: encoder/audio.go:90 (ReadWAV via go-audio/wav FullPCMBuffer) decodes the RIFF pad byte "+
					"of an odd-sized data chunk as an extra sample: want %v, got %v "+
					"(go-audio/wav v1.1.0 decoder.go:388-390 rounds the chunk size up; an 8-bit pad becomes a -1.0 click, "+
					"a 24-bit one a sample made of stale bytes)", tc.want, got)
			}
			for i := range tc.want {
				assert.InDelta(t, tc.want[i], got[i], 1e-12)
			}
		})
	}
}

// --- mel filters and DCT ---------------------------------------------------

func TestMelFilters(t *testing.T) {
	tests := []struct {
		bands, nfft, rate int
		minPeak           float64 // bins are discrete: the best bin may miss the apex
	}{
		{40, 256, 8000, 0.5},
		{40, 512, 16000, 0.5},
		{26, 1024, 44100, 0.5},
		{40, 8192, 8000, 0.97}, // fine bins land next to each apex
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.bands)+"x"+strconv.Itoa(tc.nfft)+"@"+strconv.Itoa(tc.rate), func(t *testing.T) {
			fs := melFilters(tc.bands, tc.nfft, tc.rate)
			require.Len(t, fs, tc.bands)
			bins := tc.nfft/2 + 1
			binHz := float64(tc.rate) / float64(tc.nfft)
			prevCentroid := -1.0
			prevArgmax := -1
			covered := make([]bool, bins)
			for b, f := range fs {
				require.NotEmpty(t, f.weights, "filter %d has no bins", b)
				require.GreaterOrEqual(t, f.first, 0)
				require.LessOrEqual(t, f.first+len(f.weights), bins, "filter %d runs past Nyquist", b)
				var top, sum, moment float64
				argmax := -1
				for k, w := range f.weights {
					require.GreaterOrEqual(t, w, 0.0, "filter %d bin %d", b, f.first+k)
					require.LessOrEqual(t, w, 1.0+1e-12, "filter %d bin %d", b, f.first+k)
					if w > top {
						top, argmax = w, f.first+k
					}
					if w > 0 {
						covered[f.first+k] = true
					}
					sum += w
					moment += w * float64(f.first+k)
				}
				assert.GreaterOrEqual(t, top, tc.minPeak, "filter %d peaks at %v", b, top)
				centroid := moment / sum
				assert.Greater(t, centroid, prevCentroid, "filter %d centre does not increase", b)
				assert.GreaterOrEqual(t, argmax, prevArgmax, "filter %d peak bin goes down", b)
				prevCentroid, prevArgmax = centroid, argmax
			}
			// Together the filters cover every bin strictly between 0 Hz and
			// Nyquist, where the outer edges of the first and last
			// triangles have weight 0.
			for k := 1; k < bins-1; k++ {
				assert.True(t, covered[k], "bin %d (%.1f Hz) is in no filter", k, float64(k)*binHz)
			}
		})
	}
}

func TestMelFiltersFSDDSpec(t *testing.T) {
	// The notes: 40 filters, 0-4000 Hz, 129 bins at 31.25 Hz.
	fs := melFilters(40, 256, 8000)
	require.Len(t, fs, 40)
	first, last := fs[0], fs[39]
	assert.Equal(t, 1, first.first, "the first filter starts at the first bin above 0 Hz")
	assert.Less(t, float64(first.first)*31.25, 100.0)
	// hz(mel(4000)) rounds a hair above 4000, which leaves the Nyquist
	// bin a weight of ~4e-15 in the last filter: ignore weights that small.
	end := last.first + len(last.weights) - 1
	for end > last.first && last.weights[end-last.first] < 1e-9 {
		end--
	}
	assert.Equal(t, 127, end, "the last filter ends at the last bin below 4000 Hz")
	assert.Greater(t, float64(end)*31.25, 3900.0)

	// HTK mel: the centre of filter b is at mel(4000)*(b+1)/41; the peak
	// bin is within one bin of it.
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	hz := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	for b, f := range fs {
		centre := hz(mel(4000) * float64(b+1) / 41)
		best := 0
		for k, w := range f.weights {
			if w > f.weights[best] {
				best = k
			}
		}
		assert.InDelta(t, centre, float64(f.first+best)*31.25, 31.25, "filter %d", b)
	}
}

func TestDCTMatrixOrthonormal(t *testing.T) {
	for _, m := range []int{1, 2, 13, 40} {
		t.Run(strconv.Itoa(m), func(t *testing.T) {
			d := dctMatrix(m, m)
			require.Len(t, d, m)
			for i := range m {
				require.Len(t, d[i], m)
				for j := range m {
					var rows, cols float64
					for k := range m {
						rows += d[i][k] * d[j][k]
						cols += d[k][i] * d[k][j]
					}
					want := 0.0
					if i == j {
						want = 1
					}
					require.InDelta(t, want, rows, 1e-12, "rows %d.%d", i, j)
					require.InDelta(t, want, cols, 1e-12, "cols %d.%d", i, j)
				}
			}
		})
	}
}

func TestDCTMatrixFirstRows(t *testing.T) {
	full := dctMatrix(40, 40)
	part := dctMatrix(13, 40)
	require.Len(t, part, 13)
	for k := range part {
		require.Equal(t, full[k], part[k])
	}
	// Row 0 is constant; the others sum to zero, so a constant shift of the
	// log-mel spectrum (loudness) only moves c0.
	for i := range 40 {
		assert.InDelta(t, 1/math.Sqrt(40), part[0][i], 1e-12)
	}
	for k := 1; k < 13; k++ {
		var s float64
		for _, v := range part[k] {
			s += v
		}
		assert.InDelta(t, 0, s, 1e-12, "row %d", k)
	}
}

// --- MFCC --------------------------------------------------------------------

func TestMFCCDim(t *testing.T) {
	tests := []struct {
		name string
		m    MFCC
		want int
	}{
		{"defaults", MFCC{}, 96},
		{"explicit defaults", MFCC{Bands: 40, Coeffs: 13, Segments: 8}, 96},
		{"one segment", MFCC{Segments: 1}, 12},
		{"coeffs clamped to bands", MFCC{Bands: 10, Coeffs: 20, Segments: 2}, 18},
		{"coeffs 1 means default", MFCC{Coeffs: 1}, 96},
		{"negative means default", MFCC{Bands: -1, Coeffs: -1, Segments: -1}, 96},
		{"custom", MFCC{Bands: 26, Coeffs: 20, Segments: 4}, 76},
	}
	x := sine(4000, 8000, 440, 0.5)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.m.Dim())
			v, err := tc.m.EncodeSamples(x, 8000)
			require.NoError(t, err)
			require.Len(t, v, tc.want)
			requireFinite(t, v)
		})
	}
}

func TestMFCCDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 8000)
	for i := range x {
		x[i] = 0.3*math.Sin(2*math.Pi*300*float64(i)/8000) + 0.05*rng.NormFloat64()
	}
	a, err := MFCC{}.EncodeSamples(x, 8000)
	require.NoError(t, err)
	b, err := MFCC{}.EncodeSamples(x, 8000)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestMFCCPitchVersusLoudness(t *testing.T) {
	for _, rate := range []int{8000, 16000, 44100} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			n := rate / 2
			enc := func(freq, amp float64) []float32 {
				v, err := MFCC{}.EncodeSamples(sine(n, rate, freq, amp), rate)
				require.NoError(t, err)
				require.Len(t, v, 96)
				requireFinite(t, v)
				return v
			}
			low, lowQuiet, high := enc(500, 0.5), enc(500, 0.05), enc(2000, 0.5)
			loud := cosine(low, lowQuiet)
			pitch := cosine(low, high)
			t.Logf("cosine: loudness %.5f, pitch %.5f", loud, pitch)
			assert.Greater(t, loud, 0.99, "c0 is dropped, so loudness should cancel")
			assert.Less(t, pitch, 0.9, "500 Hz and 2000 Hz should differ clearly")
			assert.Less(t, pitch, loud)
		})
	}
}

func TestMFCCLoudnessThroughWAV(t *testing.T) {
	// The same through 16-bit files: quantization noise stays far above the
	// 1e-10 floor of the log, so loudness still cancels.
	enc := func(amp float64) []float32 {
		v, err := MFCC{}.EncodeWAV(bytes.NewReader(monoWAV(t, sine(4000, 8000, 500, amp), 8000, 16)))
		require.NoError(t, err)
		return v
	}
	assert.Greater(t, cosine(enc(0.5), enc(0.05)), 0.99)
}

func TestMFCCKeepsTimeOrder(t *testing.T) {
	// First half 500 Hz, second half 2000 Hz: the first segment looks like
	// the 500 Hz tone, the last like the 2000 Hz tone.
	const rate, n = 8000, 8000
	lowTone, highTone := sine(n, rate, 500, 0.5), sine(n, rate, 2000, 0.5)
	x := append(append([]float64{}, lowTone[:n/2]...), highTone[n/2:]...)
	m := MFCC{}
	v, err := m.EncodeSamples(x, rate)
	require.NoError(t, err)
	low, err := m.EncodeSamples(lowTone, rate)
	require.NoError(t, err)
	high, err := m.EncodeSamples(highTone, rate)
	require.NoError(t, err)
	seg := func(u []float32, b int) []float32 { return u[b*12 : (b+1)*12] }
	assert.Greater(t, cosine(seg(v, 0), seg(low, 0)), 0.99)
	assert.Greater(t, cosine(seg(v, 7), seg(high, 7)), 0.99)
	assert.Less(t, cosine(seg(v, 0), seg(v, 7)), 0.9)
	// Reversed order gives a different vector.
	y := append(append([]float64{}, highTone[:n/2]...), lowTone[n/2:]...)
	w, err := m.EncodeSamples(y, rate)
	require.NoError(t, err)
	assert.Less(t, cosine(v, w), 0.9)
}

func TestMFCCShortRecordings(t *testing.T) {
	tests := []struct {
		name    string
		samples int
		frames  int // (samples-200)/80 + 1 at 8 kHz
	}{
		{"exactly one frame", 200, 1},
		{"3 frames (0.05 s)", 400, 3},
		{"7 frames", 680, 7},
		{"8 frames", 760, 8},
		{"9 frames", 840, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := sine(tc.samples, 8000, 700, 0.5)
			v, err := MFCC{}.EncodeSamples(x, 8000)
			require.NoError(t, err)
			require.Len(t, v, 96)
			requireFinite(t, v)
			ref := referenceMFCC(x, 8000, 40, 13, 8)
			require.Len(t, ref, 96)
			for i := range ref {
				require.InDelta(t, ref[i], float64(v[i]), 1e-4*(1+math.Abs(ref[i])), "value %d", i)
			}
		})
	}
	// One frame: every segment is that frame.
	v, err := MFCC{}.EncodeSamples(sine(200, 8000, 700, 0.5), 8000)
	require.NoError(t, err)
	for b := 1; b < 8; b++ {
		assert.Equal(t, v[:12], v[b*12:(b+1)*12])
	}
}

func TestMFCCRejectsShortInput(t *testing.T) {
	tests := []struct {
		name string
		x    []float64
		rate int
	}{
		{"empty", nil, 8000},
		{"one sample short of a frame at 8 kHz", make([]float64, 199), 8000},
		{"short at 44.1 kHz", make([]float64, 1000), 44100},
		{"rate too low", make([]float64, 10000), 400},
		{"rate zero", make([]float64, 10000), 0},
		{"negative rate", make([]float64, 10000), -8000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MFCC{}.EncodeSamples(tc.x, tc.rate)
			require.ErrorIs(t, err, ErrInput)
		})
	}
	// And through a WAV file: a valid file shorter than one frame.
	short := monoWAV(t, sine(150, 8000, 440, 0.5), 8000, 16)
	_, err := MFCC{}.EncodeWAV(bytes.NewReader(short))
	require.ErrorIs(t, err, ErrInput)
	_, err = MFCC{}.Encode(context.Background(), []Input{{Data: short}})
	require.ErrorIs(t, err, ErrInput)
	// An empty data chunk.
	empty := rawWAV(1, 1, 8000, 16, nil, nil)
	_, err = MFCC{}.Encode(context.Background(), []Input{{Data: empty}})
	require.ErrorIs(t, err, ErrInput)
}

func TestMFCCRejectsTruncatedFiles(t *testing.T) {
	valid := monoWAV(t, sine(800, 8000, 440, 0.5), 8000, 16)
	for _, n := range []int{0, 4, 8, 11, 12, 16, 20, 24, 30, 36, 40, 44, 300} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			_, err := MFCC{}.EncodeWAV(bytes.NewReader(valid[:n]))
			require.ErrorIs(t, err, ErrInput)
		})
	}
}

func TestMFCCEncodeMatchesEncodeSamples(t *testing.T) {
	x := sine(4000, 8000, 440, 0.4)
	file := monoWAV(t, x, 8000, 16)
	samples, rate, err := ReadWAV(bytes.NewReader(file))
	require.NoError(t, err)
	want, err := MFCC{}.EncodeSamples(samples, rate)
	require.NoError(t, err)

	var enc Encoder = MFCC{}
	require.Equal(t, 96, enc.Dim())
	got, err := enc.Encode(context.Background(), []Input{{Data: file}, {Data: file, MIME: "audio/wav"}})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, want, got[0])
	assert.Equal(t, want, got[1])

	got, err = enc.Encode(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = enc.Encode(ctx, []Input{{Data: file}})
	require.ErrorIs(t, err, context.Canceled)
}

func TestMFCCMatchesSpec(t *testing.T) {
	// An independent, literal implementation of the pipeline in
	// ../shared/notes/align-measurements.md (naive DFT, its own filters,
	// DCT and segment bounds) against EncodeSamples.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		rate, n  int
		bands    int
		coeffs   int
		segments int
	}{
		{8000, 2400, 40, 13, 8},
		{8000, 1000, 40, 13, 8},
		{16000, 4000, 40, 13, 8},
		{8000, 2400, 26, 20, 5},
	} {
		t.Run(strconv.Itoa(tc.rate)+"/"+strconv.Itoa(tc.n)+"/"+strconv.Itoa(tc.bands), func(t *testing.T) {
			x := make([]float64, tc.n)
			for i := range x {
				x[i] = 0.3*math.Sin(2*math.Pi*440*float64(i)/float64(tc.rate)) +
					0.2*math.Sin(2*math.Pi*1700*float64(i)/float64(tc.rate)) +
					0.05*rng.NormFloat64()
			}
			m := MFCC{Bands: tc.bands, Coeffs: tc.coeffs, Segments: tc.segments}
			got, err := m.EncodeSamples(x, tc.rate)
			require.NoError(t, err)
			want := referenceMFCC(x, tc.rate, tc.bands, tc.coeffs, tc.segments)
			require.Len(t, got, len(want))
			for i := range want {
				require.InDelta(t, want[i], float64(got[i]), 1e-4*(1+math.Abs(want[i])), "value %d", i)
			}
		})
	}
}

// referenceMFCC follows the written spec step by step, slowly.
func referenceMFCC(x []float64, rate, bands, coeffs, segments int) []float64 {
	frame := int(math.Round(0.025 * float64(rate)))
	hop := int(math.Round(0.010 * float64(rate)))
	nfft := 1
	for nfft < frame {
		nfft *= 2
	}
	pre := make([]float64, len(x))
	for i := range x {
		pre[i] = x[i]
		if i > 0 {
			pre[i] -= 0.97 * x[i-1]
		}
	}
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	hz := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	edges := make([]float64, bands+2)
	for i := range edges {
		edges[i] = hz(mel(float64(rate)/2) * float64(i) / float64(bands+1))
	}
	weight := func(b int, f float64) float64 {
		lo, mid, hi := edges[b], edges[b+1], edges[b+2]
		return math.Max(0, math.Min((f-lo)/(mid-lo), (hi-f)/(hi-mid)))
	}
	nframes := (len(x)-frame)/hop + 1
	ceps := make([][]float64, nframes)
	for f := range nframes {
		seg := pre[f*hop : f*hop+frame]
		var mean float64
		for _, v := range seg {
			mean += v / float64(frame)
		}
		buf := make([]float64, nfft)
		for i, v := range seg {
			buf[i] = (v - mean) * (0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/float64(frame-1)))
		}
		power := make([]float64, nfft/2+1)
		for k := range power {
			var re, im float64
			for i, v := range buf {
				re += v * math.Cos(2*math.Pi*float64(k*i)/float64(nfft))
				im -= v * math.Sin(2*math.Pi*float64(k*i)/float64(nfft))
			}
			power[k] = re*re + im*im
		}
		logmel := make([]float64, bands)
		for b := range bands {
			var e float64
			for k, p := range power {
				e += weight(b, float64(k)*float64(rate)/float64(nfft)) * p
			}
			logmel[b] = math.Log(e + 1e-10)
		}
		c := make([]float64, coeffs-1)
		for k := 1; k < coeffs; k++ {
			for i, v := range logmel {
				c[k-1] += math.Sqrt(2/float64(bands)) * math.Cos(math.Pi*float64(k)*(float64(i)+0.5)/float64(bands)) * v
			}
		}
		ceps[f] = c
	}
	var out []float64
	for b := range segments {
		lo := int(math.Floor(float64(b*nframes) / float64(segments)))
		hi := int(math.Ceil(float64((b+1)*nframes)/float64(segments))) - 1
		if hi < lo {
			hi = lo
		}
		for k := range coeffs - 1 {
			var s float64
			for f := lo; f <= hi; f++ {
				s += ceps[f][k]
			}
			out = append(out, s/float64(hi-lo+1))
		}
	}
	return out
}

func TestMFCCRealRecordings(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "fsdd", "recordings")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("fsdd recordings not found at %s (%v); skipping the real-data check", dir, err)
	}
	names := []string{"0_george_0.wav", "3_jackson_10.wav", "7_theo_5.wav", "9_nicolas_20.wav"}
	files, err := filepath.Glob(filepath.Join(dir, "*.wav"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var in []Input
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue // speakers vary between copies of the data set
		}
		in = append(in, Input{Data: b})
	}
	for i := 0; len(in) < 4 && i < len(files); i += len(files)/4 + 1 {
		b, err := os.ReadFile(files[i])
		require.NoError(t, err)
		in = append(in, Input{Data: b})
	}
	for _, x := range in {
		s, rate, err := ReadWAV(bytes.NewReader(x.Data))
		require.NoError(t, err)
		assert.Equal(t, 8000, rate)
		assert.Greater(t, len(s), 200)
		for _, v := range s {
			require.True(t, v >= -1 && v < 1)
		}
	}
	vecs, err := MFCC{}.Encode(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, vecs, len(in))
	for _, v := range vecs {
		require.Len(t, v, MFCC{}.Dim())
		requireFinite(t, v)
	}
}
