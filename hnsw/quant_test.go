package hnsw

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmdb-go/mmdb/modality"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onCodes makes g walk on its byte codes however small it is (a graph
// walks on float32 vectors until they outgrow cacheWalkBytes).
func onCodes(g *HNSW) *HNSW {
	g.outgrown.Store(true)
	return g
}

// compareWalks builds base into a graph that walks on codes and one that
// walks on float32 vectors, and returns the first with the recall@10 of
// each at ef 64 on qs, against exact search.
func compareWalks(t *testing.T, m modality.Metric, base, qs [][]float32) (q8 *HNSW, rq, rf float64) {
	t.Helper()
	dim := len(base[0])
	flat := NewFlat(dim, m)
	fill(t, flat, base)
	q8 = onCodes(NewHNSW(dim, m, Config{Seed: 3}))
	f32 := NewHNSW(dim, m, Config{Seed: 3, Float32Walk: true})
	fill(t, q8, base)
	fill(t, f32, base)
	require.NotNil(t, q8.rows, "codes kept by default")
	require.Nil(t, f32.rows, "no codes under Float32Walk")
	rq = recallAt(q8, flat, qs, 10, SearchOptions{Ef: 64})
	rf = recallAt(f32, flat, qs, 10, SearchOptions{Ef: 64})
	t.Logf("recall@10 at ef 64: codes %.3f, float32 %.3f", rq, rf)
	return q8, rq, rf
}

// A search that walks on codes still returns exact distances, closest
// first, and finds what a float32 walk finds, under every metric.
func TestQuantizedWalk(t *testing.T) {
	const dim, n = 48, 3000
	data := clustered(n+60, dim, 40, 11)
	r := rand.New(rand.NewPCG(8, 8))
	for _, m := range []modality.Metric{modality.Cosine, modality.Dot, modality.L2} {
		t.Run(m.String(), func(t *testing.T) {
			vecs := data
			if m != modality.Cosine {
				// Unnormalised, with a per-vector scale and offset, like
				// SIFT's counts or unnormalised dot-product embeddings.
				vecs = make([][]float32, len(data))
				for i, v := range data {
					s, o := 1+10*r.Float32(), 5*r.Float32()
					vecs[i] = make([]float32, dim)
					for j := range v {
						vecs[i][j] = s*v[j] + o
					}
				}
			}
			base, qs := vecs[:n], vecs[n:]
			q8, rq, rf := compareWalks(t, m, base, qs)
			for _, q := range qs {
				res := q8.Search(q, 10, SearchOptions{Ef: 64})
				require.Len(t, res, 10)
				for i, x := range res {
					v, ok := q8.Vector(x.ID)
					require.True(t, ok)
					want := m.Distance(q, v)
					assert.InDelta(t, want, x.Dist, 1e-5*(1+math.Abs(float64(want))), "distances are exact")
					if i > 0 {
						assert.LessOrEqual(t, res[i-1].Dist, x.Dist, "closest first")
					}
				}
			}
			if m != modality.Dot {
				// Inner product on unnormalised vectors is hard for
				// any graph (0.25-0.28 here either way): there the codes are
				// only held to the float32 walk.
				assert.GreaterOrEqual(t, rq, 0.95)
			}
			assert.GreaterOrEqual(t, rq, rf-0.02)
		})
	}
}

// Rows round-trip through Save and Load (saved since version 2), and the loaded
// graph answers exactly as the saved one did.
func TestRowsRoundTrip(t *testing.T) {
	data := clustered(2050, 32, 20, 13)
	for _, f32 := range []bool{false, true} {
		g := NewHNSW(32, modality.Cosine, Config{Seed: 5, Float32Walk: f32})
		fill(t, g, data[:2000])
		var buf bytes.Buffer
		require.NoError(t, g.Save(&buf))
		back := NewHNSW(32, modality.Cosine, Config{Float32Walk: f32})
		require.NoError(t, back.Load(&buf))
		assert.Equal(t, f32, back.rows == nil)
		if !f32 {
			used := back.slotOf.len()
			assert.Equal(t, g.rows[:used*g.rowSize], back.rows[:used*back.rowSize])
		}
		for _, q := range data[2000:] {
			assert.Equal(t, g.Search(q, 10, SearchOptions{}), back.Search(q, 10, SearchOptions{}))
		}
	}
}

