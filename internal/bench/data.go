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
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/mmdb-go/mmdb/internal/dataset"
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
