// Package server is `mmdb serve`: an HTTP server that opens mmdb databases
// for other processes and languages. It speaks a subset of Qdrant's REST
// API (collections, points, query with named vectors and filters,
// recommend, scroll, count, snapshots), so that Qdrant's clients work
// against it unchanged, and mmdb's own statement endpoint (POST /query)
// for cross-modal routes, alignment and EXPLAIN.
//
// A collection is one database file: serving a file serves one collection
// named after it; serving a folder serves each *.mmdb file in it, and
// creating a collection creates a file there.
package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmdb-go/mmdb"
)

// Defaults and caps of a Config.
const (
	// DefaultMaxBody is the largest request body accepted (Qdrant's
	// default max_request_size_mb).
	DefaultMaxBody = 32 << 20
	// DefaultMaxBatch is the most points one upsert, retrieve or delete
	// may name.
	DefaultMaxBatch = 10_000
	// DefaultTimeout bounds one request's work unless its timeout
	// parameter asks for less (or, up to MaxTimeout, more).
	DefaultTimeout = 60 * time.Second
	// MaxTimeout is the longest a request's timeout parameter may ask.
	MaxTimeout = 10 * time.Minute
	// Ext is the file extension of a collection's database in folder mode.
	Ext = ".mmdb"
	// Version is the Qdrant API version the server reports at GET /.
	Version = "1.13.0"
)

// Config configures a Server. The zero value serves with the defaults and
// no API key.
type Config struct {
	// APIKey, if set, must come with every request but the health checks,
	// in the api-key header or as Authorization: Bearer KEY (as Qdrant).
	APIKey string
	// MaxBody is the largest request body (DefaultMaxBody when zero).
	MaxBody int64
	// MaxBatch is the most points a request may write, read or delete by
	// ID (DefaultMaxBatch when zero).
	MaxBatch int
	// Timeout bounds each request's work (DefaultTimeout when zero).
	Timeout time.Duration
	// SnapshotDir is where snapshots are written, a folder per collection
	// (default: "snapshots" beside the served file or inside the folder).
	SnapshotDir string
	// Open are the options every database is opened with; NoFileProbes is
	// always set (a client must not read the host's files through FILE
	// probes).
	Open mmdb.Options
	// Logger receives one line per failed request and the opening and
	// closing of collections; nil discards them.
	Logger *slog.Logger
}

// Server serves the collections of one file or one folder.
type Server struct {
	cfg  Config
	dir  string // folder mode: where collections live; "" when serving one file
	snap string // snapshot folder

	mu   sync.RWMutex
	cols map[string]*collection
	ops  atomic.Uint64 // operation IDs of writes
}

// collection is one open database. Requests hold mu for reading while
// they use db; deleting the collection takes it for writing, so it waits
// for them.
type collection struct {
	name, path string
	mu         sync.RWMutex
	db         *mmdb.DB // nil once deleted
}

// Errors of the collection registry.
var (
	errNoCollection = errors.New("collection not found")
	errConflict     = errors.New("conflict")
	errForbidden    = errors.New("forbidden")
)

var collectionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Open serves path: a database file (one collection, named after the file
// without its extension), or a folder whose *.mmdb files are the
// collections (created with PUT /collections/NAME). Every database is
// opened now and stays open until Close.
func Open(path string, cfg Config) (*Server, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Open.NoFileProbes = true
	s := &Server{cfg: cfg, cols: map[string]*collection{}}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", path, err)
	}
	var files []string
	if fi.IsDir() {
		s.dir = path
		s.snap = filepath.Join(path, "snapshots")
		files, err = filepath.Glob(filepath.Join(path, "*"+Ext))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
	} else {
		s.snap = filepath.Join(filepath.Dir(path), "snapshots")
		files = []string{path}
	}
	if cfg.SnapshotDir != "" {
		s.snap = cfg.SnapshotDir
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if !collectionName.MatchString(name) {
			s.Close()
			return nil, fmt.Errorf("serve %s: %q is not a collection name (letters, digits, _ and -, up to 128)", f, name)
		}
		if _, dup := s.cols[name]; dup {
			s.Close()
			return nil, fmt.Errorf("serve %s: two files make collection %q", f, name)
		}
		o := cfg.Open
		db, err := mmdb.Open(f, &o)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("serve: collection %q: %w", name, err)
		}
		s.cols[name] = &collection{name: name, path: f, db: db}
		cfg.Logger.Info("opened collection", "name", name, "path", f, "items", db.Count())
	}
	return s, nil
}

