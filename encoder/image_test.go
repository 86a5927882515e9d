package encoder

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- helpers ------------------------------------------------------------------

// cellHists splits the histogram part of an EncodeGrid vector into
// [cy][cx][orientation].
func cellHists(t *testing.T, m Image, v []float32) [][][]float32 {
	t.Helper()
	m = m.withDefaults()
	c := m.cells()
	h := v[m.Size*m.Size:]
	require.Len(t, h, c*c*m.Orientations)
	out := make([][][]float32, c)
	for cy := range c {
		out[cy] = make([][]float32, c)
		for cx := range c {
			i := (cy*c + cx) * m.Orientations
			out[cy][cx] = h[i : i+m.Orientations]
		}
	}
	return out
}

func norm(h []float32) float64 {
	var s float64
	for _, v := range h {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// grid builds a Size x Size row-major grid from f(x, y).
func grid(size int, f func(x, y int) float64) []float64 {
	g := make([]float64, size*size)
	for y := range size {
		for x := range size {
			g[y*size+x] = f(x, y)
		}
	}
	return g
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}))
	return b.Bytes()
}

// halves is a w x h picture, white left of x = w/2 and black right of it.
func halvesGray(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w / 2 {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	return img
}

func halvesRGBA(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{A: 255}
			if x < w/2 {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// --- Dim and pixels -----------------------------------------------------------

func TestImageDim(t *testing.T) {
	tests := []struct {
		name string
		m    Image
		want int
	}{
		{"defaults", Image{}, 64 + 3*3*8},
		{"explicit defaults", Image{Size: 8, Orientations: 8, Cell: 4, Stride: 2}, 136},
		{"size 16", Image{Size: 16}, 256 + 7*7*8},
		{"stride 4", Image{Size: 16, Stride: 4}, 256 + 4*4*8},
		{"one cell", Image{Cell: 8}, 64 + 8},
		{"cell clamped to size", Image{Size: 4, Cell: 10}, 16 + 8},
		{"9 orientations", Image{Orientations: 9}, 64 + 9*9},
		{"stride not dividing", Image{Size: 10, Cell: 4, Stride: 4}, 100 + 2*2*8},
		{"size 1", Image{Size: 1}, 1 + 8},
		{"negative means default", Image{Size: -1, Orientations: -1, Cell: -1, Stride: -1}, 136},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.m.Dim())
			s := tc.m.withDefaults().Size
			pix := grid(s, func(int, int) float64 { return rng.Float64() })
			v, err := tc.m.EncodeGrid(pix)
			require.NoError(t, err)
			require.Len(t, v, tc.want)
		})
	}
}

func TestImageEncodeGridPixelsFirst(t *testing.T) {
	pix := grid(8, func(x, y int) float64 { return float64(x*y%17) - 3.5 }) // any scale, negatives too
	v, err := Image{}.EncodeGrid(pix)
	require.NoError(t, err)
	require.Len(t, v, 136)
	for i, p := range pix {
		require.Equal(t, float32(p), v[i], "pixel %d", i)
	}
	// The input is not modified.
	assert.Equal(t, grid(8, func(x, y int) float64 { return float64(x*y%17) - 3.5 }), pix)
}

// --- orientations ---------------------------------------------------------------

