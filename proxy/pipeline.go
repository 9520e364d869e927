package proxy

import (
	"sync"
	"sync/atomic"
)

// pipeline tracks, in order, the client messages the server has not finished
// answering, so the proxy always knows how many ReadyForQuery messages the
// server still owes. The client relay pushes what it forwards; the upstream
// relay feeds every server message to onServer. It follows the protocol's
// rules: each Parse, Bind, Describe, Execute and Close gets one completion (or
// an error, after which the server skips everything up to the next Sync,
// Queries and FunctionCalls included); Query, FunctionCall and Sync each end
// with ReadyForQuery; Syncs that reach the server during COPY IN are ignored.
type pipeline struct {
	mu    sync.Mutex
	q     []pendingMsg
	head  int
	owed  int // ReadyForQuery messages still to come
	since int // Syncs pushed since the last Execute or Query (client relay only)
	copy  bool
	// skipping: an extended-protocol message failed and no Sync was queued
	// behind it, so the server ignores everything until the client's next
	// Sync. Nothing may be answered locally meanwhile.
	skipping bool
	// failed lists the Parses with a statement record that the server
	// rejected or skipped, for the client relay to set right (takeFailed).
	failed    []failedParse
	anyFailed atomic.Bool // failed is not empty
	// awaited is signalled when a Parse the proxy sent is answered, for
	// awaitParse (waiting counts its waiters); closed: no answer will come.
	awaited *sync.Cond
	waiting int
	closed  bool
}

type pendingMsg struct {
	typ     byte // 'P', 'B', 'D', 'E', 'C', 'S', 'Q', 'F'
	ignored bool // a Sync the server ignores (COPY IN)
	x       *pendingX
	parse   failedParse // a Parse: the statement it defines (st nil: none tracked)
}

// failedParse is a Parse the proxy recorded as done when it sent it: its own
// (injected, for a statement so far only local) or the client's.
type failedParse struct {
	st       *stmt
	injected bool
}

// takeFailed returns, and forgets, the Parses the server rejected or
// skipped since the last call. It runs for every batch: without a failure it
// takes no lock.
func (p *pipeline) takeFailed() []failedParse {
	if !p.anyFailed.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) == 0 {
		return nil
	}
	f := p.failed
	p.failed = nil
	p.anyFailed.Store(false)
	return f
}

func endsWithReady(typ byte) bool { return typ == 'S' || typ == 'Q' || typ == 'F' }

// push records a client message forwarded upstream.
func (p *pipeline) push(typ byte) { p.pushX(typ, nil) }

// pushX records a client message forwarded upstream with what the upstream
// relay must do with its answer (x may be nil).
func (p *pipeline) pushX(typ byte, x *pendingX) { p.pushMsg(pendingMsg{typ: typ, x: x}) }

// pushParse records a Parse forwarded upstream that defines st, so that if
// the server rejects or skips it the client relay learns of it.
func (p *pipeline) pushParse(st *stmt, injected bool, x *pendingX) {
	p.pushMsg(pendingMsg{typ: 'P', x: x, parse: failedParse{st: st, injected: injected}})
}

