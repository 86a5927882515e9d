package encoder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- a fake /v1/embeddings server ----------------------------------------------

const oaModel = "test-embed-1"

// oaVec is a deterministic pseudo-embedding of payload: SHA-256 of the kind,
// a block counter and the payload, read as values in [-1, 1).
func oaVec(kind string, payload []byte, dim int) []float32 {
	v := make([]float32, dim)
	var block [sha256.Size]byte
	for i := range v {
		if i%8 == 0 {
			h := sha256.New()
			h.Write([]byte(kind))
			h.Write(binary.LittleEndian.AppendUint32(nil, uint32(i/8)))
			h.Write(payload)
			h.Sum(block[:0])
		}
		u := binary.LittleEndian.Uint32(block[(i%8)*4:])
		v[i] = float32(float64(u)/(1<<32)*2 - 1)
	}
	return v
}

func oaTextVec(s string, dim int) []float32  { return oaVec("text", []byte(s), dim) }
func oaImageVec(b []byte, dim int) []float32 { return oaVec("image", b, dim) }
func oaWant(x Input, dim int) []float32 {
	if x.Data != nil {
		return oaImageVec(x.Data, dim)
	}
	return oaTextVec(x.Text, dim)
}

// oaImage is an image input as the server decoded it from its data URL.
type oaImage struct {
	MIME string
	Data []byte
}

// oaSeen is one request as the fake server received it.
type oaSeen struct {
	At          time.Time
	Method      string
	Path        string
	Auth        string
	HasAuth     bool
	ContentType string
	Fields      map[string]json.RawMessage // the body's top-level keys
	Model       string
	Dimensions  int
	Format      string
	Inputs      []any // string or oaImage
	Err         string
}

type oaDatum struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type oaUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type oaResponse struct {
	Object string    `json:"object"`
	Data   []oaDatum `json:"data"`
	Model  string    `json:"model"`
	Usage  oaUsage   `json:"usage"`
}

// oaServer answers POST {path} like OpenAI's embeddings endpoint. Vectors
// are oaTextVec / oaImageVec of the inputs, so a test can tell which input
// each vector belongs to.
type oaServer struct {
	srv *httptest.Server

	path             string // default "/v1/embeddings"
	key              string // if set, requests must carry "Bearer "+key
	dim              int    // default vector length; default 8
	shuffle          bool   // answer the data entries out of order
	ignoreDimensions bool   // answer dim values whatever "dimensions" asks
	forceBase64      bool   // answer base64 whatever "encoding_format" asks
	// before, if set, sees request n (from 1) before the faithful answer
	// and may answer instead (returning true).
	before func(n int, w http.ResponseWriter, r *http.Request) bool
	// mangle, if set, edits the faithful answer to request n.
	mangle func(n int, resp *oaResponse)

	n    atomic.Int64
	mu   sync.Mutex
	seen []oaSeen
}

func newOAServer(t *testing.T, configure ...func(*oaServer)) *oaServer {
	t.Helper()
	s := &oaServer{path: "/v1/embeddings", dim: 8}
	for _, f := range configure {
		f(s)
	}
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// client is an OpenAI client for s with fast retries.
func (s *oaServer) client() *OpenAI {
	return &OpenAI{
		BaseURL: s.srv.URL,
		Model:   oaModel,
		Client:  s.srv.Client(),
		Timeout: 5 * time.Second,
		Backoff: time.Millisecond,
	}
}

func (s *oaServer) attempts() int { return int(s.n.Load()) }

func (s *oaServer) requests() []oaSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func oaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil},
	})
}

func oaParseDataURL(u string) (oaImage, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return oaImage{}, fmt.Errorf("not a data URL: %.40q", u)
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return oaImage{}, fmt.Errorf("data URL without a comma")
	}
	mt, ok := strings.CutSuffix(meta, ";base64")
	if !ok {
		return oaImage{}, fmt.Errorf("data URL is not base64: %q", meta)
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return oaImage{}, fmt.Errorf("data URL payload: %v", err)
	}
	return oaImage{MIME: mt, Data: data}, nil
}

