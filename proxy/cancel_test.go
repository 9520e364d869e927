package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// cancelBound is the generous limit for a cancelled query to return; the
// target is well under 2 s and the measured time is logged.
const cancelBound = 10 * time.Second

// connectCancellable connects through the proxy with the given
// application_name; the context's end sends a CancelRequest (not pgx's default
// of closing the socket).
func connectCancellable(t testing.TB, url, appName string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = appName
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 20 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// sendRawCancel sends a CancelRequest on a fresh connection to addr and
// requires the proxy to close it without a byte of answer.
func sendRawCancel(t testing.TB, addr string, pid uint32, secret []byte) {
	t.Helper()
	conn := dialProxy(t, addr)
	defer conn.Close()
	b := make([]byte, 12, 12+len(secret))
	binary.BigEndian.PutUint32(b, uint32(12+len(secret)))
	binary.BigEndian.PutUint32(b[4:], cancelRequestCode)
	binary.BigEndian.PutUint32(b[8:], pid)
	if _, err := conn.Write(append(b, secret...)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || len(got) != 0 {
		t.Fatalf("cancel connection: read %q, %v; want a silent close", got, err)
	}
}

// TestCancelSleepingQuery cancels SELECT pg_sleep(30) through the proxy in
// several ways; each returns 57014 quickly, the session stays usable, another
// client's concurrent query is unaffected and CancelsForwarded counts it.
func TestCancelSleepingQuery(t *testing.T) {
	p := startProxy(t, withTLS(t))
	cases := []struct {
		name    string
		sslmode string
		// run executes pg_sleep(30) on conn, triggers the cancel once the query
		// is active, and returns when the cancel fired and the query's error.
		run func(t *testing.T, conn *pgx.Conn, appName string) (time.Time, error)
	}{
		{"pgx-context-timeout", "disable", func(t *testing.T, conn *pgx.Conn, appName string) (time.Time, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			dl, _ := ctx.Deadline()
			_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
			return dl, err
		}},
		{"pgconn-CancelRequest", "disable", pgconnCancel},
		{"pgconn-CancelRequest-tls", "require", pgconnCancel},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := setQuery(p.URL("", "", ""), "sslmode", tc.sslmode)
			victim := fmt.Sprintf("cancel-victim-%d", i)
			bystander := fmt.Sprintf("cancel-bystander-%d", i)
			conn := connectCancellable(t, url, victim)
			other := connectCancellable(t, url, bystander)
			t.Cleanup(func() { terminateApp(t, victim) })
			before := p.Srv.Stats()

			// The bystander sleeps 1 s while the victim is cancelled.
			otherDone := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_, err := other.Exec(ctx, "SELECT pg_sleep(1)")
				otherDone <- err
			}()

			fired, err := tc.run(t, conn, victim)
			took := time.Since(fired)
			t.Logf("%s: cancelled query returned %v after the cancel", tc.name, took.Round(time.Millisecond))
			wantPgError(t, err, "57014")
			if took > cancelBound {
				t.Fatalf("cancelled query took %v", took)
			}
			if err := <-otherDone; err != nil {
				t.Fatalf("the other client's pg_sleep(1) failed: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, c := range []*pgx.Conn{conn, other} {
				var n int
				if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
					t.Fatalf("SELECT 1 after the cancel: %d, %v", n, err)
				}
			}
			wantCancels(t, p, before.CancelsForwarded+1, before.CancelsUnknown)
		})
	}

	t.Run("psql-sigint", func(t *testing.T) {
		c := pgtest.Need(t, cluster)
		if _, err := os.Stat(c.Command(context.Background(), "psql").Path); err != nil {
			runPsql(t, p.URL("", "", ""), "", "-c", "SELECT 1") // skips, or fails under CI
		}
		before := p.Srv.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := c.Command(ctx, "psql", "-X", "-w", "-v", "VERBOSITY=verbose", p.URL("", "", ""), "-c", "SELECT pg_sleep(30)")
		cmd.Env = append(os.Environ(), "PGAPPNAME=cancel-psql", "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { terminateApp(t, "cancel-psql") })
		waitActive(t, "cancel-psql")
		fired := time.Now()
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		took := time.Since(fired)
		t.Logf("psql: cancelled query returned %v after SIGINT", took.Round(time.Millisecond))
		if err == nil || !strings.Contains(stderr.String(), "57014") {
			t.Fatalf("psql after SIGINT: %v, stderr %q; want ERROR 57014", err, stderr.String())
		}
		if took > cancelBound {
			t.Fatalf("cancelled psql query took %v", took)
		}
		wantCancels(t, p, before.CancelsForwarded+1, before.CancelsUnknown)
	})
}

// wantCancels waits for the cancel counters to reach the given values (the
// proxy counts a forwarded cancel once the server has closed the cancel
// connection, which may be after the client saw the query fail).
func wantCancels(t testing.TB, p *testProxy, forwarded, unknown uint64) {
	t.Helper()
	pgtest.Eventually(t, 5*time.Second, func() error {
		if st := p.Srv.Stats(); st.CancelsForwarded != forwarded || st.CancelsUnknown != unknown {
			return fmt.Errorf("stats %+v, want %d forwarded and %d unknown cancels", st, forwarded, unknown)
		}
		return nil
	})
}

// pgconnCancel runs pg_sleep(30) and sends pgconn's CancelRequest (through the
// proxy, TLS if the session uses it) once the query is active.
func pgconnCancel(t *testing.T, conn *pgx.Conn, appName string) (time.Time, error) {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)")
		done <- err
	}()
	waitActive(t, appName)
	fired := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Errorf("CancelRequest: %v", err)
	}
	select {
	case err := <-done:
		return fired, err
	case <-time.After(cancelBound):
		t.Fatalf("query not cancelled after %v", cancelBound)
		return fired, nil
	}
}

