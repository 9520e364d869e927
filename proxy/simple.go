package proxy

import (
	"context"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/wire"
)

// coalesceWait bounds how long a miss waits for another session's fill of the
// same key before it queries the server itself.
const coalesceWait = 5 * time.Second

// routeQuery handles a simple-protocol Query with caching on: a pgmemo
// command or a hit is answered locally; anything else is forwarded, a
// cacheable miss with a capture that fills the cache from the answer.
func (s *session) routeQuery(m wire.Message) error {
	start := time.Now()
	c := s.cache
	s.flushBatch() // a Query inside an unfinished batch: keep the order
	body := m.Body
	if n := len(body); n > 0 && body[n-1] == 0 {
		body = body[:n-1]
	}
	r := s.routing()
	empty, bypass, searchPath, status := r.quiet, r.bypass, r.searchPath, r.status()
	open := c.upOpen || c.clientOpen
	c.upOpen, c.clientOpen = false, false // the Query ends the implicit transaction
	text := unsafeString(body)            // planFor copies what it keeps
	pl := s.srv.cache.planFor(context.Background(), c.db, searchPath, text)
	if pl.admin != adminNone && empty {
		out, err := s.appendAdmin(s.localOut[:0], pl, true)
		if err != nil {
			out = wire.AppendErrorResponse(out, "ERROR", err)
		}
		s.localOut = appendReady(out, status)
		s.writeLocal(s.localOut)
		return nil
	}
	delete(c.stmts, "") // a Query destroys the unnamed statement
	c.unnamedUnknown = false
	s.sqlStatementRefs(pl, true)
	x := &pendingX{fx: pl.fx}
	last := lastInfo{pl: pl}
	switch {
	case !pl.cacheable:
		last.result, last.reason = "miss-not-cacheable", pl.reason
		s.srv.cache.notCacheable.Add(1)
	case bypass != "" || !empty:
		last.result, last.reason = "bypass", bypass
		if bypass == "" {
			last.reason = reasonPipelined
		}
		s.srv.cache.bypass.Add(1)
	default:
		cache := s.srv.cache.c
		key := c.key('Q', text, nil, nil)
		if v, ok := cache.Get(unsafeString(key)); ok {
			pl.qs.calls.Add(1)
			pl.qs.hits.Add(1)
			// Counted before the answer leaves, so that a client that
			// reads its answer and then the metrics sees this hit.
			s.srv.cache.durations[resultHit].observe(time.Since(start))
			s.serveHit(v, status, lastInfo{result: "hit", pl: pl})
			return nil
		}
		k := string(key)
		f, leader := cache.BeginFill(k, cache.Snapshot(c.db.scope, pl.tags...))
		if !leader {
			v, ok, canceled := s.waitForFill(f)
			if ok {
				pl.qs.calls.Add(1)
				pl.qs.hits.Add(1)
				s.serveHit(v, status, lastInfo{result: "hit", reason: "coalesced", pl: pl})
				return nil
			}
			last.result, last.reason = "miss-not-filled", "fill_failed_elsewhere"
			if canceled {
				last.reason = "canceled"
				if r.st == stateIdle {
					// The server was never asked: answer as it answers a
					// statement cancelled while it ran.
					s.mu.Lock()
					c.last = last
					s.mu.Unlock()
					out := wire.AppendErrorResponse(s.localOut[:0], "ERROR", wire.Errorf(wire.CodeQueryCanceled, "canceling statement due to user request"))
					s.localOut = appendReady(out, status)
					s.writeLocal(s.localOut)
					return nil
				}
				// In a transaction block the cancel must fail the block
				// on the server: it runs a statement that fails as a
				// cancelled one does, instead of the client's.
				s.mu.Lock()
				c.last = last
				s.mu.Unlock()
				s.upBuf = appendQuery(s.upBuf, cancelInBlockSQL)
				s.pipe.pushX('Q', &pendingX{result: -1})
				return nil
			}
			break
		}
		x.fill = &capture{fill: f, kind: 'Q', max: s.srv.cache.maxEntry(), s: s, ttl: pl.ttl, pin: pl.pin}
		last.result = "miss"
	}
	s.mu.Lock()
	c.last = last
	s.mu.Unlock()
	x.sent, x.result = time.Now(), resultPassthrough
	if x.fill != nil {
		x.result = resultMiss
	}
	if pl.qs != nil {
		pl.qs.calls.Add(1)
		pl.qs.misses.Add(1)
		x.qs = pl.qs
	}
	if s.probeDue(r, open, func() bool { return anyHidden(pl.fx) }) {
		s.sendProbe() // probe.go
	}
	if len(pl.an.Statements) == 1 && s.commitNeedsXactID(pl.an.Statements[0], r.st, empty) {
		s.askXactID() // ownxact.go
	}
	s.upBuf = append(s.upBuf, m.Raw...)
	s.pipe.pushX('Q', x)
	return nil
}

