package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/query"
	"github.com/pgmemo/pgmemo/wire"
)

// stmt is a prepared statement as the client sees it.
type stmt struct {
	name     string
	text     string
	oids     []byte // parameter type OIDs from Parse
	plan     *plan
	planPath string // the search_path plan was made under
	upstream bool   // the server has it; false: answered locally, sent when first needed
	// injectedIn is the batch (cacheSession.batchNo) in which the proxy
	// last sent the statement itself; injections counts those Parses whose
	// answer has not come (the upstream relay lowers it).
	injectedIn uint64
	injections atomic.Int32
	// opaque: made with SQL PREPARE, whose text the proxy does not know.
	// It is never answered locally, and executing it has unknown effects.
	opaque bool
	// desc is the cached description last found for the statement, under
	// the cache key descKey (see cacheSession.desc).
	desc    cachecore.Ref
	descKey string
	// ncols is the number of result columns as a cached description gave
	// it (-1: none, NoData), for bindFits; 0: not known yet.
	ncols int
}

// parses reports whether p parses the same statement as st (nil: no).
func (st *stmt) parses(p parseMsg) bool {
	return st != nil && st.text == string(p.query) && bytes.Equal(st.oids, p.oids)
}

// portal is a portal as the client sees it.
type portal struct {
	st       *stmt  // nil when the statement is not known to the proxy
	raw      []byte // the Bind, kept while the portal exists only locally
	key      string // the cache key of its Execute; empty when not cacheable
	keyBuf   []byte // the same, while the batch is answered locally
	executed bool   // an Execute ran it (to completion or suspended)
	results  []byte // result format codes
	upstream bool
	// clock is the date/time input word ('today', 'now'...) that one of the
	// Bind's parameter values holds: the server reads the clock for it, so
	// its result is not cached.
	clock string
}

// batch holds the extended-protocol messages of one client batch, up to Sync
// or Flush, so that it is routed once: answered locally when every message
// can be, else sent upstream whole.
type batch struct {
	buf  []byte
	msgs []bmsg
	// looked counts the Executes whose result answerBatch looked up (and
	// so counted as a hit or a miss) before it gave up; forwardBatch counts
	// a miss for each later one it sends upstream to fill the cache.
	looked int
}

type bmsg struct {
	typ      byte
	off, end int // the raw message in buf
}

func (m bmsg) body(b *batch) []byte { return b.buf[m.off+5 : m.end] }
func (m bmsg) raw(b *batch) []byte  { return b.buf[m.off:m.end] }

// reset empties the batch, keeping its buffer unless it grew large.
func (b *batch) reset() {
	b.buf, b.msgs, b.looked = b.buf[:0], b.msgs[:0], 0
	if cap(b.buf) > 4*maxBatchBytes {
		b.buf = nil
	}
}

// routing is the session state one Query or batch is routed on. It is read
// once, after checking what is in flight upstream, so that it includes the
// effects of everything the server has answered.
type routing struct {
	empty      bool // the pipeline is empty
	quiet      bool // empty, and no Sync is owed upstream: local answers may be given
	st         state
	bypass     string // why the cache may not be used, "" when it may
	searchPath string // effective, for plans
	probe      probeWant
}

func (s *session) routing() routing {
	c := s.cache
	s.parsesFailed()
	r := routing{empty: s.pipe.empty()}
	r.quiet = r.empty && !c.upOpen
	s.mu.Lock()
	c.refreshKey(s.params)
	r.st = s.state()
	r.bypass = c.bypassReason(r.st, s.srv.cache.opts.TxPolicy)
	r.searchPath = c.searchPath
	r.probe = c.probeWanted()
	s.mu.Unlock()
	return r
}

// status is the transaction status of a ReadyForQuery the proxy writes.
func (r routing) status() byte {
	switch r.st {
	case stateInTx:
		return 'T'
	case stateFailedTx:
		return 'E'
	}
	return 'I'
}

// maxBatchBytes bounds a buffered batch; a larger one is sent upstream as it
// comes (a bulk load does not need the cache).
const maxBatchBytes = 1 << 20

func isExtended(typ byte) bool {
	switch typ {
	case 'P', 'B', 'D', 'E', 'C', 'S', 'H':
		return true
	}
	return false
}

