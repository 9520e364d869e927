package proxy

import (
	"bytes"
	"slices"
	"strings"

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
// upstream: Closes, and Parse/Bind/Execute of a READ COMMITTED BEGIN (the
// Parse may be missing when the statement was prepared before). It returns
// their number, whether a BEGIN is among them, and the statements and portals
// they close (for answerBatch's view). It runs for every batch that is not
// answered locally, so it looks at a Parse's text before asking for its plan.
func (s *session) upstreamPrefix(r routing, msgs []bmsg) (k int, began bool, closed []viewEntry) {
	c := s.cache
	b := &c.batch
	var beginStmt, beginPortal []byte // the BEGIN's statement once parsed, its portal once bound
	parsed, bound := false, false
	for ; k < len(msgs); k++ {
		body := msgs[k].body(b)
		switch msgs[k].typ {
		case 'C':
			kind, name, ok := decodeTarget(body)
			if !ok {
				return 0, false, nil
			}
			closed = append(closed, viewEntry{portal: kind == 'P', name: name, closed: true})
			continue
		case 'P':
			if p, ok := decodeParse(body); ok && !parsed && !bound && !began && s.isBegin(r, unsafeString(p.query), nil) {
				beginStmt, parsed = p.name, true
				continue
			}
		case 'B':
			if bm, ok := decodeBind(body); ok && !bound && !began {
				st := c.stmts[string(bm.stmt)]
				if parsed && bytes.Equal(bm.stmt, beginStmt) ||
					!parsed && st != nil && !closedStmt(closed, bm.stmt) && s.isBegin(r, st.text, st) {
					beginPortal, bound = bm.portal, true
					continue
				}
			}
		case 'E':
			if name, _, ok := decodeExecute(body); ok && bound && !began && bytes.Equal(name, beginPortal) {
				began = true
				continue
			}
		}
		break
	}
	if (parsed || bound) && !began {
		// A BEGIN parsed or bound but not executed in the prefix leaves the
		// rest referring to it: not this function's case.
		return 0, false, nil
	}
	return k, began, closed
}

// isBegin reports whether text, the text of st (nil: a statement not kept),
// is a READ COMMITTED BEGIN or START TRANSACTION. A text that does not start
// with either word is rejected without a plan lookup.
func (s *session) isBegin(r routing, text string, st *stmt) bool {
	word := text[skipSpaceAndComments(text):]
	if !hasPrefixFold(word, "begin") && !hasPrefixFold(word, "start") {
		return false
	}
	if st == nil {
		st = &stmt{text: strings.Clone(text)}
	}
	pl := s.planOf(st, r.searchPath)
	if len(pl.an.Statements) != 1 {
		return false
	}
	tx := pl.an.Statements[0].Tx
	return tx != nil && tx.Kind == query.TxBegin && (tx.Isolation == "" || readCommitted(tx.Isolation))
}

// closedStmt reports whether closed closes the statement named name.
func closedStmt(closed []viewEntry, name []byte) bool {
	return slices.ContainsFunc(closed, func(e viewEntry) bool { return !e.portal && bytes.Equal(e.name, name) })
}
