package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/proxy"
	"github.com/pgmemo/pgmemo/wire"
)

// serveProxy starts a proxy with startProxy and also returns what Serve
// returned, for the shutdown tests.
func serveProxy(t *testing.T, opts ...func(*proxy.Server)) (*testProxy, <-chan error) {
	t.Helper()
	p := startProxy(t, opts...)
	return p, p.Served
}

// wantServeClosed waits for Serve to return ErrServerClosed.
func wantServeClosed(t testing.TB, served <-chan error) {
	t.Helper()
	select {
	case err := <-served:
		if !errors.Is(err, proxy.ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// wantRefused checks that the proxy no longer accepts connections.
func wantRefused(t testing.TB, p *testProxy) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the proxy still accepts connections after Shutdown")
	}
}

// wantSessionEnded checks that conn's session is over: its next query fails,
// with FATAL 57P01 if a server error is reported at all.
func wantSessionEnded(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("query succeeded on a session closed by Shutdown")
	}
	if code := pgCode(err); code != "" && code != wire.CodeAdminShutdown {
		t.Fatalf("next query: %v, want FATAL 57P01 or a connection error", err)
	}
}

func connectApp(t testing.TB, p *testProxy, app string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, setQuery(p.URL("", "", ""), "application_name", app))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestShutdownClosesIdleSessions: idle sessions end at once with FATAL 57P01,
// Shutdown returns nil, Serve returns ErrServerClosed and new clients are
// refused.
func TestShutdownClosesIdleSessions(t *testing.T) {
	p, served := serveProxy(t)
	idle := connectApp(t, p, "shutdown-idle")
	raw := dialProxy(t, p.Addr)
	rawStartup(t, raw, map[string]string{"application_name": "shutdown-idle-raw"})
	waitSessions(t, p, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Shutdown with idle sessions only took %v", took)
	}
	er := readErrorThenClose(t, raw)
	if er.Code != wire.CodeAdminShutdown || er.Severity != "FATAL" {
		t.Fatalf("idle client got %s %s %q, want FATAL 57P01", er.Severity, er.Code, er.Message)
	}
	wantSessionEnded(t, idle)
	wantServeClosed(t, served)
	wantRefused(t, p)
	waitSessions(t, p, 0)
	waitGone(t, "shutdown-idle")
	waitGone(t, "shutdown-idle-raw")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := p.Srv.Serve(l); !errors.Is(err, proxy.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// TestShutdownLetsBusySessionsFinish: a session inside a transaction block,
// or with a query running, is left alone until it is idle again; its work
// completes and then it is closed, and only then does Shutdown return.
func TestShutdownLetsBusySessionsFinish(t *testing.T) {
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE t (v text)"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// start puts conn in its busy state; finish (run after Shutdown
		// started) completes the work, which must succeed.
		start  func(ctx context.Context, conn *pgx.Conn) error
		finish func(ctx context.Context, conn *pgx.Conn) error
		want   []string // rows of t afterwards
		// probeCode is the SQLSTATE of a SELECT 2 sent during shutdown ("" if
		// it succeeds): the session is still served.
		probeCode string
	}{
		{"transaction committed",
			func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, "BEGIN; INSERT INTO t VALUES ('committed'); SELECT 1")
				return err
			},
			func(ctx context.Context, c *pgx.Conn) error {
				if _, err := c.Exec(ctx, "INSERT INTO t VALUES ('after shutdown began')"); err != nil {
					return err
				}
				_, err := c.Exec(ctx, "COMMIT")
				return err
			},
			[]string{"after shutdown began", "committed"}, ""},
		{"failed transaction rolled back",
			func(ctx context.Context, c *pgx.Conn) error {
				if _, err := c.Exec(ctx, "BEGIN; INSERT INTO t VALUES ('rolled back')"); err != nil {
					return err
				}
				if _, err := c.Exec(ctx, "SELECT 1/0"); pgCode(err) != "22012" {
					return fmt.Errorf("SELECT 1/0: %v", err)
				}
				return nil
			},
			func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, "ROLLBACK")
				return err
			},
			nil, "25P02"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := cluster.Exec(context.Background(), db, "TRUNCATE t"); err != nil {
				t.Fatal(err)
			}
			p, served := serveProxy(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, p.URL("", "", db))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if err := tc.start(ctx, conn); err != nil {
				t.Fatal(err)
			}

			shutdown := make(chan error, 1)
			go func() { shutdown <- p.Srv.Shutdown(ctx) }()
			// Draining has begun once the listener is closed.
			pgtest.Eventually(t, 5*time.Second, func() error {
				c, err := net.Dial("tcp", p.Addr)
				if err == nil {
					c.Close()
					return errors.New("still accepting")
				}
				return nil
			})
			var n int
			if err := conn.QueryRow(ctx, "SELECT 2").Scan(&n); pgCode(err) != tc.probeCode || err == nil && n != 2 {
				t.Fatalf("query inside the transaction during shutdown: %d, %v; want SQLSTATE %q", n, err, tc.probeCode)
			}
			select {
			case err := <-shutdown:
				t.Fatalf("Shutdown returned (%v) while a transaction was open", err)
			default:
			}
			if err := tc.finish(ctx, conn); err != nil {
				t.Fatalf("finishing the transaction during shutdown: %v", err)
			}
			select {
			case err := <-shutdown:
				if err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return after the last session became idle")
			}
			wantSessionEnded(t, conn)
			wantServeClosed(t, served)
			waitSessions(t, p, 0)

			rows, err := cluster.Connect(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close(ctx)
			res, err := rows.Exec(ctx, "SELECT v FROM t ORDER BY v").ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res[0].Rows {
				got = append(got, string(r[0]))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("rows after shutdown: %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("query in flight", func(t *testing.T) {
		p, served := serveProxy(t)
		conn := connectApp(t, p, "shutdown-inflight")
		done := make(chan error, 1)
		go func() {
			var s string
			done <- conn.QueryRow(context.Background(), "SELECT pg_sleep(1)::text").Scan(&s)
		}()
		waitActive(t, "shutdown-inflight")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("the query in flight when Shutdown began failed: %v", err)
		}
		wantSessionEnded(t, conn)
		wantServeClosed(t, served)
	})
}