// bufferExtended adds an extended-protocol message to the batch and routes the
// batch at Sync or Flush.
func (s *session) bufferExtended(m wire.Message) error {
	b := &s.cache.batch
	off := len(b.buf)
	b.buf = append(b.buf, m.Raw...)
	b.msgs = append(b.msgs, bmsg{typ: m.Type, off: off, end: len(b.buf)})
	if m.Type == 'S' || m.Type == 'H' || len(b.buf) > maxBatchBytes {
		return s.routeBatch()
	}
	return nil
}

// routeBatch answers the batch locally if it can, else forwards it.
func (s *session) routeBatch() error {
	b := &s.cache.batch
	if len(b.msgs) == 0 {
		return nil
	}
	var err error
	r := s.routing()
	local := s.answerBatch(r, b.msgs, nil, true)
	if !local && !s.answerMixed(r) {
		s.forwardBatch(r, b.msgs)
	}
	if !local && (!s.cr.Ready() || len(s.upBuf) >= flushThreshold) {
		err = s.flushUpstream()
	}
	b.reset()
	return err
}

// unsafeString views b as a string for a lookup that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// key builds a cache key in the session's buffer: the settings prefix, the
// kind ('Q' simple query, 'E' execute, 'S' statement description), the text,
// the parameter type OIDs and, for 'E', the Bind's parameters and formats.
func (c *cacheSession) key(kind byte, text string, oids, tail []byte) []byte {
	b := append(c.keyBuf[:0], c.prefix[:]...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, uint32(len(text)))
	b = append(b, text...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(oids)/4))
	b = append(b, oids...)
	b = append(b, tail...)
	c.keyBuf = b
	return b
}

// bindFits reports whether the server would accept bm for st: as many
// parameters as the statement has (the highest $n, or more declared types),
// 0, 1 or that many parameter formats, and 0, 1 or one result format per
// column (checked once a cached description told the column count). A Bind
// that does not fit is left to the server, which answers 08P01.
func (c *cacheSession) bindFits(cache *cachecore.Cache, st *stmt, pl *plan, bm bindMsg) bool {
	if n := max(pl.an.Params, len(st.oids)/4); bm.nparams != n ||
		bm.nformats > 1 && bm.nformats != bm.nparams {
		return false
	}
	nr := len(bm.results) / 2
	if nr <= 1 {
		return true
	}
	if st.ncols == 0 {
		// Learned once: the description itself goes when a write
		// invalidates what the statement reads, its shape does not.
		if v, ok := c.desc(cache, st); ok {
			if _, rd := decodeDesc(v); len(rd) >= 7 && rd[0] == 'T' {
				st.ncols = int(binary.BigEndian.Uint16(rd[5:7]))
			} else if len(rd) > 0 {
				st.ncols = -1 // NoData
			}
		}
	}
	// Unknown (never described here): the server's answer to the Execute
	// that fills the cache will tell.
	return st.ncols == 0 || st.ncols == nr
}

// desc returns the cached description of st under the session's current
// key. While the reference st keeps from the last lookup is valid and was
// found under the same key (settings and role unchanged), that reference
// answers without a lookup in the shared cache, which on every Describe of a
// prepared statement costs more than the rest of the hit.
func (c *cacheSession) desc(cache *cachecore.Cache, st *stmt) ([]byte, bool) {
	key := c.key('S', st.text, st.oids, nil)
	if st.desc.Valid() && st.descKey == unsafeString(key) {
		return st.desc.Value(), true
	}
	r, ok := cache.PeekRef(unsafeString(key))
	if !ok {
		return nil, false
	}
	st.desc, st.descKey = r, string(key)
	return r.Value(), true
}

// descRecord is a statement's description as learned from the server:
// ParameterDescription (nil when only a portal was described) and
// RowDescription or NoData. Its presence also proves the statement parsed.
func encodeDesc(paramDesc, rowDesc []byte) []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(paramDesc)+len(rowDesc)), uint32(len(paramDesc)))
	v = append(v, paramDesc...)
	return append(v, rowDesc...)
}