// parse fills seen from the body; a non-nil error is the 400 message.
func (s *oaServer) parse(body []byte, seen *oaSeen) error {
	if err := json.Unmarshal(body, &seen.Fields); err != nil {
		return fmt.Errorf("We could not parse the JSON body of your request: %v", err)
	}
	var req struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Dimensions *int            `json:"dimensions"`
		Format     string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("invalid request: %v", err)
	}
	seen.Model, seen.Format = req.Model, req.Format
	if req.Model == "" {
		return fmt.Errorf("you must provide a model parameter")
	}
	if req.Dimensions != nil {
		if *req.Dimensions <= 0 {
			return fmt.Errorf("'dimensions' must be positive")
		}
		seen.Dimensions = *req.Dimensions
	}
	switch req.Format {
	case "", "float", "base64":
	default:
		return fmt.Errorf("'encoding_format' must be float or base64, not %q", req.Format)
	}
	var items []json.RawMessage
	if len(req.Input) > 0 && req.Input[0] == '"' {
		items = []json.RawMessage{req.Input}
	} else if err := json.Unmarshal(req.Input, &items); err != nil || len(items) == 0 {
		return fmt.Errorf("'input' must be a string or a non-empty array")
	}
	for i, it := range items {
		var str string
		if json.Unmarshal(it, &str) == nil {
			if str == "" {
				return fmt.Errorf("'$.input[%d]' is an empty string", i)
			}
			seen.Inputs = append(seen.Inputs, str)
			continue
		}
		var obj map[string]string
		if err := json.Unmarshal(it, &obj); err != nil || len(obj) != 1 || obj["image"] == "" {
			return fmt.Errorf("'$.input[%d]' is neither a string nor an {\"image\": ...} object", i)
		}
		img, err := oaParseDataURL(obj["image"])
		if err != nil {
			return fmt.Errorf("'$.input[%d].image': %v", i, err)
		}
		seen.Inputs = append(seen.Inputs, img)
	}
	return nil
}

func (s *oaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.n.Add(1))
	body, _ := io.ReadAll(r.Body)
	auth, hasAuth := r.Header["Authorization"]
	seen := oaSeen{
		At:          time.Now(),
		Method:      r.Method,
		Path:        r.URL.Path,
		HasAuth:     hasAuth,
		ContentType: r.Header.Get("Content-Type"),
	}
	if hasAuth {
		seen.Auth = auth[0]
	}
	perr := s.parse(body, &seen)
	if perr != nil {
		seen.Err = perr.Error()
	}
	s.mu.Lock()
	s.seen = append(s.seen, seen)
	s.mu.Unlock()

	if s.before != nil && s.before(n, w, r) {
		return
	}
	switch mt, _, _ := mime.ParseMediaType(seen.ContentType); {
	case r.Method != http.MethodPost:
		oaError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method not allowed: "+r.Method)
		return
	case r.URL.Path != s.path:
		oaError(w, http.StatusNotFound, "invalid_request_error", "Unknown request URL: POST "+r.URL.Path)
		return
	case s.key != "" && seen.Auth != "Bearer "+s.key:
		oaError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided")
		return
	case mt != "application/json":
		oaError(w, http.StatusUnsupportedMediaType, "invalid_request_error", "Content-Type must be application/json, not "+seen.ContentType)
		return
	case perr != nil:
		oaError(w, http.StatusBadRequest, "invalid_request_error", perr.Error())
		return
	}

	dim := s.dim
	if seen.Dimensions > 0 && !s.ignoreDimensions {
		dim = seen.Dimensions
	}
	resp := oaResponse{Object: "list", Model: seen.Model}
	for i, x := range seen.Inputs {
		var v []float32
		switch x := x.(type) {
		case string:
			v = oaTextVec(x, dim)
			resp.Usage.PromptTokens += len(strings.Fields(x))
		case oaImage:
			v = oaImageVec(x.Data, dim)
			resp.Usage.PromptTokens++
		}
		var e any = v
		if seen.Format == "base64" || s.forceBase64 {
			raw := make([]byte, 0, 4*len(v))
			for _, f := range v {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(raw)
		}
		resp.Data = append(resp.Data, oaDatum{Object: "embedding", Index: i, Embedding: e})
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	if s.shuffle && len(resp.Data) > 1 {
		rng := rand.New(rand.NewPCG(uint64(n), uint64(len(resp.Data))))
		rng.Shuffle(len(resp.Data), func(i, j int) { resp.Data[i], resp.Data[j] = resp.Data[j], resp.Data[i] })
		if slices.IsSortedFunc(resp.Data, func(a, b oaDatum) int { return a.Index - b.Index }) {
			slices.Reverse(resp.Data)
		}
	}
	if s.mangle != nil {
		s.mangle(n, &resp)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// --- helpers --------------------------------------------------------------------

func oaTexts(prefix string, n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = Input{Text: fmt.Sprintf("%s number %d", prefix, i)}
	}
	return in
}

func oaPNG(t *testing.T, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x*7) + seed, uint8(y*13) ^ seed, seed, 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func oaJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, nil))
	return b.Bytes()
}

// oaWAV is the start of a WAV file, enough for http.DetectContentType.
func oaWAV() []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x01\x00\x02\x00")
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func requireOAVecs(t *testing.T, in []Input, out [][]float32, dim int) {
	t.Helper()
	require.Len(t, out, len(in))
	for i, x := range in {
		require.Equal(t, oaWant(x, dim), out[i], "vector %d does not belong to input %d", i, i)
	}
}

