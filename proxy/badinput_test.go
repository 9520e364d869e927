package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
	"github.com/pgmemo/pgmemo/wire"
)

// Limits of the proxy in TestBadInput: small, so that the limit cases are cheap.
const (
	badMaxMessage  = 1024
	badMaxBuffered = 256
)

// header is a message type byte and length word (length counts itself).
func header(typ byte, length uint32) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], length)
	return b
}

// packet is a startup-phase packet: length word, then the words and bytes given.
func packet(length uint32, rest ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// query is an encoded Query message.
func query(sql string) []byte {
	b, _ := (&pgproto3.Query{String: sql}).Encode(nil)
	return b
}

// startupBytes is an encoded StartupMessage.
func startupBytes(version uint32, params map[string]string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}).Encode(nil)
	binary.BigEndian.PutUint32(b[4:], version)
	return b
}

// badSender opens the misbehaving conversation on conn (app is the
// application_name to use if it logs in) and returns the connection to read
// the answer from (a TLS connection if it switched to TLS).
type badSender func(t *testing.T, conn net.Conn, app string) net.Conn

// sendRaw writes bytes as the first packets.
func sendRaw(parts ...[]byte) badSender {
	return func(t *testing.T, conn net.Conn, _ string) net.Conn {
		if _, err := conn.Write(bytes.Join(parts, nil)); err != nil {
			t.Fatal(err)
		}
		return conn
	}
}

// afterLogin logs in as the superuser, then writes bytes.
func afterLogin(parts ...[]byte) badSender {
	return func(t *testing.T, conn net.Conn, app string) net.Conn {
		rawStartup(t, conn, map[string]string{"application_name": app})
		return sendRaw(parts...)(t, conn, app)
	}
}

// duringAuth starts a login as the cleartext-password role and answers the
// password request with bytes.
func duringAuth(parts ...[]byte) badSender {
	return func(t *testing.T, conn net.Conn, app string) net.Conn {
		fe := pgproto3.NewFrontend(conn, conn)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
			Parameters: map[string]string{"user": pgtest.PasswordUser, "database": "postgres", "application_name": app}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.AuthenticationCleartextPassword); !ok {
			t.Fatalf("got %T, want AuthenticationCleartextPassword", msg)
		}
		return sendRaw(parts...)(t, conn, app)
	}
}