// TestShutdownForcesBusySessions: sessions still busy when the Shutdown
// context ends are closed (FATAL 57P01) and Shutdown reports the context's error.
func TestShutdownForcesBusySessions(t *testing.T) {
	p, served := serveProxy(t)
	inTx := connectApp(t, p, "shutdown-force-tx")
	sleeper := connectApp(t, p, "shutdown-force-sleep")
	t.Cleanup(func() { terminateApp(t, "shutdown-force-sleep") })
	ctx := context.Background()
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() {
		_, err := sleeper.Exec(ctx, "SELECT pg_sleep(30)")
		slept <- err
	}()
	waitActive(t, "shutdown-force-sleep")

	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Srv.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Shutdown took %v with a 500ms context", took)
	}
	select {
	case err := <-slept:
		if code := pgCode(err); err == nil || code != "" && code != wire.CodeAdminShutdown {
			t.Fatalf("the running query ended with %v, want FATAL 57P01 or a connection error", err)
		}
		t.Logf("running query ended with: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the running query was not interrupted by the forced shutdown")
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	wantPgError(t, inTx.PgConn().WaitForNotification(wctx), wire.CodeAdminShutdown)
	wantServeClosed(t, served)
	waitSessions(t, p, 0)
	waitGone(t, "shutdown-force-tx") // the open transaction is rolled back by the server

	// Closing the proxy's socket does not stop a statement the server is
	// running: it only notices when it sends the result.
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if rows, err := activityRows(rctx, "shutdown-force-sleep"); err == nil && len(rows) > 0 {
		t.Logf("note: the force-closed session's backend is still running its statement: %v", rows)
	}
}

// TestShutdownDuringNegotiation: clients that have not sent their
// StartupMessage yet, in plaintext or after a TLS handshake, are closed at
// once.
func TestShutdownDuringNegotiation(t *testing.T) {
	p, served := serveProxy(t, withTLS(t))
	plain := dialProxy(t, p.Addr)
	tlsConn, err := wire.StartTLS(dialProxy(t, p.Addr), clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tlsConn.Close()
	gss := dialProxy(t, p.Addr)
	if _, err := gss.Write(request(gssencRequestCode)); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := gss.Read(b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("GSSENCRequest answer %q, %v", b[0], err)
	}
	pgtest.Eventually(t, 5*time.Second, func() error {
		if n := p.Srv.Stats().ClientConnections; n != 3 {
			return fmt.Errorf("%d client connections, want 3", n)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for name, c := range map[string]net.Conn{"plaintext": plain, "tls": tlsConn, "after GSSENCRequest": gss} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg, err := pgproto3.NewFrontend(c, c).Receive()
		if err == nil {
			if er, ok := msg.(*pgproto3.ErrorResponse); !ok || er.Code != wire.CodeAdminShutdown {
				t.Fatalf("%s client got %#v, want FATAL 57P01 or a close", name, msg)
			}
			err = waitClosed(c)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s client not closed: %v", name, err)
		}
	}
	wantServeClosed(t, served)
	waitSessions(t, p, 0)
}