// failN answers the first k requests with status (and an OpenAI error
// naming the attempt), then lets the faithful server answer.
func failN(k, status int, header ...string) func(int, http.ResponseWriter, *http.Request) bool {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > k {
			return false
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		oaError(w, status, "server_error", fmt.Sprintf("failure on attempt %d", n))
		return true
	}
}

// sleepy holds requests for d (or until the client gives up) before
// answering 500; requests after the first k get the faithful answer.
func sleepy(k int, d time.Duration) func(int, http.ResponseWriter, *http.Request) bool {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > k {
			return false
		}
		select {
		case <-r.Context().Done():
		case <-time.After(d):
		}
		oaError(w, http.StatusInternalServerError, "server_error", "too slow")
		return true
	}
}

// --- order, batching, Dim --------------------------------------------------------

func TestOpenAIEncodeKeepsInputOrderDespiteShuffledAnswer(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.shuffle = true })
	c := s.client()
	in := oaTexts("shuffle", 7)
	in = append(in, Input{Data: oaPNG(t, 4, 4, 1)}, Input{Text: "last"}, Input{Data: oaPNG(t, 3, 5, 9), MIME: "image/png"})

	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
	require.Equal(t, 1, s.attempts())
}

func TestOpenAIBatching(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batch     int
		n         int
		wantSizes []int
	}{
		{"default is 64", 0, 10, []int{10}},
		{"default splits at 64", 0, 130, []int{64, 64, 2}},
		{"negative means default", -2, 10, []int{10}},
		{"one per request", 1, 4, []int{1, 1, 1, 1}},
		{"3 of 10", 3, 10, []int{3, 3, 3, 1}},
		{"exact multiple", 5, 10, []int{5, 5}},
		{"batch equals n", 10, 10, []int{10}},
		{"batch above n", 11, 10, []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.shuffle = true })
			c := s.client()
			c.BatchSize = tc.batch
			in := oaTexts(tc.name, tc.n)

			out, err := c.Encode(context.Background(), in)
			require.NoError(t, err)
			requireOAVecs(t, in, out, 8)

			reqs := s.requests()
			require.Len(t, reqs, len(tc.wantSizes))
			next := 0
			for i, r := range reqs {
				require.Empty(t, r.Err)
				require.Len(t, r.Inputs, tc.wantSizes[i], "request %d", i)
				for _, x := range r.Inputs {
					require.Equal(t, in[next].Text, x, "request %d sent the inputs out of order", i)
					next++
				}
			}
		})
	}
}

func TestOpenAIDim(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.dim = 12 })
	c := s.client()
	assert.Equal(t, 0, c.Dim(), "Dim before the first answer")

	out, err := c.Encode(context.Background(), oaTexts("dim", 3))
	require.NoError(t, err)
	require.Len(t, out[0], 12)
	assert.Equal(t, 12, c.Dim())

	// The request carries no "dimensions" when the option is unset.
	for _, r := range s.requests() {
		assert.NotContains(t, r.Fields, "dimensions")
	}
}

func TestOpenAIDimensionsOption(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.dim = 12 })
	c := s.client()
	c.Dimensions = 5
	assert.Equal(t, 5, c.Dim(), "Dim is Dimensions before any answer")

	in := oaTexts("dimensions", 4)
	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 5)
	assert.Equal(t, 5, c.Dim())

	reqs := s.requests()
	require.Len(t, reqs, 1)
	assert.JSONEq(t, "5", string(reqs[0].Fields["dimensions"]))
	assert.Equal(t, 5, reqs[0].Dimensions)
}

func TestOpenAIDimensionsIgnoredByServer(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.dim = 12; s.ignoreDimensions = true })
	c := s.client()
	c.Dimensions = 5

	out, err := c.Encode(context.Background(), oaTexts("ignored", 2))
	if err == nil {
		require.Len(t, out[0], c.Dim(), "Dim() must be the length of the vectors Encode returns")
	} else {
		require.ErrorIs(t, err, ErrRemote)
	}
}

func TestOpenAIDimensionChangeAcrossBatches(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) {
		s.mangle = func(n int, resp *oaResponse) {
			if n == 2 { // the second batch comes from a model with 7 dimensions
				for i := range resp.Data {
					resp.Data[i].Embedding = resp.Data[i].Embedding.([]float32)[:7]
				}
			}
		}
	})
	c := s.client()
	c.BatchSize = 2

	out, err := c.Encode(context.Background(), oaTexts("ragged batches", 4))
	require.ErrorIs(t, err, ErrRemote, "got %d vectors", len(out))
	assert.Contains(t, err.Error(), "embeddings of 7 values, expected 8")
}

