package align

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cpuTime is the CPU time this process has used, user plus system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// synthPairs makes n pairs of d1- and d2-dimensional vectors related by a
// random linear map plus noise.
func synthPairs(n, d1, d2 int, seed uint64) Pairs {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := make([][]float32, d2)
	for i := range w {
		w[i] = make([]float32, d1)
		for j := range w[i] {
			w[i][j] = float32(rng.NormFloat64())
		}
	}
	var p Pairs
	for range n {
		x := make([]float32, d1)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		y := make([]float32, d2)
		for i := range y {
			var s float32
			for j, v := range x {
				s += w[i][j] * v
			}
			y[i] = s + float32(rng.NormFloat64())*float32(d1)/4
		}
		p.X, p.Y = append(p.X, x), append(p.Y, y)
	}
	return p
}

// BenchmarkFitTime prints the fit-time table of BENCHMARKS.md: CPU
// seconds of the process per fit, on one thread (GOMAXPROCS 1):
//
//	go test -run '^$' -bench FitTime -benchtime 1x -timeout 30m ./align
//
// FITTIME_CASE=digits (any part of a case's name) runs only those cases.
func BenchmarkFitTime(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	img, _ := loadCOCO(b, "features_clip.npy")
	_, rtxt := loadCOCO(b, "features_clip_random.npy")
	coco := Pairs{X: rtxt, Y: img}
	d := loadDigitAudio(b)
	var digits Pairs
	rng := rand.New(rand.NewPCG(1, 7))
	byClass := map[int][]int{}
	for i, c := range d.audClass {
		byClass[c] = append(byClass[c], i)
	}
	for k := range 3000 {
		i := k % len(d.img)
		a := byClass[d.imgClass[i]][rng.IntN(len(byClass[d.imgClass[i]]))]
		digits.X, digits.Y = append(digits.X, d.img[i]), append(digits.Y, d.aud[a])
		digits.Classes = append(digits.Classes, d.imgClass[i])
	}
	small := synthPairs(49, 768, 768, 3)
	cases := []fitCase{
		{"ridge 500x512 (coco random text -> image)", coco, fitOne(Ridge)},
		{"procrustes 500x512", coco, fitOne(Procrustes)},
		{"cca 500x512", coco, fitOne(CCA)},
		{"infonce 500x512", coco, fitOne(InfoNCE)},
		{"auto 500x512", coco, fitAuto},
		{"auto 3000 digits->fsdd by class", digits, fitAuto},
		{"auto 49x768 (synthetic)", small, fitAuto},
	}
	if only := os.Getenv("FITTIME_CASE"); only != "" {
		cases = slices.DeleteFunc(cases, func(c fitCase) bool { return !strings.Contains(c.name, only) })
	}
	for range b.N {
		fmt.Printf("\n| fit | CPU s | wall s |\n|---|---|---|\n")
		for _, c := range cases {
			c0, w0 := cpuTime(), time.Now()
			require.NoError(b, c.run(c.p))
			fmt.Printf("| %s | %.2f | %.2f |\n", c.name, (cpuTime() - c0).Seconds(), time.Since(w0).Seconds())
		}
	}
}

type fitCase struct {
	name string
	p    Pairs
	run  func(Pairs) error
}

func fitOne(m Method) func(Pairs) error {
	return func(p Pairs) error {
		_, err := Fit(context.Background(), m, p, Options{Seed: 1})
		return err
	}
}

func fitAuto(p Pairs) error {
	_, _, err := FitAuto(context.Background(), p, Options{Seed: 1, Force: true})
	return err
}