// terminateApp ends the backends of appName (cleanup after a failed cancel).
func terminateApp(t testing.TB, appName string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, "postgres", fmt.Sprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'", appName)); err != nil {
		t.Logf("terminate %s: %v", appName, err)
	}
}

// TestCancelWrongKeyCancelsNothing sends CancelRequests that match no session
// while a victim runs pg_sleep(2): they are counted as unknown, answered with a
// silent close, and the victim's query completes normally.
func TestCancelWrongKeyCancelsNothing(t *testing.T) {
	p := startProxy(t)
	conn := connectCancellable(t, p.URL("", "", ""), "cancel-wrongkey")
	pid, secret := conn.PgConn().PID(), conn.PgConn().SecretKey()
	other := connectCancellable(t, p.URL("", "", ""), "cancel-other")
	otherPID := other.PgConn().PID()

	// A key that belonged to a session that has ended.
	stale := connectCancellable(t, p.URL("", "", ""), "cancel-stale")
	stalePID, staleSecret := stale.PgConn().PID(), stale.PgConn().SecretKey()
	stale.Close(context.Background())
	waitSessions(t, p, 2)

	wrong := append([]byte(nil), secret...)
	wrong[0] ^= 0xff
	keys := []struct {
		name   string
		pid    uint32
		secret []byte
	}{
		{"unknown pid", pid ^ 0x5a5a5a5a, secret},
		{"victim pid, wrong secret", pid, wrong},
		{"victim pid, longer secret", pid, append(append([]byte(nil), secret...), 0)}, // valid length in protocol 3.2
		{"another session's pid, victim's secret", otherPID, secret},
		{"ended session's key", stalePID, staleSecret},
	}

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := conn.Exec(ctx, "SELECT pg_sleep(2)")
		done <- err
	}()
	waitActive(t, "cancel-wrongkey")
	before := p.Srv.Stats()
	for _, k := range keys {
		sendRawCancel(t, p.Addr, k.pid, k.secret)
	}
	select {
	case err := <-done:
		t.Fatalf("the victim's query ended (%v) before the bad cancels were all sent; machine too slow for this test", err)
	default:
	}
	st := p.Srv.Stats()
	if st.CancelsUnknown != before.CancelsUnknown+uint64(len(keys)) || st.CancelsForwarded != before.CancelsForwarded {
		t.Fatalf("stats before %+v, after %+v: want %d unknown cancels and none forwarded", before, st, len(keys))
	}
	if err := <-done; err != nil {
		t.Fatalf("the victim's pg_sleep(2) failed: %v", err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("pg_sleep(2) returned after %v", took)
	}
}

// TestCacheCancelWhileWaitingForFill: a simple query waiting for another
// session's fill of the same key is cancelled by the client's CancelRequest:
// answered 57014 at once outside a transaction block (the server never saw
// the query); in a block the query goes to the server with the cancel behind
// it, so the block fails there as it would have. The fill itself goes on.
func TestCacheCancelWhileWaitingForFill(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, `CREATE FUNCTION slow_one() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT 1 FROM pg_sleep(3) $$`); err != nil {
		t.Fatal(err)
	}
	waiting := func() error {
		if n := p.Srv.Stats().WaitingForFill; n != 1 {
			return fmt.Errorf("%d clients wait for a fill", n)
		}
		return nil
	}
	simple := pgx.QueryExecModeSimpleProtocol
	for _, inBlock := range []bool{false, true} {
		name := map[bool]string{false: "autocommit", true: "block"}[inBlock]
		t.Run(name, func(t *testing.T) {
			q := "SELECT slow_one() AS " + name
			leaderApp, followerApp := "fill-leader-"+name, "fill-follower-"+name
			leader := connectCancellable(t, setQuery(p.URL("", "", db), "sslmode", "disable"), leaderApp)
			follower := connectCancellable(t, setQuery(p.URL("", "", db), "sslmode", "disable"), followerApp)
			t.Cleanup(func() { terminateApp(t, leaderApp); terminateApp(t, followerApp) })
			filled := make(chan error, 1)
			go func() {
				var v int
				err := leader.QueryRow(context.Background(), q, simple).Scan(&v)
				if err == nil && v != 1 {
					err = fmt.Errorf("leader read %d", v)
				}
				filled <- err
			}()
			waitActive(t, leaderApp)
			if inBlock {
				mustExec(t, follower, "BEGIN")
			}
			done := make(chan error, 1)
			go func() {
				_, err := follower.Exec(context.Background(), q, simple)
				done <- err
			}()
			pgtest.Eventually(t, 10*time.Second, waiting)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := follower.PgConn().CancelRequest(ctx); err != nil {
				t.Fatal(err)
			}
			wantPgError(t, <-done, "57014")
			if inBlock {
				_, err := follower.Exec(context.Background(), "SELECT 1", simple)
				wantPgError(t, err, "25P02") // the server's block failed
				mustExec(t, follower, "ROLLBACK")
			} else if r := showLast(t, follower); r.Result != "miss-not-filled" || r.Reason != "canceled" {
				t.Errorf("follower's pgmemo.last: %+v", r)
			}
			if err := <-filled; err != nil {
				t.Fatalf("the leader's fill: %v", err)
			}
			var v int
			if err := follower.QueryRow(context.Background(), q, simple).Scan(&v); err != nil || v != 1 {
				t.Fatalf("after the cancel: %d, %v", v, err)
			}
			if r := showLast(t, follower); r.Result != "hit" {
				t.Errorf("after the fill: %+v, want a hit", r)
			}
		})
	}
}
