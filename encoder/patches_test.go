package encoder

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Patches rearranges the default layout: each cell's grey values, then its
// histogram, cell after cell.
func TestImagePatches(t *testing.T) {
	grid := make([]float64, 64)
	for i := range grid {
		grid[i] = float64((i*7)%17) / 3
	}
	flat, err := Image{}.EncodeGrid(grid)
	require.NoError(t, err)
	p := Image{Patches: true}
	set, err := p.EncodeGrid(grid)
	require.NoError(t, err)
	require.Equal(t, 24, p.PatchDim())
	require.Len(t, set, 9*24)
	assert.Equal(t, p.Dim(), len(set))
	for cy := range 3 {
		for cx := range 3 {
			v := set[(cy*3+cx)*24 : (cy*3+cx+1)*24]
			for y := range 4 {
				for x := range 4 {
					assert.Equal(t, flat[(cy*2+y)*8+cx*2+x], v[y*4+x], "cell %d,%d pixel %d,%d", cx, cy, x, y)
				}
			}
			assert.Equal(t, flat[64+(cy*3+cx)*8:64+(cy*3+cx+1)*8], v[16:], "cell %d,%d histogram", cx, cy)
		}
	}
	spec := &Spec{Kind: KindImage, Image: &Image{Patches: true}}
	assert.Equal(t, 24, spec.SetDim())
	assert.Equal(t, 0, (&Spec{Kind: KindImage}).SetDim())
	assert.Contains(t, spec.String(), "patches")
	assert.False(t, spec.SameEncoder(&Spec{Kind: KindImage}))
}
