package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgmemo/pgmemo/proxy"
)

// readyCacheFor is how long a readiness check of the upstream is reused, so
// that probes do not open a connection each.
const readyCacheFor = 2 * time.Second

// httpServer is the admin HTTP endpoint (--http-listen): /metrics, /healthz,
// /readyz, the status page / and, with --pprof, /debug/pprof/.
type httpServer struct {
	hs      *http.Server
	addr    string
	sampler *sampler
	ready   *readiness
	log     *slog.Logger
	done    chan struct{} // closed when the sampler and the server have stopped
	errc    chan error

	stopSampler context.CancelFunc
}

// startHTTP starts the endpoint for srv, unless --http-listen is empty or
// "off" (it then returns nil, nil). It stops when ctx ends or close is
// called. An address set explicitly must be free; the default one, when
// taken (a second pgmemo on the host), only logs a warning.
func startHTTP(ctx context.Context, cfg *config, srv *proxy.Server, log *slog.Logger) (*httpServer, error) {
	addr := strings.TrimSpace(cfg.httpListen)
	if addr == "" || addr == "off" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) && (cfg.src == nil || cfg.src["http-listen"] == "default") {
			log.Warn("HTTP endpoint not started: its default address is in use; set --http-listen to another address, or empty to disable it", "addr", addr)
			return nil, nil
		}
		return nil, fmt.Errorf("--http-listen %s: %w", addr, err)
	}
	every := cfg.sampleEvery
	if every <= 0 {
		every = sampleInterval
	}
	h := &httpServer{
		addr:    l.Addr().String(),
		sampler: newSampler(srv, every, int(sampleWindow/sampleInterval)),
		ready:   &readiness{up: srv.Upstream, report: srv.CacheReport},
		log:     log,
		done:    make(chan struct{}),
		errc:    make(chan error, 1),
	}
	page := &statusPage{srv: srv, sampler: h.sampler, ready: h.ready, upstream: srv.Upstream.String(), started: time.Now()}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metricsRegistry(srv), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", h.ready.serveHTTP)
	mux.Handle("GET /{$}", page)
	if cfg.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	h.hs = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	sctx, stopSampler := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		h.sampler.run(sctx)
	}()
	go func() {
		defer wg.Done()
		if err := h.hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.errc <- err
		}
	}()
	go func() {
		// When ctx ends (shutdown begins), /readyz says so at once; the
		// endpoint itself stays up until close, after the proxy has drained.
		<-sctx.Done()
		h.ready.draining.Store(true)
	}()
	go func() {
		wg.Wait()
		close(h.done)
	}()
	h.stopSampler = stopSampler
	log.Info("HTTP endpoint listening", "addr", h.addr, "pprof", cfg.pprof)
	if cfg.httpReady != nil {
		cfg.httpReady(h.addr)
	}
	return h, nil
}

// close stops the endpoint (h may be nil).
func (h *httpServer) close() {
	if h == nil {
		return
	}
	h.ready.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.hs.Shutdown(ctx); err != nil {
		h.hs.Close()
	}
	h.stopSampler()
	<-h.done
	select {
	case err := <-h.errc:
		h.log.Warn("HTTP endpoint stopped with an error", "err", err)
	default:
	}
}

// readiness answers /readyz: the upstream accepts a connection (checked at
// most every readyCacheFor) and, with WAL invalidation, every database's
// results may be served.
type readiness struct {
	up     *proxy.Upstream
	report func() proxy.CacheReport

	draining atomic.Bool

	mu      sync.Mutex // held during a check: concurrent probes share it
	checked time.Time
	err     error
}

// upstreamErr connects to the upstream with the --upstream URL's
// credentials, or reuses a result younger than readyCacheFor.
func (r *readiness) upstreamErr(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < readyCacheFor {
		return r.err
	}
	cfg := r.up.Config.Copy()
	params := make(map[string]string, len(cfg.RuntimeParams)+1)
	for k, v := range cfg.RuntimeParams {
		params[k] = v
	}
	params["application_name"] = "pgmemo readyz"
	cfg.RuntimeParams = params
	ctx, cancel := context.WithTimeout(ctx, min(r.up.DialTimeout, 5*time.Second))
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
	}
	r.err, r.checked = err, time.Now()
	return err
}

// reasons lists why pgmemo is not ready; empty when it is.
func (r *readiness) reasons(ctx context.Context) []string {
	if r.draining.Load() {
		return []string{"shutting down"}
	}
	var why []string
	if err := r.upstreamErr(ctx); err != nil {
		why = append(why, "upstream: "+err.Error())
	}
	return append(why, replicationReasons(r.report())...)
}

// replicationReasons says which databases' results may not be served
// because their replication stream is not current.
func replicationReasons(rep proxy.CacheReport) []string {
	if rep.Mode != "wal" {
		return nil
	}
	var why []string
	for _, db := range rep.Databases {
		if db.Serving {
			continue
		}
		s := "database " + db.Name + ": " + db.Reason
		if db.WAL != nil && db.WAL.LastError != "" {
			s += ": " + db.WAL.LastError
		}
		why = append(why, s)
	}
	return why
}

func (r *readiness) serveHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	why := r.reasons(req.Context())
	if len(why) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, s := range why {
			fmt.Fprintln(w, s)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}
