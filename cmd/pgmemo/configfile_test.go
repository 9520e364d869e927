package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgmemo.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const sampleFile = `
listen = "127.0.0.1:7000"
log-level = "debug"
cache-max-bytes = "64MiB"
cache-ttl = "30s"
admin-roles = ["ops", "dba"]
max-staleness = "2s"

[[rule]]
relation = "public.sessions"
action = "never"

[[rule]]
fingerprint = "5ec8b2a9d1f1bb4c"
ttl = "10s"

[[rule]]
relation = "countries"
action = "pin"
`

// TestConfigPrecedence: flags > env > file > defaults, and config print says
// where each value came from.
func TestConfigPrecedence(t *testing.T) {
	path := writeFile(t, sampleFile)
	var cfg config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.register(fs)
	env := map[string]string{"PGMEMO_CONFIG": path, "PGMEMO_LOG_LEVEL": "warn", "PGMEMO_CACHE_TTL": "5s"}
	src, fc, err := parseAll(fs, []string{"--cache-ttl", "1m"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, value, source string }{
		{"cache-ttl", "1m0s", "flag"},
		{"log-level", "warn", "env"},
		{"listen", "127.0.0.1:7000", "file"},
		{"cache-max-bytes", "67108864", "file"},
		{"admin-roles", "ops,dba", "file"},
		{"max-staleness", "2s", "file"},
		{"tx-policy", "until-write", "default"},
		{"config", path, "env"},
	} {
		f := fs.Lookup(tt.name)
		if f.Value.String() != tt.value || src[tt.name] != tt.source {
			t.Errorf("%s = %q from %s, want %q from %s", tt.name, f.Value.String(), src[tt.name], tt.value, tt.source)
		}
	}
	want := []proxy.Rule{{Relation: "public.sessions", Action: proxy.RuleNever}, {Fingerprint: "5ec8b2a9d1f1bb4c", Action: proxy.RuleCache, TTL: 10 * time.Second},
		{Relation: "countries", Action: proxy.RulePin}}
	if len(fc.rules) != 3 || fc.rules[0] != want[0] || fc.rules[1] != want[1] || fc.rules[2] != want[2] {
		t.Errorf("rules %+v", fc.rules)
	}

	var out bytes.Buffer
	t.Setenv("PGMEMO_CONFIG", path)
	if err := run(t.Context(), []string{"config", "print", "--upstream", "postgres://u:secret@db/x"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"listen ", "127.0.0.1:7000", "file", "rule.1", "relation public.sessions: never", "u:*****@db", "default"} {
		if !strings.Contains(s, want) {
			t.Errorf("config print lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "secret") {
		t.Errorf("config print shows the password:\n%s", s)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`nope = 1`, `unknown key "nope"`},
		{`cache-max-bytes = "lots"`, `cache-max-bytes = "lots"`},
		{`max-staleness = "soon"`, `max-staleness`},
		{`listen = `, `pgmemo.toml`},
		{"[[rule]]\naction = \"never\"", "exactly one of relation and fingerprint"},
		{"[[rule]]\nrelation = \"t\"\naction = \"sometimes\"", `action "sometimes"`},
		{"[[rule]]\nrelation = \"t\"\naction = \"never\"\nttl = \"1s\"", "ttl makes no sense"},
	} {
		path := writeFile(t, tt.body)
		var cfg config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.register(fs)
		_, _, err := parseAll(fs, []string{"--config", path}, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error mentioning %q", tt.body, err, tt.want)
		}
	}
}

// TestSIGHUPReload: SIGHUP reloads the rules (which change how statements
// are served) and a broken file keeps the configuration in force.
func TestSIGHUPReload(t *testing.T) {
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, "sighup"); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "log-level = \"info\"\n")
	var logs syncBuffer
	var cfg config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.register(fs)
	src, fc, err := parseAll(fs, []string{"--listen", "127.0.0.1:0", "--upstream", c.URL("", "", "sighup"), "--invalidation", "statement", "--config", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.flags, cfg.src, cfg.file = fs, src, fc
	sctx, stop := context.WithCancel(ctx)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(sctx, &cfg, cfg.logger(&logs), func(a string) { addr <- a }) }()
	defer func() { stop(); <-done }()
	url := "postgres://postgres@" + <-addr + "/sighup?sslmode=disable"
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	served := func() (result, reason string) {
		var v string
		if err := conn.QueryRow(ctx, "SELECT v FROM kv WHERE k = $1", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		var fp, warnings string
		if err := conn.QueryRow(ctx, "SHOW pgmemo.last", pgx.QueryExecModeSimpleProtocol).Scan(&result, &reason, &fp, &warnings); err != nil {
			t.Fatal(err)
		}
		return result, reason
	}
	served()
	if r, _ := served(); r != "hit" {
		t.Fatalf("before the reload: %s, want hit", r)
	}
	if err := os.WriteFile(path, []byte("[[rule]]\nrelation = \"kv\"\naction = \"never\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	pgtest.Eventually(t, 5*time.Second, func() error {
		if r, reason := served(); r != "miss-not-cacheable" || reason != "rule_never" {
			return fmt.Errorf("after the reload: %s %s", r, reason)
		}
		return nil
	})
	if err := os.WriteFile(path, []byte("this is = not toml ["), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	pgtest.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "config file not reloaded") {
			return fmt.Errorf("no log of the failed reload")
		}
		return nil
	})
	if r, reason := served(); r != "miss-not-cacheable" || reason != "rule_never" {
		t.Errorf("after a broken file: %s %s; the rules in force must stay", r, reason)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