// A constant vector quantizes to step 0; its distance is still right.
func TestQuantizedConstantVector(t *testing.T) {
	g := NewHNSW(4, modality.L2, Config{Seed: 1})
	require.NoError(t, g.Add(1, []float32{3, 3, 3, 3}))
	require.NoError(t, g.Add(2, []float32{0, 0, 0, 0}))
	require.NoError(t, g.Add(3, []float32{1, 2, 3, 4}))
	res := g.Search([]float32{3, 3, 3, 3.5}, 3, SearchOptions{})
	require.Len(t, res, 3)
	assert.Equal(t, uint32(1), res[0].ID)
	assert.InDelta(t, 0.25, res[0].Dist, 1e-6)
	qq := g.searchQuery([]float32{3, 3, 3, 3.5}, true, &searcher{})
	for _, s := range []uint32{0, 1, 2} {
		assert.InDelta(t, g.dist(qq.v, g.vec(s)), g.qdist(&qq, s), 0.05, "slot %d: approximate distance", s)
	}
}

// Data far from the origin: components of 1e4 plus a spread of about 1,
// with a different offset per dimension. Quantized relative to the origin,
// each vector's byte scale would span the offsets and L2 from norms would
// cancel numbers of size 1e10; relative to the graph's centre, the walk
// finds what the float32 walk finds.
func TestQuantizedWalkFarFromOrigin(t *testing.T) {
	const dim, n = 32, 2000
	data := clustered(n+50, dim, 20, 17)
	for _, m := range []modality.Metric{modality.L2, modality.Dot} {
		t.Run(m.String(), func(t *testing.T) {
			vecs := make([][]float32, len(data))
			for i, v := range data {
				vecs[i] = make([]float32, dim)
				for j := range v {
					vecs[i][j] = 1e4*float32(1+j%3) + v[j]
				}
			}
			_, rq, rf := compareWalks(t, m, vecs[:n], vecs[n:])
			assert.GreaterOrEqual(t, rq, rf-0.02)
			if m == modality.L2 {
				assert.GreaterOrEqual(t, rq, 0.95)
			}
		})
	}
}

