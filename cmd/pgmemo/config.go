package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"strings"
	"time"
)

var errUsage = errors.New("usage")

// config is everything the flags (and PGMEMO_* environment variables) set.
type config struct {
	listen          string
	upstream        string
	tlsCert         string
	tlsKey          string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	maxMessage      int
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:6432", "address to accept clients on")
	fs.StringVar(&c.upstream, "upstream", "", "PostgreSQL server to forward to, as a postgres:// URL (host, port and sslmode are used; clients bring their own user, database and password)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for client TLS (with --tls-key); without it SSLRequest is answered N")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for client TLS")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long busy sessions may take to finish before they are closed")
	fs.IntVar(&c.maxMessage, "max-message-bytes", 0, "largest client message accepted (0: PostgreSQL's limit, 1 GiB)")
}

// parseFlags parses args, with PGMEMO_<FLAG> environment variables (dashes as
// underscores, upper case) filling every flag not given on the command line.
func parseFlags(fs *flag.FlagSet, args []string, env func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := "PGMEMO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
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
	if c.shutdownTimeout < 0 {
		return errors.New("--shutdown-timeout must not be negative")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: allowed values are debug, info, warn, error", s)
	}
	return l, nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.logLevel)
	opts := &slog.HandlerOptions{Level: lvl}
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