func TestOpenAIEmptyInputSendsNothing(t *testing.T) {
	s := newOAServer(t)
	c := s.client()
	for _, in := range [][]Input{nil, {}} {
		out, err := c.Encode(context.Background(), in)
		require.NoError(t, err)
		assert.Empty(t, out)
	}
	assert.Equal(t, 0, s.attempts())
	assert.Equal(t, 0, c.Dim())
}

// --- request shape ----------------------------------------------------------------

func TestOpenAIURL(t *testing.T) {
	for _, tc := range []struct {
		name, suffix, path string
	}{
		{"host", "", "/v1/embeddings"},
		{"host slash", "/", "/v1/embeddings"},
		{"v1", "/v1", "/v1/embeddings"},
		{"v1 slash", "/v1/", "/v1/embeddings"},
		{"full", "/v1/embeddings", "/v1/embeddings"},
		{"full slash", "/v1/embeddings/", "/v1/embeddings"},
		{"mounted under a prefix", "/openai", "/openai/v1/embeddings"},
		{"prefix and v1", "/openai/v1", "/openai/v1/embeddings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.path = tc.path })
			c := s.client()
			c.BaseURL = s.srv.URL + tc.suffix
			c.Retries = -1

			in := oaTexts("url", 2)
			out, err := c.Encode(context.Background(), in)
			require.NoError(t, err)
			requireOAVecs(t, in, out, 8)
			reqs := s.requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.path, reqs[0].Path)
		})
	}
}

func TestOpenAIRequestHeadersAndBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"no API key", ""},
		{"API key", "sk-test-123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.key = tc.key })
			c := s.client()
			c.APIKey = tc.key

			in := []Input{{Text: "hello world"}, {Text: "  spaces kept  "}, {Text: "ünïcödé ✓"}}
			out, err := c.Encode(context.Background(), in)
			require.NoError(t, err)
			requireOAVecs(t, in, out, 8)

			reqs := s.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "application/json", r.ContentType)
			if tc.key == "" {
				assert.False(t, r.HasAuth, "Authorization sent without an API key: %q", r.Auth)
			} else {
				assert.Equal(t, "Bearer "+tc.key, r.Auth)
			}
			assert.Equal(t, oaModel, r.Model)
			assert.Equal(t, "float", r.Format)
			assert.Equal(t, []any{"hello world", "  spaces kept  ", "ünïcödé ✓"}, r.Inputs)
			assert.ElementsMatch(t, []string{"model", "input", "encoding_format"}, slices.Collect(mapKeys(r.Fields)))
		})
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestOpenAIWrongAPIKey(t *testing.T) {
	for _, key := range []string{"", "sk-wrong"} {
		t.Run(fmt.Sprintf("key %q", key), func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.key = "sk-right" })
			c := s.client()
			c.APIKey = key

			_, err := c.Encode(context.Background(), oaTexts("auth", 1))
			require.ErrorIs(t, err, ErrRemote)
			assert.Contains(t, err.Error(), "401")
			assert.Contains(t, err.Error(), "Incorrect API key provided")
			assert.Equal(t, 1, s.attempts(), "401 must not be retried")
		})
	}
}

func TestOpenAIImageInputs(t *testing.T) {
	pngA, pngB, jpg := oaPNG(t, 6, 4, 3), oaPNG(t, 2, 9, 200), oaJPEG(t)
	gif := []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
	in := []Input{
		{Data: pngA},                         // MIME guessed
		{Text: "a caption between images"},   //
		{Data: pngB, MIME: "image/png"},      // MIME given
		{Data: jpg},                          // guessed as JPEG
		{Data: gif},                          // guessed as GIF
		{Data: pngA, MIME: "image/x-custom"}, // given MIME wins over the bytes
	}
	wantMIME := []string{"image/png", "", "image/png", "image/jpeg", "image/gif", "image/x-custom"}

	s := newOAServer(t, func(s *oaServer) { s.shuffle = true })
	c := s.client()
	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
	assert.NotEqual(t, out[0], out[2], "different images, different vectors")
	assert.Equal(t, out[0], out[5], "same bytes, same vector")

	reqs := s.requests()
	require.Len(t, reqs, 1)
	require.Empty(t, reqs[0].Err)
	require.Len(t, reqs[0].Inputs, len(in))
	for i, x := range reqs[0].Inputs {
		if in[i].Data == nil {
			assert.Equal(t, in[i].Text, x)
			continue
		}
		img, ok := x.(oaImage)
		require.True(t, ok, "input %d was sent as %T, not an image object", i, x)
		assert.Equal(t, wantMIME[i], img.MIME, "input %d", i)
		assert.Equal(t, in[i].Data, img.Data, "input %d does not decode to the same bytes", i)
	}
	// The PNG survives the trip as a PNG.
	decoded, err := png.Decode(bytes.NewReader(reqs[0].Inputs[0].(oaImage).Data))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 6, 4), decoded.Bounds())
}