func TestImageEncodeGridEdgeOrientation(t *testing.T) {
	// An edge between columns (or rows) 1 and 2: central differences put
	// the gradient at 1 and 2, inside cells 0 (0-3) and 1 (2-5) but not
	// cell 2 (4-7), which sees a flat picture.
	const lo, hi = 0.0, 16.0
	tests := []struct {
		name string
		pix  []float64
		bin  int
		// covered reports whether cell (cx, cy) covers the edge.
		covered func(cx, cy int) bool
	}{
		{"vertical edge, dark to bright", grid(8, func(x, _ int) float64 { return map[bool]float64{true: lo, false: hi}[x < 2] }), 0,
			func(cx, _ int) bool { return cx < 2 }},
		{"horizontal edge, dark to bright", grid(8, func(_, y int) float64 { return map[bool]float64{true: lo, false: hi}[y < 2] }), 4,
			func(_, cy int) bool { return cy < 2 }},
		{"horizontal edge, bright to dark", grid(8, func(_, y int) float64 { return map[bool]float64{true: hi, false: lo}[y < 2] }), 4,
			func(_, cy int) bool { return cy < 2 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Image{}.EncodeGrid(tc.pix)
			require.NoError(t, err)
			h := cellHists(t, Image{}, v)
			for cy := range h {
				for cx := range h[cy] {
					if !tc.covered(cx, cy) {
						assert.Zero(t, norm(h[cy][cx]), "cell (%d,%d) does not cover the edge", cx, cy)
						continue
					}
					for b, e := range h[cy][cx] {
						want := 0.0
						if b == tc.bin {
							want = 1
						}
						assert.InDelta(t, want, e, 1e-5, "cell (%d,%d) bin %d: %v", cx, cy, b, h[cy][cx])
					}
				}
			}
		})
	}
}

func TestImageEncodeGridEdgeOrientationUnsigned(t *testing.T) {
	// Orientations are unsigned (0-180 degrees): an edge and its
	// negative run the same way and must fill the same bin.
	dark2bright := grid(8, func(x, _ int) float64 { return map[bool]float64{true: 0, false: 1}[x < 4] })
	bright2dark := grid(8, func(x, _ int) float64 { return map[bool]float64{true: 1, false: 0}[x < 4] })
	a, err := Image{}.EncodeGrid(dark2bright)
	require.NoError(t, err)
	b, err := Image{}.EncodeGrid(bright2dark)
	require.NoError(t, err)
	ha, hb := cellHists(t, Image{}, a), cellHists(t, Image{}, b)
	assert.InDelta(t, 1, ha[0][1][0], 1e-5, "dark-to-bright vertical edge in bin 0: %v", ha[0][1])
	if math.Abs(float64(hb[0][1][0])-1) > 1e-5 {
		t.Fatalf("fixed bug came back: encoder/image.go:135-139: a vertical edge bright on the left (gradient (-1, 0), atan2(+0, -1) = pi) "+
			"lands in bin %d instead of bin 0: the angle is folded with `if a < 0 { a += pi }` but an angle of exactly pi "+
			"is not wrapped to 0 and is clamped to the last bin; cell histogram %v. Mirror images of the same stroke get different features.",
			argmax(hb[0][1]), hb[0][1])
	}
	assert.Equal(t, ha, hb, "an edge and its negative give the same histograms")
}

func argmax(h []float32) int {
	best := 0
	for i, v := range h {
		if v > h[best] {
			best = i
		}
	}
	return best
}

func TestImageEncodeGridDiagonals(t *testing.T) {
	// Gradient directions of a plane ramp a*x + b*y, away from the clamped
	// border: (1,1) is 45 degrees (bin 2), (-1,1) and (1,-1) are 135 (bin 6).
	tests := []struct {
		a, b float64
		bin  int
	}{
		{1, 1, 2},
		{-1, 1, 6},
		{1, -1, 6},
		{0, 1, 4},
		{1, 0.2, 0},  // ~11 degrees
		{0.2, 1, 3},  // ~79 degrees
		{-0.2, 1, 4}, // ~101 degrees
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v,%v", tc.a, tc.b), func(t *testing.T) {
			m := Image{Size: 12, Cell: 4, Stride: 4}
			v, err := m.EncodeGrid(grid(12, func(x, y int) float64 { return tc.a*float64(x) + tc.b*float64(y) }))
			require.NoError(t, err)
			h := cellHists(t, m, v)
			centre := h[1][1] // pixels 4-7: no clamping
			assert.Equal(t, tc.bin, argmax(centre), "%v", centre)
			assert.InDelta(t, 1, centre[tc.bin], 1e-5)
		})
	}
}

