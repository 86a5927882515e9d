package mmdb

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb/align"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Found in review (issue 19): precision@K with fewer targets than K was
// divided by K.
func TestEvaluatePrecisionTinyGallery(t *testing.T) {
	db, _ := openTest(t,
		Modality{Name: "a", Dim: 2, Metric: Cosine, Space: "s"},
		Modality{Name: "b", Dim: 2, Metric: Cosine, Space: "s"})
	for i := range 3 {
		v := []float32{float32(math.Cos(float64(i))), float32(math.Sin(float64(i)))}
		require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprint(i), Attrs: map[string]any{"c": "x"}, Vectors: map[string][]float32{"a": v, "b": v}}))
	}
	rep, err := db.Evaluate(ctx, "a", "b", &EvalOptions{Label: "c"})
	require.NoError(t, err)
	assert.InDelta(t, 1.0, rep.Precision[10], 1e-9, "every target has the query's label")
	assert.InDelta(t, 1.0, rep.Precision[1], 1e-9)
}

// Found in review: an empty list silently became a class of its own; it
// is no label, like a missing attribute.
func TestLabelEmptyListIsNoLabel(t *testing.T) {
	db, _ := openTest(t,
		Modality{Name: "a", Dim: 2, Metric: Cosine, Space: "s"},
		Modality{Name: "b", Dim: 2, Metric: Cosine, Space: "s"})
	for i, lab := range []any{"x", "y", []string{}} {
		v := []float32{1, float32(i)}
		require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprint("i", i), Attrs: map[string]any{"c": lab}, Vectors: map[string][]float32{"a": v, "b": v}}))
	}
	_, err := db.Evaluate(ctx, "a", "b", &EvalOptions{Label: "c"})
	require.ErrorIs(t, err, ErrInvalidQuery)
	assert.Contains(t, err.Error(), `item "i2" has no "c" attribute`)
}

// Found in review: under a Dot probe modality a zero probe vector made the
// pivot's weights NaN (0/0), so Search failed and Evaluate failed whole;
// and Search picked the pivot's neighbours by dot product while Align's
// reference picked them by cosine. Both now pick by the modality's own
// metric (the largest dot products) and weigh by cosine, a zero vector
// having cosine 0.
func TestDotPivotZeroVectorAndNeighbours(t *testing.T) {
	db, _ := openTest(t,
		Modality{Name: "a", Dim: 3, Metric: Dot, Space: "sa"},
		Modality{Name: "b", Dim: 3, Metric: Cosine, Space: "sb"})
	for i := range 20 {
		v := []float32{float32(i%5) + 1, float32(i % 3), 1}
		if i == 7 {
			v = []float32{0, 0, 0}
		}
		require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"a": v, "b": {1, float32(i), 2}}}))
	}
	hits, err := db.Search(ctx, Query{Target: "b", Probes: []Probe{{Modality: "a", Vector: []float32{0, 0, 0}}}})
	require.NoError(t, err)
	assert.NotEmpty(t, hits)
	rep, err := db.Evaluate(ctx, "a", "b", nil)
	require.NoError(t, err)
	assert.Equal(t, 20, rep.N)

	db2, _ := openTest(t,
		Modality{Name: "a", Dim: 2, Metric: Dot, Space: "sa"},
		Modality{Name: "b", Dim: 2, Metric: Cosine, Space: "sb"})
	require.NoError(t, db2.Put(ctx, Item{ID: "A", Vectors: map[string][]float32{"a": {1, 0}, "b": {1, 0}}}))
	for i := range 12 {
		require.NoError(t, db2.Put(ctx, Item{ID: fmt.Sprint("B", i), Vectors: map[string][]float32{"a": {10, 10 + float32(i)*0.01}, "b": {0, 1}}}))
	}
	hits, err = db2.Search(ctx, Query{Target: "b", K: 1, Probes: []Probe{{Modality: "a", Vector: []float32{1, 0}}}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(hits[0].ID, "B"), "the ten largest dot products are the Bs: %v", hits)
}

