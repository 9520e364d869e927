package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/wire"
)

// Server is a PostgreSQL proxy. Set the fields, then call Serve; fields must not
// change afterwards. The zero value of every optional field is useful.
type Server struct {
	// Upstream is the PostgreSQL server every client is forwarded to. Required.
	Upstream *Upstream

	// TLSConfig, when set, lets clients use TLS (SSLRequest answered 'S', and
	// direct TLS). Nil answers SSLRequest with 'N'.
	TLSConfig *tls.Config

	// Logger receives connection-level logs; nil discards them. Query text and
	// parameters are never logged.
	Logger *slog.Logger

	// MaxMessageBytes is the largest client message accepted (default 1 GiB - 1,
	// PostgreSQL's own limit). Larger ones are rejected with SQLSTATE 08P01.
	MaxMessageBytes int

	// MaxBufferedBytes is the largest message held in memory whole (default
	// 8 MiB); larger messages, in either direction, are streamed through.
	MaxBufferedBytes int

	// StartupTimeout bounds the startup phase: negotiation and authentication
	// (default 60s).
	StartupTimeout time.Duration

	// Cache configures result caching; the zero value only relays.
	Cache CacheOptions

	// AdminRoles may run the privileged pgmemo commands (SHOW pgmemo.queries,
	// SHOW pgmemo.config, PGMEMO INVALIDATE) besides superusers.
	AdminRoles []string

	// ConfigReport, when set, gives SHOW pgmemo.config its rows: name,
	// effective value, and where the value came from.
	ConfigReport func() [][3]string

	cache *cacheState // set by the first Serve when Cache.Enabled

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	byKey     map[uint32]*session // proxy-issued BackendKeyData process IDs
	draining  bool
	done      chan struct{} // closed when the last session ends during shutdown

	nextID atomic.Uint64
	stats  counters
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

type counters struct {
	clientsTotal     atomic.Uint64
	clientsActive    atomic.Int64
	upstreamActive   atomic.Int64
	upstreamFailures atomic.Uint64
	protocolErrors   atomic.Uint64
	cancelsForwarded atomic.Uint64
	cancelsUnknown   atomic.Uint64
	waitingForFill   atomic.Int64
	bytesFromClients atomic.Uint64
	bytesToClients   atomic.Uint64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	ClientConnectionsTotal uint64 // accepted since start
	ClientConnections      int64  // open now
	UpstreamConnections    int64  // open now
	UpstreamFailures       uint64 // failed upstream dials
	ProtocolErrors         uint64 // clients dropped for malformed messages
	CancelsForwarded       uint64
	CancelsUnknown         uint64 // cancel requests matching no session
	// WaitingForFill counts the clients whose query now waits for another
	// session's fill of the same result (simple protocol, at most 5 s).
	WaitingForFill   int64
	BytesFromClients uint64
	BytesToClients   uint64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		ClientConnectionsTotal: c.clientsTotal.Load(),
		ClientConnections:      c.clientsActive.Load(),
		UpstreamConnections:    c.upstreamActive.Load(),
		UpstreamFailures:       c.upstreamFailures.Load(),
		ProtocolErrors:         c.protocolErrors.Load(),
		CancelsForwarded:       c.cancelsForwarded.Load(),
		CancelsUnknown:         c.cancelsUnknown.Load(),
		WaitingForFill:         c.waitingForFill.Load(),
		BytesFromClients:       c.bytesFromClients.Load(),
		BytesToClients:         c.bytesToClients.Load(),
	}
}

// SetRules replaces the caching rules while serving (a configuration reload).
// Every entry is dropped, since what may be cached may have changed. It does
// nothing when caching is off or Serve has not started.
func (s *Server) SetRules(rules []Rule) {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs != nil {
		cs.setRules(rules)
	}
}

// CacheStats returns the cache's counters; ok is false when caching is off.
func (s *Server) CacheStats() (st cachecore.Stats, ok bool) {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs == nil {
		return st, false
	}
	return cs.c.Stats(), true
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) startupTimeout() time.Duration {
	if s.StartupTimeout <= 0 {
		return 60 * time.Second
	}
	return s.StartupTimeout
}

// Serve accepts clients on l until Shutdown is called or l fails. Each client
// is served by its own goroutine.
func (s *Server) Serve(l net.Listener) error {
	if s.Upstream == nil {
		return errors.New("proxy: Server.Upstream is nil")
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	if s.Cache.Enabled && s.cache == nil {
		cs, err := newCacheState(s.Cache, s.Upstream, s.logger())
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("proxy: cache: %w", err)
		}
		s.cache = cs
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isDraining() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("proxy: accept: %w", err)
		}
		backoff = 0
		sess := s.newSession(newRawConn(conn))
		if sess == nil { // draining
			conn.Close()
			continue
		}
		go sess.serve()
	}
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

func (s *Server) newSession(conn net.Conn) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil
	}
	if s.sessions == nil {
		s.sessions = map[*session]struct{}{}
		s.byKey = map[uint32]*session{}
	}
	sess := newSession(s, s.nextID.Add(1), conn)
	s.sessions[sess] = struct{}{}
	s.stats.clientsTotal.Add(1)
	s.stats.clientsActive.Add(1)
	return sess
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if sess.key.pid != 0 && s.byKey[sess.key.pid] == sess {
		delete(s.byKey, sess.key.pid)
	}
	s.stats.clientsActive.Add(-1)
	if s.draining && len(s.sessions) == 0 && s.done != nil {
		close(s.done)
		s.done = nil
	}
}

// Shutdown stops accepting clients and closes sessions as they become idle (no
// transaction open, nothing in flight), telling each client why with FATAL
// 57P01. Sessions still busy when ctx ends are closed the same way. It returns
// ctx.Err() if it had to force sessions closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.cache != nil {
		defer s.cache.close() // after the sessions: stop following replication
	}
	s.draining = true
	for l := range s.listeners {
		l.Close()
	}
	var sessions []*session
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	var done chan struct{}
	if len(s.sessions) > 0 {
		if s.done == nil {
			s.done = make(chan struct{})
		}
		done = s.done
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.drain()
	}
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	sessions = sessions[:0]
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	// Closing the upstream socket does not stop a statement the server is
	// running, so after telling each client, cancel what was in flight.
	var wg sync.WaitGroup
	for _, sess := range sessions {
		busy := !sess.pipe.idle()
		sess.kill(wire.Errorf(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
		if busy {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				sess.cancelUpstream(cctx)
			}()
		}
	}
	wg.Wait()
	return ctx.Err()
}