func TestImageEncodeGridCellNorms(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	tests := []struct {
		name string
		m    Image
		pix  func(x, y int) float64
	}{
		{"random 0-16", Image{}, func(int, int) float64 { return 16 * rng.Float64() }},
		{"random 0-1", Image{}, func(int, int) float64 { return rng.Float64() }},
		{"random 0-255, 16x16", Image{Size: 16}, func(int, int) float64 { return 255 * rng.Float64() }},
		{"constant", Image{}, func(int, int) float64 { return 7 }},
		{"zeros", Image{}, func(int, int) float64 { return 0 }},
		{"one bright pixel", Image{}, func(x, y int) float64 { return map[bool]float64{true: 16}[x == 0 && y == 0] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.m.withDefaults().Size
			v, err := tc.m.EncodeGrid(grid(s, tc.pix))
			require.NoError(t, err)
			require.Len(t, v, tc.m.Dim())
			requireFinite(t, v)
			for cy, row := range cellHists(t, tc.m, v) {
				for cx, h := range row {
					for _, e := range h {
						require.GreaterOrEqual(t, e, float32(0))
					}
					n := norm(h)
					if n != 0 {
						assert.InDelta(t, 1, n, 1e-5, "cell (%d,%d)", cx, cy)
					}
				}
			}
		})
	}
	// A constant picture has no gradient anywhere.
	v, err := Image{}.EncodeGrid(grid(8, func(int, int) float64 { return 3 }))
	require.NoError(t, err)
	for _, e := range v[64:] {
		require.Zero(t, e)
	}
}

func TestImageEncodeGridScaleInvariantHistograms(t *testing.T) {
	// Histograms are normalised: scaling the picture scales the pixels
	// but leaves the histograms alone.
	rng := rand.New(rand.NewPCG(11, 12))
	pix := grid(8, func(int, int) float64 { return rng.Float64() })
	scaled := make([]float64, len(pix))
	for i, p := range pix {
		scaled[i] = 16 * p
	}
	a, err := Image{}.EncodeGrid(pix)
	require.NoError(t, err)
	b, err := Image{}.EncodeGrid(scaled)
	require.NoError(t, err)
	for i := range 64 {
		assert.InDelta(t, 16*a[i], b[i], 1e-5)
	}
	for i := 64; i < 136; i++ {
		assert.InDelta(t, a[i], b[i], 1e-5)
	}
}

func TestImageEncodeGridRejects(t *testing.T) {
	tests := []struct {
		name string
		m    Image
		pix  []float64
	}{
		{"nil", Image{}, nil},
		{"too few", Image{}, make([]float64, 63)},
		{"too many", Image{}, make([]float64, 65)},
		{"16x16 for an 8x8 grid", Image{}, make([]float64, 256)},
		{"8x8 for a 16x16 grid", Image{Size: 16}, make([]float64, 64)},
		{"NaN", Image{}, func() []float64 { p := make([]float64, 64); p[10] = math.NaN(); return p }()},
		{"+Inf", Image{}, func() []float64 { p := make([]float64, 64); p[63] = math.Inf(1); return p }()},
		{"-Inf", Image{}, func() []float64 { p := make([]float64, 64); p[0] = math.Inf(-1); return p }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.m.EncodeGrid(tc.pix)
			require.ErrorIs(t, err, ErrInput)
			require.Nil(t, v)
		})
	}
}

// --- EncodeImage and Encode ------------------------------------------------------

