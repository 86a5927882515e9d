package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/jsonvec"
	"github.com/mmdb-go/mmdb/query"
)

// api wraps a handler: authentication, the body limit, the timeout, and
// Qdrant's response envelope ({"result", "status", "time"}; errors as
// {"status": {"error"}}).
func (s *Server) api(h func(*http.Request) (any, error)) http.Handler {
	return s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if err := sameOriginJSON(r); err != nil {
			s.reply(w, r, start, nil, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		timeout := s.cfg.Timeout
		if t := r.URL.Query().Get("timeout"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n <= 0 || n > int(MaxTimeout/time.Second) {
				s.reply(w, r, start, nil, badf("timeout %q: want whole seconds, 1 to %d", t, int(MaxTimeout/time.Second)))
				return
			}
			timeout = time.Duration(n) * time.Second
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res, err := h(r.WithContext(ctx))
		s.reply(w, r, start, res, err)
	}))
}

// sameOriginJSON refuses what a web page could send on its visitor's
// behalf: a body that is not JSON (a browser sends text/plain and form
// bodies cross-site without asking), and any request naming another
// origin. Clients that are not browsers send neither.
func sameOriginJSON(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("%w: cross-origin request from %q refused", errForbidden, o)
		}
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return fmt.Errorf("%w: Content-Type %q: send the body as application/json", errMediaType, r.Header.Get("Content-Type"))
		}
	}
	return nil
}

var errMediaType = errors.New("unsupported media type")

// auth checks the API key, when one is configured.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return next
	}
	want := []byte(s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("api-key")
		if got == "" {
			got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			s.reply(w, r, time.Now(), nil, fmt.Errorf("%w: give the API key in the api-key header or as Authorization: Bearer KEY", errUnauthorized))
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errUnauthorized = errors.New("unauthorized")

// reply writes the envelope.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, start time.Time, res any, err error) {
	w.Header().Set("Content-Type", "application/json")
	elapsed := time.Since(start).Seconds()
	if err != nil {
		code := statusOf(err)
		s.cfg.Logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "error", err)
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": map[string]string{"error": message(err)}, "time": elapsed})
		return
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(map[string]any{"result": res, "status": "ok", "time": elapsed}); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": map[string]string{"error": "encoding the answer: " + err.Error()}, "time": elapsed})
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// message is an error's text without the internal "bad request: " prefix.
func message(err error) string {
	return strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errNoCollection), errors.Is(err, errNotFoundRoute), errors.Is(err, mmdb.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errConflict), errors.Is(err, mmdb.ErrExists):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, mmdb.ErrClosed), errors.Is(err, mmdb.ErrIndex), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest), errors.Is(err, mmdb.ErrInvalidQuery), errors.Is(err, mmdb.ErrInvalidID),
		errors.Is(err, mmdb.ErrDimension), errors.Is(err, mmdb.ErrInvalidVector), errors.Is(err, mmdb.ErrInvalidSchema),
		errors.Is(err, mmdb.ErrAttribute), errors.Is(err, mmdb.ErrUnknownModality), errors.Is(err, mmdb.ErrNoRoute),
		errors.Is(err, mmdb.ErrNoEncoder), errors.Is(err, mmdb.ErrUnknownAttribute), errors.Is(err, mmdb.ErrModalityConflict),
		errors.Is(err, mmdb.ErrNoGain), errors.Is(err, mmdb.ErrSharedSpace), errors.Is(err, query.ErrSyntax):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// decode reads a JSON request body into v strictly (strictUnmarshal):
// exact keys, none repeated, none unknown (a misspelt "fliter" must not
// search unfiltered), no data after the value, and no lone surrogate
// escapes (encoding/json would turn "k\ud800" and "k\udbff" into one
// string).
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		var probe any
		err := json.Unmarshal(body, &probe)
		if err == nil {
			err = errors.New("data after the JSON value")
		}
		return badf("request body: %v", err)
	}
	if err := jsonvec.CheckEscapes(body); err != nil {
		return badf("request body: %v", err)
	}
	if err := strictUnmarshal(body, v); err != nil {
		return badf("request body: %v", err)
	}
	return nil
}

// unsupported refuses members of a request that mmdb serve does not
// implement, when they are set.
func unsupported(fields map[string]json.RawMessage) error {
	for _, k := range sortedKeys(fields) {
		if !isNull(fields[k]) {
			return badf("%s is not supported by mmdb serve", k)
		}
	}
	return nil
}
