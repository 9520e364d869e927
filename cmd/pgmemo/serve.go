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

	"github.com/pgmemo/pgmemo/proxy"
)

const usage = `pgmemo: a transparent caching proxy for PostgreSQL

Usage:
  pgmemo [flags]          run the proxy (--upstream is required)
  pgmemo demo [flags]     start a throwaway PostgreSQL with sample data and the proxy in front of it
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
	switch cmd {
	case "serve", "demo":
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
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		fmt.Fprintln(stderr, "pgmemo:", err)
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log := cfg.logger(stderr)
	if cmd == "demo" {
		return runDemo(ctx, &cfg, log, stdout)
	}
	if cfg.upstream == "" {
		return errors.New("--upstream (or PGMEMO_UPSTREAM) is required; try `pgmemo demo` for a throwaway database")
	}
	return serve(ctx, &cfg, log, nil)
}

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
	}
	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	log.Info("pgmemo listening", "addr", l.Addr().String(), "upstream", up.String(), "tls", tlsCfg != nil,
		"invalidation", cfg.invalidation, "cache_max_bytes", int64(cfg.cacheMaxBytes))
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