func TestOpenAIRejectsBadInputsWithoutRequest(t *testing.T) {
	png1 := oaPNG(t, 2, 2, 0)
	for _, tc := range []struct {
		name    string
		in      []Input
		wantMsg string
	}{
		{"WAV bytes", []Input{{Data: oaWAV()}}, "audio/wave"},
		{"WAV with MIME", []Input{{Data: oaWAV(), MIME: "audio/wav"}}, "audio/wav"},
		{"plain bytes", []Input{{Data: []byte("just some text, not a picture")}}, "text/plain"},
		{"empty data", []Input{{Data: []byte{}}}, "not an image"},
		{"PNG labelled as text", []Input{{Data: png1, MIME: "text/plain"}}, "text/plain"},
		{"empty text", []Input{{Text: ""}}, "input 0 is empty"},
		{"zero input", []Input{{}}, "input 0 is empty"},
		{"bad one after good ones", []Input{{Text: "fine"}, {Data: png1}, {Text: ""}}, "input 2 is empty"},
		{"WAV after good ones", []Input{{Text: "fine"}, {Data: oaWAV()}}, "input 1 is audio/wave"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t)
			c := s.client()
			out, err := c.Encode(context.Background(), tc.in)
			require.ErrorIs(t, err, ErrInput)
			assert.NotErrorIs(t, err, ErrRemote)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Nil(t, out)
			assert.Equal(t, 0, s.attempts(), "a request was made for bad inputs")
		})
	}
}

func TestOpenAIRejectsBadInputInLaterBatchWithoutRequest(t *testing.T) {
	s := newOAServer(t)
	c := s.client()
	c.BatchSize = 2
	in := append(oaTexts("later", 3), Input{Text: ""})

	_, err := c.Encode(context.Background(), in)
	require.ErrorIs(t, err, ErrInput)
	assert.Equal(t, 0, s.attempts(), "requests were made before the bad input was found")
	assert.Contains(t, err.Error(), "input 3 is empty")
}

func TestOpenAINeedsBaseURLAndModel(t *testing.T) {
	s := newOAServer(t)
	for _, tc := range []struct {
		name           string
		baseURL, model string
	}{
		{"no BaseURL", "", oaModel},
		{"no Model", s.srv.URL, ""},
		{"neither", "", ""},
		{"malformed BaseURL", "http://[::1", oaModel},
		{"control character in BaseURL", s.srv.URL + "/\x7f", oaModel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.client()
			c.BaseURL, c.Model = tc.baseURL, tc.model
			start := time.Now()
			_, err := c.Encode(context.Background(), oaTexts("config", 2))
			require.ErrorIs(t, err, ErrInput)
			assert.NotErrorIs(t, err, ErrRemote)
			assert.Less(t, time.Since(start), 500*time.Millisecond, "configuration errors must not be retried")
		})
	}
	assert.Equal(t, 0, s.attempts())
}

func TestOpenAIDefaultHTTPClient(t *testing.T) {
	s := newOAServer(t)
	c := s.client()
	c.Client = nil // http.DefaultClient
	in := oaTexts("default client", 3)
	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
}

// --- retries ----------------------------------------------------------------------

func TestOpenAIRetriesUntilSuccess(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.before = failN(2, http.StatusInternalServerError) })
	c := s.client()
	c.Backoff = 2 * time.Millisecond
	in := oaTexts("retry", 3)

	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
	assert.Equal(t, 3, s.attempts())
	assert.Equal(t, 8, c.Dim())
	// Every attempt sent the same request.
	reqs := s.requests()
	for _, r := range reqs[1:] {
		assert.Equal(t, reqs[0].Inputs, r.Inputs)
	}
}

func TestOpenAIRetriesTransientStatuses(t *testing.T) {
	for _, status := range []int{
		http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.before = failN(1, status) })
			c := s.client()
			in := oaTexts("transient", 2)
			out, err := c.Encode(context.Background(), in)
			require.NoError(t, err)
			requireOAVecs(t, in, out, 8)
			assert.Equal(t, 2, s.attempts())
		})
	}
}

func TestOpenAIRetriesNetworkErrors(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) {
		s.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n > 1 {
				return false
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // hang up without an answer
			}
			return true
		}
	})
	c := s.client()
	in := oaTexts("hang up", 2)
	out, err := c.Encode(context.Background(), in)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
	assert.Equal(t, 2, s.attempts())
}

func TestOpenAIDoesNotRetryClientErrors(t *testing.T) {
	for _, status := range []int{
		http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) {
				s.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
					oaError(w, status, "invalid_request_error", "This model's maximum context length is 8192 tokens")
					return true
				}
			})
			c := s.client()
			c.Backoff = time.Second // a retry would show in the elapsed time too
			start := time.Now()
			_, err := c.Encode(context.Background(), oaTexts("client error", 2))
			require.ErrorIs(t, err, ErrRemote)
			assert.Contains(t, err.Error(), "This model's maximum context length is 8192 tokens")
			assert.Contains(t, err.Error(), fmt.Sprint(status))
			assert.Equal(t, 1, s.attempts())
			assert.Less(t, time.Since(start), 500*time.Millisecond)
		})
	}
}