// Collections names the collections served, sorted.
func (s *Server) Collections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.cols))
	for n := range s.cols {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DB is the open database of a collection, for a program that embeds the
// server and uses the database beside it.
func (s *Server) DB(name string) (*mmdb.DB, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.cols[name]
	if !ok {
		return nil, false
	}
	return c.db, true
}

// Close closes every database (each saves its graphs). Call it after the
// HTTP server has shut down, so no request is still using them.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, c := range s.cols {
		c.mu.Lock()
		if c.db != nil {
			if err := c.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("collection %q: %w", name, err))
			}
			c.db = nil
		}
		c.mu.Unlock()
		s.cfg.Logger.Info("closed collection", "name", name)
	}
	s.cols = map[string]*collection{}
	return errors.Join(errs...)
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	col := func(pattern string, h func(*http.Request, *mmdb.DB, *collection) (any, error)) {
		mux.Handle(pattern, s.api(func(r *http.Request) (any, error) { return s.withCollection(r, h) }))
	}
	// Qdrant's version answer is the one without the envelope.
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"title": "mmdb serve (Qdrant-compatible REST subset)", "version": Version})
	})))
	for _, p := range []string{"GET /healthz", "GET /livez", "GET /readyz"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "healthz check passed\n")
		})
	}
	mux.Handle("GET /collections", s.api(s.listCollections))
	mux.Handle("PUT /collections/{name}", s.api(s.createCollection))
	mux.Handle("DELETE /collections/{name}", s.api(s.deleteCollection))
	col("GET /collections/{name}", s.collectionInfo)
	mux.Handle("GET /collections/{name}/exists", s.api(s.collectionExists))
	col("PUT /collections/{name}/points", s.upsert)
	col("POST /collections/{name}/points", s.retrieve)
	col("GET /collections/{name}/points/{id}", s.getPoint)
	col("POST /collections/{name}/points/delete", s.deletePoints)
	col("POST /collections/{name}/points/query", s.queryPoints)
	col("POST /collections/{name}/points/query/batch", s.queryBatch)
	col("POST /collections/{name}/points/query/groups", s.queryGroups)
	col("POST /collections/{name}/points/search", s.searchPoints)
	col("POST /collections/{name}/points/recommend", s.recommendPoints)
	col("POST /collections/{name}/points/scroll", s.scroll)
	col("POST /collections/{name}/points/count", s.count)
	col("POST /collections/{name}/points/payload", s.setPayload)
	col("PUT /collections/{name}/points/payload", s.overwritePayload)
	col("POST /collections/{name}/points/payload/delete", s.deletePayload)
	col("POST /collections/{name}/points/payload/clear", s.clearPayload)
	col("PUT /collections/{name}/points/vectors", s.updateVectors)
	col("PUT /collections/{name}/index", s.createIndex)
	col("POST /collections/{name}/snapshots", s.createSnapshot)
	col("GET /collections/{name}/snapshots", s.listSnapshots)
	mux.Handle("GET /collections/{name}/snapshots/{snapshot}", s.auth(http.HandlerFunc(s.downloadSnapshot)))
	col("DELETE /collections/{name}/snapshots/{snapshot}", s.deleteSnapshot)
	col("POST /collections/{name}/query", s.statement)
	mux.Handle("POST /query", s.api(s.statementAny))
	mux.Handle("/", s.api(func(r *http.Request) (any, error) {
		return nil, fmt.Errorf("%w: %s %s is not an endpoint of mmdb serve (see mmdb serve --help for the ones it has)", errNotFoundRoute, r.Method, r.URL.Path)
	}))
	return mux
}

var errNotFoundRoute = errors.New("not found")

// withCollection runs h on the named collection's database, holding it
// open for the request.
func (s *Server) withCollection(r *http.Request, h func(*http.Request, *mmdb.DB, *collection) (any, error)) (any, error) {
	c, err := s.lookup(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.db == nil {
		return nil, fmt.Errorf("%w: collection %q was deleted", errNoCollection, c.name)
	}
	return h(r, c.db, c)
}

func (s *Server) lookup(name string) (*collection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.cols[name]
	if !ok {
		return nil, fmt.Errorf("%w: Collection `%s` doesn't exist (have %s)", errNoCollection, name, strings.Join(s.namesLocked(), ", "))
	}
	return c, nil
}

func (s *Server) namesLocked() []string {
	names := make([]string, 0, len(s.cols))
	for n := range s.cols {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}