func TestImageEncodeImageHalves(t *testing.T) {
	tests := []struct {
		name string
		img  image.Image
	}{
		{"gray 64x64", halvesGray(64, 64)},
		{"rgba 64x64", halvesRGBA(64, 64)},
		{"gray 16x8", halvesGray(16, 8)},
		{"gray 8x8", halvesGray(8, 8)},
		{"gray 80x24", halvesGray(80, 24)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Image{}.EncodeImage(tc.img)
			require.Len(t, v, 136)
			for y := range 8 {
				for x := range 8 {
					want := 0.0
					if x < 4 {
						want = 1
					}
					require.InDelta(t, want, v[y*8+x], 1e-6, "grid (%d,%d)", x, y)
				}
			}
			// The histograms are those of the grid.
			pix := make([]float64, 64)
			for i := range pix {
				pix[i] = float64(v[i])
			}
			g, err := Image{}.EncodeGrid(pix)
			require.NoError(t, err)
			assert.InDeltaSlice(t, g, v, 1e-6)
		})
	}
}

func TestImageEncodeImageAreaAverage(t *testing.T) {
	// A 16x16 picture: each grid square averages a 2x2 block. Blocks of
	// one white pixel in four average to 0.25.
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y += 2 {
		for x := 0; x < 16; x += 2 {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	img.SetGray(15, 15, color.Gray{Y: 255}) // the last block has two
	v := Image{}.EncodeImage(img)
	for i := range 63 {
		assert.InDelta(t, 0.25, v[i], 1e-6, "grid %d", i)
	}
	assert.InDelta(t, 0.5, v[63], 1e-6)

	// Luma of coloured pixels: pure red, green and blue columns.
	rgb := image.NewRGBA(image.Rect(0, 0, 24, 8))
	for y := range 8 {
		for x := range 24 {
			c := [3]color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}}[x/8]
			rgb.SetRGBA(x, y, c)
		}
	}
	v = Image{Size: 3}.EncodeImage(rgb)
	assert.InDelta(t, 0.299, v[0], 1e-6)
	assert.InDelta(t, 0.587, v[1], 1e-6)
	assert.InDelta(t, 0.114, v[2], 1e-6)
}

func TestImageEncodeImageOffsetBounds(t *testing.T) {
	// A sub-image keeps its parent's coordinates.
	big := halvesGray(128, 128)
	sub := big.SubImage(image.Rect(32, 32, 96, 96)) // x 32-63 white, 64-95 black
	require.Equal(t, image.Pt(32, 32), sub.Bounds().Min)
	assert.Equal(t, Image{}.EncodeImage(halvesGray(64, 64)), Image{}.EncodeImage(sub))
}

func TestImageEncodeImageUniform(t *testing.T) {
	// A uniform picture of any size reduces to a uniform grid.
	for _, sz := range []image.Point{{64, 64}, {20, 13}, {9, 8}, {8, 8}, {100, 5}, {4, 4}, {1, 1}} {
		t.Run(fmt.Sprintf("%dx%d", sz.X, sz.Y), func(t *testing.T) {
			img := image.NewGray(image.Rect(0, 0, sz.X, sz.Y))
			for i := range img.Pix {
				img.Pix[i] = 255
			}
			v := Image{}.EncodeImage(img)
			require.Len(t, v, 136)
			var dark []int
			for i := range 64 {
				if math.Abs(float64(v[i])-1) > 1e-6 {
					dark = append(dark, i)
				}
			}
			if len(dark) > 0 && (sz.X < 8 || sz.Y < 8) {
				t.Fatalf("fixed bug came back: encoder/image.go:86-101 (EncodeImage): a white %dx%d picture, with a side shorter than the 8-square grid, "+
					"leaves %d grid squares that no source pixel falls in at 0 (black) instead of 1, e.g. %v; "+
					"each source pixel is added to one square only (gy = y*Size/h), so upscaling leaves holes",
					sz.X, sz.Y, len(dark), dark[:min(len(dark), 8)])
			}
			require.Empty(t, dark, "grid squares not white")
			for _, e := range v[64:] {
				require.Zero(t, e)
			}
		})
	}
}