func decodeDesc(v []byte) (paramDesc, rowDesc []byte) {
	if len(v) < 4 {
		return nil, nil
	}
	n := int(binary.BigEndian.Uint32(v))
	if len(v) < 4+n {
		return nil, nil
	}
	return v[4 : 4+n], v[4+n:]
}

// planOf returns st's plan for the session's current search_path.
func (s *session) planOf(st *stmt, searchPath string) *plan {
	if st.plan == nil || st.planPath != searchPath || st.plan.stale(s.cache.db) {
		st.plan = s.srv.cache.planFor(context.Background(), s.cache.db, searchPath, st.text)
		st.planPath = searchPath
	}
	return st.plan
}

// viewEntry is a statement or portal as a batch being answered locally would
// leave it; nothing is committed to the session unless the whole batch is.
type viewEntry struct {
	portal bool
	name   []byte // aliases the batch buffer
	st     *stmt
	pt     *portal // nil with portal set: closed
	closed bool
}

// answerBatch answers msgs, the batch or its end, without the server when
// every message can be: statements known to parse, Binds of cacheable
// statements, Describes whose answer is cached, Executes that hit. It writes
// nothing and returns false otherwise. closed lists statements and portals
// closed by messages before msgs (answerMixed). With write, the answers go to
// the client; without, they are left in s.localOut. It allocates little: an
// unnamed statement parsed again with the same text is reused, and so are the
// portal structs of unnamed portals.
func (s *session) answerBatch(r routing, msgs []bmsg, closed []viewEntry, write bool) bool {
	c := s.cache
	b := &c.batch
	if !r.quiet || r.st != stateIdle && r.st != stateInTx {
		return false
	}
	start := time.Now()
	bypass, searchPath, status := r.bypass, r.searchPath, r.status()
	endsWithSync := b.msgs[len(b.msgs)-1].typ == 'S'
	keep := status == 'T' || !endsWithSync // portals outlive the batch
	cache := s.srv.cache.c
	view := append(c.view[:0], closed...)
	b.looked = 0
	find := func(isPortal bool, name []byte) *viewEntry {
		for i := len(view) - 1; i >= 0; i-- {
			if view[i].portal == isPortal && bytes.Equal(view[i].name, name) {
				return &view[i]
			}
		}
		return nil
	}
	lookupStmt := func(name []byte) *stmt {
		if e := find(false, name); e != nil {
			return e.st
		}
		return c.stmts[string(name)]
	}
	lookupPortal := func(name []byte) *portal {
		if e := find(true, name); e != nil {
			return e.pt
		}
		return nil // only portals bound in this batch are answered locally
	}
	nportals := 0
	qs := c.hitStats[:0]
	out := s.localOut[:0]
	answered := false
	defer func() { // keep what the buffers grew to for the next batch
		clear(view)
		clear(qs)
		c.view, c.hitStats = view[:0], qs[:0]
		if !answered {
			s.localOut = out[:0] // answered: the answers stay there (answerMixed)
		}
	}()
	var last lastInfo
	hits := 0
	failed := false
	for _, m := range msgs {
		if failed && m.typ != 'S' {
			continue
		}
		failed = false
		body := m.body(b)
		switch m.typ {
		case 'P':
			p, ok := decodeParse(body)
			if !ok {
				return false
			}
			var st *stmt
			if len(p.name) == 0 {
				if old := lookupStmt(nil); old.parses(p) {
					st = old // the same unnamed statement again
				}
			} else if lookupStmt(p.name) != nil {
				return false // the server decides: "already exists"
			}
			if st == nil {
				st = &stmt{name: string(p.name), text: string(p.query), oids: bytes.Clone(p.oids)}
			}
			pl := s.planOf(st, searchPath)
			if pl.admin == adminNone {
				if !pl.cacheable || bypass != "" {
					return false
				}
				if _, ok := c.desc(cache, st); !ok {
					return false
				}
			}
			view = append(view, viewEntry{name: p.name, st: st})
			out = append(out, msgParseComplete...)
		case 'B':
			bm, ok := decodeBind(body)
			if !ok {
				return false
			}
			st := lookupStmt(bm.stmt)
			if st == nil || st.opaque {
				return false
			}
			pl := s.planOf(st, searchPath)
			if pl.admin == adminNone && (!pl.cacheable || bypass != "" || !c.bindFits(cache, st, pl, bm) ||
				query.TimeWord(bm.tail) != "") {
				return false
			}
			// A portal struct from the session's scratch list, unless it
			// must outlive the batch.
			var pt *portal
			if keep {
				pt = &portal{}
			} else {
				if nportals == len(c.scratch) {
					c.scratch = append(c.scratch, &portal{})
				}
				pt = c.scratch[nportals]
				nportals++
			}
			pt.st, pt.results, pt.upstream, pt.executed = st, bm.results, false, false
			pt.keyBuf = pt.keyBuf[:0]
			if pl.admin == adminNone {
				pt.keyBuf = append(pt.keyBuf, c.key('E', st.text, st.oids, bm.tail)...)
			}
			pt.raw = nil
			pt.key = ""
			if keep {
				pt.results = bytes.Clone(bm.results)
				pt.raw = bytes.Clone(m.raw(b))
				pt.key = string(pt.keyBuf) // a later batch sent upstream may fill it
			}
			view = append(view, viewEntry{portal: true, name: bm.portal, pt: pt})
			out = append(out, msgBindComplete...)
		case 'D':
			kind, name, ok := decodeTarget(body)
			if !ok {
				return false
			}
			var st *stmt
			var results []byte
			if kind == 'S' {
				st = lookupStmt(name)
			} else if pt := lookupPortal(name); pt != nil {
				st, results = pt.st, pt.results
			}
			if st == nil || st.opaque {
				return false
			}
			if a := s.planOf(st, searchPath).admin; a != adminNone {
				if kind == 'S' {
					out = appendParamDescription(out, 0)
				}
				out = a.appendRowDescription(out)
				continue
			}
			v, ok := c.desc(cache, st)
			if !ok {
				return false
			}
			paramDesc, rowDesc := decodeDesc(v)
			if len(rowDesc) == 0 || kind == 'S' && len(paramDesc) == 0 {
				return false
			}
			if kind == 'S' {
				out = append(out, paramDesc...)
				out = append(out, rowDesc...)
			} else if out, ok = appendPortalRowDescription(out, rowDesc, results); !ok {
				return false
			}
		case 'E':
			name, maxRows, ok := decodeExecute(body)
			if !ok {
				return false
			}
			pt := lookupPortal(name)
			if pt == nil || pt.executed {
				return false // a portal runs once; what is left is the server's to say
			}
			pt.executed = true
			if pl := s.planOf(pt.st, searchPath); pl.admin != adminNone {
				var aerr *wire.Error
				if out, aerr = s.appendAdmin(out, pl, false); aerr != nil {
					// As the server does after an error: nothing more
					// until Sync. (The transaction block, if any, is not
					// aborted: the server never saw the command.)
					out = wire.AppendErrorResponse(out, "ERROR", aerr)
					failed = true
				}
				continue
			}
			if maxRows != 0 {
				return false
			}
			b.looked++
			v, ok := cache.Get(unsafeString(pt.keyBuf))
			if !ok {
				return false
			}
			out = append(out, v...)
			hits++
			qs = append(qs, pt.st.plan.qs)
			last = lastInfo{result: "hit", pl: pt.st.plan}
		case 'C':
			kind, name, ok := decodeTarget(body)
			if !ok {
				return false
			}
			if kind == 'S' {
				st := lookupStmt(name)
				if st == nil || st.upstream {
					return false
				}
				view = append(view, viewEntry{name: name, closed: true})
			} else {
				if lookupPortal(name) == nil {
					return false
				}
				view = append(view, viewEntry{portal: true, name: name, closed: true})
			}
			out = append(out, msgCloseComplete...)
		case 'S':
			out = appendReady(out, status)
		case 'H':
		default:
			return false
		}
	}
	// Every message is answered: commit the batch's view of statements and
	// portals and write the answers.
	if !keep {
		clear(c.portals) // the implicit transaction ended: the server drops them
	}
	c.clientOpen = !endsWithSync
	for _, e := range view {
		switch {
		case !e.portal && e.closed:
			delete(c.stmts, string(e.name))
		case !e.portal:
			if c.stmts[string(e.name)] != e.st {
				c.stmts[string(e.name)] = e.st
			}
		case keep && e.closed:
			delete(c.portals, string(e.name))
		case keep:
			c.portals[string(e.name)] = e.pt
		}
	}
	elapsed := time.Since(start)
	for _, q := range qs {
		if q != nil {
			q.calls.Add(1)
			q.hits.Add(1)
		}
		s.srv.cache.durations[resultHit].observe(elapsed)
	}
	if hits > 0 {
		s.mu.Lock()
		c.last = last
		s.mu.Unlock()
	}
	s.srv.cache.localAnswers.Add(1)
	s.localOut, answered = out, true
	if write {
		s.writeLocal(out)
	}
	return true
}

