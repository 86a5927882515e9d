// Package npy reads NumPy .npy files holding float32 or float64 arrays in C
// order: enough to load the embedding matrices that encoders export. No
// maintained Go library reads .npy without pulling in a numeric framework,
// and the format is a short header plus raw data.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ErrFormat: the input is not a supported .npy file.
var ErrFormat = errors.New("npy: unsupported or malformed file")

// Array is a float32 array with its shape; Data is in C (row-major) order.
type Array struct {
	Shape []int
	Data  []float32
}

// maxElems caps what a header may ask for before any data is read, so a
// damaged header cannot trigger a huge allocation (1<<31 floats = 8 GiB).
const maxElems = min(1<<31, math.MaxInt) // math.MaxInt on 32-bit platforms

var (
	descrRE = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	orderRE = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadFile reads an .npy file.
func ReadFile(path string) (Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return Array{}, err
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return Array{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Read parses an .npy stream. float64 data is converted to float32.
func Read(r io.Reader) (Array, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return Array{}, fmt.Errorf("%w: short preamble", ErrFormat)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return Array{}, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	var hlen int
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return Array{}, fmt.Errorf("%w: short preamble", ErrFormat)
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Array{}, fmt.Errorf("%w: short preamble", ErrFormat)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
		if hlen > 1<<20 {
			return Array{}, fmt.Errorf("%w: header of %d bytes", ErrFormat, hlen)
		}
	default:
		return Array{}, fmt.Errorf("%w: version %d.%d", ErrFormat, pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return Array{}, fmt.Errorf("%w: short header", ErrFormat)
	}
	descr, shape, err := parseHeader(string(hdr))
	if err != nil {
		return Array{}, err
	}
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && int64(n) > maxElems/int64(d)) {
			return Array{}, fmt.Errorf("%w: shape %v too large", ErrFormat, shape)
		}
		n *= d
	}
	var size int
	var order binary.ByteOrder = binary.LittleEndian
	switch descr {
	case "<f4", "|f4", ">f4":
		size = 4
	case "<f8", "|f8", ">f8":
		size = 8
	default:
		return Array{}, fmt.Errorf("%w: dtype %q (want float32 or float64)", ErrFormat, descr)
	}
	if descr[0] == '>' {
		order = binary.BigEndian
	}
	// Grow as the data arrives: a 200-byte file may claim any shape.
	raw := make([]byte, 0, min(n*size, 1<<20))
	buf := bytes.NewBuffer(raw)
	if m, err := io.CopyN(buf, r, int64(n*size)); err != nil {
		return Array{}, fmt.Errorf("%w: data truncated at %d of %d bytes", ErrFormat, m, n*size)
	}
	raw = buf.Bytes()
	out := Array{Shape: shape, Data: make([]float32, n)}
	for i := range out.Data {
		if size == 4 {
			out.Data[i] = math.Float32frombits(order.Uint32(raw[4*i:]))
		} else {
			out.Data[i] = float32(math.Float64frombits(order.Uint64(raw[8*i:])))
		}
	}
	return out, nil
}

func parseHeader(h string) (descr string, shape []int, err error) {
	m := descrRE.FindStringSubmatch(h)
	if m == nil {
		return "", nil, fmt.Errorf("%w: header has no descr", ErrFormat)
	}
	descr = m[1]
	o := orderRE.FindStringSubmatch(h)
	if o == nil {
		return "", nil, fmt.Errorf("%w: header has no fortran_order", ErrFormat)
	}
	if o[1] == "True" {
		return "", nil, fmt.Errorf("%w: Fortran-order arrays are not supported", ErrFormat)
	}
	s := shapeRE.FindStringSubmatch(h)
	if s == nil {
		return "", nil, fmt.Errorf("%w: header has no shape", ErrFormat)
	}
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(strings.TrimSuffix(part, "L"))
		if err != nil || d < 0 {
			return "", nil, fmt.Errorf("%w: shape entry %q", ErrFormat, part)
		}
		shape = append(shape, d)
	}
	return descr, shape, nil
}

// Rows returns row i of a 2-D array, or of the last two axes of a 3-D one
// selected by the leading index lead (ignored for 2-D arrays).
func (a Array) Rows(lead int) ([][]float32, error) {
	var rows, cols, off int
	switch len(a.Shape) {
	case 2:
		rows, cols = a.Shape[0], a.Shape[1]
	case 3:
		if lead < 0 || lead >= a.Shape[0] {
			return nil, fmt.Errorf("npy: leading index %d out of range %d", lead, a.Shape[0])
		}
		rows, cols = a.Shape[1], a.Shape[2]
		off = lead * rows * cols
	default:
		return nil, fmt.Errorf("npy: shape %v is not 2-D or 3-D", a.Shape)
	}
	out := make([][]float32, rows)
	for i := range out {
		out[i] = a.Data[off+i*cols : off+(i+1)*cols : off+(i+1)*cols]
	}
	return out, nil
}
