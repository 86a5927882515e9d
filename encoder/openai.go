package encoder

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mmdb-go/mmdb/internal/jsonvec"
)

// ErrRemote: the embeddings server refused the request or answered with
// something that is not an embeddings response.
var ErrRemote = errors.New("encoder: embeddings server error")

// OpenAI is a client for servers that speak OpenAI's /v1/embeddings API
// (OpenAI itself, vLLM, llama.cpp's server, Ollama, text-embeddings-
// inference, Infinity, ...). Text inputs are sent as strings. Image inputs
// (Data set) are sent as {"image": "data:<mime>;base64,..."} objects, the
// form multimodal servers such as Infinity and vLLM's CLIP models take;
// check that your server accepts it.
//
// Requests time out after Timeout, and failures that may pass (network
// errors, 408, 429 and 5xx answers) are retried up to Retries times with
// exponential backoff and jitter, honouring Retry-After.
type OpenAI struct {
	// BaseURL is the server's root, such as "https://api.openai.com" or
	// "http://localhost:8000"; "/v1/embeddings" is appended (unless it
	// already ends the URL).
	BaseURL string
	// Model is the model name sent with each request.
	Model string
	// APIKey, if set, is sent as a bearer token.
	APIKey string
	// Dimensions, if set, asks models that can shorten their output for
	// that many dimensions.
	Dimensions int
	// BatchSize caps the inputs per request; default 64.
	BatchSize int
	// Timeout bounds each attempt; default 30 s.
	Timeout time.Duration
	// Retries is the number of retries after a failed attempt; default 3.
	// Set it to -1 for none.
	Retries int
	// Backoff is the first retry's wait, doubled each time; default 500 ms.
	Backoff time.Duration
	// Client sends the requests; default http.DefaultClient.
	Client *http.Client

	dim atomic.Int64
}

// Dim is the dimension of the vectors seen so far: Dimensions if set,
// else 0 until the first answer.
func (c *OpenAI) Dim() int {
	if c.Dimensions > 0 {
		return c.Dimensions
	}
	return int(c.dim.Load())
}

type embedRequest struct {
	Model      string `json:"model"`
	Input      []any  `json:"input"`
	Dimensions int    `json:"dimensions,omitempty"`
	Format     string `json:"encoding_format"`
}

// embedDatum is one embedding of an answer. The vector is read strictly:
// null or a string among its numbers is an error, not a 0.
type embedDatum struct {
	Index     int            `json:"index"`
	Embedding jsonvec.Floats `json:"embedding"`
}

type embedResponse struct {
	Data  []embedDatum `json:"data"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Encode embeds the inputs, BatchSize per request, in order.
func (c *OpenAI) Encode(ctx context.Context, in []Input) ([][]float32, error) {
	if c.BaseURL == "" || c.Model == "" {
		return nil, fmt.Errorf("%w: OpenAI encoder needs BaseURL and Model", ErrInput)
	}
	batch := c.BatchSize
	if batch <= 0 {
		batch = 64
	}
	// Check every input before sending anything: a bad last input must not
	// cost the requests before it.
	for i, x := range in {
		if _, err := inputJSON(i, x); err != nil {
			return nil, err
		}
	}
	out := make([][]float32, 0, len(in))
	for s := 0; s < len(in); s += batch {
		part := in[s:min(len(in), s+batch)]
		vecs, err := c.request(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("inputs %d-%d: %w", s, s+len(part)-1, err)
		}
		// One dimension for the whole call, and the one asked for.
		want := c.Dimensions
		if len(out) > 0 {
			want = len(out[0])
		}
		if want > 0 && len(vecs[0]) != want {
			return nil, fmt.Errorf("%w: inputs %d-%d: embeddings of %d values, expected %d", ErrRemote, s, s+len(part)-1, len(vecs[0]), want)
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (c *OpenAI) url() string {
	u := strings.TrimRight(c.BaseURL, "/")
	if strings.HasSuffix(u, "/embeddings") {
		return u
	}
	if strings.HasSuffix(u, "/v1") {
		return u + "/embeddings"
	}
	return u + "/v1/embeddings"
}

func (c *OpenAI) request(ctx context.Context, in []Input) ([][]float32, error) {
	req := embedRequest{Model: c.Model, Dimensions: c.Dimensions, Format: "float"}
	for i, x := range in {
		v, err := inputJSON(i, x)
		if err != nil {
			return nil, err
		}
		req.Input = append(req.Input, v)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	retries := c.Retries
	if retries == 0 {
		retries = 3
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var lastErr error
	for attempt := 0; attempt <= max(retries, 0); attempt++ {
		vecs, wait, err := c.attempt(ctx, body, len(in))
		if err == nil {
			return vecs, nil
		}
		lastErr = err
		if wait < 0 || ctx.Err() != nil || attempt == max(retries, 0) {
			break // not worth retrying, cancelled, or out of retries
		}
		if wait == 0 {
			wait = backoff << attempt
			wait += time.Duration(rand.Int64N(int64(wait)/2 + 1)) // jitter
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, lastErr
}

// attempt sends one request. wait < 0 means the failure is final; wait > 0
// is the server's Retry-After.
func (c *OpenAI) attempt(ctx context.Context, body []byte, n int) ([][]float32, time.Duration, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.url(), bytes.NewReader(body))
	if err != nil {
		return nil, -1, fmt.Errorf("%w: %v", ErrInput, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrRemote, err) // network trouble: retry
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reading the answer: %v", ErrRemote, err)
	}
	var er embedResponse
	jerr := json.Unmarshal(data, &er)
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(data))
		if jerr == nil && er.Error != nil {
			msg = er.Error.Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		err := fmt.Errorf("%w: %s: %s", ErrRemote, resp.Status, msg)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
			return nil, retryAfter(resp.Header.Get("Retry-After")), err
		}
		return nil, -1, err
	}
	if jerr != nil {
		return nil, -1, fmt.Errorf("%w: the answer is not JSON: %v", ErrRemote, jerr)
	}
	if len(er.Data) != n {
		return nil, -1, fmt.Errorf("%w: asked for %d embeddings, got %d", ErrRemote, n, len(er.Data))
	}
	slices.SortFunc(er.Data, func(a, b embedDatum) int { return a.Index - b.Index })
	out := make([][]float32, n)
	for i, d := range er.Data {
		if d.Index != i {
			return nil, -1, fmt.Errorf("%w: embedding indexes are not 0..%d", ErrRemote, n-1)
		}
		if len(d.Embedding) == 0 || (i > 0 && len(d.Embedding) != len(out[0])) {
			return nil, -1, fmt.Errorf("%w: embedding %d has %d values", ErrRemote, i, len(d.Embedding))
		}
		out[i] = []float32(d.Embedding)
	}
	c.dim.Store(int64(len(out[0])))
	return out, 0, nil
}

// retryAfter reads a Retry-After header given in seconds (capped at a
// minute); 0 when absent or a date.
func retryAfter(h string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || s < 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Minute)
}

// inputJSON is an input as the API takes it: a string, or an image as a
// data URL.
func inputJSON(i int, x Input) (any, error) {
	if x.Data != nil {
		mime := x.MIME
		if mime == "" {
			mime = http.DetectContentType(x.Data)
		}
		if !strings.HasPrefix(mime, "image/") {
			return nil, fmt.Errorf("%w: input %d is %s, not an image", ErrInput, i, mime)
		}
		return map[string]string{"image": "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(x.Data)}, nil
	}
	if x.Text == "" {
		return nil, fmt.Errorf("%w: input %d is empty", ErrInput, i)
	}
	return x.Text, nil
}