func TestOpenAIErrorMessages(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		want        []string
		notWant     []string
	}{
		{"OpenAI error object", "application/json", `{"error":{"message":"Invalid 'input': too long","type":"invalid_request_error","param":"input","code":null}}`,
			[]string{"Invalid 'input': too long", "400 Bad Request"}, []string{`"type"`}},
		{"plain text", "text/plain", "model not loaded\n", []string{"model not loaded"}, nil},
		{"other JSON", "application/json", `{"detail":"Not Found"}`, []string{`{"detail":"Not Found"}`}, nil},
		{"long body is cut", "text/plain", long, []string{strings.Repeat("x", 300) + "..."}, []string{strings.Repeat("x", 301)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) {
				s.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
					w.Header().Set("Content-Type", tc.contentType)
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, tc.body)
					return true
				}
			})
			_, err := s.client().Encode(context.Background(), oaTexts("messages", 1))
			require.ErrorIs(t, err, ErrRemote)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			for _, w := range tc.notWant {
				assert.NotContains(t, err.Error(), w)
			}
			assert.Equal(t, 1, s.attempts())
		})
	}
}

func TestOpenAIRetryCounts(t *testing.T) {
	for _, tc := range []struct {
		retries, attempts int
	}{
		{-1, 1},
		{-5, 1},
		{0, 4}, // the default, 3 retries
		{1, 2},
		{2, 3},
		{5, 6},
	} {
		t.Run(fmt.Sprint(tc.retries), func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.before = failN(1000, http.StatusInternalServerError) })
			c := s.client()
			c.Retries = tc.retries
			_, err := c.Encode(context.Background(), oaTexts("exhausted", 2))
			require.ErrorIs(t, err, ErrRemote)
			assert.Contains(t, err.Error(), "500")
			assert.Contains(t, err.Error(), fmt.Sprintf("failure on attempt %d", tc.attempts), "the error is the last attempt's")
			assert.Equal(t, tc.attempts, s.attempts())
			assert.Equal(t, 0, c.Dim())
		})
	}
}

func TestOpenAIBackoffGrows(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.before = failN(1000, http.StatusServiceUnavailable) })
	c := s.client()
	c.Backoff = 20 * time.Millisecond
	c.Retries = 3
	_, err := c.Encode(context.Background(), oaTexts("backoff", 1))
	require.ErrorIs(t, err, ErrRemote)

	reqs := s.requests()
	require.Len(t, reqs, 4)
	// Waits are Backoff<<attempt plus up to 50% jitter: 20-30, 40-60, 80-120 ms.
	for i, lo := range []time.Duration{20, 40, 80} {
		gap := reqs[i+1].At.Sub(reqs[i].At)
		assert.GreaterOrEqual(t, gap, lo*time.Millisecond, "wait before retry %d", i+1)
	}
}

func TestOpenAIRetryAfter(t *testing.T) {
	// The one slow test: the server asks for a one-second pause.
	s := newOAServer(t, func(s *oaServer) { s.before = failN(1, http.StatusTooManyRequests, "Retry-After", "1") })
	c := s.client()
	c.Backoff = time.Millisecond // only Retry-After can explain a long wait
	in := oaTexts("rate limited", 2)

	start := time.Now()
	out, err := c.Encode(context.Background(), in)
	elapsed := time.Since(start)
	require.NoError(t, err)
	requireOAVecs(t, in, out, 8)
	require.Equal(t, 2, s.attempts())
	reqs := s.requests()
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 900*time.Millisecond, "the retry came before Retry-After")
	assert.GreaterOrEqual(t, elapsed, 900*time.Millisecond)
	assert.Less(t, elapsed, 3*time.Second)
}

func TestOpenAIRetryAfterHeaderParsing(t *testing.T) {
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 2 ", 2 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"60", time.Minute},
		{"3600", time.Minute},
		{"99999999999999999999", 0},
	} {
		assert.Equal(t, tc.want, retryAfter(tc.h), "Retry-After %q", tc.h)
	}
}

// --- timeouts and contexts -------------------------------------------------------

func TestOpenAIAttemptTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		slow     int // requests held 300 ms before the server answers
		retries  int
		attempts int
		ok       bool
	}{
		{"every attempt times out", 1000, 2, 3, false},
		{"no retries", 1000, -1, 1, false},
		{"the retry is fast", 1, 2, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.before = sleepy(tc.slow, 300*time.Millisecond) })
			c := s.client()
			c.Timeout = 50 * time.Millisecond
			c.Retries = tc.retries
			in := oaTexts("timeout", 2)

			start := time.Now()
			out, err := c.Encode(context.Background(), in)
			elapsed := time.Since(start)
			if tc.ok {
				require.NoError(t, err)
				requireOAVecs(t, in, out, 8)
			} else {
				require.ErrorIs(t, err, ErrRemote)
				assert.NotErrorIs(t, err, context.DeadlineExceeded, "the caller's context did not expire")
				assert.NotContains(t, err.Error(), "too slow", "the server's late answer must not be read")
			}
			assert.Equal(t, tc.attempts, s.attempts())
			assert.GreaterOrEqual(t, elapsed, time.Duration(min(tc.slow, tc.attempts))*50*time.Millisecond)
			assert.Less(t, elapsed, time.Duration(tc.attempts)*280*time.Millisecond, "attempts were not cut at Timeout")
		})
	}
}

// closeSignal is a response body that closes done when the client
// closes it: the client has finished with the attempt.
type closeSignal struct {
	io.ReadCloser
	once *sync.Once
	done chan struct{}
}

func (b closeSignal) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { close(b.done) })
	return err
}

// signalTransport hands the client response bodies that report their
// closing on done.
type signalTransport struct {
	base http.RoundTripper
	once sync.Once
	done chan struct{}
}

func (s *signalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil {
		resp.Body = closeSignal{resp.Body, &s.once, s.done}
	}
	return resp, err
}

func TestOpenAIContextCancelledDuringBackoff(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.before = failN(1000, http.StatusInternalServerError) })
	c := s.client()
	c.Backoff = 10 * time.Second
	// The event: the client has read the failed answer and closed its body,
	// so it is done with the attempt and about to wait 10-15 s.
	tr := &signalTransport{base: s.srv.Client().Transport, done: make(chan struct{})}
	c.Client = &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := make(chan time.Time, 1)
	go func() {
		select {
		case <-tr.done:
		case <-time.After(5 * time.Second): // a guard, should the event never come
		}
		cancelled <- time.Now()
		cancel()
	}()

	_, err := c.Encode(ctx, oaTexts("cancel", 2))
	select {
	case <-tr.done:
	default:
		t.Fatal("the client never finished its first attempt")
	}
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrRemote)
	assert.Equal(t, 1, s.attempts(), "no retry after the cancel")
	// The wait was cut short: far less than the 10 s backoff (the bound is
	// only a guard against a wait that ignores the context).
	assert.Less(t, time.Since(<-cancelled), 5*time.Second)
}

func TestOpenAIContextDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  func(int, http.ResponseWriter, *http.Request) bool
		backoff time.Duration
		retries int
	}{
		{"during an attempt", sleepy(1000, 5*time.Second), time.Millisecond, 0},
		{"during the backoff", failN(1000, http.StatusInternalServerError), 5 * time.Second, 0},
		{"during Retry-After", failN(1000, http.StatusServiceUnavailable, "Retry-After", "30"), time.Millisecond, 0},
		{"across retries", failN(1000, http.StatusInternalServerError), 30 * time.Millisecond, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, func(s *oaServer) { s.before = tc.before })
			c := s.client()
			c.Backoff, c.Retries = tc.backoff, tc.retries
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()

			start := time.Now()
			_, err := c.Encode(ctx, oaTexts("deadline", 2))
			elapsed := time.Since(start)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.GreaterOrEqual(t, elapsed, 140*time.Millisecond)
			assert.Less(t, elapsed, time.Second, "the deadline was not honoured promptly")
			assert.GreaterOrEqual(t, s.attempts(), 1)
			if tc.retries == 50 {
				assert.GreaterOrEqual(t, s.attempts(), 2)
				assert.Less(t, s.attempts(), 10)
			}
		})
	}
}

func TestOpenAIContextAlreadyCancelled(t *testing.T) {
	s := newOAServer(t)
	c := s.client()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Encode(ctx, oaTexts("cancelled", 2))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, s.attempts())
}

// --- bad answers --------------------------------------------------------------------

