package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pgmemo/pgmemo/proxy"
)

var errUsage = errors.New("usage")

// config is everything the flags (and PGMEMO_* environment variables) set.
type config struct {
	listen          string
	unixSocketDir   string
	upstream        string
	tlsCert         string
	tlsKey          string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	maxMessage      int
	threads         string

	invalidation  string
	cacheMaxBytes byteSize
	cacheMaxEntry byteSize
	cacheMaxPin   byteSize
	cacheTTL      time.Duration
	txPolicy      string
	maxStaleness  time.Duration
	publication   string
	slot          string
	walIdle       time.Duration
	accessCheck   time.Duration
	configFile    string
	adminRoles    string
	cacheMode     string
	httpListen    string
	pprof         bool

	// Test hooks of the HTTP endpoint: httpReady receives its address,
	// sampleEvery overrides the status page's sampling interval (5s).
	httpReady   func(addr string)
	sampleEvery time.Duration

	workload workloadOptions // demo only

	level *slog.LevelVar // the logger's level, changed by a reload
	flags *flag.FlagSet  // as parsed, for SHOW pgmemo.config and reloads
	src   sources
	file  *fileConfig // nil without --config
}

// rules are the config file's rules.
func (c *config) rules() []proxy.Rule {
	if c.file == nil {
		return nil
	}
	return c.file.rules
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:6432", "address to accept clients on")
	fs.StringVar(&c.unixSocketDir, "unix-socket-dir", "", "also accept clients on a Unix socket in this directory, named .s.PGSQL.PORT after --listen's port as PostgreSQL names its own (psql -h DIR -p PORT); empty: TCP only")
	fs.StringVar(&c.upstream, "upstream", "", "PostgreSQL server to forward to, as a postgres:// URL (host, port and sslmode are used; clients bring their own user, database and password)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for client TLS (with --tls-key); without it SSLRequest is answered N")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for client TLS")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long busy sessions may take to finish before they are closed")
	fs.StringVar(&c.threads, "threads", "auto", "threads that run pgmemo's Go code at once (GOMAXPROCS): a number, or auto for half the CPUs this process may use (at least 1; a GOMAXPROCS environment variable takes precedence over auto)")
	fs.IntVar(&c.maxMessage, "max-message-bytes", 0, "largest client message accepted (0: PostgreSQL's limit, 1 GiB)")
	fs.StringVar(&c.invalidation, "invalidation", "wal", "how cached results are kept fresh: wal (every committed write, from anywhere, through logical replication; needs wal_level=logical and a REPLICATION role in --upstream), statement (only writes through this proxy; bound the others with --cache-ttl) or off (no caching)")
	fs.DurationVar(&c.maxStaleness, "max-staleness", time.Second, "with --invalidation=wal: how far behind the server the replication stream may be while hits are served")
	fs.StringVar(&c.publication, "publication", "pgmemo", "with --invalidation=wal: the publication streamed; created FOR ALL TABLES when missing (if no table lacks a replica identity)")
	fs.DurationVar(&c.walIdle, "replication-idle-timeout", 5*time.Minute, "with --invalidation=wal: stop a database's replication stream (and drop its cached results) after it has had no client for this long; 0 never stops it")
	fs.DurationVar(&c.accessCheck, "access-check-interval", 2*time.Second, "how often each database's roles, memberships, privileges, row-level security policies and the server's last configuration reload are read for changes made without pgmemo (which drop its cached results); table and policy changes also arrive at once through the replication stream once install-ddl-hook has run, role changes only this way")
	fs.StringVar(&c.slot, "replication-slot", "", "with --invalidation=wal: persistent replication slots, named NAME_database (one per database); empty uses temporary slots")
	c.cacheMaxBytes = 256 << 20
	fs.Var(&c.cacheMaxBytes, "cache-max-bytes", "memory bound of the result cache (e.g. 256MiB, 2GiB)")
	c.cacheMaxEntry = 1 << 20
	fs.Var(&c.cacheMaxEntry, "cache-max-entry-bytes", "largest result cached; bigger ones stream through uncached")
	fs.Var(&c.cacheMaxPin, "cache-max-pinned-bytes", "part of --cache-max-bytes that results pinned by a pin rule may hold (0: a quarter of it)")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", 0, "when positive, how long a cached result is served at most")
	fs.StringVar(&c.txPolicy, "tx-policy", "until-write", "hits inside transaction blocks: until-write (READ COMMITTED blocks until their first write) or never")
	fs.StringVar(&c.configFile, "config", "", "a TOML config file with the same keys as the flags, and [[rule]] tables (flags > env > file > defaults); SIGHUP reloads its rules and log-level")
	fs.StringVar(&c.adminRoles, "admin-roles", "", "comma-separated roles that may run SHOW pgmemo.queries, SHOW pgmemo.config and PGMEMO INVALIDATE (superusers always may)")
	fs.StringVar(&c.cacheMode, "cache-mode", "auto", "auto: cache everything safe; opt-in: only what a cache rule of the config file names")
	fs.StringVar(&c.httpListen, "http-listen", "127.0.0.1:9432", "address of the HTTP endpoint: /metrics (Prometheus), /healthz, /readyz and the status page /; empty or off disables it")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve /debug/pprof/ on --http-listen")
}

