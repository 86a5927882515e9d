package align

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// BenchmarkLinalg prints what the dense primitives cost on one thread at
// 512-d, the floor under the fit times (BENCHMARKS.md, "Alignment fit
// times"):
//
//	go test -run '^$' -bench Linalg -benchtime 1x ./align
func BenchmarkLinalg(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rng := rand.New(rand.NewPCG(1, 2))
	m := mat.NewDense(512, 512, nil)
	x := mat.NewDense(400, 512, nil)
	for _, d := range []*mat.Dense{m, x} {
		raw := d.RawMatrix().Data
		for i := range raw {
			raw[i] = rng.NormFloat64()
		}
	}
	var g mat.SymDense
	g.SymOuterK(1, x.T())
	cpu := func(f func()) time.Duration {
		c0 := cpuTime()
		for range 5 {
			f()
		}
		return (cpuTime() - c0) / 5
	}
	for range b.N {
		fmt.Printf("\n| 512-d, one thread | CPU ms |\n|---|---|\n")
		var c mat.Dense
		fmt.Printf("| product 512^3, gonum float64 | %.1f |\n", ms(cpu(func() { c.Reset(); c.Mul(m, m) })))
		old := mul32Min
		mul32Min = 0
		fmt.Printf("| product 512^3, float32 on vek (mul) | %.1f |\n", ms(cpu(func() { c.Reset(); mul(&c, m, m) })))
		mul32Min = old
		fmt.Printf("| SVD 512 x 512 | %.1f |\n", ms(cpu(func() { var s mat.SVD; s.Factorize(m, mat.SVDThin) })))
		fmt.Printf("| symmetric eigendecomposition 512 | %.1f |\n", ms(cpu(func() { var e mat.EigenSym; e.Factorize(&g, true) })))
		fmt.Printf("| Cholesky 512 | %.1f |\n", ms(cpu(func() {
			h := mat.NewSymDense(512, nil)
			h.CopySym(&g)
			for i := range 512 {
				h.SetSym(i, i, h.At(i, i)+1)
			}
			var ch mat.Cholesky
			ch.Factorize(h)
		})))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkInfoNCERate prints InfoNCE's cross-fitted MRR and the epochs it
// trained at two Adam learning rates, the measurement behind the default
// (options.go):
//
//	go test -run '^$' -bench InfoNCERate -benchtime 1x -timeout 30m ./align
func BenchmarkInfoNCERate(b *testing.B) {
	img, txt := loadCOCO(b, "features_clip.npy")
	_, rtxt := loadCOCO(b, "features_clip_random.npy")
	d := loadDigitAudio(b)
	var digits Pairs
	rng := rand.New(rand.NewPCG(1, 7))
	byClass := map[int][]int{}
	for i, c := range d.audClass {
		byClass[c] = append(byClass[c], i)
	}
	for k := range 1500 {
		i := k % len(d.img)
		a := byClass[d.imgClass[i]][rng.IntN(len(byClass[d.imgClass[i]]))]
		digits.X, digits.Y = append(digits.X, d.img[i]), append(digits.Y, d.aud[a])
		digits.Classes = append(digits.Classes, d.imgClass[i])
	}
	sets := []struct {
		name string
		p    Pairs
	}{{"digits -> fsdd by class, 1,500 pairs", digits}, {"random-encoder coco text -> image", Pairs{X: rtxt, Y: img}}, {"CLIP coco text -> image", Pairs{X: txt, Y: img}}}
	for range b.N {
		fmt.Printf("\n| pairs | Adam rate | cross-fitted MRR | epochs of the last fold |\n|---|---|---|---|\n")
		for _, s := range sets {
			for _, lr := range []float64{1e-3, 3e-3} {
				_, rep, err := FitAuto(context.Background(), s.p, Options{Seed: 1, LR: lr, Force: true}, InfoNCE)
				if err != nil {
					b.Fatal(err)
				}
				sc := rep.Scores[0]
				fmt.Printf("| %s | %g | %.3f ±%.3f | %s |\n", s.name, lr, sc.MRR, sc.Spread(), sc.Params)
			}
		}
	}
}
