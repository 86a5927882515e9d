// Package dataset reads the public data in ../shared/data that tests,
// benchmarks and the demo use: the 8x8 digits and the spoken digits of
// fsdd, and SIFT descriptors in the TEXMEX format.
package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Digit is one 8x8 handwritten digit: 64 grey levels 0-16, row-major.
type Digit struct {
	Pixels []float64
	Label  int
}

// Digits reads digits/digits.csv.gz under dir.
func Digits(dir string) ([]Digit, error) {
	f, err := os.Open(filepath.Join(dir, "digits", "digits.csv.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("digits: %w", err)
	}
	var out []Digit
	sc := bufio.NewScanner(z)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(fields) != 65 {
			if line == 1 { // a header
				continue
			}
			return nil, fmt.Errorf("digits: line %d has %d fields, want 65", line, len(fields))
		}
		d := Digit{Pixels: make([]float64, 64)}
		bad := false
		for i, s := range fields[:64] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				bad = true
				break
			}
			d.Pixels[i] = v
		}
		lab, err := strconv.Atoi(fields[64])
		if err != nil {
			lab2, err2 := strconv.ParseFloat(fields[64], 64)
			if err2 != nil {
				bad = true
			}
			lab = int(lab2)
		}
		if bad {
			if line == 1 {
				continue
			}
			return nil, fmt.Errorf("digits: line %d is not numeric", line)
		}
		d.Label = lab
		out = append(out, d)
	}
	return out, sc.Err()
}

// Recording is one fsdd WAV file.
type Recording struct {
	Path    string
	Digit   int
	Speaker string
	Take    int
}

// FSDD lists fsdd/recordings/{digit}_{speaker}_{take}.wav under dir,
// sorted by speaker, digit and take.
func FSDD(dir string) ([]Recording, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "fsdd", "recordings", "*.wav"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("fsdd: no recordings under %s", filepath.Join(dir, "fsdd", "recordings"))
	}
	out := make([]Recording, 0, len(paths))
	for _, p := range paths {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(p), ".wav"), "_")
		if len(parts) != 3 {
			return nil, fmt.Errorf("fsdd: unexpected name %s", p)
		}
		d, err1 := strconv.Atoi(parts[0])
		t, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("fsdd: unexpected name %s", p)
		}
		out = append(out, Recording{Path: p, Digit: d, Speaker: parts[1], Take: t})
	}
	slices.SortFunc(out, func(a, b Recording) int {
		if c := strings.Compare(a.Speaker, b.Speaker); c != 0 {
			return c
		}
		if a.Digit != b.Digit {
			return a.Digit - b.Digit
		}
		return a.Take - b.Take
	})
	return out, nil
}

// Speakers returns the distinct speakers of recs, sorted.
func Speakers(recs []Recording) []string {
	var s []string
	for _, r := range recs {
		if !slices.Contains(s, r.Speaker) {
			s = append(s, r.Speaker)
		}
	}
	slices.Sort(s)
	return s
}

// PNG returns the digit as an 8x8 greyscale PNG file (levels 0-16 scaled
// to 0-255), as a scanner would give it.
func (d Digit) PNG() ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i, v := range d.Pixels {
		img.Pix[i] = uint8(math.Round(min(max(v, 0), 16) * 255 / 16))
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