// The centre is saved (format version 2) and a version 1 file, which has
// none, still loads, with slot 0's vector as its centre.
func TestCentreSavedAndVersion1Loads(t *testing.T) {
	data := clustered(520, 16, 10, 19)
	g := NewHNSW(16, modality.L2, Config{Seed: 2})
	fill(t, g, data[:500])
	require.Equal(t, data[0], g.centre, "the first vector is the centre")
	var buf bytes.Buffer
	require.NoError(t, g.Save(&buf))
	back := NewHNSW(16, modality.L2, Config{})
	require.NoError(t, back.Load(bytes.NewReader(buf.Bytes())))
	assert.Equal(t, g.centre, back.centre)

	// The same graph written as version 1: no centre, no rows.
	g.centre = nil
	var v1 bytes.Buffer
	require.NoError(t, g.Save(&v1))
	b := v1.Bytes()[:v1.Len()-4]
	b = b[:len(b)-4-500*g.rowSize]
	binary.LittleEndian.PutUint32(b[4:], 1)
	// Drop the centre's length word (0), right after the free list.
	off := 4 + 4 + 4*5 + 8 + 8 + 4 + 4*len(g.free)
	require.Equal(t, uint32(0), binary.LittleEndian.Uint32(b[off:]))
	b = append(b[:off:off], b[off+4:]...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	old := NewHNSW(16, modality.L2, Config{})
	require.NoError(t, old.Load(bytes.NewReader(b)))
	assert.Equal(t, old.vec(0), old.centre)
	for _, q := range data[500:] {
		assert.Equal(t, back.Search(q, 10, SearchOptions{}), old.Search(q, 10, SearchOptions{}))
	}

	// A newer version is refused by name.
	binary.LittleEndian.PutUint32(b[4:], 3)
	err := NewHNSW(16, modality.L2, Config{}).Load(bytes.NewReader(b))
	assert.ErrorIs(t, err, ErrFormat)
}

// Rows are saved (version 2) and loaded as they are, so Load recomputes
// nothing; a row with a NaN scale is refused; a graph saved without rows
// (Float32Walk) gets them computed when loaded into one that walks on codes.
func TestRowsSaved(t *testing.T) {
	data := clustered(420, 16, 8, 23)
	g := NewHNSW(16, modality.Cosine, Config{Seed: 4})
	fill(t, g, data[:400])
	var buf bytes.Buffer
	require.NoError(t, g.Save(&buf))
	saved := buf.Bytes()

	back := NewHNSW(16, modality.Cosine, Config{})
	require.NoError(t, back.Load(bytes.NewReader(saved)))
	assert.Equal(t, g.rows[:400*g.rowSize], back.rows[:400*back.rowSize])

	// Slot 7's step (the second float of its scale, at the end of its
	// row) becomes NaN; the CRC is recomputed so the check is what fails.
	bad := append([]byte(nil), saved[:len(saved)-4]...)
	rowsAt := len(bad) - 400*g.rowSize
	stepAt := rowsAt + 7*g.rowSize + g.rowSize - 12 + 4
	binary.LittleEndian.PutUint32(bad[stepAt:], math.Float32bits(float32(math.NaN())))
	bad = binary.LittleEndian.AppendUint32(bad, crc32.Checksum(bad, castagnoli))
	err := NewHNSW(16, modality.Cosine, Config{}).Load(bytes.NewReader(bad))
	assert.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), "slot 7")

	// Saved under Float32Walk (no rows), loaded to walk on codes.
	f := NewHNSW(16, modality.Cosine, Config{Seed: 4, Float32Walk: true})
	fill(t, f, data[:400])
	buf.Reset()
	require.NoError(t, f.Save(&buf))
	q8 := NewHNSW(16, modality.Cosine, Config{})
	require.NoError(t, q8.Load(&buf))
	require.NotNil(t, q8.rows)
	onCodes(q8)
	assert.Equal(t, q8.vec(0), q8.centre)
	flat := NewFlat(16, modality.Cosine)
	fill(t, flat, data[:400])
	assert.GreaterOrEqual(t, recallAt(q8, flat, data[400:], 10, SearchOptions{Ef: 64}), 0.95)
}

// A bytes.Buffer is parsed in place (how the database loads a checkpoint):
// Load consumes it and keeps no reference to its bytes, so scribbling over
// them afterwards changes nothing.
func TestLoadFromBufferKeepsNoReference(t *testing.T) {
	data := clustered(330, 16, 6, 29)
	for _, f32 := range []bool{false, true} {
		g := NewHNSW(16, modality.L2, Config{Seed: 6, Float32Walk: f32})
		fill(t, g, data[:300])
		var saved bytes.Buffer
		require.NoError(t, g.Save(&saved))
		raw := saved.Bytes()
		in := bytes.NewBuffer(raw)
		back := NewHNSW(16, modality.L2, Config{Float32Walk: f32})
		require.NoError(t, back.Load(in))
		assert.Zero(t, in.Len(), "the buffer is consumed")
		for i := range raw {
			raw[i] = 0xff
		}
		for _, q := range data[300:] {
			assert.Equal(t, g.Search(q, 10, SearchOptions{}), back.Search(q, 10, SearchOptions{}))
		}
	}
}

