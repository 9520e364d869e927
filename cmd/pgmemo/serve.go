package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/pgmemo/pgmemo/proxy"
)

const usage = `pgmemo: a transparent caching proxy for PostgreSQL

Usage:
  pgmemo [flags]          run the proxy (--upstream is required)
  pgmemo demo [flags]     start a throwaway PostgreSQL with sample data and the proxy in front of it
  pgmemo demo --workload [--workload-duration 10s] [--workload-clients 8]
                          the same, then run a read-heavy workload against PostgreSQL and through
                          the proxy, print throughput, latency and hit ratio side by side, and exit
  pgmemo config print [flags]
                          the effective configuration and where each value comes from
  pgmemo install-ddl-hook --upstream URL [--database a,b]
                          install the event trigger that announces DDL on the replication stream
  pgmemo help             this text

Every flag can also be set with an environment variable PGMEMO_<FLAG>, e.g. PGMEMO_UPSTREAM.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var cfg config
	fs := flag.NewFlagSet("pgmemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if cmd == "demo" {
		cfg.workload.register(fs)
	}
	switch cmd {
	case "serve", "demo", "config":
	case "install-ddl-hook":
		return installDDLHook(ctx, args, stdout, stderr)
	case "help":
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	default:
		fmt.Fprintf(stderr, "pgmemo: unknown command %q\n\n", cmd)
		fs.Usage()
		return errUsage
	}
	printConfig := false
	if cmd == "config" {
		if len(args) == 0 || args[0] != "print" {
			fmt.Fprintln(stderr, "pgmemo: usage: pgmemo config print [flags]")
			return errUsage
		}
		printConfig, args = true, args[1:]
	}
	src, fc, err := parseAll(fs, args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		fmt.Fprintln(stderr, "pgmemo:", err)
		return errUsage
	}
	cfg.flags, cfg.src, cfg.file = fs, src, fc
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cmd == "demo" {
		if err := cfg.workload.validate(); err != nil {
			return err
		}
	}
	if printConfig {
		for _, r := range configRows(fs, src, cfg.rules()) {
			fmt.Fprintf(stdout, "%-24s %-40s %s\n", r[0], r[1], r[2])
		}
		return nil
	}
	log := cfg.logger(stderr)
	if cmd == "demo" {
		return runDemo(ctx, &cfg, log, stdout)
	}
	if cfg.upstream == "" {
		return errors.New("--upstream (or PGMEMO_UPSTREAM) is required; try `pgmemo demo` for a throwaway database")
	}
	// Only the serving command sets the scheduler: the demo runs its workload
	// clients in this process too, and the tests call serve directly.
	setThreads(threadCount(cfg.threads, os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)))
	return serve(ctx, &cfg, log, nil)
}

// setThreads sets GOMAXPROCS; the tests, which call run in their own
// process, replace it.
var setThreads = runtime.GOMAXPROCS

// serve runs the proxy until ctx ends, then shuts it down gracefully. ready, if
// set, receives the listening address.
func serve(ctx context.Context, cfg *config, log *slog.Logger, ready func(addr string)) error {
	up, err := proxy.ParseUpstream(cfg.upstream)
	if err != nil {
		return err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	srv := &proxy.Server{
		Upstream:        up,
		TLSConfig:       tlsCfg,
		Logger:          log,
		MaxMessageBytes: cfg.maxMessage,
		Cache:           cfg.cacheOptions(),
		AdminRoles:      cfg.roles(),
	}
	var rulesMu sync.Mutex
	rules := cfg.rules()
	srv.Cache.Rules = rules
	if cfg.flags != nil {
		srv.ConfigReport = func() [][3]string {
			rulesMu.Lock()
			defer rulesMu.Unlock()
			return configRows(cfg.flags, cfg.src, rules)
		}
	}
	// SIGHUP reloads the config file's rules and log level; a bad file keeps
	// the configuration in force.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if cfg.configFile == "" {
				log.Info("SIGHUP: no --config file to reload")
				continue
			}
			fc, err := loadConfigFile(cfg.configFile, cfg.flags)
			if err != nil {
				log.Error("SIGHUP: config file not reloaded; the previous configuration stays in force", "err", err)
				continue
			}
			if v, ok := fc.values["log-level"]; ok && (cfg.src["log-level"] == "file" || cfg.src["log-level"] == "default") {
				if lvl, err := parseLevel(v); err == nil {
					cfg.level.Set(lvl)
				}
			}
			rulesMu.Lock()
			rules = fc.rules
			rulesMu.Unlock()
			srv.SetRules(fc.rules)
			log.Info("SIGHUP: config file reloaded", "file", cfg.configFile, "rules", len(fc.rules))
		}
	}()
	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	var ul net.Listener
	if cfg.unixSocketDir != "" {
		if ul, err = listenUnix(cfg.unixSocketDir, l.Addr()); err != nil {
			l.Close()
			return err
		}
		defer ul.Close() // removes the socket file, even if Shutdown came first
	}
	// The HTTP endpoint (metrics, probes, status page) outlives the proxy's
	// drain: it closes when serve returns.
	hs, err := startHTTP(ctx, cfg, srv, log)
	if err != nil {
		l.Close()
		if ul != nil {
			ul.Close()
		}
		return err
	}
	defer hs.close()
	if ul != nil {
		log.Info("pgmemo listening on a Unix socket", "path", ul.Addr().String())
		go func() {
			if err := srv.Serve(ul); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				log.Error("Unix socket listener stopped", "err", err)
			}
		}()
	}
	log.Info("pgmemo listening", "addr", l.Addr().String(), "upstream", up.String(), "tls", tlsCfg != nil,
		"invalidation", cfg.invalidation, "cache_max_bytes", int64(cfg.cacheMaxBytes), "threads", runtime.GOMAXPROCS(0))
	if cfg.invalidation == "statement" && cfg.cacheTTL == 0 {
		log.Warn("caching with --invalidation=statement and no --cache-ttl: writes that do not go through this proxy are not seen; set --cache-ttl to bound how stale their readers may get")
	}
	if ready != nil {
		ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout, "sessions", srv.Stats().ClientConnections)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timeout reached; closed busy sessions", "err", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}