// cancelInBlockSQL fails with the error of a cancelled statement (57014,
// the same message; its CONTEXT names the DO block), which aborts the
// transaction block as the cancel of the client's statement would have. A
// CancelRequest sent to the server after the statement would race with the
// backend's reading it: a backend waiting for a command ignores a cancel.
const cancelInBlockSQL = `DO $pgmemo$BEGIN RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = 'canceling statement due to user request'; END$pgmemo$`

// waitForFill waits for another session's fill of a key this query missed,
// up to coalesceWait or until the client cancels the query (canceled: a
// CancelRequest came first, handleCancel).
func (s *session) waitForFill(f cachecore.Fill) (v []byte, ok, canceled bool) {
	ctx, cancel := context.WithTimeout(context.Background(), coalesceWait)
	defer cancel()
	s.mu.Lock()
	s.cancelWait = cancel
	s.mu.Unlock()
	s.srv.stats.waitingForFill.Add(1)
	v, ok, _ = f.Wait(ctx)
	s.srv.stats.waitingForFill.Add(-1)
	s.mu.Lock()
	s.cancelWait = nil
	canceled = s.waitCanceled && !ok // a fill that came first is served, as a late cancel does nothing
	s.waitCanceled = false
	s.mu.Unlock()
	return v, ok, canceled
}

// cancelWaiting stops waitForFill for a client's CancelRequest; false when
// the session is not waiting (the cancel is for the server).
func (s *session) cancelWaiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelWait == nil {
		return false
	}
	s.waitCanceled = true
	s.cancelWait()
	s.cancelWait = nil
	return true
}

// serveHit writes a cached simple-query answer and ReadyForQuery.
func (s *session) serveHit(v []byte, status byte, last lastInfo) {
	s.mu.Lock()
	s.cache.last = last
	s.mu.Unlock()
	w := &s.cw
	w.mu.Lock()
	w.appendLocked(v)
	w.buf = appendReady(w.buf, status)
	if !s.cr.Ready() {
		w.flushLocked()
	}
	w.mu.Unlock()
}

// sqlStatementRefs keeps the proxy's view of prepared statements right when a
// Query or an Execute uses SQL-level PREPARE, EXECUTE, DEALLOCATE or DISCARD,
// which share the protocol's namespace: a statement that exists only locally
// is sent to the server first (its answers dropped; sync: followed by a Sync,
// before a Query), dropped ones are forgotten, and a name PREPARE takes is
// recorded as opaque, so that a protocol Parse of it goes to the server (which
// answers 42P05) and its portals count as unknown code.
func (s *session) sqlStatementRefs(pl *plan, sync bool) {
	c := s.cache
	for _, st := range pl.an.Statements {
		switch st.Node {
		case "PrepareStmt", "ExecuteStmt", "DeallocateStmt":
		case "DiscardStmt":
			if st.Discard == "ALL" {
				clear(c.stmts)
				clear(c.portals)
			}
			continue
		default:
			continue
		}
		if st.Name == "*" {
			clear(c.stmts)
			continue
		}
		ps := c.stmts[st.Name]
		if ps == nil {
			if st.Node == "PrepareStmt" && st.Name != "" {
				// If the server refuses it, the name just stays the server's
				// to judge.
				c.stmts[st.Name] = &stmt{name: st.Name, upstream: true, opaque: true}
			}
			continue
		}
		if !ps.upstream {
			s.materializeStmt(ps)
			if sync {
				s.upBuf = appendSync(s.upBuf)
				s.pipe.pushX('S', &pendingX{swallow: true})
			}
		}
		if st.Node == "DeallocateStmt" {
			delete(c.stmts, st.Name)
		}
	}
}