// A graph walks on float32 vectors while they fit in cacheWalkBytes, and
// on its codes from the insert that outgrows it on, Save and Load
// included; either way the answers are exact distances, closest first.
func TestWalkSwitchesToCodes(t *testing.T) {
	const dim = 1024
	n := cacheWalkBytes / (4 * dim) // exactly the threshold
	data := clustered(n+1+20, dim, 16, 43)
	g := NewHNSW(dim, modality.L2, Config{Seed: 8, EfConstruction: 64})
	fill(t, g, data[:n])
	require.NotNil(t, g.rows, "codes are kept all along")
	assert.False(t, g.walksOnCodes(), "%d x %d float32 fit", n, dim)
	q := data[n+1]
	small := g.Search(q, 10, SearchOptions{Ef: 64})
	require.NoError(t, g.Add(uint32(n), data[n]))
	assert.True(t, g.walksOnCodes(), "one more vector outgrows the threshold")
	big := g.Search(q, 10, SearchOptions{Ef: 64})
	require.Len(t, big, 10)
	for i, r := range big {
		v, ok := g.Vector(r.ID)
		require.True(t, ok)
		assert.InDelta(t, modality.L2.Distance(q, v), r.Dist, 1e-3, "exact distance")
		if i > 0 {
			assert.LessOrEqual(t, big[i-1].Dist, r.Dist, "closest first")
		}
	}
	assert.Equal(t, small[0], big[0], "the nearest of both walks")

	var buf bytes.Buffer
	require.NoError(t, g.Save(&buf))
	back := NewHNSW(dim, modality.L2, Config{})
	require.NoError(t, back.Load(&buf))
	assert.True(t, back.walksOnCodes(), "a loaded graph knows its size")
	assert.Equal(t, big, back.Search(q, 10, SearchOptions{Ef: 64}))

	// Loaded over, the big graph takes the small one's walk.
	small1 := NewHNSW(dim, modality.L2, Config{Seed: 8, EfConstruction: 64})
	fill(t, small1, data[:50])
	buf.Reset()
	require.NoError(t, small1.Save(&buf))
	require.NoError(t, back.Load(&buf))
	assert.False(t, back.walksOnCodes(), "a graph loaded over a big one walks on float32 again")
}

// A distance is the same float whichever path computed it: the float32
// walk (four rows a kernel call), the walk on codes (re-scored one row at
// a time), the exact scan (batched) and the metric itself. Page cursors
// compare distances from different paths, so an ulp of difference could
// repeat or skip an item at a page boundary.
func TestDistancesAgreeAcrossPaths(t *testing.T) {
	for _, dim := range []int{37, 64} {
		// 403 items: the exact scan's last batch is 19 slots, so four-row
		// calls, a padded call and a single one all score some.
		data := clustered(423, dim, 8, 47)
		for _, m := range []modality.Metric{modality.L2, modality.Cosine, modality.Dot} {
			t.Run(fmt.Sprintf("%s/%d", m, dim), func(t *testing.T) {
				g := NewHNSW(dim, m, Config{Seed: 9})
				fill(t, g, data[:403])
				require.False(t, g.walksOnCodes())
				var buf bytes.Buffer
				require.NoError(t, g.Save(&buf))
				codes := NewHNSW(dim, m, Config{})
				require.NoError(t, codes.Load(&buf))
				onCodes(codes)
				for _, q := range data[403:] {
					// The codes themselves: the batched scores agree with
					// one-row ones up to rounding.
					cq := codes.searchQuery(q, true, &searcher{})
					slots := []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
					ds := make([]float32, len(slots))
					codes.qdists(&cq, slots, ds)
					for i, s := range slots {
						one := codes.qdist(&cq, s)
						assert.InDelta(t, one, ds[i], 1e-4*(1+math.Abs(float64(one))), "codes, slot %d", s)
						assert.InDelta(t, m.Distance(q, codes.vec(s)), ds[i], 0.1*(1+math.Abs(float64(one))), "codes approximate the distance, slot %d", s)
					}
					paths := map[string][]Result{
						"float32 walk": g.Search(q, 10, SearchOptions{Ef: 40}),
						"codes walk":   codes.Search(q, 10, SearchOptions{Ef: 40}),
						"exact scan":   g.Search(q, 10, SearchOptions{Exact: true}),
					}
					for name, res := range paths {
						require.NotEmpty(t, res, name)
						for _, r := range res {
							v, ok := g.Vector(r.ID)
							require.True(t, ok)
							assert.Equal(t, m.Distance(q, v), r.Dist, "%s: item %d", name, r.ID)
						}
					}
				}
			})
		}
	}
}
