package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/wire"
)

// authRoles are the cluster's login roles, one per authentication method.
var authRoles = []struct {
	method, user, password string
}{
	{"trust", pgtest.TrustUser, ""},
	{"password", pgtest.PasswordUser, pgtest.RolePassword},
	{"md5", pgtest.MD5User, pgtest.RolePassword},
	{"scram-sha-256", pgtest.ScramUser, pgtest.RolePassword},
}

// setQuery returns raw with the query parameters in kv set (key, value pairs).
func setQuery(raw string, kv ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// psqlResult is the outcome of one psql run.
type psqlResult struct {
	Stdout, Stderr string
	Err            error
}

// runPsql runs psql against connURL with PGPASSWORD=password. A missing psql
// skips the test, or fails it under CI=true (needTool).
func runPsql(t testing.TB, connURL, password string, args ...string) psqlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needTool(t, "psql"), append([]string{"-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", connURL}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "LC_ALL=C", "PGAPPNAME=pgmemo-psql-test")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running psql: %v", err)
	}
	return psqlResult{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// TestAuthMatrix logs in through the proxy with every authentication method,
// over plaintext and TLS, with pgx and psql; a wrong password gets the server's
// own 28P01.
func TestAuthMatrix(t *testing.T) {
	p := startProxy(t, withTLS(t))
	for _, tr := range []struct {
		name, sslmode string
	}{{"plaintext", "disable"}, {"tls", "require"}} {
		for _, r := range authRoles {
			t.Run(tr.name+"/"+r.method, func(t *testing.T) {
				good := setQuery(p.URL(r.user, r.password, ""), "sslmode", tr.sslmode)
				bad := setQuery(p.URL(r.user, "wrong-"+r.password, ""), "sslmode", tr.sslmode)
				if r.password == "" {
					bad = setQuery(p.URL(r.user, "anything", ""), "sslmode", tr.sslmode)
				}

				t.Run("pgx", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					conn, err := pgx.Connect(ctx, good)
					if err != nil {
						t.Fatalf("connect: %v", err)
					}
					defer conn.Close(ctx)
					var user string
					if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
						t.Fatal(err)
					}
					if user != r.user {
						t.Fatalf("current_user = %q, want %q", user, r.user)
					}
					_, isTLS := conn.PgConn().Conn().(*tls.Conn)
					if isTLS != (tr.sslmode == "require") {
						t.Fatalf("client connection TLS = %v with sslmode=%s", isTLS, tr.sslmode)
					}

					_, err = pgx.Connect(ctx, bad)
					if r.method == "trust" {
						if err != nil {
							t.Fatalf("trust login with a password failed: %v", err)
						}
						return
					}
					pe := wantPgError(t, err, "28P01")
					if pe.Severity != "FATAL" || !strings.Contains(pe.Message, `password authentication failed for user "`+r.user+`"`) {
						t.Fatalf("wrong password: got %s %q, want the server's FATAL", pe.Severity, pe.Message)
					}
				})

				t.Run("psql", func(t *testing.T) {
					res := runPsql(t, good, r.password, "-c", "SELECT current_user", "-c", `\conninfo`)
					if res.Err != nil {
						t.Fatalf("psql: %v\n%s", res.Err, res.Stderr)
					}
					if got := strings.SplitN(res.Stdout, "\n", 2)[0]; got != r.user {
						t.Fatalf("psql current_user = %q, want %q (output %q)", got, r.user, res.Stdout)
					}
					if ssl := strings.Contains(res.Stdout, "SSL connection"); ssl != (tr.sslmode == "require") {
						t.Fatalf("psql SSL = %v with sslmode=%s; \\conninfo: %s", ssl, tr.sslmode, res.Stdout)
					}
					if r.method == "trust" {
						return
					}
					res = runPsql(t, bad, "wrong-"+r.password, "-c", "SELECT 1")
					if res.Err == nil {
						t.Fatalf("psql with a wrong password succeeded: %s", res.Stdout)
					}
					if !strings.Contains(res.Stderr, `FATAL:  password authentication failed for user "`+r.user+`"`) {
						t.Fatalf("psql with a wrong password: want the server's FATAL, got stderr %q", res.Stderr)
					}
				})
			})
		}
	}
}

