package proxy

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/query"
)

// resetMarker in an overlay means "back to the session default".
const resetMarker = "\x00reset"

// cacheSession is a session's cache state. The fields under "tracked" are
// written by the upstream relay as the server completes statements and read
// by the client relay when it routes a statement with nothing in flight; both
// hold session.mu. The client-relay fields are used by that goroutine only.
type cacheSession struct {
	cs *cacheState
	db *dbState

	// Fixed after startup.
	user     string
	startup  string            // the startup parameters that shape results
	defaults map[string]string // session defaults read after authentication
	setupErr string            // non-empty: the session bypasses the cache

	// tracked (session.mu)
	committed        map[string]string // settings changed by committed SETs
	overlay          map[string]string // SETs of the current (possibly implicit) transaction
	local            map[string]string // SET LOCAL
	resetAll         bool              // RESET ALL in the current transaction
	untracked        string            // why the settings are unknown; bypass until RESET ALL / DISCARD ALL
	overlayUntracked string
	savepoints       []savepoint
	keyDirty         bool
	prefix           [16]byte
	searchPath       string // effective, "$user" replaced by the role
	role             string // effective role

	txWrote bool // the (possibly implicit) transaction wrote or had unknown side effects
	// Code the proxy cannot see (stmtFx.hidden) makes the session bypass
	// the cache (hidden()) until a probe after it (probe.go) finds the
	// session unchanged, or DISCARD ALL. hiddenStuck: no probe can tell
	// (the session did change, or a check was not possible): only DISCARD
	// ALL ends it.
	hiddenStuck bool
	// Since the last probe's answer: hidden code completed (winHidden), a
	// tracked statement changed a setting the key holds (winSettings), DDL
	// ran (winDDL: it may have made or dropped temporary objects).
	winHidden, winSettings, winDDL bool
	probeBase                      string // the last probe's digest; "": none, or it failed
	probeFails                     int    // probes that failed (probe.go)
	// unnamedUnknown: the server may hold an unnamed statement the proxy
	// does not know (a Parse or Bind too large to read came), which a
	// probe would destroy: no probes until a Parse or Query replaces it.
	unnamedUnknown bool
	txNoCache      bool // REPEATABLE READ, SERIALIZABLE or an imported snapshot
	errSeen        bool // an ErrorResponse since the last ReadyForQuery
	// xid is the current transaction's ID when the proxy asked for it
	// (ownxact.go); xidOK says it did and the transaction has one.
	xid       uint32
	xidOK     bool
	pendTags  []cachecore.Tag
	pendScope bool
	pendAll   bool
	pendDDL   bool
	last      lastInfo

	// client relay only
	stmts   map[string]*stmt
	portals map[string]*portal
	keyBuf  []byte
	batch   batch
	batchNo uint64 // batches forwarded (forwardBatch); client relay only
	upOpen  bool   // messages went upstream since the last Sync or Query sent there
	// clientOpen: the client's last batch ended without a Sync (a Flush), so
	// its implicit transaction, and the portals bound in it, live on even if
	// the proxy answered that batch itself and the server saw nothing.
	clientOpen bool
	view       []viewEntry   // answerBatch's scratch
	scratch    []*portal     // reused portals of batches answered locally
	hitStats   []*queryStats // answerBatch's scratch
}

type savepoint struct {
	name             string
	overlay, local   map[string]string
	resetAll         bool
	overlayUntracked string
}

// lastInfo is how the previous statement of the session was served, for SHOW
// pgmemo.last.
type lastInfo struct {
	result string // hit, miss-filled, miss-not-filled, miss-not-cacheable, bypass
	reason string
	pl     *plan // the statement's plan: fingerprint, hints
}

// reportedKeyParams are the ParameterStatus values that shape results.
var reportedKeyParams = []string{"client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings", "integer_datetimes", "server_encoding", "session_authorization", "server_version"}

