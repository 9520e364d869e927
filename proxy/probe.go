package proxy

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/pgmemo/pgmemo/wire"
)

// Code the proxy cannot see (a DO block, CALL, a volatile user function, a
// trigger, a default that calls a user function) may change the session:
// set_config, SET ROLE, temporary tables. Such a statement marks the session
// hidden, and a hidden session does not use the cache. To end that without
// waiting for DISCARD ALL, the proxy checks the session. A probe, a query of
// the proxy's own sent as a simple Query, digests every setting a session may
// change, the current and session roles and the objects in the session's
// temporary schema. The first digest comes with the session's setup query.
// Later probes go in front of a batch the proxy forwards while the session is
// idle, outside any transaction block, with nothing in flight (so a probe that
// fails affects nothing of the client's), and their answers are dropped: one
// after hidden code, to check, and one before a batch that may run hidden
// code when the last digest is out of date.
//
// Between two probes, the server ran everything the pipeline held between
// them. If that included hidden code and no setting changed through
// statements the proxy tracks (SET, RESET, DISCARD), the digests must agree;
// when they do, the code changed nothing the cache depends on and the
// session uses the cache again. When they differ, or a probe failed, or hidden
// code and a tracked SET share the interval, the session is hidden until
// DISCARD ALL, as before. A tracked SET must not share it: the key follows the
// SET, and hidden code that set the value back would leave the digests equal
// and the key wrong. DDL may: the key holds no temporary objects, so equal
// digests mean the same ones, whoever made them (a DDL that changed them
// makes the digests differ, which is safe, if needlessly strict).

// maxProbeFailures is how many failed probes a session sends before it
// stops probing.
const maxProbeFailures = 3

// probeRetry is how long after a failed lookup of the settings list the
// probe stays off for a database.
const probeRetry = time.Minute

// probeReq is one probe.
type probeReq struct {
	digest string
	failed bool
	// cancels is session.cancels when the probe was sent; canceled: the
	// probe failed as a cancelled statement does.
	cancels  uint64
	canceled bool
}

// probeSQL returns d's probe query, "" when it is not available. The first
// call for a database builds it from the server's list of session settings,
// waiting for that (the first session does, as it waits for the access
// digest); after a failure, a later call starts another try in the
// background, a minute on, and returns "".
func (cs *cacheState) probeSQL(d *dbState) string {
	d.probeMu.Lock()
	defer d.probeMu.Unlock()
	if d.probe != "" || d.probeBuilding || time.Since(d.probeTried) < probeRetry {
		return d.probe
	}
	first := d.probeTried.IsZero()
	d.probeTried = time.Now()
	if first {
		d.probe = cs.buildProbe(d)
		return d.probe
	}
	d.probeBuilding = true
	go func() {
		sql := cs.buildProbe(d)
		d.probeMu.Lock()
		d.probe, d.probeBuilding = sql, false
		d.probeMu.Unlock()
	}()
	return ""
}