// writeLocal writes locally produced answers to the client.
func (s *session) writeLocal(out []byte) {
	w := &s.cw
	w.mu.Lock()
	w.appendLocked(out)
	if !s.cr.Ready() {
		w.flushLocked()
	}
	w.mu.Unlock()
	if len(s.localOut) > 0 && cap(s.localOut) > 4*flushThreshold {
		s.localOut = nil
	}
}

// forwardBatch sends the batch upstream, first sending the statements and
// portals it refers to that so far exist only locally, and attaching to the
// pipeline what the upstream relay must do with the answers: fill the cache
// from cacheable Executes, learn statement descriptions, apply effects.
func (s *session) forwardBatch(r routing, msgs []bmsg) {
	c := s.cache
	c.batchNo++
	b := &c.batch
	bypass, searchPath := r.bypass, r.searchPath
	if s.probeDue(r, c.upOpen || c.clientOpen, func() bool { return s.batchMayHide(msgs, searchPath) }) {
		s.sendProbe() // probe.go: in front of everything this batch sends
	}
	if !r.empty && bypass == "" {
		bypass = reasonPipelined
	}
	if r.st == stateIdle && r.empty && !c.clientOpen {
		// A new implicit transaction starts with this batch only if nothing is
		// in flight and the client ended the previous one with a Sync;
		// otherwise keep what is known (portals the proxy bound locally
		// for a Flush batch it answered, say).
		clear(c.portals)
	}
	fill := bypass == "" // false after the first statement with effects
	cache := s.srv.cache.c
	// Learning the transaction's ID (ownxact.go) needs nothing in flight:
	// an autocommit batch that writes asks just before its Sync, a block
	// just before its COMMIT.
	askXID := s.srv.cache.opts.WAL && r.empty && !c.clientOpen && r.st == stateIdle && msgs[len(msgs)-1].typ == 'S'
	askedAtCommit := false
	wrote, txControl := false, false
	var last lastInfo
	for i, m := range msgs {
		body := m.body(b)
		var x *pendingX
		if m.typ == 'S' && i == len(msgs)-1 && askXID && wrote && !txControl {
			s.askXactID()
		}
		var parsed *stmt // a Parse: the statement record it makes (or marks) as the server's
		switch m.typ {
		case 'P':
			if p, ok := decodeParse(body); ok {
				old := c.stmts[string(p.name)]
				switch {
				case len(p.name) == 0 && old.parses(p):
					old.upstream = true // the same unnamed statement again: keep its plan and description
					parsed = old
				case len(p.name) > 0 && old != nil:
					// The name is taken: the server answers 42P05 and keeps
					// the statement it has, so the proxy keeps its record,
					// first sending the statement if only the proxy had it.
					s.materializeStmt(old)
				default:
					parsed = &stmt{name: string(p.name), text: string(p.query), oids: append([]byte(nil), p.oids...), upstream: true}
					c.stmts[string(p.name)] = parsed
				}
				if len(p.name) == 0 {
					c.unnamedUnknown = false // replaced by one the proxy knows
				}
			}
		case 'B':
			if bm, ok := decodeBind(body); ok {
				pt := &portal{upstream: true, results: append([]byte(nil), bm.results...)}
				if st := c.stmts[string(bm.stmt)]; st != nil && !st.opaque {
					s.materializeStmt(st)
					pt.st = st
					if pl := s.planOf(st, searchPath); pl.cacheable && bypass == "" {
						if pt.clock = query.TimeWord(bm.tail); pt.clock == "" {
							pt.key = string(c.key('E', st.text, st.oids, bm.tail))
						}
					}
				}
				c.portals[string(bm.portal)] = pt
			}
		case 'D':
			if kind, name, ok := decodeTarget(body); ok {
				var st *stmt
				if kind == 'S' {
					st = c.stmts[string(name)]
					if st != nil {
						s.materializeStmt(st)
					}
				} else if pt := c.portals[string(name)]; pt != nil {
					s.materializePortal(pt)
					st = pt.st
				}
				if st != nil && !st.opaque && fill && s.planOf(st, searchPath).cacheable {
					known := false
					if v, ok := c.desc(cache, st); ok {
						pd, rd := decodeDesc(v)
						known = len(rd) > 0 && (kind == 'P' || len(pd) > 0)
					}
					if !known {
						key := c.key('S', st.text, st.oids, nil)
						x = &pendingX{desc: &descLearn{
							key:  string(key),
							snap: cache.Snapshot(c.db.scope, st.plan.tags...),
							kind: kind,
						}}
					}
				}
			}
		case 'E':
			x = &pendingX{}
			name, maxRows, ok := decodeExecute(body)
			var pt *portal
			if ok {
				pt = c.portals[string(name)]
			}
			if pt != nil {
				s.materializePortal(pt)
			}
			if pt == nil || pt.st == nil {
				x.fx = hiddenFx
				fill = false
				wrote, txControl = true, true // unknown: maybe a transaction's end
				break
			}
			pl := s.planOf(pt.st, searchPath)
			s.sqlStatementRefs(pl, false)
			if len(pl.fx) > 0 {
				x.fx = pl.fx[:1]
				fx := &pl.fx[0]
				wrote = wrote || fx.wrote
				if fx.st != nil && fx.st.Tx != nil {
					txControl = true
					if !askedAtCommit && s.commitNeedsXactID(fx.st, r.st, r.empty) {
						s.askXactID()
						askedAtCommit = true
					}
				}
			}
			if pl.qs != nil {
				pl.qs.calls.Add(1)
				pl.qs.misses.Add(1)
				x.qs = pl.qs
			}
			x.sent, x.result = time.Now(), resultPassthrough
			switch {
			case pl.admin != adminNone:
			case !pl.cacheable:
				last = lastInfo{result: "miss-not-cacheable", reason: pl.reason, pl: pl}
				s.srv.cache.notCacheable.Add(1)
			case pt.clock != "":
				last = lastInfo{result: "miss-not-cacheable", reason: query.ReasonTimeParameter + pt.clock, pl: pl}
				s.srv.cache.notCacheable.Add(1)
			case maxRows != 0:
				last = lastInfo{result: "miss-not-cacheable", reason: reasonRowLimit, pl: pl}
			case pt.executed:
				// The rest of a portal an earlier Execute started (or ran):
				// not the statement's whole result.
				last = lastInfo{result: "miss-not-cacheable", reason: reasonRowLimit, pl: pl}
			case !fill || pt.key == "":
				reason := bypass
				if reason == "" {
					reason = reasonAfterWrite
				}
				last = lastInfo{result: "bypass", reason: reason, pl: pl}
				s.srv.cache.bypass.Add(1)
			default:
				last = lastInfo{result: "miss", pl: pl}
				if b.looked > 0 {
					b.looked--
				} else {
					cache.Miss(pt.key) // looked up only now: count the miss
				}
				x.fill = s.beginCapture(pt.key, pl, 'E')
			}
			pt.executed = true
			if x.fill != nil {
				x.result = resultMiss
			}
			if len(x.fx) > 0 && fxHasEffects(&x.fx[0]) {
				fill = false
			}
		case 'C':
			if kind, name, ok := decodeTarget(body); ok {
				if kind == 'S' {
					delete(c.stmts, string(name))
				} else {
					delete(c.portals, string(name))
				}
			}
		}
		s.upBuf = append(s.upBuf, m.raw(b)...)
		if parsed != nil {
			s.pipe.pushParse(parsed, false, x)
		} else {
			s.pipe.pushX(m.typ, x)
		}
	}
	// Messages sent without a Sync behind them leave the server's implicit
	// transaction open: the Sync that ends it must reach the server.
	c.upOpen = msgs[len(msgs)-1].typ != 'S'
	c.clientOpen = c.upOpen
	if last.result != "" {
		s.mu.Lock()
		c.last = last
		s.mu.Unlock()
	}
}

