package encoder

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-audio/wav"
	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sharedData = "../../shared/data"

// Real recordings (fsdd, 16-bit mono) rewritten as 8, 16 and 24-bit PCM,
// mono and stereo, by go-audio's encoder: ReadWAV gives what go-audio's
// decoder, an independent one, gives; and the MFCC of every form is the
// 16-bit mono one's at 16 and 24 bits.
func TestWAVRealRecordingsEveryDepth(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedData, "fsdd", "recordings", "*_theo_1*.wav"))
	if len(files) == 0 {
		t.Skipf("no fsdd recordings under %s: the shared data folder sits beside the repository", sharedData)
	}
	for _, path := range files[:4] {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		src, err := wav.NewDecoder(bytes.NewReader(raw)).FullPCMBuffer()
		require.NoError(t, err)
		require.Equal(t, 16, src.SourceBitDepth, path)
		require.Equal(t, 1, src.Format.NumChannels, path)
		x := make([]float64, len(src.Data))
		for i, s := range src.Data {
			x[i] = float64(s) / 32768
		}
		ref, err := MFCC{}.EncodeSamples(x, src.Format.SampleRate)
		require.NoError(t, err)
		for _, bits := range []int{8, 16, 24} {
			for _, chans := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s %d-bit %d channels", filepath.Base(path), bits, chans), func(t *testing.T) {
					data := make([]int, 0, len(x)*chans)
					for _, v := range x {
						data = append(data, quantize(v, bits))
						if chans == 2 { // the right channel is the left inverted and halved
							data = append(data, quantize(-v/2, bits))
						}
					}
					file := encodeWAV(t, data, src.Format.SampleRate, bits, chans)
					got, rate, err := ReadWAV(bytes.NewReader(file))
					require.NoError(t, err)
					require.Equal(t, src.Format.SampleRate, rate)
					ind, err := wav.NewDecoder(bytes.NewReader(file)).FullPCMBuffer()
					require.NoError(t, err)
					require.Len(t, got, len(ind.Data)/chans)
					off := 0.0
					if bits == 8 {
						off = 128 // go-audio gives 8-bit samples unsigned
					}
					for i := range got {
						var s float64
						for c := range chans {
							s += float64(ind.Data[i*chans+c]) - off
						}
						require.Equal(t, s/float64(chans)/math.Ldexp(1, bits-1), got[i], "frame %d", i)
					}
					v, err := MFCC{}.Encode(t.Context(), []Input{{Data: file}})
					require.NoError(t, err)
					requireFinite(t, v[0])
					if chans == 1 && bits > 8 { // 8 bits lose the quiet parts, which the log-mel weighs
						assert.InDelta(t, 1, cosine(ref, v[0]), 1e-6)
					}
				})
			}
		}
	}
}

// Real digits, scaled up to 64x64 and tinted for colour, written as PNM
// and turned into PNG and JPEG by netpbm's pnmtopng and libjpeg's cjpeg
// (encoders that are not Go's): the image encoder's vector is the one
// computed from netpbm's and libjpeg's own decodes (pngtopnm, djpeg).
func TestImageRealDigitsAgainstIndependentDecode(t *testing.T) {
	for _, tool := range []string{"pnmtopng", "pngtopnm", "cjpeg", "djpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: apt-get install netpbm libjpeg-turbo-progs (.ci/run does)", tool)
		}
	}
	digits, err := dataset.Digits(sharedData)
	if err != nil {
		t.Skipf("digits not found under %s (%v): the shared data folder sits beside the repository", sharedData, err)
	}
	dir := t.TempDir()
	for _, i := range []int{0, 7, 333, 1796} {
		for _, colour := range []bool{false, true} {
			pnm := filepath.Join(dir, fmt.Sprintf("d%d-%v.pnm", i, colour))
			require.NoError(t, os.WriteFile(pnm, digitPNM(digits[i].Pixels, colour), 0o644))
			for _, format := range []struct {
				name, enc, dec string
				args           []string
				tol            float64
			}{
				{"png", "pnmtopng", "pngtopnm", nil, 1e-6},
				{"jpeg", "cjpeg", "djpeg", []string{"-quality", "95"}, 0.02},
			} {
				t.Run(fmt.Sprintf("digit %d %s colour=%v", i, format.name, colour), func(t *testing.T) {
					file, err := exec.Command(format.enc, append(format.args, pnm)...).Output()
					require.NoError(t, err)
					cmd := exec.Command(format.dec)
					cmd.Stdin = bytes.NewReader(file)
					decoded, err := cmd.Output()
					require.NoError(t, err)
					w, h, rgb := parsePNM(t, decoded)
					want, err := Image{}.EncodeGrid(lumaGrid(w, h, rgb, 8))
					require.NoError(t, err)
					got, err := Image{}.Encode(t.Context(), []Input{{Data: file}})
					require.NoError(t, err)
					for j := range 64 { // the grid: grey levels in [0, 1]
						assert.InDelta(t, want[j], got[0][j], format.tol, "grid square %d", j)
					}
					assert.InDelta(t, 1, cosine(want, got[0]), 10*format.tol, "whole vector")
				})
			}
		}
	}
}

// digitPNM draws an 8x8 digit (levels 0-16) at 64x64, grey (P5) or
// tinted (P6: red full, green at 60%, blue at 30% of the level).
func digitPNM(pix []float64, colour bool) []byte {
	const side = 64
	var b bytes.Buffer
	if colour {
		fmt.Fprintf(&b, "P6\n%d %d\n255\n", side, side)
	} else {
		fmt.Fprintf(&b, "P5\n%d %d\n255\n", side, side)
	}
	for y := range side {
		for x := range side {
			v := pix[(y/8)*8+x/8] * 255 / 16
			if colour {
				b.Write([]byte{uint8(math.Round(v)), uint8(math.Round(v * 0.6)), uint8(math.Round(v * 0.3))})
			} else {
				b.WriteByte(uint8(math.Round(v)))
			}
		}
	}
	return b.Bytes()
}

// parsePNM reads a binary PGM or PPM of maxval 255 as RGB triples.
func parsePNM(t *testing.T, b []byte) (w, h int, rgb []uint8) {
	t.Helper()
	var fields []int
	magic := string(b[:2])
	require.Contains(t, []string{"P5", "P6"}, magic)
	i := 2
	for len(fields) < 3 {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
		if b[i] == '#' {
			for b[i] != '\n' {
				i++
			}
			continue
		}
		j := i
		for b[j] >= '0' && b[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(b[i:j]))
		require.NoError(t, err)
		fields = append(fields, n)
		i = j
	}
	w, h = fields[0], fields[1]
	require.Equal(t, 255, fields[2])
	pix := b[i+1:]
	if magic == "P6" {
		require.Len(t, pix, w*h*3)
		return w, h, pix
	}
	require.Len(t, pix, w*h)
	for _, g := range pix {
		rgb = append(rgb, g, g, g)
	}
	return w, h, rgb
}

// lumaGrid averages ITU-R 601 luma over each square of a size x size grid
// (the picture's side a multiple of size).
func lumaGrid(w, h int, rgb []uint8, size int) []float64 {
	grid := make([]float64, size*size)
	for y := range h {
		for x := range w {
			p := rgb[(y*w+x)*3:]
			r, g, b := float64(p[0])*257, float64(p[1])*257, float64(p[2])*257 // 16-bit, as image/color gives
			grid[(y*size/h)*size+x*size/w] += (0.299*r + 0.587*g + 0.114*b) / 65535
		}
	}
	for i := range grid {
		grid[i] /= float64((w / size) * (h / size))
	}
	return grid
}