// buildProbe reads the settings list and makes the probe query ("" on a
// failure).
func (cs *cacheState) buildProbe(d *dbState) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := d.catalog.SessionSettings(ctx)
	if err != nil {
		cs.catalogFailed(d, err)
		return ""
	}
	// PostgreSQL allows letters, digits, _ and $ in setting names, and dots
	// between such words: nothing that needs quoting in the array constant.
	// Anything else is not a setting name PostgreSQL accepts.
	names = slices.DeleteFunc(names, func(n string) bool {
		return n == "" || strings.IndexFunc(n, func(r rune) bool {
			return !(r == '_' || r == '.' || r == '$' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0
	})
	return buildProbeSQL(names)
}

// buildProbeSQL makes the probe's query: one md5 over the roles, the objects
// in the session's temporary schema (tables, views, types: found through
// pg_depend's index, whatever the catalog's size) and the value of every
// setting in names. Every name is qualified, so that the session's
// search_path finds nothing else.
func buildProbeSQL(names []string) string {
	var b strings.Builder
	// The array's text form quotes what needs it: no two states give the
	// same text. pg_describe_object names each temporary object (a RENAME
	// keeps its OID).
	b.WriteString("SELECT pg_catalog.md5(ARRAY[current_user::pg_catalog.text, " +
		"session_user::pg_catalog.text, pg_catalog.pg_my_temp_schema()::pg_catalog.text, " +
		"(SELECT pg_catalog.array_agg(d.classid::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) d.objid::pg_catalog.text " +
		"OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(d.classid, d.objid, 0) ORDER BY d.classid, d.objid)::pg_catalog.text " +
		"FROM pg_catalog.pg_depend d WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass " +
		"AND d.refobjid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()), " +
		"(SELECT pg_catalog.array_agg(pg_catalog.current_setting(n, true))::pg_catalog.text " +
		"FROM pg_catalog.unnest('{")
	b.WriteString(strings.Join(names, ","))
	// In the array's order (no ORDER BY, which costs a sort): both digests
	// come from this same text, so from the same plan.
	b.WriteString("}'::pg_catalog.text[]) AS n)]::pg_catalog.text)")
	return b.String()
}

// probeDue reports whether to send a probe in front of the batch about to be
// forwarded. It needs the session idle with nothing in flight (r, and open:
// no implicit transaction left open by a batch without a Sync) and a probe
// wanted (r.probe): after hidden code, to check the session; before a batch
// that may run hidden code (mayHide) when the last digest is out of date, so
// that the check afterwards has a base. session.mu is not held.
func (s *session) probeDue(r routing, open bool, mayHide func() bool) bool {
	if r.st != stateIdle || !r.empty || open || r.probe == probeNone {
		return false
	}
	return (r.probe == probeCheck || mayHide()) && s.pipe.injectable()
}

// anyHidden reports whether one of fx runs code the proxy cannot see.
func anyHidden(fx []stmtFx) bool {
	for i := range fx {
		if fx[i].hidden {
			return true
		}
	}
	return false
}

// batchMayHide reports whether msgs may run code the proxy cannot see: a
// statement it parses or binds whose plan says so, or a Bind of a statement
// the proxy does not know.
func (s *session) batchMayHide(msgs []bmsg, searchPath string) bool {
	b := &s.cache.batch
	var parsed [][]byte // names parsed in msgs: their Parse was judged
	for _, m := range msgs {
		switch m.typ {
		case 'P':
			if p, ok := decodeParse(m.body(b)); ok {
				parsed = append(parsed, p.name)
				if anyHidden(s.srv.cache.planFor(context.Background(), s.cache.db, searchPath, unsafeString(p.query)).fx) {
					return true
				}
			}
		case 'B':
			if bm, ok := decodeBind(m.body(b)); ok {
				if slices.ContainsFunc(parsed, func(n []byte) bool { return bytes.Equal(n, bm.stmt) }) {
					continue
				}
				st := s.cache.stmts[string(bm.stmt)]
				if st == nil || st.opaque || anyHidden(s.planOf(st, searchPath).fx) {
					return true
				}
			}
		}
	}
	return false
}

// sendProbe appends a probe to the upstream buffer and the pipeline, when
// the probe is available.
func (s *session) sendProbe() {
	c := s.cache
	sql := s.srv.cache.probeSQL(c.db)
	if sql == "" {
		return
	}
	if st := c.stmts[""]; st != nil {
		// The Query destroys the unnamed statement upstream: it is sent
		// again when the client next uses it.
		st.upstream = false
	}
	s.upBuf = appendQuery(s.upBuf, sql)
	s.pipe.pushX('Q', &pendingX{probe: &probeReq{cancels: s.cancels.Load()}})
}

// onProbe handles a server message answering a probe; it reports whether
// to drop it (everything but notifications and parameter changes).
func (s *session) onProbe(req *probeReq, m []byte, typ byte) bool {
	switch typ {
	case 'A', 'S':
		return false
	case 'D':
		req.digest = probeDigest(m)
	case 'E':
		if isFatal(m) {
			return false // the server is closing the connection: the client sees why
		}
		req.failed = true
		req.canceled = errorField(m, 'C') == wire.CodeQueryCanceled
		s.mu.Lock()
		s.cache.probeFails++
		s.mu.Unlock()
	case 'Z':
		s.mu.Lock()
		s.cache.probed(req)
		s.mu.Unlock()
		s.cacheReady(m)
		if req.canceled && s.cancels.Load() != req.cancels {
			// The client's cancel reached the server while the probe ran,
			// in front of the statement it was meant for: send it again,
			// now that the statement runs.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.cancelUpstream(ctx)
			}()
		}
	}
	return true
}

// probeDigest reads the one text column of the probe's DataRow body.
func probeDigest(body []byte) string {
	if len(body) < 6 || body[0] != 0 || body[1] != 1 {
		return ""
	}
	n := int(int32(uint32(body[2])<<24 | uint32(body[3])<<16 | uint32(body[4])<<8 | uint32(body[5])))
	if n < 0 || n != len(body)-6 {
		return ""
	}
	return string(body[6:])
}

// probed takes a finished probe into account. session.mu is held.
func (c *cacheSession) probed(req *probeReq) {
	d := req.digest
	if req.failed {
		d = ""
	}
	if c.winHidden && !c.hiddenStuck {
		if d != "" && c.probeBase != "" && d == c.probeBase && !c.winSettings {
			c.cs.checksPassed.Add(1)
		} else {
			c.hiddenStuck = true
			c.cs.checksFailed.Add(1)
		}
	}
	c.probeBase = d
	c.winHidden, c.winSettings, c.winDDL = false, false, false
}

// hidden reports whether the session may not use the cache because of code
// the proxy cannot see: some ran since the last probe, or a probe found the
// session changed. session.mu is held.
func (c *cacheSession) hidden() bool { return c.winHidden || c.hiddenStuck }

// probeWant is what routing tells the batch it routes about probes
// (probeDue).
type probeWant uint8

const (
	probeNone  probeWant = iota
	probeCheck           // hidden code ran since the last digest: check it
	probeBase            // the last digest is out of date: renew it before hidden code
)

// probeWanted decides the probe state of the session for routing.
// session.mu is held.
func (c *cacheSession) probeWanted() probeWant {
	switch {
	case c.hiddenStuck || c.probeFails >= maxProbeFailures || c.unnamedUnknown:
		return probeNone
	case c.winHidden:
		return probeCheck
	case c.winSettings || c.winDDL || c.probeBase == "":
		return probeBase
	}
	return probeNone
}
