// Command identity writes the JSON Lines that identity.sh imports to
// compare two builds of mmdb on real data through the command line alone
// (so any two commits compare): coco500's CLIP and random-encoder vectors
// as four modalities with two attributes, and sift5k's base and query
// descriptors.
//
//	go run ./internal/bench/identity ../shared/data /tmp/ident
//	internal/bench/identity/identity.sh OLD-MMDB NEW-MMDB /tmp/ident
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/internal/npy"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: identity SHARED-DATA OUT-DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "identity:", err)
		os.Exit(1)
	}
}

func run(data, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	sides := func(file string) ([][]float32, [][]float32, error) {
		a, err := npy.ReadFile(filepath.Join(data, "coco500-clip", file))
		if err != nil {
			return nil, nil, err
		}
		img, err := a.Rows(0)
		if err != nil {
			return nil, nil, err
		}
		txt, err := a.Rows(1)
		return img, txt, err
	}
	img, txt, err := sides("features_clip.npy")
	if err != nil {
		return err
	}
	rimg, rtxt, err := sides("features_clip_random.npy")
	if err != nil {
		return err
	}
	err = write(filepath.Join(out, "coco.jsonl"), len(img), func(i int) string {
		return fmt.Sprintf(`{"id":"c%03d","attrs":{"n":%d,"odd":%v},"vectors":{"image":%s,"text":%s,"rimage":%s,"rtext":%s}}`,
			i, i, i%2 == 1, list(img[i]), list(txt[i]), list(rimg[i]), list(rtxt[i]))
	})
	if err != nil {
		return err
	}
	base, err := dataset.ReadVecs(filepath.Join(data, "sift5k", "sift5k_base4900.fvecs"))
	if err != nil {
		return err
	}
	queries, err := dataset.ReadVecs(filepath.Join(data, "sift5k", "sift5k_query100.fvecs"))
	if err != nil {
		return err
	}
	return write(filepath.Join(out, "sift.jsonl"), len(base)+len(queries), func(i int) string {
		if i < len(base) {
			return fmt.Sprintf(`{"id":"s%04d","attrs":{"n":%d},"vectors":{"sift":%s}}`, i, i, list(base[i]))
		}
		q := i - len(base)
		return fmt.Sprintf(`{"id":"q%03d","attrs":{"n":%d,"q":true},"vectors":{"siftq":%s}}`, q, q, list(queries[q]))
	})
}

func write(path string, n int, line func(int) string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintln(w, line(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func list(v []float32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return "[" + strings.Join(s, ",") + "]"
}
