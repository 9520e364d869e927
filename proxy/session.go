package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/wire"
)

// session is one client connection and its upstream connection. See doc.go for
// the lifecycle.
type session struct {
	srv *Server
	id  uint64
	// cancels counts the cancel requests forwarded for the session: a
	// probe (probe.go) that a cancel failed knows the cancel was the
	// client's and sends it again for the client's statement.
	cancels atomic.Uint64
	log     *slog.Logger
	client  net.Conn
	cw      clientWriter

	cr       *wire.Reader // client messages; created at authentication, kept for the relay
	ur       *wire.Reader // upstream messages
	up       net.Conn
	upTarget target
	upBuf    []byte // pending output to upstream; only the client relay writes it after startup
	// upDeadline bounds the startup phase on the upstream connection.
	upDeadline time.Time

	key cancelKey // issued to the client

	mu     sync.Mutex
	upKey  cancelKey         // issued by the upstream
	params map[string]string // ParameterStatus values reported by the server

	st          atomic.Uint32 // state
	pipe        pipeline      // what the server still has to answer
	draining    atomic.Bool
	terminating atomic.Bool // the client sent Terminate

	startupParams map[string]string // the client's StartupMessage parameters (s.mu)
	// cancelWait ends the wait for another session's fill (waitForFill);
	// waitCanceled: a CancelRequest did (both s.mu).
	cancelWait   context.CancelFunc
	waitCanceled bool
	started      time.Time

	cache *cacheSession // nil when caching is off
	// relayOpen: with caching off, extended-protocol messages were sent
	// since the last Sync or Query (the server's implicit transaction is
	// open), so no pgmemo command may be answered locally.
	relayOpen bool
	localOut  []byte // answers produced locally, reused

	closeOnce sync.Once
}

func newSession(srv *Server, id uint64, conn net.Conn) *session {
	s := &session{
		srv:    srv,
		id:     id,
		client: conn,
		params: map[string]string{},
		log:    srv.logger().With("conn", id, "client", conn.RemoteAddr().String()),
	}
	s.cw.conn = conn
	s.cw.stats = &srv.stats
	return s
}

func (s *session) state() state { return state(s.st.Load()) }

// observe applies a server message to the session state.
func (s *session) observe(typ byte, body []byte) state {
	cur := s.state()
	next := transition(cur, typ, body)
	if next != cur {
		s.st.Store(uint32(next))
	}
	return next
}

func (s *session) upstreamKey() (cancelKey, target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upKey, s.upTarget
}

// terminateGrace bounds how long the answers to messages pipelined before a
// Terminate may take to arrive.
const terminateGrace = 30 * time.Second

// serve runs the whole lifecycle of the session on the calling goroutine.
func (s *session) serve() {
	defer s.srv.removeSession(s)
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panicked; connection closed", "panic", r, "stack", string(debug.Stack()))
			s.cw.sendError("FATAL", wire.Errorf(wire.CodeInternalError, "internal error in pgmemo"))
		}
	}()

	deadline := time.Now().Add(s.srv.startupTimeout())
	s.client.SetDeadline(deadline)
	startup, err := s.negotiate()
	if err != nil || startup == nil {
		s.endWith(err)
		return
	}
	p := startup.Message.Parameters
	s.log = s.log.With("user", p["user"], "database", p["database"])
	s.mu.Lock()
	s.startupParams, s.started = p, time.Now()
	s.mu.Unlock()
	console := p["database"] == ConsoleDatabase && p["replication"] == ""
	raw := startup.Raw
	if console {
		if raw, err = s.consoleStartup(startup.Message); err != nil {
			s.endWith(wire.AsError(err, wire.CodeInternalError))
			return
		}
	} else if s.srv.cache != nil && p["replication"] == "" {
		s.cache = newCacheSession(s.srv.cache, p)
		defer s.cache.db.release()
	}
	if err := s.connectUpstream(deadline, raw); err != nil {
		s.endWith(err)
		return
	}
	if err := s.authenticate(); err != nil {
		s.endWith(err)
		return
	}
	s.client.SetDeadline(time.Time{})
	s.up.SetDeadline(time.Time{})
	if console {
		s.serveConsole()
		return
	}
	s.log.Debug("session ready")
	if s.draining.Load() {
		s.kill(wire.Errorf(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
		return
	}

	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		s.relayUpstream()
		s.close() // wakes relayClient
	}()
	s.relayClient()
	if s.terminating.Load() {
		// The server answers what preceded Terminate, then closes.
		select {
		case <-upDone:
		case <-time.After(terminateGrace):
		}
	}
	s.close()
	<-upDone
	if s.cache != nil {
		s.invalidateUnconfirmed()
	}
	s.pipe.abandon() // release fills that will never complete
}

