package proxy

import (
	"errors"
	"io"
	"net"

	"github.com/pgmemo/pgmemo/wire"
)

// relayClient runs phase 4's client half on the session goroutine: it reads
// client messages and forwards them upstream, flushing whenever no further
// complete message is already buffered. It returns when the client terminates,
// disconnects or breaks the protocol.
func (s *session) relayClient() {
	for {
		if !s.cr.Ready() && len(s.upBuf) > 0 {
			if err := s.flushUpstream(); err != nil {
				return
			}
		}
		m, err := s.cr.Next()
		if err != nil {
			s.clientReadFailed(err)
			return
		}
		if m.Type == 'X' {
			// Stop reading, but let the upstream relay deliver the answers to
			// everything sent before Terminate until the server closes.
			s.terminating.Store(true)
			if s.cache != nil {
				s.flushBatch()
			}
			s.upBuf = append(s.upBuf, m.Raw...)
			s.flushUpstream()
			s.log.Debug("client terminated")
			return
		}
		if s.cache != nil {
			if done, err := s.routeCached(m); err != nil {
				return
			} else if done {
				continue
			}
		} else if !m.Large {
			switch m.Type {
			case 'Q':
				if s.routeAdminOff(m) {
					continue
				}
				s.relayOpen = false
			case 'S':
				s.relayOpen = false
			case 'P', 'B', 'D', 'E', 'C', 'H':
				s.relayOpen = true
			}
		}
		s.pipe.push(m.Type)
		if m.Large {
			if err := s.streamUpstream(m); err != nil {
				return
			}
			continue
		}
		s.upBuf = append(s.upBuf, m.Raw...)
		if len(s.upBuf) >= flushThreshold {
			if err := s.flushUpstream(); err != nil {
				return
			}
		}
	}
}

// routeCached routes a client message when caching is on. done reports that
// it was handled; otherwise the caller forwards it as usual.
func (s *session) routeCached(m wire.Message) (done bool, err error) {
	c := s.cache
	if !m.Large {
		switch {
		case m.Type == 'Q':
			s.routeQuery(m)
		case isExtended(m.Type):
			return true, s.bufferExtended(m)
		case m.Type == 'F':
			s.flushBatch()
			s.pipe.pushX('F', &pendingX{fx: hiddenFx})
			s.upBuf = append(s.upBuf, m.Raw...)
		default:
			s.flushBatch()
			return false, nil
		}
		if len(s.upBuf) >= flushThreshold {
			return true, s.flushUpstream()
		}
		return true, nil
	}
	s.flushBatch()
	switch m.Type {
	case 'P', 'B', 'Q':
		// Too large to look at: it may replace any statement or portal.
		// Send the local-only ones and forget them all. After a Parse or
		// Bind the server may hold an unnamed statement the proxy does not
		// know, which a probe's Query would destroy (probe.go); a Query
		// destroys it itself.
		c.unnamedUnknown = m.Type != 'Q'
		for _, st := range c.stmts {
			s.materializeStmt(st)
		}
		for _, pt := range c.portals {
			s.materializePortal(pt)
		}
		clear(c.stmts)
		clear(c.portals)
	}
	if m.Type != 'Q' && m.Type != 'F' {
		c.upOpen = true
	}
	if m.Type == 'Q' || m.Type == 'E' || m.Type == 'F' {
		// Unseen, it may be a DO block or set_config(): hidden code, which
		// the session check (probe.go) clears when it changed nothing.
		s.pipe.pushX(m.Type, &pendingX{fx: hiddenFx})
	} else {
		s.pipe.push(m.Type)
	}
	return true, s.streamUpstream(m)
}

// flushBatch forwards a partial batch before a message that is not part of
// it.
func (s *session) flushBatch() {
	if b := &s.cache.batch; len(b.msgs) > 0 {
		s.forwardBatch(s.routing(), b.msgs)
		b.reset()
	}
}

func (s *session) flushUpstream() error {
	_, err := s.up.Write(s.upBuf)
	s.srv.stats.bytesFromClients.Add(uint64(len(s.upBuf)))
	if cap(s.upBuf) > 4*flushThreshold {
		s.upBuf = make([]byte, 0, flushThreshold)
	} else {
		s.upBuf = s.upBuf[:0]
	}
	if err != nil {
		s.upstreamWriteFailed(err)
	}
	return err
}