func newCacheSession(cs *cacheState, startup map[string]string) *cacheSession {
	db := startup["database"]
	if db == "" {
		db = startup["user"]
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(startup)) {
		switch k {
		case "application_name", "fallback_application_name", "replication":
			continue
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(startup[k])
		b.WriteByte(0)
	}
	return &cacheSession{
		cs:        cs,
		db:        cs.acquire(db),
		user:      startup["user"],
		startup:   b.String(),
		committed: map[string]string{},
		overlay:   map[string]string{},
		local:     map[string]string{},
		keyDirty:  true,
		stmts:     map[string]*stmt{},
		portals:   map[string]*portal{},
	}
}

// setting returns the effective value of a tracked setting; ok=false means
// the session default.
func (c *cacheSession) setting(name string) (string, bool) {
	for _, m := range [...]map[string]string{c.local, c.overlay} {
		if v, ok := m[name]; ok {
			return v, v != resetMarker
		}
	}
	if c.resetAll && name != "role" {
		return "", false
	}
	v, ok := c.committed[name]
	return v, ok
}

// refreshKey recomputes the key prefix, the effective role and search_path
// after a change of settings; params are the server's ParameterStatus values.
// session.mu is held.
func (c *cacheSession) refreshKey(params map[string]string) {
	if !c.keyDirty {
		return
	}
	c.keyDirty = false
	sessionUser := params["session_authorization"]
	if sessionUser == "" {
		sessionUser = c.user
	}
	c.role = sessionUser
	if r, ok := c.setting("role"); ok && r != "none" {
		c.role = r
	}
	sp, ok := c.setting("search_path")
	if !ok {
		sp = c.defaults["search_path"]
	}
	c.searchPath = strings.ReplaceAll(sp, `"$user"`, quoteIdent(c.role))

	h := sha256.New()
	w := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	w(c.db.name)
	w(c.role)
	w(c.startup)
	for _, k := range reportedKeyParams {
		w(params[k])
	}
	w(c.searchPath)
	w(c.defaults["role_database_settings"])
	names := map[string]bool{}
	for _, m := range [...]map[string]string{c.committed, c.overlay, c.local} {
		for k := range m {
			names[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if k == "role" || k == "search_path" || k == "application_name" {
			continue
		}
		if v, ok := c.setting(k); ok {
			w(k)
			w(v)
		}
	}
	copy(c.prefix[:], h.Sum(nil))
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// bypassReason says why the session must not use the cache now, "" when it
// may. session.mu is held; st is the session state.
func (c *cacheSession) bypassReason(st state, policy TxPolicy) string {
	switch {
	case c.setupErr != "":
		return reasonSessionSetup
	case c.untracked != "" || c.overlayUntracked != "":
		return reasonSettings
	case c.hidden():
		return reasonHidden
	}
	if r := c.cs.walBypass(c.db); r != "" {
		return r
	}
	switch {
	case st == stateIdle:
		// Idle by the last ReadyForQuery, but an implicit transaction that a
		// Flush left open upstream may have written: its reads see rows that
		// are not committed (and may never be).
		if c.txWrote || c.txNoCache {
			return reasonTransaction
		}
		return ""
	case st == stateInTx:
		if policy == TxNever || c.txWrote || c.txNoCache || !c.readCommittedDefault() {
			return reasonTransaction
		}
		return ""
	case st == stateFailedTx:
		return reasonFailedTx
	}
	return reasonTransaction
}

func (c *cacheSession) readCommittedDefault() bool {
	v, ok := c.setting("default_transaction_isolation")
	if !ok {
		v = c.defaults["default_transaction_isolation"]
	}
	v = strings.ToLower(strings.Trim(v, `'" `))
	return v == "" || v == "read committed" || v == "read uncommitted" || v == "default"
}

// applyFx applies the effects of a statement the server reported complete
// with CommandComplete tag (or suspended). session.mu is held.
func (c *cacheSession) applyFx(fx *stmtFx, tag string) {
	if fx.wrote {
		c.txWrote = true
	}
	if fx.hidden {
		c.winHidden = true // hidden() until a probe (probe.go)
	}
	if len(fx.writes) > 0 {
		c.pendTags = append(c.pendTags, fx.writes...)
	}
	c.pendScope = c.pendScope || fx.scope
	c.pendAll = c.pendAll || fx.all
	if fx.ddl {
		// CREATE or DROP of a temporary table, maybe: the next digest may
		// differ (probe.go).
		c.winDDL = true
		c.pendDDL = true
		c.db.forget() // the session's own later statements see the new schema
	}
	st := fx.st
	if st == nil {
		return
	}
	if st.Tx != nil {
		c.txControl(st.Tx, tag)
	}
	if fx.settings {
		for _, set := range st.Settings {
			c.applySetting(set)
			c.winSettings = c.winSettings || !set.Local
		}
		c.winSettings = c.winSettings || st.Discard != ""
		if st.Discard == "ALL" {
			c.committed = map[string]string{}
			c.rollbackSettings()
			c.untracked = ""
			// Settings reset, temporary tables dropped: what hidden code
			// did is undone. The next digest is the new base (winSettings).
			c.hiddenStuck, c.winHidden, c.probeFails = false, false, 0
		}
		c.keyDirty = true
	}
}

func (c *cacheSession) applySetting(set query.Setting) {
	switch {
	case set.Name == "" && set.Reset: // RESET ALL
		role, hasRole := c.overlay["role"]
		c.overlay = map[string]string{}
		if hasRole {
			c.overlay["role"] = role
		}
		c.resetAll = true
		c.overlayUntracked = ""
		return
	case set.Name == "" || set.Dynamic:
		c.overlayUntracked = "set_config"
		return
	case set.Name == "session_authorization":
		c.overlayUntracked = "session_authorization"
		return
	case set.Name == "constraints" || set.Name == "transaction_isolation" || set.Name == "transaction_read_only" ||
		set.Name == "transaction_deferrable":
		if set.Name == "transaction_isolation" && !readCommitted(set.Value) {
			c.txNoCache = true
		}
		return
	}
	v := set.Value
	if set.Reset {
		v = resetMarker
	}
	if set.Local {
		c.local[set.Name] = v
	} else {
		c.overlay[set.Name] = v
	}
}

func readCommitted(v string) bool {
	v = strings.ToLower(strings.Trim(v, `'" `))
	return v == "read committed" || v == "read uncommitted" || v == ""
}

func (c *cacheSession) txControl(tx *query.Tx, tag string) {
	switch tx.Kind {
	case query.TxBegin:
		if tx.Isolation != "" && !readCommitted(tx.Isolation) {
			c.txNoCache = true
		}
	case query.TxSetTransaction:
		if tx.Isolation != "" && !readCommitted(tx.Isolation) {
			c.txNoCache = true
		}
	case query.TxSetSnapshot:
		c.txNoCache = true
	case query.TxSetSession:
		if tx.Isolation != "" {
			c.overlay["default_transaction_isolation"] = tx.Isolation
		}
	case query.TxCommit:
		if tag == "ROLLBACK" { // COMMIT of a failed transaction
			c.endTx(false)
		} else {
			c.endTx(true)
		}
		if tx.Chain {
			c.txWrote = false
		}
	case query.TxRollback, query.TxPrepare:
		c.endTx(false)
	case query.TxSavepoint:
		c.savepoints = append(c.savepoints, savepoint{name: tx.Savepoint, overlay: maps.Clone(c.overlay),
			local: maps.Clone(c.local), resetAll: c.resetAll, overlayUntracked: c.overlayUntracked})
	case query.TxRelease, query.TxRollbackTo:
		i := len(c.savepoints) - 1
		for i >= 0 && c.savepoints[i].name != tx.Savepoint {
			i--
		}
		if i < 0 {
			return // the server rejected it
		}
		if tx.Kind == query.TxRelease {
			c.savepoints = c.savepoints[:i]
			return
		}
		sp := c.savepoints[i]
		c.overlay, c.local, c.resetAll, c.overlayUntracked = maps.Clone(sp.overlay), maps.Clone(sp.local), sp.resetAll, sp.overlayUntracked
		c.savepoints = c.savepoints[:i+1]
		c.keyDirty = true
	}
}

// endTx ends the current transaction: its settings and writes take effect
// (commit) or vanish (rollback).
func (c *cacheSession) endTx(commit bool) {
	// Only a transaction that changed settings changes the key: recomputing
	// it (a hash over every setting) after every statement would cost more
	// than the lookup it serves.
	if len(c.overlay) > 0 || len(c.local) > 0 || c.resetAll || c.overlayUntracked != "" || len(c.savepoints) > 0 {
		c.keyDirty = true
	}
	if commit {
		if c.resetAll {
			role, ok := c.committed["role"]
			c.committed = map[string]string{}
			if ok {
				c.committed["role"] = role
			}
			c.untracked = ""
		}
		for k, v := range c.overlay {
			if v == resetMarker {
				delete(c.committed, k)
			} else {
				c.committed[k] = v
			}
		}
		if c.overlayUntracked != "" {
			c.untracked = c.overlayUntracked
		}
		c.invalidatePending()
	} else {
		c.pendTags, c.pendScope, c.pendAll = c.pendTags[:0], false, false
		c.xidOK = false
		if c.pendDDL {
			c.db.forget()
			c.pendDDL = false
		}
	}
	c.rollbackSettings()
	c.txWrote, c.txNoCache = false, false
}

func (c *cacheSession) rollbackSettings() {
	clear(c.overlay)
	clear(c.local)
	c.resetAll = false
	c.overlayUntracked = ""
	c.savepoints = c.savepoints[:0]
}

// invalidatePending announces the committed writes to the cache.
func (c *cacheSession) invalidatePending() {
	cache := c.cs.c
	if c.pendAll || c.pendScope || len(c.pendTags) > 0 {
		c.cs.invStatement.Add(1)
	}
	switch {
	case c.pendAll:
		cache.InvalidateAll()
	case c.pendScope:
		cache.InvalidateScope(c.db.scope)
	case len(c.pendTags) > 0:
		cache.Invalidate(c.pendTags...)
		for _, t := range c.pendTags {
			c.db.noteInvalidation(uint32(t))
		}
	}
	if c.xidOK {
		// Registered after the invalidation, before the client learns of
		// the commit: the stream's report of it may skip these.
		c.db.own.register(c.xid, c.pendTags, c.pendAll || c.pendScope, time.Now())
		c.cs.ownXactIDs.Add(1)
		c.xidOK = false
	}
	if c.pendDDL {
		c.db.forget()
	}
	c.pendTags, c.pendScope, c.pendAll, c.pendDDL = c.pendTags[:0], false, false, false
}

// onReady handles ReadyForQuery: the end of a (possibly implicit)
// transaction when status is 'I'. session.mu is held.
func (c *cacheSession) onReady(status byte) {
	if status == 'I' {
		c.endTx(!c.errSeen)
	}
	c.errSeen = false
}

// defaultsQuery reads, right after authentication, the session defaults the
// proxy cannot learn from ParameterStatus: they may come from the server's
// configuration or ALTER ROLE/DATABASE ... SET.
//
// The third column is every ALTER ROLE/DATABASE ... SET default that applied
// when the session started: it is part of the key, so sessions that started
// under different defaults (a custom setting a row-level policy or view
// reads, extra_float_digits...) never share results.
const defaultsQuery = "SELECT pg_catalog.current_setting('search_path'), pg_catalog.current_setting('default_transaction_isolation'), " +
	"(SELECT pg_catalog.string_agg(u.c, E'\\n' ORDER BY s.setdatabase, s.setrole, u.o) " +
	"FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS u(c, o) " +
	"WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())) " +
	"AND s.setrole IN (0, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)))"

// fetchDefaults runs defaultsQuery on the new upstream connection before the
// client sees its first ReadyForQuery, and behind it, as a second statement
// of the same Query, the session probe (probe.go) for its first digest. A
// failure of the first leaves the session uncached; of the probe, without a
// first digest.
func (s *session) fetchDefaults() error {
	sql := defaultsQuery
	if probe := s.srv.cache.probeSQL(s.cache.db); probe != "" {
		sql += "; " + probe
	}
	q := appendQuery(nil, sql)
	if _, err := s.up.Write(q); err != nil {
		return upstreamLost(err)
	}
	var vals []string
	completed := 0 // statements complete
	for {
		m, err := s.ur.Next()
		if err != nil {
			return upstreamLost(err)
		}
		if m.Large {
			return upstreamLost(fmt.Errorf("oversized %q message during session setup", m.Type))
		}
		switch m.Type {
		case 'D':
			if completed > 0 {
				s.cache.probeBase = probeDigest(m.Body) // the session's first digest
				break
			}
			var row pgproto3.DataRow
			if row.Decode(m.Body) == nil {
				vals = make([]string, len(row.Values))
				for i, v := range row.Values {
					vals[i] = string(v)
				}
			}
		case 'C':
			completed++
		case 'E':
			if completed == 0 {
				s.cache.setupErr = "defaults query failed"
			}
		case 'S':
			s.recordParameter(m.Body)
		case 'Z':
			if len(vals) == 3 {
				s.cache.defaults = map[string]string{"search_path": vals[0], "default_transaction_isolation": vals[1], "role_database_settings": vals[2]}
			} else if s.cache.setupErr == "" {
				s.cache.setupErr = "defaults query returned no row"
			}
			return nil
		}
	}
}
