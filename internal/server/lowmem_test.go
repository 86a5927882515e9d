package server

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mmdb-go/mmdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server whose databases open with Options.LowMemory (mmdb serve
// --low-memory) keeps the vectors in the file and answers searches as the
// default one does, with the same scores.
func TestLowMemoryServe(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var pts []string
	for i := range 300 {
		pts = append(pts, fmt.Sprintf(`{"id": %d, "vector": {"image": [%g, %g, %g, %g]}}`, i+1, r.Float64(), r.Float64(), r.Float64(), r.Float64()))
	}
	upsert := `{"points": [` + strings.Join(pts, ",") + `]}`
	var answers [2][]any
	for i, low := range []bool{false, true} {
		s, h := newFolder(t, Config{Open: mmdb.Options{LowMemory: low}})
		code, env := call(t, h, "PUT", "/collections/c/points?wait=true", upsert)
		require.Equal(t, 200, code, "%v", env)
		s.mu.RLock()
		db := s.cols["c"].db
		s.mu.RUnlock()
		st, err := db.Stats()
		require.NoError(t, err)
		for _, m := range st.Modalities {
			assert.Equal(t, !low || m.IsMulti(), m.VectorsInMemory, "%s, low memory %v", m.Name, low)
		}
		code, env = call(t, h, "GET", "/collections/c", "")
		require.Equal(t, 200, code, "%v", env)
		params := env["result"].(map[string]any)["config"].(map[string]any)["params"].(map[string]any)
		assert.Equal(t, low, params["vectors"].(map[string]any)["image"].(map[string]any)["on_disk"], "Qdrant's on_disk")
		for _, exact := range []bool{false, true} {
			body := fmt.Sprintf(`{"vector": {"name": "image", "vector": [0.3, 0.9, 0.1, 0.5]}, "limit": 5, "params": {"exact": %v}}`, exact)
			code, env = call(t, h, "POST", "/collections/c/points/search", body)
			require.Equal(t, 200, code, "%v", env)
			require.Len(t, env["result"], 5)
			answers[i] = append(answers[i], env["result"])
		}
	}
	assert.Equal(t, answers[0], answers[1])
}