// streamUpstream forwards a message too large to buffer, in chunks.
func (s *session) streamUpstream(m wire.Message) error {
	s.upBuf = append(s.upBuf, m.Raw...)
	if err := s.flushUpstream(); err != nil {
		return err
	}
	if err := s.cr.StreamBody(s.up); err != nil {
		s.close() // the upstream holds a partial message: the connection is unusable
		return err
	}
	s.srv.stats.bytesFromClients.Add(uint64(m.Len))
	return nil
}

func (s *session) clientReadFailed(err error) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		s.srv.stats.protocolErrors.Add(1)
		s.log.Info("client sent an invalid message; closing", "err", err)
		s.cw.sendError("FATAL", we)
	case errors.Is(err, io.EOF):
		s.log.Debug("client disconnected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Info("client disconnected in the middle of a message")
	case errors.Is(err, net.ErrClosed) || s.state() == stateClosed:
	default:
		s.log.Info("client connection failed", "err", err)
	}
}

func (s *session) upstreamWriteFailed(err error) {
	if s.state() == stateClosed || errors.Is(err, net.ErrClosed) {
		return
	}
	s.log.Warn("upstream write failed", "err", err)
	s.kill(upstreamLost(err))
}

// relayUpstream runs phase 4's server half on its own goroutine: it forwards
// server messages to the client, tracks state from them, and flushes the client
// buffer only when no further complete message is buffered (one syscall per
// batch, not per row). It holds the client writer's lock while it works through
// buffered messages and releases it before any read that may block.
func (s *session) relayUpstream() {
	w := &s.cw
	locked := false
	defer s.pipe.close()
	defer func() {
		if locked {
			w.flushLocked()
			w.mu.Unlock()
		}
	}()
	for {
		if locked && !s.ur.Ready() {
			w.flushLocked()
			w.mu.Unlock()
			locked = false
		}
		m, err := s.ur.Next()
		if !locked {
			w.mu.Lock()
			locked = true
		}
		if err != nil {
			s.upstreamReadFailed(err)
			return
		}
		st := s.observe(m.Type, m.Body)
		drop := s.cache != nil && s.cacheOnServer(m)
		s.pipe.onServer(m.Type)
		if drop {
			continue
		}
		switch m.Type {
		case 'S':
			s.recordParameter(m.Body)
		case 'K': // never pass a server key through: it would bypass our cancel mapping
			continue
		}
		if m.Large {
			w.flushLocked()
			ew := errWriter{w}
			ew.Write(m.Raw)
			if err := s.ur.StreamBody(ew); err != nil {
				s.close()
				return
			}
			continue
		}
		w.appendLocked(m.Raw)
		if w.err != nil {
			s.close()
			return
		}
		if st == stateClosed { // the server sent FATAL: deliver it and end
			w.flushLocked()
			return
		}
		if m.Type == 'Z' && s.draining.Load() && st == stateIdle && s.pipe.idle() {
			w.buf = wire.AppendErrorResponse(w.buf, "FATAL", wire.Errorf(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
			w.flushLocked()
			w.mu.Unlock()
			locked = false
			s.close()
			return
		}
	}
}

// errWriter writes through the client writer's connection and remembers the
// first error.
type errWriter struct{ w *clientWriter }

func (e errWriter) Write(p []byte) (int, error) {
	if e.w.err != nil {
		return 0, e.w.err
	}
	n, err := e.w.conn.Write(p)
	e.w.err = err
	e.w.stats.bytesToClients.Add(uint64(n))
	return n, err
}

func (s *session) upstreamReadFailed(err error) {
	if s.state() == stateClosed || errors.Is(err, net.ErrClosed) || s.terminating.Load() && errors.Is(err, io.EOF) {
		s.close()
		return
	}
	var we *wire.Error
	if errors.As(err, &we) {
		s.log.Error("upstream sent an invalid message; closing", "err", err)
	} else {
		s.log.Warn("upstream connection lost", "err", err)
	}
	s.cw.buf = wire.AppendErrorResponse(s.cw.buf, "FATAL", upstreamLost(err))
	s.cw.flushLocked()
	s.close()
}
