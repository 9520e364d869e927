package proxy

import (
	"errors"
	"slices"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/wire"
)

// pendingX is what the upstream relay must do with the answer to one message
// sent upstream, beyond relaying it.
type pendingX struct {
	swallow bool       // the proxy sent the message itself: drop its completion
	fill    *capture   // fill the cache from the answer
	desc    *descLearn // learn a statement description from the answer
	fx      []stmtFx   // effects, applied at each statement's completion
	next    int        // the next fx to apply
	qs      *queryStats
	sent    time.Time // when the statement went upstream, for qs
	result  int8      // resultMiss or resultPassthrough; -1: not timed
	// xid marks the FunctionCall the proxy sent to learn the transaction's
	// ID (ownxact.go): its answer is read and dropped.
	xid bool
	// local, on a Sync, is what the proxy answered for the messages before
	// it that it did not send (answerMixed): written just before the
	// server's ReadyForQuery, unless the server reported an error since the
	// last one (it then skipped those messages too).
	local []byte
	// probe: the message is part of a probe the proxy sent (probe.go):
	// its whole answer is read and dropped.
	probe *probeReq
}

// timed records the upstream time of a statement once.
func (x *pendingX) timed(cs *cacheState) {
	if x.sent.IsZero() {
		return
	}
	d := time.Since(x.sent)
	x.sent = time.Time{}
	if x.qs != nil {
		x.qs.upstreamN.Add(1)
		x.qs.upstreamNs.Add(uint64(d))
	}
	cs.durations[x.result].observe(d)
}

// finish abandons an unfinished fill when the message is done with.
func (x *pendingX) finish() {
	if x.fill != nil {
		x.fill.abort()
	}
}

// capture gathers the answer to a cacheable read: RowDescription (simple
// query only), DataRows and CommandComplete. Anything else, or more than the
// entry limit, abandons it.
type capture struct {
	s    *session
	fill cachecore.Fill
	kind byte          // 'Q' or 'E'
	ttl  time.Duration // from a rule or a ttl hint; 0: the cache's
	pin  bool          // keep across evictions (RulePin)
	buf  []byte
	max  int
	done bool
	bad  bool
}

func (c *capture) add(m wire.Message) {
	if c.done || c.bad {
		return
	}
	if m.Large || len(c.buf)+len(m.Raw) > c.max {
		c.bad, c.buf = true, nil
		return
	}
	c.buf = append(c.buf, m.Raw...)
}

func (c *capture) abort() {
	if c.done {
		return
	}
	c.done = true
	c.buf = nil
	c.fill.Abort()
	c.s.lastOutcome("miss-not-filled", "abandoned")
}

func (c *capture) complete() {
	if c.done {
		return
	}
	c.done = true
	if c.bad {
		c.fill.Abort()
		c.s.lastOutcome("miss-not-filled", reasonTooLarge)
		return
	}
	err := c.fill.CompleteWith(slices.Clip(c.buf), cachecore.EntryOptions{TTL: c.ttl, Pin: c.pin})
	c.buf = nil
	switch {
	case err == nil:
		c.s.lastOutcome("miss-filled", "")
	case errors.Is(err, cachecore.ErrTooLarge):
		c.s.lastOutcome("miss-not-filled", reasonTooLarge)
	case errors.Is(err, cachecore.ErrStale):
		c.s.lastOutcome("miss-not-filled", "invalidated_while_filling")
	default:
		c.s.lastOutcome("miss-not-filled", err.Error())
	}
}

// lastOutcome records how a miss ended, if it is still the last statement.
func (s *session) lastOutcome(result, reason string) {
	s.mu.Lock()
	if l := &s.cache.last; l.result == "miss" {
		l.result, l.reason = result, reason
	}
	s.mu.Unlock()
}

// descLearn stores the description of a statement the server describes.
type descLearn struct {
	key       string
	snap      cachecore.Snapshot
	kind      byte // 'S' or 'P'
	paramDesc []byte
}