// byteSize is a flag value in bytes, written as a number with an optional
// unit: B, kB/KiB, MB/MiB, GB/GiB (powers of 1024 for both spellings, as in
// PostgreSQL's own settings).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size (examples: 1048576, 64MiB, 2GB)", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}[unit]
	if mult == 0 {
		return fmt.Errorf("%q: unknown unit %q (use B, kB, MB, GB or KiB, MiB, GiB)", s, unit)
	}
	*b = byteSize(n * mult)
	return nil
}

// parseFlags parses args, with PGMEMO_<FLAG> environment variables (dashes as
// underscores, upper case) filling every flag not given on the command line,
// and a --config file, when fs has that flag, filling the rest (see parseAll).
func parseFlags(fs *flag.FlagSet, args []string, env func(string) string) error {
	_, _, err := parseAll(fs, args, env)
	return err
}

func (c *config) validate() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return err
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format %q: allowed values are text, json", c.logFormat)
	}
	if _, err := parseThreads(c.threads); err != nil {
		return err
	}
	if c.shutdownTimeout < 0 {
		return errors.New("--shutdown-timeout must not be negative")
	}
	switch c.invalidation {
	case "off", "statement", "wal":
	default:
		return fmt.Errorf("--invalidation %q: allowed values are wal, statement, off", c.invalidation)
	}
	if c.maxStaleness <= 0 {
		return errors.New("--max-staleness must be positive")
	}
	if c.accessCheck <= 0 {
		return errors.New("--access-check-interval must be positive")
	}
	if c.cacheMode != "auto" && c.cacheMode != "opt-in" {
		return fmt.Errorf("--cache-mode %q: allowed values are auto, opt-in", c.cacheMode)
	}
	if _, err := proxy.ParseTxPolicy(c.txPolicy); err != nil {
		return fmt.Errorf("--tx-policy: %w", err)
	}
	if c.cacheTTL < 0 {
		return errors.New("--cache-ttl must not be negative")
	}
	if c.cacheMaxBytes <= 0 || c.cacheMaxEntry <= 0 {
		return errors.New("--cache-max-bytes and --cache-max-entry-bytes must be positive")
	}
	if c.cacheMaxPin < 0 || c.cacheMaxPin > c.cacheMaxBytes {
		return errors.New("--cache-max-pinned-bytes must be between 0 and --cache-max-bytes")
	}
	return nil
}

// cacheOptions is the proxy's cache configuration.
func (c *config) cacheOptions() proxy.CacheOptions {
	p, _ := proxy.ParseTxPolicy(c.txPolicy)
	return proxy.CacheOptions{
		Enabled:             c.invalidation != "off",
		WAL:                 c.invalidation == "wal",
		MaxStaleness:        c.maxStaleness,
		Publication:         c.publication,
		ReplicationSlot:     c.slot,
		WALIdleTimeout:      walIdle(c.walIdle),
		AccessCheckInterval: c.accessCheck,
		OptIn:               c.cacheMode == "opt-in",
		MaxBytes:            int64(c.cacheMaxBytes),
		MaxEntryBytes:       int(c.cacheMaxEntry),
		MaxPinnedBytes:      int64(c.cacheMaxPin),
		TTL:                 c.cacheTTL,
		TxPolicy:            p,
	}
}

// parseThreads parses --threads: 0 for auto, else a positive count.
func parseThreads(s string) (int, error) {
	if s == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--threads %q: a positive number or auto", s)
	}
	return n, nil
}

// threadCount is the GOMAXPROCS that --threads asks for, given the GOMAXPROCS
// environment variable and the runtime's own default (avail: the CPUs the
// process may use, cgroup limits included). auto takes half of avail: pgmemo
// mostly waits on sockets, and a proxy usually shares its machine with the
// client or the database; on a 2-core machine shared with PostgreSQL and
// pgbench, one thread used up to 20 % less CPU per hit than two, for the same
// throughput (docs/BENCHMARKS.md, 2026-12-02 b).
func threadCount(flagValue, env string, avail int) int {
	n, _ := parseThreads(flagValue)
	switch {
	case n > 0:
		return n
	case env != "":
		return avail
	}
	return max(1, avail/2)
}

// walIdle maps the flag (0: never) to CacheOptions.WALIdleTimeout (negative:
// never, 0: the default).
func walIdle(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: allowed values are debug, info, warn, error", s)
	}
	return l, nil
}

// roles returns --admin-roles as a list.
func (c *config) roles() []string {
	var out []string
	for _, r := range strings.Split(c.adminRoles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func (c *config) logger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.logLevel)
	c.level = new(slog.LevelVar)
	c.level.Set(lvl)
	opts := &slog.HandlerOptions{Level: c.level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *config) tlsConfig() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
