package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// tlsUpstream is a second cluster that accepts TCP clients only over TLS.
type tlsUpstream struct {
	c      *pgtest.Cluster
	caFile string // the server's self-signed certificate
}

var (
	tlsUpOnce sync.Once
	tlsUp     *tlsUpstream
	tlsUpErr  error
)

// startTLSUpstream starts (once per test binary; TestMain stops it) a cluster whose pg_hba.conf
// rejects plaintext TCP.
func startTLSUpstream(t *testing.T) *tlsUpstream {
	t.Helper()
	pgtest.Need(t, cluster)
	tlsUpOnce.Do(func() {
		certPEM, keyPEM, err := pgtest.SelfSignedCert()
		if err != nil {
			tlsUpErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := pgtest.Start(ctx, pgtest.Options{
			TLSCertPEM: certPEM, TLSKeyPEM: keyPEM,
			HBA: []string{
				"local all all trust",
				"hostssl all " + pgtest.ScramUser + " 127.0.0.1/32 scram-sha-256",
				"hostssl all all 127.0.0.1/32 trust",
				"hostnossl all all 127.0.0.1/32 reject",
			},
		})
		if err != nil {
			tlsUpErr = err
			return
		}
		dir, err := os.MkdirTemp("", "pgmemo-ca-")
		if err != nil {
			tlsUpErr = err
			return
		}
		ca := filepath.Join(dir, "ca.pem")
		if tlsUpErr = os.WriteFile(ca, certPEM, 0o600); tlsUpErr != nil {
			return
		}
		tlsUp = &tlsUpstream{c: c, caFile: ca}
	})
	if tlsUpErr != nil {
		t.Fatal(tlsUpErr)
	}
	return tlsUp
}

// stopTLSUpstream removes the TLS cluster, if a test started it (from TestMain).
func stopTLSUpstream() {
	if tlsUp != nil {
		tlsUp.c.Stop()
		os.RemoveAll(filepath.Dir(tlsUp.caFile))
	}
}

// proxyTo starts a proxy whose upstream URL is the TLS cluster with the given
// extra query parameters (sslmode...).
func (u *tlsUpstream) proxyTo(t *testing.T, params string, opts ...func(*proxy.Server)) *testProxy {
	t.Helper()
	raw := "postgres://postgres@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(u.c.Port)) + "/postgres?" + params
	return startProxy(t, append([]func(*proxy.Server){func(s *proxy.Server) {
		up, err := proxy.ParseUpstream(raw)
		if err != nil {
			t.Fatal(err)
		}
		s.Upstream = up
	}}, opts...)...)
}

func TestUpstreamTLSPerSSLMode(t *testing.T) {
	u := startTLSUpstream(t)
	tests := []struct {
		name     string
		params   string
		wantCode string // empty: the connection works and uses TLS upstream
	}{
		{"require", "sslmode=require", ""},
		{"prefer", "sslmode=prefer", ""},
		{"verify-full with the server's CA", "sslmode=verify-full&sslrootcert=" + url.QueryEscape(u.caFile), ""},
		{"verify-full with the system CAs", "sslmode=verify-full", "08001"},
		{"disable is rejected by the server itself", "sslmode=disable", "28000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := u.proxyTo(t, tt.params)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, "postgres://postgres@"+p.Addr+"/postgres?sslmode=disable")
			if tt.wantCode != "" {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != tt.wantCode {
					t.Fatalf("err = %v, want SQLSTATE %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var ssl bool
			if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
				t.Fatal(err)
			}
			if !ssl {
				t.Fatal("the upstream connection does not use TLS")
			}
		})
	}
}

// TestSCRAMOverUpstreamTLS: a plaintext client authenticates with SCRAM through
// a proxy that reaches the server over TLS (the server offers -PLUS there; the
// proxy must hide it). A TLS client that would announce channel-binding
// support gets pgmemo's explanation; with channel_binding=disable it works.
func TestSCRAMOverUpstreamTLS(t *testing.T) {
	u := startTLSUpstream(t)
	certPEM, keyPEM, err := pgtest.SelfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := u.proxyTo(t, "sslmode=require", func(s *proxy.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	base := "postgres://" + pgtest.ScramUser + ":" + pgtest.RolePassword + "@" + p.Addr + "/postgres"
	tests := []struct {
		name, params, wantCode string
	}{
		{"plaintext client", "?sslmode=disable", ""},
		{"TLS client, channel_binding=disable", "?sslmode=require&channel_binding=disable", ""},
		{"TLS client, channel_binding=prefer", "?sslmode=require&channel_binding=prefer", "28000"},
		{"TLS client, channel_binding=require", "?sslmode=require&channel_binding=require", "client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, base+tt.params)
			switch tt.wantCode {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var user string
				if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != pgtest.ScramUser {
					t.Fatalf("current_user = %q, %v", user, err)
				}
			case "client": // the client itself refuses: no -PLUS on offer
				if err == nil {
					conn.Close(ctx)
					t.Fatal("connected although channel binding was required")
				}
			default:
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != tt.wantCode {
					t.Fatalf("err = %v, want SQLSTATE %s", err, tt.wantCode)
				}
				t.Logf("client saw: %s (%s)", pgErr.Message, pgErr.Detail)
			}
		})
	}
}