func (d *descLearn) learn(s *session, rowDesc []byte) {
	cache := s.srv.cache.c
	rd := textFormatRowDescription(rowDesc)
	pd := d.paramDesc
	if pd == nil {
		if v, ok := cache.Peek(d.key); ok {
			pd, _ = decodeDesc(v) // keep what a Describe of the statement taught
		}
	}
	// A stale or oversized one is just not stored.
	cache.SetWith(d.key, encodeDesc(pd, rd), d.snap, cachecore.EntryOptions{Meta: true})
}

// cacheOnServer does the cache's part for one server message, before the
// pipeline advances past it, so that everything it implies (invalidations,
// settings) is in place before the client can see the answer or send anything
// that the proxy would answer locally. It reports whether to drop the message.
func (s *session) cacheOnServer(m wire.Message) (drop bool) {
	htyp, x := s.pipe.peek()
	if x != nil && x.probe != nil {
		return s.onProbe(x.probe, m.Body, m.Type)
	}
	if m.Type == 'E' {
		s.mu.Lock()
		s.cache.errSeen = true
		s.mu.Unlock()
	}
	if x == nil {
		if m.Type == 'Z' {
			s.cacheReady(m.Body)
		}
		return false
	}
	if x.swallow && htyp == 'E' { // materializePortal's Execute: its rows and completion
		switch m.Type {
		case 'D', 'C', 'I', 's':
			return true
		}
	}
	switch m.Type {
	case '1', '2', '3':
		return x.swallow && htyp == completes[m.Type]
	case 'Z':
		if x.local != nil && htyp == 'S' {
			s.mu.Lock()
			failed := s.cache.errSeen
			s.mu.Unlock()
			if !failed {
				s.cw.appendLocked(x.local) // relayUpstream holds s.cw.mu
			}
			x.local = nil
		}
		s.cacheReady(m.Body)
		return x.swallow && (htyp == 'S' || htyp == 'F' && x.xid)
	case 't':
		if x.desc != nil && !m.Large {
			x.desc.paramDesc = append([]byte(nil), m.Raw...)
		}
	case 'T':
		if htyp == 'D' {
			if x.desc != nil && !m.Large {
				x.desc.learn(s, m.Raw)
			}
		} else if x.fill != nil {
			x.fill.add(m)
		}
	case 'n':
		if x.desc != nil {
			x.desc.learn(s, msgNoData)
		}
	case 'D':
		if x.fill != nil {
			x.fill.add(m)
		}
	case 'C':
		x.timed(s.srv.cache)
		if x.fill != nil {
			x.fill.add(m)
			x.fill.complete()
		}
		s.applyNextFx(x, commandTag(m.Body))
	case 's', 'V': // PortalSuspended, FunctionCallResponse
		if m.Type == 'V' && x.xid && htyp == 'F' {
			xid, ok := parseXactID(m.Body)
			s.mu.Lock()
			s.cache.xid, s.cache.xidOK = xid, ok
			s.mu.Unlock()
			return true
		}
		if x.fill != nil {
			x.fill.abort()
		}
		s.applyNextFx(x, "")
	case 'A', 'S', 'K', 'v':
		// asynchronous: not part of the answer
	default: // ErrorResponse, EmptyQueryResponse, notices, COPY
		if x.fill != nil {
			x.fill.abort()
		}
	}
	return false
}

// completes maps a completion message to the message it completes.
var completes = [256]byte{'1': 'P', '2': 'B', '3': 'C'}

func (s *session) applyNextFx(x *pendingX, tag string) {
	if x.next >= len(x.fx) {
		return
	}
	fx := &x.fx[x.next]
	x.next++
	s.mu.Lock()
	s.cache.applyFx(fx, tag)
	s.mu.Unlock()
}

func (s *session) cacheReady(body []byte) {
	if len(body) != 1 {
		return
	}
	s.mu.Lock()
	s.cache.onReady(body[0])
	s.mu.Unlock()
}