// hiddenFx is the effect of running code the proxy cannot see at all (a
// portal of a statement it does not know, a FunctionCall): also what
// stmtFx.hidden says.
var hiddenFx = []stmtFx{{scope: true, wrote: true, hidden: true}}

func fxHasEffects(fx *stmtFx) bool {
	return fx.wrote || fx.settings || len(fx.writes) > 0 || fx.scope || fx.all || fx.ddl ||
		fx.st != nil && fx.st.Tx != nil
}

// materializeStmt sends a statement that exists only locally to the server,
// whose ParseComplete the upstream relay then drops.
//
// A statement the proxy sent in an earlier batch whose answers have not come
// may yet turn out skipped (an earlier message of that batch failed): the
// client pipelined this batch before reading them. The proxy then waits for
// that answer (awaitParse) rather than take the statement as the server's
// and get 26000 for the client.
func (s *session) materializeStmt(st *stmt) {
	if st.upstream && st.injections.Load() > 0 && st.injectedIn != s.cache.batchNo {
		s.awaitParse(st)
	}
	if st.upstream {
		return
	}
	st.upstream = true
	st.injectedIn = s.cache.batchNo
	st.injections.Add(1)
	s.upBuf = appendParse(s.upBuf, []byte(st.name), []byte(st.text), st.oids)
	s.pipe.pushParse(st, true, &pendingX{swallow: true})
}

