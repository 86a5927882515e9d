package align

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkAlignCurves prints the learning curves of BENCHMARKS.md:
//
//	go test -run '^$' -bench AlignCurves -benchtime 1x -timeout 60m ./align
//
// digits (image) <-> fsdd (audio) by class, a speaker never heard, every
// speaker in turn; and coco500 text -> CLIP image on 100-item held-out
// galleries, five ways round.
func BenchmarkAlignCurves(b *testing.B) {
	for range b.N {
		d := loadDigitAudio(b)
		var sb strings.Builder
		sb.WriteString("\n| method | pairs | image->audio P@10 mean | worst speaker | audio->image P@10 mean | worst speaker | \n|---|---|---|---|---|---|\n")
		for _, m := range Methods {
			for _, n := range []int{100, 300, 1000, 3000} {
				var mi, ma float64
				wi, wa := 1.0, 1.0
				for _, sp := range d.speakers {
					i2a, a2i := crossModal(b, d, m, n, sp, 1)
					mi += i2a.P10 / float64(len(d.speakers))
					ma += a2i.P10 / float64(len(d.speakers))
					wi, wa = min(wi, i2a.P10), min(wa, a2i.P10)
				}
				fmt.Fprintf(&sb, "| %s | %d | %.3f | %.3f | %.3f | %.3f |\n", m, n, mi, wi, ma, wa)
			}
		}
		fmt.Print(sb.String())

		img, txt := loadCOCO(b, "features_clip.npy")
		_, rtxt := loadCOCO(b, "features_clip_random.npy")
		sb.Reset()
		sb.WriteString("\n| source -> CLIP image | method | 100 pairs R@1 / R@10 | 200 | 400 |\n|---|---|---|---|---|\n")
		for _, src := range []struct {
			name string
			x    [][]float32
		}{{"random-CLIP text", rtxt}, {"CLIP text", txt}} {
			for _, m := range append([]Method{"baseline"}, Methods...) {
				fmt.Fprintf(&sb, "| %s | %s |", src.name, m)
				for _, n := range []int{100, 200, 400} {
					s := cocoCurve(b, m, src.x, img, n, Options{})
					fmt.Fprintf(&sb, " %.3f / %.3f |", s.R1, s.R10)
				}
				sb.WriteString("\n")
			}
		}
		fmt.Print(sb.String())
	}
}