func TestImageEncodePNGAndJPEG(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		tol  float64
	}{
		{"png gray", encodePNG(t, halvesGray(64, 64)), 1e-6},
		{"png rgba", encodePNG(t, halvesRGBA(64, 64)), 1e-6},
		{"jpeg gray", encodeJPEG(t, halvesGray(64, 64)), 0.03},
		{"jpeg rgba", encodeJPEG(t, halvesRGBA(64, 64)), 0.03},
		{"png gray 40x30", encodePNG(t, halvesGray(40, 30)), 1e-6},
	}
	in := make([]Input, len(tests))
	for i, tc := range tests {
		in[i] = Input{Data: tc.data}
	}
	var enc Encoder = Image{}
	require.Equal(t, 136, enc.Dim())
	out, err := enc.Encode(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, out, len(tests))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := out[i]
			require.Len(t, v, 136)
			requireFinite(t, v)
			for y := range 8 {
				for x := range 8 {
					want := 0.0
					if x < 4 {
						want = 1
					}
					assert.InDelta(t, want, v[y*8+x], tc.tol, "grid (%d,%d)", x, y)
				}
			}
			// The edge between grid columns 3 and 4 is vertical: cells
			// covering it (all three cell columns at stride 2 over 0-7
			// include column 3 or 4) have their energy in the
			// horizontal-gradient bin, none in the vertical bins. The bin
			// should be 0, but bright-left edges land in bin 7 (see
			// TestImageEncodeGridEdgeOrientationUnsigned), so accept both.
			for _, row := range cellHists(t, Image{}, v) {
				for _, h := range row {
					require.InDelta(t, 1, norm(h), 1e-4)
					assert.Greater(t, float64(h[0])+float64(h[7]), 0.95, "%v", h)
				}
			}
		})
	}
}

func TestImageEncodeRejects(t *testing.T) {
	good := encodePNG(t, halvesGray(16, 16))
	pngData := encodePNG(t, halvesGray(16, 16))
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte("definitely not a picture")},
		{"wav", rawWAV(1, 1, 8000, 16, nil, make([]byte, 400))},
		{"truncated png", pngData[:len(pngData)/2]},
		{"png signature only", pngData[:8]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Image{}.Encode(context.Background(), []Input{{Data: good}, {Data: tc.data}})
			require.ErrorIs(t, err, ErrInput)
			assert.Contains(t, err.Error(), "input 1")
		})
	}
}

func TestImageEncodeContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Image{}.Encode(ctx, []Input{{Data: encodePNG(t, halvesGray(8, 8))}})
	require.ErrorIs(t, err, context.Canceled)

	out, err := Image{}.Encode(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, out)
}

func TestImageEncodeDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	data := encodePNG(t, img)
	a, err := Image{}.Encode(context.Background(), []Input{{Data: data}})
	require.NoError(t, err)
	b, err := Image{}.Encode(context.Background(), []Input{{Data: data}})
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.Equal(t, Image{}.EncodeImage(img), a[0])
}

// --- Scaler ----------------------------------------------------------------------

