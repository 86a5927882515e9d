package bench

import (
	"fmt"
	"image/color"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var engineColours = map[string]color.RGBA{
	"hnsw":     {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"hnsw-f32": {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"hnswlib":  {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"faiss":    {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"coder":    {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// Plot draws recall@10 against single-thread queries/s (log scale), one
// line per engine and one panel file per dataset, the picture every ANN
// benchmark shows, and writes it as a PNG to path.
func Plot(rep Report, dataset, path string) error {
	p := plot.New()
	p.Title.Text = "recall@10 vs queries/s, one thread: " + dataset
	p.X.Label.Text = "recall@10"
	p.Y.Label.Text = "queries/s"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	curves := map[string]plotter.XYs{}
	for _, r := range rep.Rows {
		if r.Dataset != dataset || r.Allowed != 1 || r.Engine == "flat" {
			continue
		}
		curves[r.Engine] = append(curves[r.Engine], plotter.XY{X: r.Recall, Y: r.QPS})
	}
	names := make([]string, 0, len(curves))
	for n := range curves {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		line, points, err := plotter.NewLinePoints(curves[n])
		if err != nil {
			return err
		}
		c, ok := engineColours[n]
		if !ok {
			c = color.RGBA{A: 0xff}
		}
		line.Color, points.Color = c, c
		p.Add(line, points)
		label := n
		switch n {
		case "hnsw":
			label = "mmdb"
		case "hnsw-f32":
			label = "mmdb, Float32Walk"
		}
		p.Legend.Add(label, line, points)
	}
	if len(names) == 0 {
		return fmt.Errorf("no rows for dataset %q", dataset)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
