package proxy

import (
	"bytes"
	"context"
	"slices"

	"github.com/pgmemo/pgmemo/query"
)

// answerMixed handles a batch whose leading messages must reach the server
// but change nothing that the rest of the batch depends on:
//
//   - BEGIN (READ COMMITTED), which PgJDBC sends in front of the first
//     statement of every transaction when autocommit is off, in one batch:
//     Parse/Bind/Execute "BEGIN", Parse/Bind/Describe/Execute SELECT, Sync;
//   - Close of a portal or statement, which PgJDBC sends in front of the next
//     statement once a cursor is read to its end.
//
// Those messages go upstream with the batch's Sync; the rest of the batch is
// answered locally (answerBatch), and its answers reach the client just
// before the server's ReadyForQuery, where the server would have put them.
// If the server reports an error for the leading messages it skips the rest
// until Sync, and so do the local answers: they are dropped.
//
// It reports false, having done nothing, when the batch is not of that form;
// when only its rest cannot be answered locally, the rest is forwarded too
// and it reports true.
func (s *session) answerMixed(r routing) bool {
	c := s.cache
	b := &c.batch
	n := len(b.msgs)
	if n < 3 || b.msgs[n-1].typ != 'S' || !r.quiet || r.st != stateIdle && r.st != stateInTx {
		return false
	}
	k, began, closed := s.upstreamPrefix(r, b.msgs[:n-1])
	if k == 0 || k == n-1 {
		return false
	}
	rest := r
	if began && r.st == stateIdle {
		// The rest runs in the transaction BEGIN opens: the policy's answer
		// for a READ COMMITTED block that has not written yet.
		rest.st = stateInTx
		s.mu.Lock()
		rest.bypass = c.bypassReason(stateInTx, s.srv.cache.opts.TxPolicy)
		s.mu.Unlock()
	}
	if rest.bypass != "" {
		return false
	}
	s.forwardBatch(r, b.msgs[:k])
	if !s.answerBatch(rest, b.msgs[k:n-1], closed, false) {
		// Forward the rest as if it had come in a batch of its own after
		// the prefix, which has no effects that a fill could miss.
		s.forwardBatch(rest, b.msgs[k:])
		return true
	}
	x := &pendingX{local: bytes.Clone(s.localOut), result: -1}
	sync := b.msgs[n-1]
	s.upBuf = append(s.upBuf, sync.raw(b)...)
	s.pipe.pushX('S', x)
	c.upOpen, c.clientOpen = false, false
	return true
}

// upstreamPrefix finds the leading messages of msgs that answerMixed sends
// upstream: Closes, and Parse/Bind/Execute of a READ COMMITTED BEGIN. It
// returns their number, whether a BEGIN is among them, and the statements and
// portals they close (for answerBatch's view).
func (s *session) upstreamPrefix(r routing, msgs []bmsg) (k int, began bool, closed []viewEntry) {
	c := s.cache
	b := &c.batch
	beginStmts := map[string]bool{}   // statements of this prefix (or the session) that are BEGIN
	beginPortals := map[string]bool{} // portals bound to them
	isBegin := func(text string) bool {
		pl := s.srv.cache.planFor(context.Background(), c.db, r.searchPath, text)
		if len(pl.an.Statements) != 1 {
			return false
		}
		tx := pl.an.Statements[0].Tx
		return tx != nil && tx.Kind == query.TxBegin && (tx.Isolation == "" || readCommitted(tx.Isolation))
	}
	for k = 0; k < len(msgs); k++ {
		m := msgs[k]
		body := m.body(b)
		switch m.typ {
		case 'C':
			kind, name, ok := decodeTarget(body)
			if !ok {
				return 0, false, nil
			}
			closed = append(closed, viewEntry{portal: kind == 'P', name: name, closed: true})
			continue
		case 'P':
			if p, ok := decodeParse(body); ok && isBegin(string(p.query)) {
				beginStmts[string(p.name)] = true
				continue
			}
		case 'B':
			if bm, ok := decodeBind(body); ok {
				st := c.stmts[string(bm.stmt)]
				if beginStmts[string(bm.stmt)] || st != nil && isBegin(st.text) && !slices.ContainsFunc(closed, func(e viewEntry) bool { return !e.portal && bytes.Equal(e.name, bm.stmt) }) {
					beginPortals[string(bm.portal)] = true
					continue
				}
			}
		case 'E':
			if name, _, ok := decodeExecute(body); ok && beginPortals[string(name)] {
				began = true
				continue
			}
		}
		break
	}
	// A BEGIN parsed or bound but not executed in the prefix leaves the
	// rest referring to it: not this function's case.
	if len(beginStmts) > 0 && !began || len(beginPortals) > 0 && !began {
		return 0, false, nil
	}
	return k, began, closed
}