func TestFitScaler(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	tests := []struct {
		name string
		vecs [][]float32
	}{
		{"random, mixed scales", func() [][]float32 {
			out := make([][]float32, 200)
			for i := range out {
				out[i] = []float32{
					float32(rng.NormFloat64()),
					float32(1000 + 50*rng.NormFloat64()),
					float32(1e-3 * rng.NormFloat64()),
					float32(rng.IntN(17)),
				}
			}
			return out
		}()},
		{"two vectors", [][]float32{{1, 10}, {3, -10}}},
		{"with a constant dim", [][]float32{{1, 5, 0}, {2, 5, 1}, {3, 5, 0}, {4, 5, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FitScaler(tc.vecs)
			require.NoError(t, err)
			d := len(tc.vecs[0])
			require.Len(t, s.Mean, d)
			require.Len(t, s.Std, d)
			mean := make([]float64, d)
			sq := make([]float64, d)
			for _, v := range tc.vecs {
				z := s.Apply(v)
				require.Len(t, z, d)
				for j, x := range z {
					mean[j] += float64(x)
					sq[j] += float64(x) * float64(x)
				}
			}
			n := float64(len(tc.vecs))
			for j := range d {
				m := mean[j] / n
				sd := math.Sqrt(sq[j]/n - m*m)
				assert.InDelta(t, 0, m, 1e-4, "dim %d mean", j)
				if s.Std[j] == 1 && sq[j] < 1e-6 {
					assert.InDelta(t, 0, sd, 1e-6, "constant dim %d stays constant (centred)", j)
					continue
				}
				assert.InDelta(t, 1, sd, 1e-3, "dim %d std", j)
			}
		})
	}
}

func TestFitScalerConstantDims(t *testing.T) {
	s, err := FitScaler([][]float32{{7, 1, -2}, {7, 2, -2}, {7, 3, -2}})
	require.NoError(t, err)
	assert.Equal(t, []float32{7, 2, -2}, s.Mean)
	assert.Equal(t, float32(1), s.Std[0])
	assert.Equal(t, float32(1), s.Std[2])
	assert.InDelta(t, math.Sqrt(2.0/3), s.Std[1], 1e-6) // population deviation
	z := s.Apply([]float32{7, 3, -2})
	assert.Equal(t, float32(0), z[0])
	assert.Equal(t, float32(0), z[2])
	assert.InDelta(t, 1/math.Sqrt(2.0/3), z[1], 1e-5)

	// A single vector: every dim is constant.
	s, err = FitScaler([][]float32{{1, 2, 3}})
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 1, 1}, s.Std)
	assert.Equal(t, []float32{0, 0, 0}, s.Apply([]float32{1, 2, 3}))
}

func TestFitScalerApplyCopies(t *testing.T) {
	s, err := FitScaler([][]float32{{0, 0}, {2, 4}})
	require.NoError(t, err)
	v := []float32{2, 4}
	z := s.Apply(v)
	assert.Equal(t, []float32{2, 4}, v, "Apply leaves its argument alone")
	assert.Equal(t, []float32{1, 1}, z)
}

func TestFitScalerRejects(t *testing.T) {
	tests := []struct {
		name string
		vecs [][]float32
	}{
		{"nil", nil},
		{"empty", [][]float32{}},
		{"ragged, shorter", [][]float32{{1, 2, 3}, {1, 2}}},
		{"ragged, longer", [][]float32{{1, 2}, {1, 2}, {1, 2, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FitScaler(tc.vecs)
			require.ErrorIs(t, err, ErrInput)
			require.Nil(t, s)
		})
	}
}

func TestScalerOnImageFeatures(t *testing.T) {
	// End to end: standardised image features have mean 0 and std 1 per
	// varying dimension, the constant ones pass through centred.
	rng := rand.New(rand.NewPCG(17, 18))
	var vecs [][]float32
	for range 50 {
		pix := grid(8, func(x, _ int) float64 {
			if x == 0 {
				return 0 // a constant column
			}
			return 16 * rng.Float64()
		})
		v, err := Image{}.EncodeGrid(pix)
		require.NoError(t, err)
		vecs = append(vecs, v)
	}
	s, err := FitScaler(vecs)
	require.NoError(t, err)
	for j := range 136 {
		var m, sq float64
		for _, v := range vecs {
			z := float64(s.Apply(v)[j])
			m += z
			sq += z * z
		}
		m /= float64(len(vecs))
		sd := math.Sqrt(sq/float64(len(vecs)) - m*m)
		assert.InDelta(t, 0, m, 1e-4, "dim %d", j)
		if j%8 == 0 && j < 64 {
			assert.Equal(t, float32(1), s.Std[j], "constant pixel %d", j)
			assert.Zero(t, sd)
		} else {
			assert.InDelta(t, 1, sd, 1e-3, "dim %d", j)
		}
	}
}
