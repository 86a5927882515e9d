package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mmdb-go/mmdb"
)

// snapshotExt ends every snapshot's file name.
const snapshotExt = ".snapshot"

var snapshotName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}\.snapshot$`)

// snapshotDescription is Qdrant's SnapshotDescription.
type snapshotDescription struct {
	Name         string `json:"name"`
	CreationTime string `json:"creation_time"`
	Size         int64  `json:"size"`
}

func (s *Server) snapshotDir(c *collection) string { return filepath.Join(s.snap, c.name) }

// createSnapshot writes a consistent copy of the collection's database
// (mmdb's Snapshot: checkpointed, synced, renamed into place) into the
// snapshot folder. `mmdb restore` turns it back into a database.
func (s *Server) createSnapshot(r *http.Request, db *mmdb.DB, c *collection) (any, error) {
	dir := s.snapshotDir(c)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	name := fmt.Sprintf("%s-%s%s", c.name, now.Format("2006-01-02-15-04-05.000000"), snapshotExt)
	path := filepath.Join(dir, name)
	if err := db.Snapshot(r.Context(), path); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return snapshotDescription{Name: name, CreationTime: fi.ModTime().UTC().Format("2006-01-02T15:04:05.000000"), Size: fi.Size()}, nil
}

func (s *Server) listSnapshots(_ *http.Request, _ *mmdb.DB, c *collection) (any, error) {
	entries, err := os.ReadDir(s.snapshotDir(c))
	if errors.Is(err, fs.ErrNotExist) {
		return []snapshotDescription{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []snapshotDescription{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !snapshotName.MatchString(e.Name()) {
			continue // temporary files of a snapshot being written, and strangers
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, snapshotDescription{Name: e.Name(), CreationTime: fi.ModTime().UTC().Format("2006-01-02T15:04:05.000000"), Size: fi.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// snapshotPath is the file of a named snapshot of the collection, refusing
// names that could leave the snapshot folder.
func (s *Server) snapshotPath(c *collection, name string) (string, error) {
	if !snapshotName.MatchString(name) || strings.Contains(name, "..") {
		return "", badf("snapshot name %q: want a name that listing snapshots gave", name)
	}
	path := filepath.Join(s.snapshotDir(c), name)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: snapshot %q of collection %q", mmdb.ErrNotFound, name, c.name)
	}
	return path, nil
}

func (s *Server) deleteSnapshot(r *http.Request, _ *mmdb.DB, c *collection) (any, error) {
	path, err := s.snapshotPath(c, r.PathValue("snapshot"))
	if err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil {
		return nil, err
	}
	return true, nil
}

// downloadSnapshot sends a snapshot's bytes.
func (s *Server) downloadSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c, err := s.lookup(r.PathValue("name"))
	var path string
	if err == nil {
		path, err = s.snapshotPath(c, r.PathValue("snapshot"))
	}
	if err != nil {
		s.reply(w, r, start, nil, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		s.reply(w, r, start, nil, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.reply(w, r, start, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fi.Name()))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// statementRequest is mmdb's own endpoint: one statement of mmdb's query
// language (SEARCH, EXPLAIN, GET, COUNT, DELETE, ALIGN, ...).
type statementRequest struct {
	Statement  string `json:"statement"`
	Collection string `json:"collection"`
}

// statementAny is POST /query: the collection is named in the body, or is
// the only one served.
func (s *Server) statementAny(r *http.Request) (any, error) {
	var req statementRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name := req.Collection
	if name == "" {
		names := s.Collections()
		if len(names) != 1 {
			return nil, badf("name the collection (\"collection\": ...): %d are served", len(names))
		}
		name = names[0]
	}
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.db == nil {
		return nil, fmt.Errorf("%w: collection %q was deleted", errNoCollection, name)
	}
	return runStatement(r, c.db, req.Statement)
}

// statement is POST /collections/{name}/query.
func (s *Server) statement(r *http.Request, db *mmdb.DB, c *collection) (any, error) {
	var req statementRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Collection != "" && req.Collection != c.name {
		return nil, badf("collection %q in the body, %q in the path", req.Collection, c.name)
	}
	return runStatement(r, db, req.Statement)
}

// statementResult is a statement's answer: what mmdb.Result holds, and
// the text the shell would print.
type statementResult struct {
	Kind  string           `json:"kind"`
	Hits  []mmdb.Hit       `json:"hits,omitempty"`
	Items []statementItem  `json:"items,omitempty"`
	Count *int             `json:"count,omitempty"`
	Plans []*mmdb.Plan     `json:"plans,omitempty"`
	Other *json.RawMessage `json:"report,omitempty"`
	Text  string           `json:"text"`
}

type statementItem struct {
	ID      string               `json:"id"`
	Attrs   map[string]any       `json:"attrs,omitempty"`
	Vectors map[string][]float32 `json:"vectors,omitempty"`
}

func runStatement(r *http.Request, db *mmdb.DB, stmt string) (any, error) {
	if strings.TrimSpace(stmt) == "" {
		return nil, badf("statement is required, e.g. {\"statement\": \"SEARCH image NEAR text OF 'id' LIMIT 5\"}")
	}
	res, err := db.Query(r.Context(), stmt)
	if err != nil {
		return nil, err
	}
	out := statementResult{Kind: res.Kind, Hits: res.Hits, Plans: res.Plans, Text: res.String()}
	for _, it := range res.Items {
		out.Items = append(out.Items, statementItem{ID: it.ID, Attrs: it.Attrs, Vectors: it.Vectors})
	}
	switch res.Kind {
	case "COUNT", "DELETE":
		n := res.Count
		out.Count = &n
	}
	var report any
	switch {
	case res.Report != nil:
		report = res.Report
	case res.Calibration != nil:
		report = res.Calibration
	}
	if report != nil {
		b, err := json.Marshal(report)
		if err != nil {
			return nil, fmt.Errorf("encoding the %s report: %w", res.Kind, err)
		}
		raw := json.RawMessage(b)
		out.Other = &raw
	}
	return out, nil
}
