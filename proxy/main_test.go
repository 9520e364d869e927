package proxy_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// cluster is the one PostgreSQL server of this test binary.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	code := pgtest.Main(m, &cluster, pgtest.Options{})
	stopTLSUpstream()
	os.Exit(code)
}

// testProxy is a proxy.Server listening on a loopback port in front of cluster.
type testProxy struct {
	Srv    *proxy.Server
	Addr   string
	Port   int
	Served <-chan error // what Serve returned, once it has
}

// startProxy starts a proxy in front of the test cluster; opts may adjust the
// Server before it serves. It is shut down when the test ends.
func startProxy(t testing.TB, opts ...func(*proxy.Server)) *testProxy {
	t.Helper()
	c := pgtest.Need(t, cluster)
	up, err := proxy.ParseUpstream(c.URL("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	srv := &proxy.Server{Upstream: up, Logger: testLogger(t)}
	for _, o := range opts {
		o(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		served <- srv.Serve(l)
		close(stopped)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-stopped
	})
	return &testProxy{Srv: srv, Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port, Served: served}
}

// URL is a connection URL through the proxy. Empty user means the superuser,
// empty db means postgres.
func (p *testProxy) URL(user, password, db string) string {
	return withHostPort(cluster.URL(user, password, db), p.Addr)
}

// DirectURL is the same connection URL straight to PostgreSQL.
func directURL(user, password, db string) string { return cluster.URL(user, password, db) }

func withHostPort(raw, hostport string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.Host = hostport
	return u.String()
}

var dbSeq atomic.Int64

// newDB creates a fresh database for one test and returns its name.
func newDB(t testing.TB) string {
	t.Helper()
	c := pgtest.Need(t, cluster)
	name := fmt.Sprintf("t_%s_%d", strings.ToLower(sanitize(t.Name())), dbSeq.Add(1))
	if len(name) > 60 {
		name = name[:50] + "_" + strconv.FormatInt(dbSeq.Load(), 10)
	}
	if err := c.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