func TestOpenAIRejectsBadAnswers(t *testing.T) {
	raw := func(body string) func(*oaServer) {
		return func(s *oaServer) {
			s.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, body)
				return true
			}
		}
	}
	mangle := func(f func(resp *oaResponse)) func(*oaServer) {
		return func(s *oaServer) { s.mangle = func(_ int, resp *oaResponse) { f(resp) } }
	}
	vec := func(resp *oaResponse, i int) []float32 { return resp.Data[i].Embedding.([]float32) }

	for _, tc := range []struct {
		name  string
		setup func(*oaServer)
		want  string
	}{
		{"too few", mangle(func(r *oaResponse) { r.Data = r.Data[:2] }), "asked for 3 embeddings, got 2"},
		{"too many", mangle(func(r *oaResponse) {
			r.Data = append(r.Data, oaDatum{Object: "embedding", Index: 3, Embedding: vec(r, 0)})
		}), "asked for 3 embeddings, got 4"},
		{"none", mangle(func(r *oaResponse) { r.Data = nil }), "got 0"},
		{"duplicate index", mangle(func(r *oaResponse) { r.Data[2].Index = 1 }), "indexes are not 0..2"},
		{"missing index", mangle(func(r *oaResponse) { r.Data[1].Index = 3 }), "indexes are not 0..2"},
		{"negative index", mangle(func(r *oaResponse) { r.Data[0].Index = -1 }), "indexes are not 0..2"},
		{"no index fields", raw(`{"object":"list","data":[{"embedding":[1,2]},{"embedding":[3,4]},{"embedding":[5,6]}]}`), "indexes are not 0..2"},
		{"empty embedding", mangle(func(r *oaResponse) { r.Data[1].Embedding = []float32{} }), "embedding 1 has 0 values"},
		{"null embedding", mangle(func(r *oaResponse) { r.Data[0].Embedding = nil }), "embedding 0 has 0 values"},
		{"ragged", mangle(func(r *oaResponse) { r.Data[2].Embedding = vec(r, 2)[:7] }), "embedding 2 has 7 values"},
		{"ragged first", mangle(func(r *oaResponse) { r.Data[0].Embedding = vec(r, 0)[:7] }), "embedding 1 has 8 values"},
		{"non-JSON", raw("<html><body>502 Bad Gateway</body></html>"), "not JSON"},
		{"empty body", raw(""), "not JSON"},
		{"truncated JSON", raw(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,`), "not JSON"},
		{"error object with 200", raw(`{"error":{"message":"overloaded","type":"server_error"}}`), "got 0"},
		{"base64 though float was asked", func(s *oaServer) { s.forceBase64 = true }, "not a list of numbers"},
		{"strings in the vector", raw(`{"data":[{"index":0,"embedding":["a"]},{"index":1,"embedding":["b"]},{"index":2,"embedding":["c"]}]}`), "element 0"},
		{"null in the vector", raw(`{"data":[{"index":0,"embedding":[1,null]},{"index":1,"embedding":[1,2]},{"index":2,"embedding":[1,2]}]}`), "element 1: null is not a number"},
		{"beyond float32", raw(`{"data":[{"index":0,"embedding":[1,1e39]},{"index":1,"embedding":[1,2]},{"index":2,"embedding":[1,2]}]}`), "beyond float32's range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAServer(t, tc.setup)
			c := s.client()
			out, err := c.Encode(context.Background(), oaTexts(tc.name, 3))
			require.ErrorIs(t, err, ErrRemote)
			assert.Contains(t, err.Error(), tc.want)
			assert.Nil(t, out)
			assert.Equal(t, 1, s.attempts(), "a bad answer must not be retried")
			assert.Equal(t, 0, c.Dim(), "Dim learnt from a rejected answer")
		})
	}
}

func TestOpenAIExtraFieldsInAnswerAreIgnored(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) {
		s.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
			io.WriteString(w, `{"object":"list","id":"emb-1","data":[{"object":"embedding","index":1,"embedding":[3,4],"extra":true},{"object":"embedding","index":0,"embedding":[1.5,-2e-3]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`)
			return true
		}
	})
	out, err := s.client().Encode(context.Background(), oaTexts("extra", 2))
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{1.5, -2e-3}, {3, 4}}, out)
}

// --- concurrency ---------------------------------------------------------------------

func TestOpenAIConcurrentEncode(t *testing.T) {
	s := newOAServer(t, func(s *oaServer) { s.shuffle = true })
	c := s.client()
	c.BatchSize = 3

	const workers, calls = 8, 4
	var pngs [workers][calls][]byte // made here: require must not run in the goroutines
	for w := range workers {
		for k := range calls {
			pngs[w][k] = oaPNG(t, 2+w, 3, uint8(k))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for k := range calls {
				in := oaTexts(fmt.Sprintf("worker %d call %d", w, k), 2+(w+k)%6)
				if w%2 == 1 {
					in = append(in, Input{Data: pngs[w][k]})
				}
				out, err := c.Encode(context.Background(), in)
				if err != nil {
					errs <- err
					continue
				}
				if len(out) != len(in) {
					errs <- fmt.Errorf("worker %d call %d: %d vectors for %d inputs", w, k, len(out), len(in))
					continue
				}
				for i := range in {
					if !slices.Equal(out[i], oaWant(in[i], 8)) {
						errs <- fmt.Errorf("worker %d call %d: vector %d belongs to another input", w, k, i)
					}
				}
				if d := c.Dim(); d != 8 {
					errs <- fmt.Errorf("Dim() = %d during concurrent use", d)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 8, c.Dim())
}