// overTLS switches to TLS with an SSLRequest, then runs next on the TLS connection.
func overTLS(next badSender) badSender {
	return func(t *testing.T, conn net.Conn, app string) net.Conn {
		tc, err := wire.StartTLS(conn, clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		return next(t, tc, app)
	}
}

// TestBadInput sends malformed or hostile input as a raw TCP client. Where an
// answer is possible the client gets an ErrorResponse (08P01 for protocol
// violations) and the connection is closed; a client that vanishes mid-message
// takes its upstream backend with it. A session opened before keeps working,
// new clients can connect, and ProtocolErrors counts the violations.
func TestBadInput(t *testing.T) {
	p := startProxy(t, withTLS(t), func(s *proxy.Server) {
		s.MaxMessageBytes = badMaxMessage
		s.MaxBufferedBytes = badMaxBuffered
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bystander, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close(ctx)

	cases := []struct {
		name     string
		send     badSender
		hangUp   bool   // the client closes right after sending
		wantCode string // the ErrorResponse's SQLSTATE; "" means only a close
		protoErr bool   // counted in Stats().ProtocolErrors
	}{
		// Startup phase.
		{name: "http request as startup packet", send: sendRaw([]byte("GET / HTTP/1.1\r\nHost: pgmemo\r\n\r\n")), wantCode: "08P01", protoErr: true},
		{name: "garbage startup packet", send: sendRaw(packet(16, be32(0xdededede), bytes.Repeat([]byte{0xad}, 8))), wantCode: "08P01", protoErr: true},
		{name: "startup length 4", send: sendRaw(packet(4, be32(196608))), wantCode: "08P01", protoErr: true},
		{name: "startup length 0x7fffffff", send: sendRaw(packet(0x7fffffff, be32(196608))), wantCode: "08P01", protoErr: true},
		{name: "startup length -1", send: sendRaw(packet(0xffffffff, be32(196608))), wantCode: "08P01", protoErr: true},
		{name: "startup length 10001", send: sendRaw(packet(10001, be32(196608))), wantCode: "08P01", protoErr: true},
		{name: "startup parameters unterminated", send: sendRaw(packet(16, be32(196608), []byte("user\x00pos"))), wantCode: "08P01", protoErr: true},
		{name: "cancel request too short", send: sendRaw(packet(12, be32(cancelRequestCode), be32(1))), wantCode: "08P01", protoErr: true},
		{name: "ssl request of 12 bytes", send: sendRaw(packet(12, be32(sslRequestCode), be32(0))), wantCode: "08P01", protoErr: true},
		{name: "protocol 2.0", send: sendRaw(startupBytes(2<<16, map[string]string{"user": "postgres"})), wantCode: "0A000"},
		{name: "no user name", send: sendRaw(startupBytes(3<<16, map[string]string{"database": "postgres"})), wantCode: "28000"},
		{name: "startup packet truncated", send: sendRaw(packet(100, be32(196608), []byte("user\x00"))), hangUp: true},
		{name: "silent client", send: sendRaw(), hangUp: true},
		{name: "ssl request twice", send: overTLS(sendRaw(packet(8, be32(sslRequestCode)))), wantCode: "08P01", protoErr: true},
		// Authentication phase.
		{name: "query instead of password", send: duringAuth(query("SELECT 1")), wantCode: "08P01", protoErr: true},
		{name: "password message over the limit", send: duringAuth(header('p', badMaxMessage+5), make([]byte, badMaxMessage+1)), wantCode: "08P01", protoErr: true},
		{name: "password message length 2", send: duringAuth(header('p', 2)), wantCode: "08P01", protoErr: true},
		// Relay phase.
		{name: "message length 2", send: afterLogin(header('Q', 2)), wantCode: "08P01", protoErr: true},
		{name: "message length 0", send: afterLogin(header('Q', 0)), wantCode: "08P01", protoErr: true},
		{name: "message length 0x7fffffff", send: afterLogin(header('Q', 0x7fffffff)), wantCode: "08P01", protoErr: true},
		{name: "message length -1", send: afterLogin(header('Q', 0xffffffff)), wantCode: "08P01", protoErr: true},
		{name: "unknown message type", send: afterLogin(header('z', 8), be32(0)), wantCode: "08P01", protoErr: true},
		{name: "nul message type", send: afterLogin(make([]byte, 16)), wantCode: "08P01", protoErr: true},
		{name: "message over MaxMessageBytes", send: afterLogin(query("SELECT '" + strings.Repeat("x", badMaxMessage) + "'")), wantCode: "08P01", protoErr: true},
		{name: "tls: message over MaxMessageBytes", send: overTLS(afterLogin(query("SELECT '" + strings.Repeat("x", badMaxMessage) + "'"))), wantCode: "08P01", protoErr: true},
		{name: "bad message after a good one", send: afterLogin(query("SELECT 1"), header('Q', 3)), wantCode: "08P01", protoErr: true},
		{name: "half a query then disconnect", send: afterLogin(header('Q', 100), []byte("SELECT pg_sl")), hangUp: true},
		{name: "half a streamed query then disconnect", send: afterLogin(header('Q', 4+badMaxBuffered*3), []byte("SELECT '"), bytes.Repeat([]byte("x"), badMaxBuffered)), hangUp: true},
		{name: "header only then disconnect", send: afterLogin([]byte{'Q', 0, 0}), hangUp: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := fmt.Sprintf("badinput-%d", i)
			before := p.Srv.Stats()
			conn := tc.send(t, dialProxy(t, p.Addr), app)
			switch {
			case tc.hangUp:
				conn.Close()
			case tc.wantCode != "":
				er := readErrorThenClose(t, conn)
				if er.Code != tc.wantCode || er.Severity != "FATAL" {
					t.Fatalf("got %s %s %q, want FATAL %s", er.Severity, er.Code, er.Message, tc.wantCode)
				}
				t.Logf("client got: %s %s: %s", er.Severity, er.Code, er.Message)
			default:
				requireClosed(t, conn)
			}
			if tc.protoErr {
				pgtest.Eventually(t, 5*time.Second, func() error {
					if got := p.Srv.Stats().ProtocolErrors; got != before.ProtocolErrors+1 {
						return fmt.Errorf("ProtocolErrors = %d, want %d", got, before.ProtocolErrors+1)
					}
					return nil
				})
			}
			// The misbehaving session is gone, upstream backend included.
			waitSessions(t, p, 1)
			waitGone(t, app)

			var n int
			if err := bystander.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
				t.Fatalf("the session opened before: %d, %v", n, err)
			}
			fresh, err := pgx.Connect(ctx, p.URL("", "", ""))
			if err != nil {
				t.Fatalf("new client after %q: %v", tc.name, err)
			}
			fresh.Close(ctx)
		})
	}

	t.Run("within the limits", func(t *testing.T) {
		// A Query message of exactly MaxMessageBytes, streamed since it
		// exceeds MaxBufferedBytes, goes through.
		s := strings.Repeat("y", badMaxMessage-len("SELECT ''")-1)
		var got string
		if err := bystander.QueryRow(ctx, "SELECT '"+s+"'", pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil || got != s {
			t.Fatalf("query message of %d bytes: %v", badMaxMessage, err)
		}
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestUpstreamDown: with nothing listening upstream, a client quickly gets
// FATAL 08001 from the proxy instead of hanging.
func TestUpstreamDown(t *testing.T) {
	up, err := proxy.ParseUpstream(fmt.Sprintf("postgres://x@127.0.0.1:%d/db?sslmode=disable&connect_timeout=2", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, func(s *proxy.Server) { s.Upstream = up })
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		_, err := pgx.Connect(ctx, p.URL("", "", ""))
		cancel()
		took := time.Since(start)
		pe := wantPgError(t, err, "08001")
		if pe.Severity != "FATAL" {
			t.Fatalf("severity %s, want FATAL", pe.Severity)
		}
		t.Logf("attempt %d: %v after %v", i, pe.Message, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Fatalf("the 08001 took %v", took)
		}
	}
	if st := p.Srv.Stats(); st.UpstreamFailures != 2 || st.UpstreamConnections != 0 {
		t.Fatalf("stats %+v, want 2 upstream failures and no upstream connection", st)
	}
	waitSessions(t, p, 0)
}

// TestUpstreamUnresponsive: an upstream that accepts the connection but never
// answers the StartupMessage. When the startup phase times out the client
// must be told so with a FATAL (not just see the connection drop).
func TestUpstreamUnresponsive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	up, err := proxy.ParseUpstream("postgres://x@" + l.Addr().String() + "/db?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, func(s *proxy.Server) {
		s.Upstream = up
		s.StartupTimeout = 2 * time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	_, err = pgx.Connect(ctx, p.URL("", "", ""))
	took := time.Since(start)
	t.Logf("client saw after %v: %v", took.Round(time.Millisecond), err)
	if took > 8*time.Second {
		t.Fatalf("the connection attempt took %v", took)
	}
	code := pgCode(err)
	if !strings.HasPrefix(code, "08") {
		t.Fatalf("got %v (SQLSTATE %q), want a FATAL of class 08 telling the client the upstream did not answer", err, code)
	}
	waitSessions(t, p, 0)
}

// TestUpstreamKilledMidSession: pg_terminate_backend on the session's backend
// reaches the client as the server's own FATAL 57P01, and the proxy carries on.
func TestUpstreamKilledMidSession(t *testing.T) {
	p := startProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, setQuery(p.URL("", "", ""), "application_name", "killed-mid-session"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	other, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	pid := backendPID(t, "killed-mid-session")
	if err := cluster.Exec(ctx, "postgres", fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid)); err != nil {
		t.Fatal(err)
	}
	// The FATAL arrives while the client is idle; read it without sending.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = conn.PgConn().WaitForNotification(wctx)
	wcancel()
	pe := wantPgError(t, err, "57P01")
	if pe.Severity != "FATAL" || !strings.Contains(pe.Message, "terminating connection due to administrator command") {
		t.Fatalf("got %s %q, want the server's FATAL", pe.Severity, pe.Message)
	}
	if !conn.IsClosed() {
		t.Fatal("connection still open after FATAL")
	}

	waitSessions(t, p, 1)
	var n int
	if err := other.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("other session: %v", err)
	}
	again, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	again.Close(ctx)
	if st := p.Srv.Stats(); st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v: a server FATAL is not a protocol error", st)
	}
}
