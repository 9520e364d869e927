package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// TestUpstreamUnixSocket relays through an upstream URL naming the server's
// Unix socket directory (host=/dir): queries, a 20 MB value both ways (the
// socket fills and the relay waits for it), an error, COPY out and a clean
// Terminate.
func TestUpstreamUnixSocket(t *testing.T) {
	c := pgtest.Need(t, cluster)
	up, err := proxy.ParseUpstream(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", c.Dir, c.Port, pgtest.SuperUser))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, func(s *proxy.Server) { s.Upstream = up })
	ctx := testCtx(t)
	conn := pgxConnect(t, p.URL("", "", ""))

	var path string
	if err := conn.QueryRow(ctx, "SELECT coalesce(inet_client_addr()::text, 'unix')").Scan(&path); err != nil {
		t.Fatal(err)
	}
	if path != "unix" {
		t.Fatalf("the server sees the proxy's connection from %s; want the Unix socket", path)
	}
	data := make([]byte, 20<<20)
	rand.Read(data)
	var got []byte
	if err := conn.QueryRow(ctx, "SELECT $1::bytea", data).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("a 20 MB value echoed through the proxy differs")
	}
	if _, err := conn.Exec(ctx, "SELECT 1/0"); err == nil || !strings.Contains(err.Error(), "22012") {
		t.Fatalf("division by zero: %v; want SQLSTATE 22012", err)
	}
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT g FROM generate_series(1, 50000) g) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 50000 {
		t.Fatalf("COPY TO STDOUT gave %d lines; want 50000", n)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	// Both sockets close: the session and its upstream connection are gone.
	pgtest.Eventually(t, 2*time.Second, func() error {
		if st := p.Srv.Stats(); st.ClientConnections != 0 || st.UpstreamConnections != 0 {
			return fmt.Errorf("%d client and %d upstream connections open after Terminate; want none", st.ClientConnections, st.UpstreamConnections)
		}
		return nil
	})
}