// Found in review: a calibration measured through a map that another
// writer replaced meanwhile was stored for the new map.
func TestCalibrateRefusesAReplacedAlignment(t *testing.T) {
	var db *DB
	var swapped bool
	var swapErr error
	b := Alignment{From: "a", To: "b", W: [][]float32{{0, 1, 0}, {1, 0, 0}, {0, 0, 1}}}
	path := filepath.Join(t.TempDir(), "x.mmdb")
	var err error
	db, err = Open(path, &Options{NoSync: true, Progress: func(stage string, done, total int) {
		if !swapped && strings.HasPrefix(stage, "calibrate") {
			swapped = true
			swapErr = db.SetAlignment(b)
		}
	}})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.DefineModality(Modality{Name: "a", Dim: 3, Metric: Cosine, Space: "sa"}))
	require.NoError(t, db.DefineModality(Modality{Name: "b", Dim: 3, Metric: Cosine, Space: "sb"}))
	for i := range 60 {
		v := []float32{float32(math.Sin(float64(i))), float32(math.Cos(float64(3 * i))), 1}
		require.NoError(t, db.Put(ctx, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"a": v, "b": v}}))
	}
	require.NoError(t, db.SetAlignment(Alignment{From: "a", To: "b", W: [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}))
	_, err = db.Calibrate(ctx, "a", "b", &CalibrateOptions{Alpha: 0.5, Centre: true, StoreAny: true})
	require.True(t, swapped)
	require.NoError(t, swapErr)
	require.ErrorIs(t, err, ErrChanged)
	assert.Nil(t, db.st.Load().calibs[[2]string{"a", "b"}], "a calibration measured through the replaced map was stored")
}

// Found in review: an alignment replaced while Evaluate ran gave a report
// mixing the two maps, without ErrChanged.
func TestEvaluateRefusesAReplacedAlignment(t *testing.T) {
	const d, n = 8, 1500
	db, _ := openTest(t,
		Modality{Name: "a", Dim: d, Metric: Cosine, Space: "sa"},
		Modality{Name: "b", Dim: d, Metric: Cosine, Space: "sb"})
	var items []Item
	for i := range n {
		v := spread(i, d)
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"a": v, "b": v}})
	}
	require.NoError(t, db.Put(ctx, items...))
	id, swap := make([][]float32, d), make([][]float32, d)
	for i := range d {
		id[i], swap[i] = make([]float32, d), make([]float32, d)
		id[i][i], swap[i][(i+3)%d] = 1, 1
	}
	require.NoError(t, db.SetAlignment(Alignment{From: "a", To: "b", W: id}))
	pureA, err := db.Evaluate(ctx, "a", "b", nil)
	require.NoError(t, err)
	require.NoError(t, db.SetAlignment(Alignment{From: "a", To: "b", W: swap}))
	pureB, err := db.Evaluate(ctx, "a", "b", nil)
	require.NoError(t, err)
	require.NotEqual(t, pureA.Recall[1], pureB.Recall[1])
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			w := id
			if k%2 == 1 {
				w = swap
			}
			_ = db.SetAlignment(Alignment{From: "a", To: "b", W: w})
		}
	}()
	changed := 0
	for range 10 {
		r, err := db.Evaluate(ctx, "a", "b", nil)
		if err != nil {
			require.ErrorIs(t, err, ErrChanged)
			changed++
			continue
		}
		assert.Contains(t, []float64{pureA.Recall[1], pureB.Recall[1]}, r.Recall[1], "a report mixing two maps")
	}
	close(stop)
	<-done
	t.Logf("%d of 10 evaluations saw the map change and said so", changed)
}

// Found in review: Align and Evaluate by a label read the labels in
// another snapshot than the vectors, so items deleted and stored again
// meanwhile gave "item \"\" has no label" or a false "has no label".
func TestLabelWhileItemsChange(t *testing.T) {
	const d, n = 4, 60
	db, _ := openTest(t,
		Modality{Name: "a", Dim: d, Metric: Cosine, Space: "sa"},
		Modality{Name: "b", Dim: d, Metric: Cosine, Space: "sb"})
	mk := func(i int) Item {
		v := spread(i, d)
		return Item{ID: fmt.Sprint(i), Attrs: map[string]any{"c": int64(i % 3)}, Vectors: map[string][]float32{"a": v, "b": v}}
	}
	for i := range n {
		require.NoError(t, db.Put(ctx, mk(i)))
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range 10 {
				_ = db.Delete(ctx, fmt.Sprint(i))
				_ = db.Put(ctx, mk(i))
			}
		}
	}()
	for range 50 {
		_, err := db.Align(ctx, "a", "b", &AlignOptions{Method: align.Procrustes, Label: "c", StoreAny: true})
		if err != nil {
			assert.NotContains(t, err.Error(), "attribute", "align by label: %v", err)
		}
		_, err = db.Evaluate(ctx, "a", "b", &EvalOptions{Label: "c"})
		if err != nil {
			require.ErrorIs(t, err, ErrChanged, "evaluate by label: %v", err)
		}
	}
	close(stop)
	<-done
}

