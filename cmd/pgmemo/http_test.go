package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/invalidate"
	"github.com/pgmemo/pgmemo/proxy"
)

// testProxy is serve() running in this process, with its HTTP endpoint.
type testProxy struct {
	addr string // the proxy's address
	http string // the HTTP endpoint's, "" when disabled
	logs *syncBuffer
	done chan error
	stop context.CancelFunc
}

// startTestProxy runs serve() with args (plus --listen 127.0.0.1:0 and, unless
// args set it, --http-listen 127.0.0.1:0) until the test ends. sampleEvery,
// when positive, is the status page's sampling interval.
func startTestProxy(t *testing.T, sampleEvery time.Duration, args ...string) *testProxy {
	t.Helper()
	p, err := tryStartTestProxy(t, sampleEvery, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tryStartTestProxy(t *testing.T, sampleEvery time.Duration, args ...string) (*testProxy, error) {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)
	hasHTTP := false
	for _, a := range args {
		if strings.HasPrefix(a, "--http-listen") {
			hasHTTP = true
		}
	}
	if !hasHTTP {
		args = append(args, "--http-listen", "127.0.0.1:0")
	}
	var cfg config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.register(fs)
	src, fc, err := parseAll(fs, args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.flags, cfg.src, cfg.file = fs, src, fc
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	cfg.sampleEvery = sampleEvery
	httpAddr := make(chan string, 1)
	cfg.httpReady = func(a string) { httpAddr <- a }
	ctx, stop := context.WithCancel(context.Background())
	p := &testProxy{logs: &syncBuffer{}, done: make(chan error, 1), stop: stop}
	addr := make(chan string, 1)
	go func() { p.done <- serve(ctx, &cfg, cfg.logger(p.logs), func(a string) { addr <- a }) }()
	select {
	case p.addr = <-addr:
	case err := <-p.done:
		stop()
		return nil, fmt.Errorf("serve: %w", err)
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("serve did not start")
	}
	select {
	case p.http = <-httpAddr:
	default: // disabled: startHTTP runs before the proxy reports its address
	}
	t.Cleanup(func() {
		stop()
		if err := <-p.done; err != nil {
			t.Errorf("serve ended with %v", err)
		}
		if strings.Contains(p.logs.String(), "SELECT") {
			t.Errorf("statement text was logged:\n%s", p.logs.String())
		}
	})
	return p, nil
}

// url is a connection URL through the proxy to db as the superuser.
func (p *testProxy) url(db string) string {
	return "postgres://" + pgtest.SuperUser + "@" + p.addr + "/" + db + "?sslmode=disable"
}

// get fetches path from the HTTP endpoint.
func (p *testProxy) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestHealthReadinessAndPprof: /healthz answers while the process runs,
// /readyz says why it is not ready when the upstream is down, and
// /debug/pprof/ exists only with --pprof.
func TestHealthReadinessAndPprof(t *testing.T) {
	c := pgtest.Need(t, cluster)

	down := startTestProxy(t, 0, "--upstream", "postgres://pgmemo@"+closedPort(t)+"/postgres?sslmode=disable&connect_timeout=2",
		"--invalidation", "statement")
	if code, body := down.get(t, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz with the upstream down: %d %q, want 200 ok", code, body)
	}
	if code, body := down.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "upstream: ") {
		t.Errorf("/readyz with the upstream down: %d %q, want 503 and the upstream's error", code, body)
	} else {
		t.Logf("/readyz body: %s", body)
	}
	if code, _ := down.get(t, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: %d, want 404", code)
	}
	if code, _ := down.get(t, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d, want 404", code)
	}
	if code, body := down.get(t, "/"); code != 200 || !strings.Contains(body, "not ready") {
		t.Errorf("status page with the upstream down: %d, want 200 saying not ready", code)
	}

	up := startTestProxy(t, 0, "--upstream", c.URL("", "", ""), "--invalidation", "statement", "--pprof")
	if code, body := up.get(t, "/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz with the upstream up: %d %q, want 200 ready", code, body)
	}
	if code, body := up.get(t, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with --pprof: %d, want 200 and the profile index", code)
	}
	if code, _ := up.get(t, "/debug/pprof/cmdline"); code != 200 {
		t.Errorf("/debug/pprof/cmdline with --pprof: %d, want 200", code)
	}

	// Shutting down: /readyz turns 503 as soon as the drain begins.
	up.stop()
	if err := <-up.done; err != nil {
		t.Fatal(err)
	}
	up.done <- nil // for the cleanup
	if _, err := http.Get("http://" + up.http + "/healthz"); err == nil {
		t.Error("the HTTP endpoint still answers after serve returned")
	}
}

// TestHTTPListenDisabledAndBusy: an empty --http-listen starts no endpoint;
// an address set explicitly that is taken fails the start with a message
// naming the flag.
func TestHTTPListenDisabledAndBusy(t *testing.T) {
	upstream := "postgres://pgmemo@" + closedPort(t) + "/postgres?sslmode=disable"
	off := startTestProxy(t, 0, "--upstream", upstream, "--invalidation", "off", "--http-listen", "")
	if off.http != "" {
		t.Errorf("--http-listen '' started an endpoint on %s", off.http)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = tryStartTestProxy(t, 0, "--upstream", upstream, "--http-listen", busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "--http-listen") {
		t.Fatalf("a busy --http-listen: err = %v, want one naming --http-listen", err)
	}
}

// TestReplicationReasons: /readyz names each database whose results may not
// be served, with the stream's last error.
func TestReplicationReasons(t *testing.T) {
	rep := proxy.CacheReport{Mode: "wal", Databases: []proxy.DatabaseReport{
		{Name: "postgres", Serving: true, WAL: &invalidate.WALStatus{Connected: true}},
		{Name: "app", Reason: "replication_not_current", WAL: &invalidate.WALStatus{LastError: "connection refused"}},
		{Name: "lagging", Reason: "replication_lag", WAL: &invalidate.WALStatus{Connected: true}},
	}}
	got := strings.Join(replicationReasons(rep), "\n")
	want := "database app: replication_not_current: connection refused\ndatabase lagging: replication_lag"
	if got != want {
		t.Errorf("reasons:\n%s\nwant:\n%s", got, want)
	}
	rep.Mode = "statement"
	if r := replicationReasons(rep); r != nil {
		t.Errorf("statement mode: %v, want none", r)
	}
	// While draining, nothing else is checked.
	r := &readiness{report: func() proxy.CacheReport { return rep }}
	r.draining.Store(true)
	if why := r.reasons(context.Background()); len(why) != 1 || why[0] != "shutting down" {
		t.Errorf("draining: %v", why)
	}
}
