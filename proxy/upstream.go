package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/wire"
)

var errTooManyFiles = syscall.EMFILE

// Upstream describes the PostgreSQL server clients are forwarded to. Only its
// addresses and TLS settings are used for client sessions: each client's own
// user, database and password pass through.
type Upstream struct {
	// Config is parsed from the upstream URL; its user and password serve the
	// proxy's own service connections.
	Config *pgconn.Config
	// DialTimeout bounds dialing plus TLS negotiation (default 10s, or the URL's
	// connect_timeout).
	DialTimeout time.Duration
}

// ParseUpstream parses a postgres:// URL or key=value string.
func ParseUpstream(connString string) (*Upstream, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream: %w", err)
	}
	u := &Upstream{Config: cfg, DialTimeout: cfg.ConnectTimeout}
	if u.DialTimeout <= 0 {
		u.DialTimeout = 10 * time.Second
	}
	return u, nil
}

// target is one way to reach the server: an address and whether to use TLS.
type target struct {
	network, addr string
	tls           *tls.Config
}

func (u *Upstream) targets() []target {
	c := u.Config
	network, addr := pgconn.NetworkAddress(c.Host, c.Port)
	ts := []target{{network, addr, c.TLSConfig}}
	for _, f := range c.Fallbacks {
		network, addr := pgconn.NetworkAddress(f.Host, f.Port)
		ts = append(ts, target{network, addr, f.TLSConfig})
	}
	return ts
}

// String names the primary address, for logs.
func (u *Upstream) String() string {
	return net.JoinHostPort(u.Config.Host, strconv.Itoa(int(u.Config.Port)))
}

// dial connects to the first target that works, in the URL's order (which is how
// sslmode=prefer falls back to plaintext). It returns the connection and the
// target used, so cancel requests go to the same server.
func (u *Upstream) dial(ctx context.Context) (net.Conn, target, error) {
	ctx, cancel := context.WithTimeout(ctx, u.DialTimeout)
	defer cancel()
	var errs []error
	for _, t := range u.targets() {
		conn, err := u.dialTarget(ctx, t)
		if err == nil {
			return conn, t, nil
		}
		errs = append(errs, fmt.Errorf("%s (tls=%v): %w", t.addr, t.tls != nil, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, target{}, errors.Join(errs...)
}

// serviceConfig makes cfg, a copy of the upstream's configuration for one of
// pgmemo's own connections (the replication stream, the catalog), dial sockets
// whose I/O goes through rawConn like the clients' and their upstreams'. As
// ordinary system calls, every read of a busy replication stream woke the
// runtime's sysmon, which then polled every 20 µs, a context switch each time:
// on pgbench's TPC-B that was about 35 µs of pgmemo's CPU per transaction.
func serviceConfig(cfg *pgconn.Config) *pgconn.Config {
	dial := cfg.DialFunc // always set: pgconn only takes configs from ParseConfig
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newRawConn(conn), nil
	}
	return cfg
}

func (u *Upstream) dialTarget(ctx context.Context, t target) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
	}
	conn = newRawConn(conn)
	if t.tls == nil {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tconn, err := wire.StartTLS(conn, t.tls)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tconn.SetDeadline(time.Time{})
	return tconn, nil
}

// cancel sends a CancelRequest for the upstream key to target t.
func (u *Upstream) cancel(ctx context.Context, t target, pid uint32, secret []byte) error {
	ctx, cancel := context.WithTimeout(ctx, u.DialTimeout)
	defer cancel()
	conn, err := u.dialTarget(ctx, t)
	if err != nil {
		return fmt.Errorf("proxy: cancel: dial %s: %w", t.addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(u.DialTimeout))
	return wire.SendCancel(conn, pid, secret)
}