// invalidateUnconfirmed runs when the session has ended: writes of its open
// transaction, and of statements whose answers never came, may have been
// committed by the server (the connection broke after a COMMIT reached it,
// say), so they are invalidated as if committed. If the server rolled them
// back instead, that only costs a refill.
func (s *session) invalidateUnconfirmed() {
	fx := s.pipe.unansweredFx()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache
	for i := range fx {
		c.pendTags = append(c.pendTags, fx[i].writes...)
		c.pendScope = c.pendScope || fx[i].scope
		c.pendAll = c.pendAll || fx[i].all
		c.pendDDL = c.pendDDL || fx[i].ddl
	}
	c.xidOK = false // not known to have committed: let the stream invalidate again
	c.invalidatePending()
}

// endWith reports a startup-phase failure to the client and logs it.
func (s *session) endWith(err error) {
	if err == nil || errors.Is(err, io.EOF) {
		return
	}
	var we *wire.Error
	if errors.As(err, &we) {
		if we.Code == wire.CodeProtocolViolation {
			s.srv.stats.protocolErrors.Add(1)
		}
		s.log.Info("connection rejected", "err", err)
		s.cw.mu.Lock()
		s.cw.conn.SetWriteDeadline(time.Now().Add(time.Second)) // the startup deadline may have passed
		s.cw.mu.Unlock()
		s.cw.sendError("FATAL", we)
		return
	}
	s.log.Debug("connection ended during startup", "err", err)
}

// negotiate runs phase 1: SSL/GSS negotiation, cancel requests and the
// StartupMessage. It returns nil, nil for a connection that only sent a cancel
// request or went away.
func (s *session) negotiate() (*wire.Startup, error) {
	conn := s.client
	isTLS := false
	for {
		st, c, err := wire.ReadStartup(conn)
		conn = c
		if err != nil {
			return nil, err
		}
		switch {
		case st.DirectTLS:
			if s.srv.TLSConfig == nil || isTLS {
				return nil, nil // cannot answer a TLS handshake in plaintext; just close
			}
			cfg := s.srv.TLSConfig.Clone()
			cfg.NextProtos = []string{"postgresql"}
			tc := tls.Server(conn, cfg)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("direct TLS handshake: %w", err)
			}
			if tc.ConnectionState().NegotiatedProtocol != "postgresql" {
				return nil, errors.New("direct TLS without ALPN \"postgresql\"")
			}
			conn, isTLS = tc, true
		case st.SSL:
			if isTLS {
				return nil, wire.Errorf(wire.CodeProtocolViolation, "SSLRequest received on an encrypted connection")
			}
			if s.srv.TLSConfig == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(conn, s.srv.TLSConfig)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			conn, isTLS = tc, true
		case st.GSSENC:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case st.Cancel != nil:
			ctx, cancel := context.WithTimeout(context.Background(), s.srv.startupTimeout())
			s.srv.handleCancel(ctx, st.Cancel)
			cancel()
			return nil, nil
		case st.Message != nil:
			s.setClient(conn)
			s.st.Store(uint32(stateAuth))
			return &st, nil
		}
		s.setClient(conn)
	}
}

// setClient replaces the client connection after a TLS upgrade. Shutdown may
// read it concurrently (kill, close), hence the locks.
func (s *session) setClient(conn net.Conn) {
	s.cw.mu.Lock()
	s.cw.conn = conn
	s.cw.mu.Unlock()
	s.mu.Lock()
	s.client = conn
	s.mu.Unlock()
}