// saslMechanisms connects to addr as user (TLS when tlsCfg is set, via
// SSLRequest) and returns the mechanisms of the AuthenticationSASL message.
func saslMechanisms(t testing.TB, addr, user string, tlsCfg *tls.Config) []string {
	t.Helper()
	var conn net.Conn = dialProxy(t, addr)
	if tlsCfg != nil {
		var err error
		if conn, err = wire.StartTLS(conn, tlsCfg); err != nil {
			t.Fatalf("StartTLS: %v", err)
		}
		defer conn.Close()
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": user, "database": "postgres"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	sasl, ok := msg.(*pgproto3.AuthenticationSASL)
	if !ok {
		t.Fatalf("got %T, want AuthenticationSASL", msg)
	}
	return slices.Clone(sasl.AuthMechanisms)
}

// TestAuthTLSNeverOffersSCRAMPlus reads the AuthenticationSASL message a TLS
// client gets from the proxy: SCRAM-SHA-256 only, never the channel-binding
// variant (the client's TLS ends at the proxy).
func TestAuthTLSNeverOffersSCRAMPlus(t *testing.T) {
	p := startProxy(t, withTLS(t))
	for _, tc := range []struct {
		name string
		tls  *tls.Config
	}{{"plaintext", nil}, {"tls", clientTLS()}} {
		t.Run(tc.name, func(t *testing.T) {
			mechs := saslMechanisms(t, p.Addr, pgtest.ScramUser, tc.tls)
			if !slices.Contains(mechs, "SCRAM-SHA-256") || slices.Contains(mechs, "SCRAM-SHA-256-PLUS") {
				t.Fatalf("mechanisms offered through the proxy = %q, want SCRAM-SHA-256 without -PLUS", mechs)
			}
		})
	}
}

// TestAuthSCRAMPlusHiddenFromTLSUpstream is the case where removing
// SCRAM-SHA-256-PLUS matters: PostgreSQL offers channel binding only on TLS
// connections, so behind a proxy that reaches it over TLS (the TLS-only
// cluster of upstream_tls_test.go) the server's AuthenticationSASL lists
// -PLUS, and the proxy must not pass it on. TestSCRAMOverUpstreamTLS covers the
// pgx logins; this checks the messages and psql.
func TestAuthSCRAMPlusHiddenFromTLSUpstream(t *testing.T) {
	u := startTLSUpstream(t)
	direct := net.JoinHostPort("127.0.0.1", strconv.Itoa(u.c.Port))
	if mechs := saslMechanisms(t, direct, pgtest.ScramUser, clientTLS()); !slices.Contains(mechs, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("PostgreSQL over TLS offers %q; expected SCRAM-SHA-256-PLUS", mechs)
	}
	p := u.proxyTo(t, "sslmode=require", withTLS(t))
	for _, cfg := range []*tls.Config{nil, clientTLS()} {
		if mechs := saslMechanisms(t, p.Addr, pgtest.ScramUser, cfg); !slices.Contains(mechs, "SCRAM-SHA-256") || slices.Contains(mechs, "SCRAM-SHA-256-PLUS") {
			t.Fatalf("client TLS=%v: mechanisms through the proxy = %q, want SCRAM-SHA-256 without -PLUS", cfg != nil, mechs)
		}
	}

	base := "postgres://" + pgtest.ScramUser + "@" + p.Addr + "/postgres"
	// libpq over TLS without -PLUS on offer sends the GS2 flag "y", which a
	// TLS-connected server must reject as a downgrade; the proxy explains.
	res := runPsql(t, base+"?sslmode=require", pgtest.RolePassword, "-c", "SELECT 1")
	if res.Err == nil || !strings.Contains(res.Stderr, "channel binding cannot pass through pgmemo") {
		t.Fatalf("psql TLS client, default channel_binding: err=%v stderr=%q; want pgmemo's channel binding error", res.Err, res.Stderr)
	}
	for _, params := range []string{"?sslmode=require&channel_binding=disable", "?sslmode=disable"} {
		res := runPsql(t, base+params, pgtest.RolePassword, "-c", "SELECT current_user")
		if res.Err != nil || strings.TrimSpace(res.Stdout) != pgtest.ScramUser {
			t.Fatalf("psql %s: %v %q %q", params, res.Err, res.Stdout, res.Stderr)
		}
	}
}

// TestAuthTLSRequiredButProxyHasNone: clients that require TLS fail cleanly
// against a proxy without a certificate.
func TestAuthTLSRequiredButProxyHasNone(t *testing.T) {
	p := startProxy(t)
	res := runPsql(t, setQuery(p.URL("", "", ""), "sslmode", "require"), "", "-c", "SELECT 1")
	if res.Err == nil || !strings.Contains(res.Stderr, "server does not support SSL") {
		t.Fatalf("psql sslmode=require: err=%v stderr=%q, want \"server does not support SSL\"", res.Err, res.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pgx.Connect(ctx, setQuery(p.URL("", "", ""), "sslmode", "require")); err == nil || !strings.Contains(err.Error(), "server refused TLS connection") {
		t.Fatalf("pgx sslmode=require: %v, want a TLS refusal", err)
	}
	// Both were refused at negotiation, not dropped as protocol errors, and the
	// proxy serves plaintext clients.
	if st := p.Srv.Stats(); st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v: TLS refusal counted as a protocol error", st)
	}
	if res := runPsql(t, setQuery(p.URL("", "", ""), "sslmode", "prefer"), "", "-c", "SELECT 1"); res.Err != nil || strings.TrimSpace(res.Stdout) != "1" {
		t.Fatalf("psql sslmode=prefer: %v %q %q", res.Err, res.Stdout, res.Stderr)
	}
}

// request builds an 8-byte SSLRequest or GSSENCRequest.
func request(code uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, 8)
	binary.BigEndian.PutUint32(b[4:], code)
	return b
}

const (
	sslRequestCode    = 80877103
	gssencRequestCode = 80877104
	cancelRequestCode = 80877102
)

// TestAuthGSSENCRefused: a GSSENCRequest is answered 'N' and the client can go
// on with TLS or plaintext on the same connection.
func TestAuthGSSENCRefused(t *testing.T) {
	p := startProxy(t, withTLS(t))
	for _, tc := range []struct {
		name     string
		thenTLS  bool
		appName  string
		wantUser string
	}{{"then-plaintext", false, "gss-plain", pgtest.SuperUser}, {"then-ssl", true, "gss-ssl", pgtest.SuperUser}} {
		t.Run(tc.name, func(t *testing.T) {
			var conn net.Conn = dialProxy(t, p.Addr)
			if _, err := conn.Write(request(gssencRequestCode)); err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := conn.Read(b[:]); err != nil || b[0] != 'N' {
				t.Fatalf("GSSENCRequest answer %q, %v; want 'N'", b[0], err)
			}
			if tc.thenTLS {
				var err error
				if conn, err = wire.StartTLS(conn, clientTLS()); err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
			}
			fe, _ := rawStartup(t, conn, map[string]string{"application_name": tc.appName})
			fe.Send(&pgproto3.Terminate{})
			fe.Flush()
		})
	}
	t.Run("psql-gssencmode-prefer", func(t *testing.T) {
		// libpq sends a GSSENCRequest only when it holds Kerberos credentials;
		// the raw subtests above cover the request itself.
		res := runPsql(t, setQuery(p.URL("", "", ""), "gssencmode", "prefer", "sslmode", "prefer"), "", "-c", "SELECT 42")
		if res.Err != nil || strings.TrimSpace(res.Stdout) != "42" {
			t.Fatalf("psql gssencmode=prefer: %v %q %q", res.Err, res.Stdout, res.Stderr)
		}
	})
}

// TestAuthDirectTLS covers PostgreSQL 17's sslnegotiation=direct: a TLS
// handshake as the first bytes, with ALPN "postgresql".
func TestAuthDirectTLS(t *testing.T) {
	p := startProxy(t, withTLS(t))

	t.Run("alpn", func(t *testing.T) {
		tc := tls.Client(dialProxy(t, p.Addr), clientTLS("postgresql"))
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if got := tc.ConnectionState().NegotiatedProtocol; got != "postgresql" {
			t.Fatalf("negotiated ALPN %q", got)
		}
		fe, _ := rawStartup(t, tc, map[string]string{"user": pgtest.TrustUser})
		fe.Send(&pgproto3.Query{String: "SELECT 1"})
		fe.Flush()
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				break
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); ok {
				t.Fatalf("query: %s", e.Message)
			}
		}
	})

	t.Run("pgx-sslnegotiation-direct", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, setQuery(p.URL(pgtest.ScramUser, pgtest.RolePassword, ""), "sslmode", "require", "sslnegotiation", "direct"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no-alpn-refused", func(t *testing.T) {
		tc := tls.Client(dialProxy(t, p.Addr), clientTLS())
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return // refusing in the handshake is fine too
		}
		fe := pgproto3.NewFrontend(tc, tc)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
			Parameters: map[string]string{"user": pgtest.SuperUser, "database": "postgres"}})
		fe.Flush() // may fail: the proxy may have closed already
		if msg, err := fe.Receive(); err == nil {
			t.Fatalf("direct TLS without ALPN was served: got %T", msg)
		}
	})

	t.Run("wrong-alpn-refused", func(t *testing.T) {
		tc := tls.Client(dialProxy(t, p.Addr), clientTLS("http/1.1"))
		defer tc.Close()
		if err := tc.Handshake(); err == nil {
			t.Fatalf("handshake with ALPN http/1.1 succeeded (negotiated %q)", tc.ConnectionState().NegotiatedProtocol)
		}
	})

	t.Run("proxy-without-tls", func(t *testing.T) {
		plain := startProxy(t)
		tc := tls.Client(dialProxy(t, plain.Addr), clientTLS("postgresql"))
		defer tc.Close()
		if err := tc.Handshake(); err == nil {
			t.Fatal("direct TLS handshake succeeded against a proxy without TLSConfig")
		}
	})
	// A refused handshake is not a protocol error and the proxy keeps serving.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	waitSessions(t, p, 0)
}