// Found in the second review: an ALIGN statement that stored nothing lost
// the report that says why; ALIGN ... BY <attr> aligns by a label.
func TestAlignStatementKeepsTheReport(t *testing.T) {
	const d, n = 6, 200
	db, _ := openTest(t,
		Modality{Name: "a", Dim: d, Metric: Cosine, Space: "sa"},
		Modality{Name: "b", Dim: d, Metric: Cosine, Space: "sb"})
	var items []Item
	for i := range n {
		a, b := spread(i, d), make([]float32, d)
		for j := range d {
			b[j] = float32(math.Cos(float64(i*d+j) * 2.71))
		}
		items = append(items, Item{ID: fmt.Sprint(i), Attrs: map[string]any{"c": int64(i % 4)}, Vectors: map[string][]float32{"a": a, "b": b}})
	}
	require.NoError(t, db.Put(ctx, items...))
	res, err := db.Query(ctx, "ALIGN a TO b USING ridge")
	require.ErrorIs(t, err, ErrNoGain)
	require.NotNil(t, res)
	require.NotNil(t, res.Report)
	assert.Contains(t, res.String(), "no map kept")
	res, err = db.Query(ctx, "ALIGN a TO b USING ridge BY c")
	if err != nil {
		require.ErrorIs(t, err, ErrNoGain)
	}
	require.NotNil(t, res.Report)
	assert.True(t, res.Report.ByClass, "BY c scores by the label")
	// Stored, the map keeps its label, and Evaluate's cross-fit refits by it.
	_, err = db.Query(ctx, "ALIGN a TO b USING ridge BY c FORCE")
	require.NoError(t, err)
	assert.Equal(t, "c", db.st.Load().aligns[[2]string{"a", "b"}].Label)
	ev, err := db.Evaluate(ctx, "a", "b", nil)
	require.NoError(t, err)
	assert.Contains(t, ev.HeldOut, "refitted in 5 folds")
}

// Found in the second review: Close returned at once but a running Align
// fitted on to the end before failing. Closing now cancels it: it stops
// with ErrClosed (Calibrate and Evaluate too).
func TestCloseStopsAlign(t *testing.T) {
	const d, n = 32, 400
	var db *DB
	closed := make(chan struct{})
	path := filepath.Join(t.TempDir(), "c.mmdb")
	var err error
	calls := 0
	db, err = Open(path, &Options{NoSync: true, Progress: func(stage string, done, total int) {
		if strings.HasPrefix(stage, "align") {
			if calls++; calls == 1 {
				go func() { db.Close(); close(closed) }()
				<-closed // the next fit starts after Close began
			}
		}
	}})
	require.NoError(t, err)
	require.NoError(t, db.DefineModality(Modality{Name: "a", Dim: d, Metric: Cosine, Space: "sa"}))
	require.NoError(t, db.DefineModality(Modality{Name: "b", Dim: d, Metric: Cosine, Space: "sb"}))
	var items []Item
	for i := range n {
		a, b := spread(i, d), make([]float32, d)
		for j := range d {
			b[j] = a[(j+1)%d] + 0.1*float32(math.Cos(float64(i+j)))
		}
		items = append(items, Item{ID: fmt.Sprint(i), Vectors: map[string][]float32{"a": a, "b": b}})
	}
	require.NoError(t, db.Put(ctx, items...))
	_, err = db.Align(ctx, "a", "b", nil)
	require.ErrorIs(t, err, ErrClosed)
	assert.Contains(t, err.Error(), "align a->b")
	assert.Equal(t, 1, calls, "Align went on fitting after Close")
}

// spread is item i's deterministic d-dimensional test vector: the items'
// vectors point every which way.
func spread(i, d int) []float32 {
	v := make([]float32, d)
	for j := range v {
		v[j] = float32(math.Sin(float64(i*d+j) * 1.37))
	}
	return v
}