// connectUpstream runs phase 2: dial the upstream (TLS per its sslmode) and send
// the client's StartupMessage unchanged.
func (s *session) connectUpstream(deadline time.Time, startupRaw []byte) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, t, err := s.srv.Upstream.dial(ctx)
	if err != nil {
		s.srv.stats.upstreamFailures.Add(1)
		s.log.Warn("upstream connection failed", "upstream", s.srv.Upstream.String(), "err", err)
		return &wire.Error{Code: wire.CodeUnableToConnect, Err: err,
			Message: fmt.Sprintf("pgmemo could not connect to the upstream server %s", s.srv.Upstream.String()),
			Detail:  err.Error()}
	}
	s.srv.stats.upstreamActive.Add(1)
	s.mu.Lock()
	s.up, s.upTarget = conn, t
	s.mu.Unlock()
	// Like libpq's connect_timeout, the dial timeout also bounds the wait for the
	// server's first answer; authenticate then extends it to the startup deadline.
	conn.SetDeadline(earliest(deadline, time.Now().Add(s.srv.Upstream.DialTimeout)))
	s.upDeadline = deadline
	if _, err := conn.Write(startupRaw); err != nil {
		return upstreamLost(err)
	}
	return nil
}

func upstreamLost(err error) *wire.Error {
	return &wire.Error{Code: wire.CodeConnectionFailure, Err: err,
		Message: "pgmemo lost the connection to the upstream server", Detail: err.Error()}
}

// authenticate runs phase 3: relay the authentication exchange until the
// server's first ReadyForQuery, replacing the server's BackendKeyData with the
// proxy's own and never offering SCRAM channel binding.
func (s *session) authenticate() error {
	s.ur = wire.NewReader(s.up, wire.ValidBackend, s.srv.MaxBufferedBytes, 0)
	s.cr = wire.NewReader(s.client, wire.ValidFrontend, s.srv.MaxBufferedBytes, s.srv.MaxMessageBytes)
	s.cw.mu.Lock()
	defer s.cw.mu.Unlock()
	w := &s.cw
	for {
		m, err := s.ur.Next()
		if err != nil {
			return upstreamLost(err)
		}
		s.up.SetDeadline(s.upDeadline)
		if m.Large {
			return upstreamLost(fmt.Errorf("oversized %q message during startup", m.Type))
		}
		needReply := false
		switch m.Type {
		case 'R':
			if len(m.Body) < 4 {
				return upstreamLost(errors.New("short authentication message"))
			}
			switch authType := be32(m.Body); authType {
			case pgproto3.AuthTypeOk, pgproto3.AuthTypeSASLFinal:
			case pgproto3.AuthTypeSASL:
				var sasl pgproto3.AuthenticationSASL
				if err := sasl.Decode(m.Body); err != nil {
					return upstreamLost(err)
				}
				mechs := sasl.AuthMechanisms[:0]
				for _, mech := range sasl.AuthMechanisms {
					if mech != "SCRAM-SHA-256-PLUS" { // channel binding cannot cross a TLS-terminating proxy
						mechs = append(mechs, mech)
					}
				}
				if len(mechs) == 0 {
					return wire.Errorf(wire.CodeFeatureNotSupported, "the upstream server offers only SASL channel binding, which cannot pass through pgmemo")
				}
				sasl.AuthMechanisms = mechs
				if w.buf, err = sasl.Encode(w.buf); err != nil {
					return wire.AsError(err, wire.CodeInternalError)
				}
				needReply = true
				goto reply
			case pgproto3.AuthTypeCleartextPassword, pgproto3.AuthTypeMD5Password, pgproto3.AuthTypeSASLContinue,
				pgproto3.AuthTypeGSS, pgproto3.AuthTypeGSSCont, pgproto3.AuthTypeSSPI:
				needReply = true
			default:
				return wire.Errorf(wire.CodeFeatureNotSupported, "authentication method %d is not supported through pgmemo", authType)
			}
		case 'K':
			var k pgproto3.BackendKeyData
			if err := k.Decode(m.Body); err != nil {
				return upstreamLost(err)
			}
			s.mu.Lock()
			s.upKey = cancelKey{pid: k.ProcessID, secret: k.SecretKey}
			s.mu.Unlock()
			key := s.srv.issueKey(s, k.ProcessID, len(k.SecretKey))
			mine := pgproto3.BackendKeyData{ProcessID: key.pid, SecretKey: key.secret}
			if w.buf, err = mine.Encode(w.buf); err != nil {
				return wire.AsError(err, wire.CodeInternalError)
			}
			continue
		case 'S':
			s.recordParameter(m.Body)
		case 'E':
			w.appendLocked(m.Raw)
			w.flushLocked()
			return io.EOF // the server's own error reached the client; nothing more to say
		case 'Z':
			if s.cache != nil {
				if err := s.fetchDefaults(); err != nil {
					return err
				}
			}
			w.appendLocked(m.Raw)
			s.observe(m.Type, m.Body)
			return w.flushLocked()
		case 'v', 'N':
		default:
			return upstreamLost(fmt.Errorf("unexpected message %q during authentication", m.Type))
		}
		w.appendLocked(m.Raw)
	reply:
		if !needReply {
			continue
		}
		if err := w.flushLocked(); err != nil {
			return err
		}
		reply, err := s.cr.Next()
		if err != nil {
			return err
		}
		if reply.Large {
			return wire.Errorf(wire.CodeProtocolViolation, "authentication response of %d bytes is too large", reply.Len)
		}
		if reply.Type != 'p' {
			if reply.Type == 'X' {
				return io.EOF
			}
			return wire.Errorf(wire.CodeProtocolViolation, "expected password response, got message type %q", reply.Type)
		}
		if err := s.checkChannelBindingFlag(reply.Body); err != nil {
			return err
		}
		if _, err := s.up.Write(reply.Raw); err != nil {
			return upstreamLost(err)
		}
	}
}

