package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/internal/server"
	"github.com/spf13/cobra"
)

func serveCmd() *cobra.Command {
	c := newCmd("serve PATH", "serve databases over HTTP with a Qdrant-compatible REST API",
		"Serves PATH to other processes and languages over HTTP. PATH is a database file (one collection,\n"+
			"named after the file) or a folder whose *.mmdb files are the collections (PUT /collections/NAME\n"+
			"creates one there).\n\n"+
			"The API is a subset of Qdrant's REST API, so Qdrant's clients work unchanged: collections\n"+
			"(create, get, exists, delete, list), points (upsert, retrieve, get, delete by IDs or filter,\n"+
			"payload set/overwrite/delete/clear, vector updates), POST .../points/query (nearest to a\n"+
			"vector or point, recommend with positive and negative examples; `using` names the vector, i.e.\n"+
			"the modality; filters with must/should/must_not, match value/any/except, range, is_empty),\n"+
			"query/batch, query/groups, the older .../points/search and .../points/recommend, scroll,\n"+
			"count, and snapshots (create, list, download, delete; `mmdb restore` restores one).\n"+
			"Where it differs from Qdrant: docs/serve.md.\n"+
			"mmdb's own POST /query takes a statement ({\"statement\": \"SEARCH ...\", \"collection\": ...}):\n"+
			"cross-modal routes, alignment, EXPLAIN.\n\n"+
			"It binds to 127.0.0.1 unless --addr says otherwise; with --api-key (or MMDB_API_KEY) every\n"+
			"request but /healthz must carry the key (api-key header, or Authorization: Bearer). SIGINT or\n"+
			"SIGTERM stops it gracefully: requests in flight get 30 s to finish (then they are cancelled),\n"+
			"and every database is closed.",
		"mmdb serve media.mmdb\n  mmdb serve --addr 127.0.0.1:6333 --api-key secret ./collections/", 1)
	addr := c.Flags().String("addr", "127.0.0.1:6333", "address to listen on (host:port)")
	apiKey := c.Flags().String("api-key", "", "API key every request must carry (default: $MMDB_API_KEY; none when both are empty)")
	maxBody := c.Flags().Int64("max-body", server.DefaultMaxBody, "largest request body in bytes")
	maxBatch := c.Flags().Int("max-batch", server.DefaultMaxBatch, "most points one request may write, read or delete by ID")
	timeout := c.Flags().Duration("timeout", server.DefaultTimeout, "longest a request may work (a request's ?timeout= may ask up to 10m)")
	snapshots := c.Flags().String("snapshots", "", "folder for snapshots (default: snapshots/ beside the file, or in the folder)")
	quiet := c.Flags().Bool("quiet", false, "log only failures")
	lowMem := lowMemoryFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		key := *apiKey
		if key == "" {
			key = os.Getenv("MMDB_API_KEY")
		}
		level := slog.LevelInfo
		if *quiet {
			level = slog.LevelWarn
		}
		cfg := server.Config{APIKey: key, MaxBody: *maxBody, MaxBatch: *maxBatch, Timeout: *timeout, SnapshotDir: *snapshots, Open: mmdb.Options{LowMemory: *lowMem},
			Logger: slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))}
		return runServe(c.Context(), args[0], *addr, cfg, c.OutOrStdout())
	}
	return c
}

// shutdownGrace is how long a stop waits for requests in flight.
const shutdownGrace = 30 * time.Second

// runServe serves until ctx ends or SIGINT/SIGTERM arrives, then shuts
// down gracefully and closes the databases.
func runServe(ctx context.Context, path, addr string, cfg server.Config, stdout io.Writer) error {
	if err := mustExist(path); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Open(path, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		return err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); cfg.APIKey == "" && !net.ParseIP(host).IsLoopback() {
		cfg.Logger.Warn("listening beyond this machine without an API key: anyone who reaches the port can read and change the data", "addr", ln.Addr().String())
	}
	// Requests run under base: past the shutdown's grace period it is
	// cancelled, so a long request stops instead of holding the exit.
	base, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute,
		WriteTimeout: server.MaxTimeout + time.Minute, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return base }}
	fmt.Fprintf(stdout, "mmdb serve: %d collection(s) %v on http://%s\n", len(srv.Collections()), srv.Collections(), ln.Addr())
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	serr := hs.Shutdown(shutdown)
	if serr != nil {
		// Requests still running after the grace period are cancelled;
		// Close below waits for them to let go of their databases.
		cancelRequests()
		serr = fmt.Errorf("requests still running after %v were cancelled: %w", shutdownGrace, serr)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		serr = errors.Join(serr, err)
	}
	if err := srv.Close(); err != nil {
		return errors.Join(serr, err)
	}
	fmt.Fprintln(stdout, "mmdb serve: stopped; databases closed")
	return serr
}