// awaitParse waits until the server has answered the Parses the proxy sent
// for st in earlier batches, then applies any that failed (parsesFailed).
// A Flush first makes the server send what it has: the earlier batch may have
// ended without one (an ErrorResponse the server sends at once).
func (s *session) awaitParse(st *stmt) {
	s.upBuf = append(s.upBuf, 'H', 0, 0, 0, 4)
	if s.flushUpstream() != nil {
		return
	}
	s.pipe.awaitParse(st)
	s.parsesFailed()
}

// parsesFailed sets the session's statements right after the server rejected
// or skipped Parses that the proxy recorded as done (pipeline.takeFailed): a
// statement it sent for the client is again only local, to be sent the next
// time it is needed; one the client parsed does not exist.
func (s *session) parsesFailed() {
	c := s.cache
	for _, f := range s.pipe.takeFailed() {
		switch {
		case f.injected:
			f.st.upstream = false
		case c.stmts[f.st.name] == f.st:
			delete(c.stmts, f.st.name)
		}
	}
}

// materializePortal does the same for a portal bound locally.
func (s *session) materializePortal(pt *portal) {
	if pt.upstream {
		return
	}
	pt.upstream = true
	if pt.st != nil {
		s.materializeStmt(pt.st)
	}
	if pt.raw != nil {
		s.upBuf = append(s.upBuf, pt.raw...)
		s.pipe.pushX('B', &pendingX{swallow: true})
		if pt.executed && pt.st != nil && pt.st.plan != nil && pt.st.plan.admin == adminNone {
			// It was run to its end locally: run the server's to its end
			// too, so that what the client executes next is answered as
			// the server answers a finished portal (no rows), not with
			// the whole result again.
			if bm, ok := decodeBind(pt.raw[5:]); ok {
				s.upBuf = appendExecute(s.upBuf, bm.portal)
				s.pipe.pushX('E', &pendingX{swallow: true})
			}
		}
		pt.raw = nil
	}
}

// beginCapture starts a fill of key from the answer to the message being
// forwarded; nil when another session is already filling it (this answer is
// then just relayed).
func (s *session) beginCapture(key string, pl *plan, kind byte) *capture {
	cache := s.srv.cache.c
	snap := cache.Snapshot(s.cache.db.scope, pl.tags...)
	f, leader := cache.BeginFill(key, snap)
	if !leader {
		return nil
	}
	return &capture{fill: f, kind: kind, max: s.srv.cache.maxEntry(), s: s, ttl: pl.ttl, pin: pl.pin}
}