// checkChannelBindingFlag catches, before the server does, the one SCRAM case
// that cannot work through a proxy: a TLS client that supports channel binding
// says so with the GS2 flag "y" (because pgmemo never offers -PLUS), and an
// upstream reached over TLS must then reject the exchange as a downgrade. The
// client gets an error that says what to change instead of the server's.
func (s *session) checkChannelBindingFlag(body []byte) error {
	if _, isTLS := s.client.(*tls.Conn); !isTLS || s.upTarget.tls == nil {
		return nil
	}
	var ir pgproto3.SASLInitialResponse
	if ir.Decode(body) != nil || !strings.HasPrefix(ir.AuthMechanism, "SCRAM-") || !bytes.HasPrefix(ir.Data, []byte("y,")) {
		return nil
	}
	return &wire.Error{Code: wire.CodeInvalidAuthorization,
		Message: "SCRAM channel binding cannot pass through pgmemo when both the client and the upstream connection use TLS",
		Detail:  "Set channel_binding=disable in the client's connection settings, or connect pgmemo to PostgreSQL without TLS on a trusted network."}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// recordParameter keeps the value of a ParameterStatus message.
func (s *session) recordParameter(body []byte) {
	var ps pgproto3.ParameterStatus
	if err := ps.Decode(body); err != nil {
		return
	}
	s.mu.Lock()
	s.params[ps.Name] = ps.Value // Decode copies into new strings
	if s.cache != nil {
		s.cache.keyDirty = true
	}
	s.mu.Unlock()
}

// drain asks the session to end at its next idle moment (server shutdown).
func (s *session) drain() {
	s.draining.Store(true)
	if st := s.state(); st == stateStartup || (st == stateIdle && s.pipe.idle()) {
		s.kill(wire.Errorf(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
	}
}

// kill sends a FATAL error at a message boundary (if it can within a short
// wait) and closes the session.
func (s *session) kill(e *wire.Error) {
	if s.cw.tryLock(200 * time.Millisecond) {
		s.cw.conn.SetWriteDeadline(time.Now().Add(time.Second))
		s.cw.buf = wire.AppendErrorResponse(s.cw.buf, "FATAL", e)
		s.cw.flushLocked()
		s.cw.mu.Unlock()
	}
	s.close()
}

// close tears both connections down; both relays then end.
func (s *session) close() {
	s.closeOnce.Do(func() {
		s.st.Store(uint32(stateClosed))
		s.mu.Lock()
		client, up := s.client, s.up
		s.mu.Unlock()
		client.Close()
		if up != nil {
			up.Close()
			s.srv.stats.upstreamActive.Add(-1)
		}
	})
}
