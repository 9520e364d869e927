package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/proxy"
	"github.com/pgmemo/pgmemo/wire"
)

// fuzzHealthEvery is how often (in iterations) FuzzSessionStartup checks that
// a normal client still works and no session leaked.
const fuzzHealthEvery = 100

// FuzzSessionStartup sends arbitrary bytes as a client's first packets to one
// real proxy (with TLS, so SSLRequest and direct TLS are live paths), then
// half-closes. The proxy must answer with well-formed messages (an
// ErrorResponse, or a real login) and close within a deadline; a normal client
// must still work afterwards. The seed corpus is in
// testdata/fuzz/FuzzSessionStartup.
func FuzzSessionStartup(f *testing.F) {
	p := startProxy(f, withTLS(f), func(s *proxy.Server) {
		s.Logger = nil // sessions outlive iterations; keep the output small
		s.StartupTimeout = 5 * time.Second
	})
	var iterations atomic.Int64
	f.Cleanup(func() {
		if !f.Failed() {
			checkProxyHealthy(f, p)
			f.Logf("%d inputs sent through the proxy", iterations.Load())
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write(data) // may fail once the proxy has rejected a prefix
		conn.(*net.TCPConn).CloseWrite()
		var out bytes.Buffer
		_, err = io.Copy(&out, conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the proxy neither answered nor closed within 10s; it sent %q", out.Bytes())
		}
		checkStartupAnswer(t, data, out.Bytes())
		if iterations.Add(1)%fuzzHealthEvery == 0 {
			checkProxyHealthy(t, p)
		}
	})
}

// checkStartupAnswer checks the proxy's output for input: one answer byte per
// GSSENCRequest ('N') and SSLRequest ('S'; TLS follows and is not checked),
// then a sequence of well-formed backend messages.
func checkStartupAnswer(t *testing.T, input, out []byte) {
	t.Helper()
	for len(input) >= 8 && len(out) > 0 {
		n, code := binary.BigEndian.Uint32(input), binary.BigEndian.Uint32(input[4:])
		if input[0] == 0x16 || n != 8 || code != sslRequestCode && code != gssencRequestCode {
			break
		}
		want := byte('N')
		if code == sslRequestCode {
			want = 'S'
		}
		if out[0] != want {
			t.Fatalf("answer to request %d is %q, want %q", code, out[0], want)
		}
		if want == 'S' {
			return // the rest is TLS
		}
		input, out = input[8:], out[1:]
	}
	if len(input) > 0 && input[0] == 0x16 {
		return // direct TLS
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(out), io.Discard)
	for rest := out; len(rest) > 0; {
		if len(rest) < 5 || binary.BigEndian.Uint32(rest[1:]) < 4 || int(binary.BigEndian.Uint32(rest[1:]))+1 > len(rest) || !wire.ValidBackend(rest[0]) {
			t.Fatalf("the proxy's answer %q has a truncated or invalid message at %q", out, rest)
		}
		rest = rest[1+binary.BigEndian.Uint32(rest[1:]):]
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("the proxy's answer %q does not decode: %v", out, err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok && (len(e.Code) != 5 || e.Severity == "") {
			t.Fatalf("ErrorResponse without SQLSTATE or severity: %+v", e)
		}
	}
}

// checkProxyHealthy waits until every fuzz session has ended, then logs in
// with pgx and runs a query.
func checkProxyHealthy(t testing.TB, p *testProxy) {
	t.Helper()
	pgtest.Eventually(t, 15*time.Second, func() error {
		if st := p.Srv.Stats(); st.ClientConnections != 0 || st.UpstreamConnections != 0 {
			return fmt.Errorf("sessions left after the fuzz inputs: %+v", st)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatalf("normal client after fuzz inputs: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("normal client query: %d, %v", n, err)
	}
}