func (p *pipeline) pushMsg(m pendingMsg) {
	typ := m.typ
	switch typ {
	case 'P', 'B', 'D', 'E', 'C', 'S', 'Q', 'F':
	case 'd', 'c', 'f':
		p.clientCopy(typ)
		return
	default: // Flush, Terminate, password messages: no answer of their own
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if typ == 'S' && p.copy {
		return // ignored by the server while it is in COPY IN
	}
	p.q = append(p.q, m)
	if typ == 'S' {
		p.skipping = false
	}
	switch typ {
	case 'E', 'Q':
		p.since = 0
	case 'S':
		p.since++
	}
	if endsWithReady(typ) {
		p.owed++
	}
}

// clientCopy handles CopyData/CopyDone/CopyFail from the client. A client
// sends them only after CopyInResponse, so the server is in COPY IN since the
// last Execute or Query: every Sync sent after that was ignored (libpq sends
// Execute+Sync, the data, then CopyDone+Sync), and so is every Sync until
// CopyDone or CopyFail.
func (p *pipeline) clientCopy(typ byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.copy {
		p.copy = true
		for i := len(p.q) - 1; i >= p.head && p.since > 0; i-- {
			if m := &p.q[i]; m.typ == 'S' && !m.ignored {
				m.ignored = true
				p.owed--
				p.since--
			}
		}
		p.since = 0
	}
	if typ != 'd' {
		p.copy = false
	}
}

// onServer advances the pipeline past a server message.
func (p *pipeline) onServer(typ byte) {
	switch typ {
	case '1', '2', '3', 'T', 'n', 'C', 'I', 's', 'Z', 'E':
	default: // rows, notices, notifications, parameter status, COPY data...
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skipIgnored()
	if p.head == len(p.q) {
		return
	}
	head := p.q[p.head].typ
	switch typ {
	case '1':
		p.popIf(head == 'P')
	case '2':
		p.popIf(head == 'B')
	case '3':
		p.popIf(head == 'C')
	case 'T': // ends a Describe; inside an Execute or Query it is a result header
		p.popIf(head == 'D')
	case 'n':
		p.popIf(head == 'D')
	case 'C', 'I', 's':
		p.popIf(head == 'E')
	case 'E':
		if endsWithReady(head) {
			return // a Query or FunctionCall failed (ReadyForQuery follows), or the Sync's commit did
		}
		// An extended-protocol message failed: the server skips to the next Sync.
		for p.head < len(p.q) && p.q[p.head].typ != 'S' {
			if endsWithReady(p.q[p.head].typ) {
				p.owed--
			}
			if f := p.q[p.head].parse; f.st != nil {
				p.failed = append(p.failed, f)
				p.anyFailed.Store(true)
			}
			p.pop()
		}
		if p.head == len(p.q) {
			p.skipping = true
		}
	case 'Z':
		for p.head < len(p.q) {
			m := p.q[p.head]
			p.pop()
			if endsWithReady(m.typ) && !m.ignored {
				p.owed--
				break
			}
		}
	}
}

func (p *pipeline) skipIgnored() {
	for p.head < len(p.q) && p.q[p.head].ignored {
		p.pop()
	}
}

func (p *pipeline) popIf(ok bool) {
	if ok {
		p.pop()
	}
}

func (p *pipeline) pop() {
	if x := p.q[p.head].x; x != nil {
		x.finish()
	}
	if f := p.q[p.head].parse; f.injected {
		f.st.injections.Add(-1)
		if p.waiting > 0 {
			p.awaited.Broadcast()
		}
	}
	p.q[p.head] = pendingMsg{}
	p.head++
	if p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	} else if p.head > 1024 && p.head*2 > len(p.q) {
		n := copy(p.q, p.q[p.head:])
		p.q, p.head = p.q[:n], 0
	}
}

// injectable reports whether the proxy may send messages of its own ending
// with a Sync now: the server is not in COPY IN and not skipping to a Sync.
func (p *pipeline) injectable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.copy && !p.skipping
}

// peek returns the message the server is answering now and its instructions
// (nil when there are none, or nothing is pending).
func (p *pipeline) peek() (typ byte, x *pendingX) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skipIgnored()
	if p.head == len(p.q) {
		return 0, nil
	}
	m := p.q[p.head]
	return m.typ, m.x
}

// awaitParse waits until every Parse the proxy sent for st has been answered
// (or skipped), or the upstream relay has stopped.
func (p *pipeline) awaitParse(st *stmt) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for st.injections.Load() > 0 && !p.closed {
		if p.awaited == nil {
			p.awaited = sync.NewCond(&p.mu)
		}
		p.waiting++
		p.awaited.Wait()
		p.waiting--
	}
}

// close wakes awaitParse for good: the upstream relay has stopped.
func (p *pipeline) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.waiting > 0 {
		p.awaited.Broadcast()
	}
}

// empty reports whether nothing sent upstream is still unanswered.
func (p *pipeline) empty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.head == len(p.q) && !p.skipping
}

// abandon finishes every pending message's instructions when the session
// ends.
func (p *pipeline) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := p.head; i < len(p.q); i++ {
		if x := p.q[i].x; x != nil {
			x.finish()
		}
	}
}

// unansweredFx returns the effects not yet applied of every message still
// pending (for a session that ends before their answers came).
func (p *pipeline) unansweredFx() []stmtFx {
	p.mu.Lock()
	defer p.mu.Unlock()
	var fx []stmtFx
	for i := p.head; i < len(p.q); i++ {
		if x := p.q[i].x; x != nil && x.next < len(x.fx) {
			fx = append(fx, x.fx[x.next:]...)
		}
	}
	return fx
}

// idle reports whether the server owes nothing.
func (p *pipeline) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owed == 0
}
