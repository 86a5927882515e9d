// Package bench measures mmdb's index engines on real and synthetic data:
// recall@10 against exact search, single-thread queries per second, build
// throughput with one and more threads, memory per vector, and save/load
// time; with the peers, side by side with hnswlib and FAISS. The
// mmdb-bench command (cmd/mmdb-bench) prints its tables; BENCHMARKS.md
// records them with the command that produced them. The coder/hnsw
// baseline is in the subpackage coder, so that only this benchmark links
// it.
package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/mmdb-go/mmdb/internal/dataset"
	"github.com/mmdb-go/mmdb/internal/npy"
	"github.com/mmdb-go/mmdb/kernel"
	"github.com/mmdb-go/mmdb/modality"
)

// Dataset is a base set, held-out queries, and optionally known ground
// truth (the exact nearest base rows per query, nearest first).
type Dataset struct {
	Name    string
	Metric  modality.Metric
	Base    [][]float32
	Queries [][]float32
	Truth   [][]int32 // nil: computed by exact search
	// Filtered holds, per allow-list step (see Allow), the exact top k
	// among the allowed vectors; missing steps are computed when needed.
	Filtered map[int][][]int32
}

// Synthetic returns n base vectors and q queries of dimension dim, drawn
// around `clusters` Gaussian centres and normalised (cosine): the shape of
// real embeddings, deterministic for a seed.
func Synthetic(name string, n, q, dim, clusters int, seed uint64) Dataset {
	r := rand.New(rand.NewPCG(seed, 0xda7a))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	draw := func() []float32 {
		c := centres[r.IntN(clusters)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.6*float32(r.NormFloat64())
		}
		kernel.Normalize(v)
		return v
	}
	d := Dataset{Name: name, Metric: modality.Cosine, Base: make([][]float32, n), Queries: make([][]float32, q)}
	for i := range d.Base {
		d.Base[i] = draw()
	}
	for i := range d.Queries {
		d.Queries[i] = draw()
	}
	return d
}

// SIFT5k loads ../shared/data/sift5k (dir is that folder): 4,900 base
// SIFT descriptors, 100 held-out queries and their exact L2 ground truth.
func SIFT5k(dir string) (Dataset, error) {
	base, err := dataset.ReadVecs(filepath.Join(dir, "sift5k_base4900.fvecs"))
	if err != nil {
		return Dataset{}, err
	}
	qs, err := dataset.ReadVecs(filepath.Join(dir, "sift5k_query100.fvecs"))
	if err != nil {
		return Dataset{}, err
	}
	gt, err := dataset.ReadVecs(filepath.Join(dir, "sift5k_groundtruth100.ivecs"))
	if err != nil {
		return Dataset{}, err
	}
	truth := make([][]int32, len(gt))
	for i, row := range gt {
		truth[i] = make([]int32, len(row))
		for j, x := range row {
			truth[i][j] = int32(math.Float32bits(x))
		}
	}
	return Dataset{Name: "sift5k", Metric: modality.L2, Base: base, Queries: qs, Truth: truth}, nil
}

// CLIPLike builds a CLIP-like set from ../shared/data/coco500-clip (dir
// is that folder): n cosine base vectors of 512 dimensions drawn around
// the real embeddings, each a point between two real ones of one side (a
// quarter of the way at most) plus Gaussian noise shaped by that side's
// spread per dimension; deterministic for a seed.
//
//   - clip50k (textQueries false): the base is drawn around the 500 image
//     and the 500 caption embeddings, half each, as an index holding both
//     modalities of a shared space does; the 500 queries are drawn the
//     same way and held out.
//   - clip50k-text (textQueries true): the base is the 500 real image
//     embeddings and n-500 drawn around them; the queries are the 500 real
//     captions, across CLIP's modality gap, as a text-to-image search is.
func CLIPLike(dir string, n int, textQueries bool, seed uint64) (Dataset, error) {
	a, err := npy.ReadFile(filepath.Join(dir, "features_clip.npy"))
	if err != nil {
		return Dataset{}, err
	}
	images, err := a.Rows(0)
	if err != nil {
		return Dataset{}, err
	}
	captions, err := a.Rows(1)
	if err != nil {
		return Dataset{}, err
	}
	if len(images) == 0 || len(captions) == 0 || n < len(images) {
		return Dataset{}, fmt.Errorf("coco500-clip: %d images and %d captions for %d base vectors", len(images), len(captions), n)
	}
	r := rand.New(rand.NewPCG(seed, 0xc11b))
	draw := clipDrawer(r, images)
	d := Dataset{Name: fmt.Sprintf("clip%dk", n/1000), Metric: modality.Cosine}
	if textQueries {
		d.Name += "-text"
		for _, v := range images {
			d.Base = append(d.Base, unit(v))
		}
		for len(d.Base) < n {
			d.Base = append(d.Base, draw())
		}
		for _, v := range captions {
			d.Queries = append(d.Queries, unit(v))
		}
		return d, nil
	}
	drawText := clipDrawer(r, captions)
	for i := range n + 500 {
		v := draw
		if i%2 == 1 {
			v = drawText
		}
		if i < n {
			d.Base = append(d.Base, v())
		} else {
			d.Queries = append(d.Queries, v())
		}
	}
	return d, nil
}

// clipDrawer returns a function drawing unit vectors around real ones:
// see CLIPLike.
func clipDrawer(r *rand.Rand, real [][]float32) func() []float32 {
	dim := len(real[0])
	spread := make([]float64, dim) // per dimension, the standard deviation
	for j := range spread {
		var s, s2 float64
		for _, v := range real {
			s += float64(v[j])
			s2 += float64(v[j]) * float64(v[j])
		}
		m := s / float64(len(real))
		spread[j] = math.Sqrt(max(0, s2/float64(len(real))-m*m))
	}
	return func() []float32 {
		x, y := real[r.IntN(len(real))], real[r.IntN(len(real))]
		t := 0.25 * r.Float64()
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32((1-t)*float64(x[j]) + t*float64(y[j]) + 0.5*spread[j]*r.NormFloat64())
		}
		kernel.Normalize(v)
		return v
	}
}

// unit is a normalised copy of v.
func unit(v []float32) []float32 {
	v = slices.Clone(v)
	kernel.Normalize(v)
	return v
}
