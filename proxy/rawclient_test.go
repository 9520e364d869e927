package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// Helpers shared by the protocol-level tests: a self-signed certificate, raw
// protocol clients and SQLSTATE checks.

// testCert is a self-signed ECDSA certificate for 127.0.0.1/localhost.
type testCert struct {
	CertPEM, KeyPEM []byte
	Cert            tls.Certificate
}

var (
	certOnce sync.Once
	certVal  *testCert
	certErr  error
)

// selfSigned returns the test binary's self-signed certificate.
func selfSigned(t testing.TB) *testCert {
	t.Helper()
	certOnce.Do(func() { certVal, certErr = makeCert() })
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal
}

func makeCert() (*testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pgmemo test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &testCert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	c.Cert, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	return c, err
}

// withTLS is a startProxy option that lets clients use TLS with the test certificate.
func withTLS(t testing.TB) func(*proxy.Server) {
	c := selfSigned(t)
	return func(s *proxy.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c.Cert}, MinVersion: tls.VersionTLS12}
	}
}

// clientTLS is a client configuration that accepts the self-signed certificate.
func clientTLS(nextProtos ...string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: nextProtos}
}

// pgCode returns the SQLSTATE of err, or "" if err carries no server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// wantPgError fails unless err is a *pgconn.PgError with SQLSTATE code.
func wantPgError(t testing.TB, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a server error with SQLSTATE %s", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("got SQLSTATE %s (%s: %s), want %s", pe.Code, pe.Severity, pe.Message, code)
	}
	return pe
}

// dialProxy opens a raw TCP connection with an overall deadline.
func dialProxy(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawStartup sends a protocol 3.0 StartupMessage for a trust user and reads up
// to the first ReadyForQuery, returning the frontend and the BackendKeyData.
func rawStartup(t testing.TB, conn net.Conn, params map[string]string) (*pgproto3.Frontend, *pgproto3.BackendKeyData) {
	t.Helper()
	fe := pgproto3.NewFrontend(conn, conn)
	p := map[string]string{"user": pgtest.SuperUser, "database": "postgres"}
	for k, v := range params {
		p[k] = v
	}
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: p})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var key *pgproto3.BackendKeyData
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationOk, *pgproto3.ParameterStatus:
		case *pgproto3.BackendKeyData:
			key = &pgproto3.BackendKeyData{ProcessID: m.ProcessID, SecretKey: append([]byte(nil), m.SecretKey...)}
		case *pgproto3.ReadyForQuery:
			return fe, key
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: server error %s %s: %s", m.Severity, m.Code, m.Message)
		default:
			t.Fatalf("startup: unexpected %T", msg)
		}
	}
}

// readErrorThenClose reads backend messages until an ErrorResponse, then
// requires the connection to be closed by the proxy.
func readErrorThenClose(t testing.TB, conn net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	fe := pgproto3.NewFrontend(conn, conn)
	var er *pgproto3.ErrorResponse
	for er == nil {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("want an ErrorResponse, got %v", err)
		}
		if m, ok := msg.(*pgproto3.ErrorResponse); ok {
			er = m
		}
	}
	requireClosed(t, conn)
	return er
}

// requireClosed fails unless the peer closes conn before its deadline (any
// further bytes are ignored).
func requireClosed(t testing.TB, conn net.Conn) {
	t.Helper()
	if err := waitClosed(conn); err != nil {
		t.Fatal(err)
	}
}

func waitClosed(conn net.Conn) error {
	_, err := io.Copy(io.Discard, conn)
	if err == nil || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("connection not closed by the proxy: %w", err)
}

// backendPID returns the upstream backend's pid for the session with the given
// application_name, waiting until it appears in pg_stat_activity.
func backendPID(t testing.TB, appName string) uint32 {
	t.Helper()
	var pid uint32
	pgtest.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := cluster.Connect(ctx, "postgres")
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		res, err := conn.Exec(ctx, fmt.Sprintf("SELECT pid FROM pg_stat_activity WHERE application_name = '%s'", appName)).ReadAll()
		if err != nil {
			return err
		}
		if len(res[0].Rows) != 1 {
			return fmt.Errorf("%d backends with application_name %s", len(res[0].Rows), appName)
		}
		var n uint64
		if _, err := fmt.Sscan(string(res[0].Rows[0][0]), &n); err != nil {
			return err
		}
		pid = uint32(n)
		return nil
	})
	return pid
}

// activityRows returns pid, state and wait event from pg_stat_activity for the
// backends with the given application_name (no rows if none).
func activityRows(ctx context.Context, appName string) ([][]string, error) {
	conn, err := cluster.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, fmt.Sprintf("SELECT pid, state, coalesce(wait_event, '') FROM pg_stat_activity WHERE application_name = '%s'", appName)).ReadAll()
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, r := range res[0].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = string(v)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// waitActive waits until the backend of appName runs a query that sleeps.
func waitActive(t testing.TB, appName string) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := activityRows(ctx, appName)
		if err != nil {
			return err
		}
		if len(rows) != 1 || rows[0][1] != "active" || rows[0][2] != "PgSleep" {
			return fmt.Errorf("backend of %s is %v, want active in PgSleep", appName, rows)
		}
		return nil
	})
}

// waitGone waits until no backend has the given application_name.
func waitGone(t testing.TB, appName string) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := activityRows(ctx, appName)
		if err != nil {
			return err
		}
		if len(rows) != 0 {
			return fmt.Errorf("backends of %s still there: %v", appName, rows)
		}
		return nil
	})
}

// waitSessions waits until the proxy has n client and n upstream connections.
func waitSessions(t testing.TB, p *testProxy, n int64) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		if st := p.Srv.Stats(); st.ClientConnections != n || st.UpstreamConnections != n {
			return fmt.Errorf("stats %+v, want %d client and upstream connections", st, n)
		}
		return nil
	})
}
