package proxy

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/query"
	"github.com/pgmemo/pgmemo/wire"
)

// adminCommand is a pgmemo command a client runs on its own connection; the
// proxy answers it and never sends it upstream.
type adminCommand uint8

const (
	adminNone            adminCommand = iota
	adminLast                         // SHOW pgmemo.last
	adminStats                        // SHOW pgmemo.stats
	adminQueries                      // SHOW pgmemo.queries (admins)
	adminTables                       // SHOW pgmemo.tables
	adminConfig                       // SHOW pgmemo.config (admins)
	adminReplication                  // SHOW pgmemo.replication
	adminInvalidateAll                // PGMEMO INVALIDATE ALL (admins)
	adminInvalidateTable              // PGMEMO INVALIDATE TABLE name (admins)
	adminInvalidateQuery              // PGMEMO INVALIDATE QUERY 'fingerprint' (admins)
)

var showCommands = map[string]adminCommand{
	"pgmemo.last": adminLast, "pgmemo.stats": adminStats, "pgmemo.queries": adminQueries,
	"pgmemo.tables": adminTables, "pgmemo.config": adminConfig, "pgmemo.replication": adminReplication,
}

// adminCommandOf recognises the pgmemo commands: SHOW pgmemo.NAME, and
// PGMEMO INVALIDATE ALL | TABLE name | QUERY 'fingerprint' (which do not
// parse as SQL). arg is the table name or fingerprint.
func adminCommandOf(text string, an *query.Analysis) (cmd adminCommand, arg string) {
	t := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(text[skipSpaceAndComments(text):]), ";"))
	f := strings.Fields(t)
	if len(f) >= 3 && strings.EqualFold(f[0], "pgmemo") && strings.EqualFold(f[1], "invalidate") {
		rest := strings.TrimSpace(t[strings.Index(strings.ToLower(t), "invalidate")+len("invalidate"):])
		kind, arg, _ := strings.Cut(rest, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToLower(kind) {
		case "all":
			if arg == "" {
				return adminInvalidateAll, ""
			}
		case "table":
			if arg != "" {
				return adminInvalidateTable, arg
			}
		case "query":
			if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
				arg = arg[1 : len(arg)-1]
			}
			if arg != "" {
				return adminInvalidateQuery, arg
			}
		}
		return adminNone, ""
	}
	if len(an.Statements) != 1 || an.Statements[0].Node != "VariableShowStmt" {
		return adminNone, ""
	}
	if len(f) != 2 || !strings.EqualFold(f[0], "show") {
		return adminNone, ""
	}
	return showCommands[strings.ToLower(f[1])], ""
}

// privileged reports whether only admins may run the command.
func (a adminCommand) privileged() bool {
	switch a {
	case adminQueries, adminConfig, adminInvalidateAll, adminInvalidateTable, adminInvalidateQuery:
		return true
	}
	return false
}

func (a adminCommand) columns() []string {
	switch a {
	case adminLast:
		return []string{"result", "reason", "fingerprint", "warnings"}
	case adminQueries:
		return []string{"database", "fingerprint", "query", "calls", "hits", "misses", "hit_ratio", "mean_upstream_ms", "saved_ms"}
	case adminTables:
		return []string{"database", "relation", "entries", "bytes", "invalidations", "last_invalidation"}
	case adminReplication:
		return []string{"database", "connected", "serving", "reason", "staleness_ms", "lag_bytes", "received_lsn", "server_lsn",
			"slot", "transactions", "invalidations", "delay_p50_ms", "delay_p99_ms", "delay_max_ms", "reconnects", "last_error"}
	case adminConfig:
		return []string{"name", "value", "source"}
	case adminInvalidateAll, adminInvalidateTable, adminInvalidateQuery:
		return nil
	}
	return []string{"name", "value"}
}

func (a adminCommand) tag() string {
	switch a {
	case adminInvalidateAll, adminInvalidateTable, adminInvalidateQuery:
		return "PGMEMO INVALIDATE"
	}
	return "SHOW"
}

// appendRowDescription appends the command's RowDescription, or NoData for
// a command that returns no rows.
func (a adminCommand) appendRowDescription(b []byte) []byte {
	cols := a.columns()
	if cols == nil {
		return append(b, msgNoData...)
	}
	return appendRowDescription(b, cols...)
}

// isAdmin reports whether the session may run privileged commands: a
// superuser (as the server reports) or a member of Server.AdminRoles by
// session user or current role.
func (s *session) isAdmin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.params["is_superuser"] == "on" {
		return true
	}
	for _, r := range s.srv.AdminRoles {
		if r == s.params["session_authorization"] || s.cache != nil && (r == s.cache.role || r == s.cache.user) {
			return true
		}
	}
	return false
}

// appendAdmin appends the answer to an admin command: RowDescription (or
// NoData) when withDesc (simple protocol), then the rows and CommandComplete,
// or the error to send instead.
func (s *session) appendAdmin(b []byte, pl *plan, withDesc bool) ([]byte, *wire.Error) {
	a := pl.admin
	if a.privileged() && !s.isAdmin() {
		return b, adminDenied(a)
	}
	start := len(b)
	if withDesc {
		b = a.appendRowDescription(b)
	}
	cs := s.srv.cache
	row := func(vals ...string) { b = appendDataRow(b, vals...) }
	switch a {
	case adminLast:
		s.mu.Lock()
		l := s.cache.last
		s.mu.Unlock()
		if l.result == "" {
			l.result = "none"
		}
		var fp, warnings string
		if l.pl != nil {
			fp = l.pl.an.Fingerprint
			if u := l.pl.an.Hints.Unknown; len(u) > 0 {
				warnings = "unknown hints: " + strings.Join(u, ", ")
			}
		}
		row(l.result, l.reason, fp, warnings)
	case adminStats:
		for _, kv := range s.srv.cacheStatsRows(s.cache.db) {
			row(kv[0], kv[1])
		}
	case adminQueries:
		for _, q := range s.srv.QueryReports() {
			ratio := 0.0
			if q.Calls > 0 {
				ratio = float64(q.Hits) / float64(q.Calls)
			}
			row(q.Database, q.Fingerprint, q.Normalized, itoa(q.Calls), itoa(q.Hits), itoa(q.Misses),
				strconv.FormatFloat(ratio, 'f', 4, 64), msString(q.MeanUpstream), msString(q.Saved))
		}
	case adminTables:
		reports := s.srv.TableReports()
		if !s.isAdmin() {
			// Other databases' relations are not every role's business.
			reports = slices.DeleteFunc(reports, func(t TableReport) bool { return t.Database != s.cache.db.name })
		}
		names := s.relationNames(reports)
		for _, t := range reports {
			name, ok := names[t.Database+"\x00"+strconv.FormatUint(uint64(t.OID), 10)]
			if !ok {
				name = "oid " + strconv.FormatUint(uint64(t.OID), 10)
			}
			last := ""
			if t.Invalidations > 0 {
				last = t.LastInvalidated.UTC().Format(time.RFC3339Nano)
			}
			row(t.Database, name, strconv.Itoa(t.Entries), itoa(t.Bytes), itoa(t.Invalidations), last)
		}
	case adminReplication:
		admin := s.isAdmin()
		for _, d := range s.srv.CacheReport().Databases {
			if !admin && d.Name != s.cache.db.name {
				continue // only admins see every database's stream
			}
			if d.WAL == nil {
				row(d.Name, "", "true", "invalidation by statement", "", "", "", "", "", "", "", "", "", "", "", "")
				continue
			}
			w := d.WAL
			stale := "not current"
			if d.Current {
				stale = msString(d.Staleness)
			}
			row(d.Name, strconv.FormatBool(w.Connected), strconv.FormatBool(d.Serving), d.Reason, stale, itoa(w.LagBytes),
				w.ReceivedLSN.String(), w.ServerLSN.String(), w.Slot, itoa(w.Transactions), itoa(d.WALInvalidations),
				msString(d.DelayP50), msString(d.DelayP99), msString(d.DelayMax), itoa(w.Reconnects), w.LastError)
		}
	case adminConfig:
		for _, kv := range s.srv.configRows() {
			row(kv[0], kv[1], kv[2])
		}
	case adminInvalidateAll:
		cs.c.InvalidateAll()
		cs.invAdmin.Add(1)
	case adminInvalidateTable:
		if err := s.invalidateTable(pl.adminArg); err != nil {
			return b[:start], err
		}
	case adminInvalidateQuery:
		cs.c.Invalidate(fingerprintTag(s.cache.db, pl.adminArg))
		cs.invAdmin.Add(1)
	}
	return appendCommandComplete(b, a.tag()), nil
}

// adminDenied is the error a role that may not run a command gets.
func adminDenied(a adminCommand) *wire.Error {
	return wire.Errorf(wire.CodeInsufficientPrivilege, "permission denied: %s needs a superuser or a role in --admin-roles", adminName(a))
}

func adminName(a adminCommand) string {
	for k, v := range showCommands {
		if v == a {
			return "SHOW " + k
		}
	}
	return "PGMEMO INVALIDATE"
}

func msString(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// invalidateTable resolves name as the session would and invalidates every
// relation a read of it depends on.
func (s *session) invalidateTable(name string) *wire.Error {
	an := query.Analyze("TABLE " + name)
	if len(an.Relations) != 1 || len(an.Statements) != 1 {
		return wire.Errorf(wire.CodeSyntaxError, "PGMEMO INVALIDATE TABLE: %q is not a table name", name)
	}
	s.mu.Lock()
	sp := s.cache.searchPath
	s.mu.Unlock()
	d := s.cache.db
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := d.catalog.ResolveRelations(ctx, sp, an.Relations)
	if err != nil {
		return wire.Errorf(wire.CodeConnectionFailure, "PGMEMO INVALIDATE TABLE: cannot read the catalog: %v", err)
	}
	if len(res.Relations) == 0 || !res.Relations[0].Found {
		return wire.Errorf(wire.CodeUndefinedTable, "relation %q does not exist", name)
	}
	tags := make([]cachecore.Tag, len(res.OIDs))
	for i, oid := range res.OIDs {
		tags[i] = d.tag(oid)
	}
	s.srv.cache.c.Invalidate(tags...)
	d.noteInvalidation(res.OIDs...)
	s.srv.cache.invAdmin.Add(1)
	return nil
}

// relationNames names the relations of reports, per database, with the
// catalog of each database ("db\x00oid" -> name).
func (s *session) relationNames(reports []TableReport) map[string]string {
	byDB := map[string][]uint32{}
	for _, t := range reports {
		byDB[t.Database] = append(byDB[t.Database], t.OID)
	}
	out := map[string]string{}
	cs := s.srv.cache
	for _, d := range cs.databases() {
		oids := byDB[d.name]
		if len(oids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		names, err := d.catalog.RelationNames(ctx, oids)
		cancel()
		if err != nil {
			continue
		}
		for oid, n := range names {
			out[d.name+"\x00"+strconv.FormatUint(uint64(oid), 10)] = n
		}
	}
	return out
}

// fingerprintTag is the tag every entry of a statement (by fingerprint) of d
// carries, so that PGMEMO INVALIDATE QUERY can drop them. Relation tags have
// the top bit clear.
func fingerprintTag(d *dbState, fp string) cachecore.Tag {
	h := uint64(14695981039346656037)
	for i := 0; i < len(fp); i++ {
		h ^= uint64(fp[i])
		h *= 1099511628211
	}
	return cachecore.Tag(1<<63 | uint64(d.id)<<40 | h&(1<<40-1))
}

// cacheStatsRows lists the cache's counters as name/value pairs, and the
// replication state of database d.
func (srv *Server) cacheStatsRows(d *dbState) [][2]string {
	r := srv.CacheReport()
	st := r.Cache
	cs := srv.cache
	rows := [][2]string{
		{"hits", itoa(st.Hits)},
		{"misses", itoa(st.Misses)},
		{"misses_cold", itoa(st.MissesCold)},
		{"misses_invalidated", itoa(st.MissesInvalidated)},
		{"misses_expired", itoa(st.MissesExpired)},
		{"not_cacheable", itoa(r.NotCacheable)},
		{"bypassed", itoa(r.Bypassed)},
		{"hit_ratio", strconv.FormatFloat(st.HitRatio(), 'f', 4, 64)},
		{"fills", itoa(st.Fills)},
		{"fills_discarded", itoa(st.FillsDiscarded)},
		{"rejected_too_large", itoa(st.Rejects)},
		{"coalesced", itoa(st.Coalesced)},
		{"evictions", itoa(st.Evictions)},
		{"invalidations", itoa(st.Invalidations)},
		{"invalidations_statement", itoa(cs.invStatement.Load())},
		{"invalidations_wal", itoa(cs.invWAL.Load())},
		{"invalidations_wal_own_skipped", itoa(cs.walOwn.Load())},
		{"own_transactions_identified", itoa(cs.ownXactIDs.Load())},
		{"invalidations_admin", itoa(cs.invAdmin.Load())},
		{"invalidations_access", itoa(cs.invAccess.Load())},
		{"entries", strconv.Itoa(st.Entries)},
		{"bytes", itoa(st.Bytes)},
		{"pinned_entries", strconv.Itoa(st.PinnedEntries)},
		{"pinned_bytes", itoa(st.PinnedBytes)},
		{"pins_refused", itoa(st.PinsRefused)},
		{"max_bytes", strconv.FormatInt(r.MaxBytes, 10)},
		{"local_batches", itoa(r.LocalBatches)},
		{"session_checks_passed", itoa(r.SessionChecksPassed)},
		{"session_checks_failed", itoa(r.SessionChecksFailed)},
		{"invalidation", r.Mode},
		{"tx_policy", r.TxPolicy},
	}
	if d.wal != nil {
		dr := cs.databaseReport(d)
		ws := dr.WAL
		staleness := "not current"
		if dr.Current {
			staleness = strconv.FormatInt(dr.Staleness.Milliseconds(), 10)
		}
		rows = append(rows,
			[2]string{"replication_connected", strconv.FormatBool(ws.Connected)},
			[2]string{"replication_serving", strconv.FormatBool(dr.Serving)},
			[2]string{"replication_staleness_ms", staleness},
			[2]string{"replication_lag_bytes", itoa(ws.LagBytes)},
			[2]string{"replication_received_lsn", ws.ReceivedLSN.String()},
			[2]string{"replication_server_lsn", ws.ServerLSN.String()},
			[2]string{"replication_slot", ws.Slot},
			[2]string{"replication_transactions", itoa(ws.Transactions)},
			[2]string{"replication_invalidations", itoa(dr.WALInvalidations)},
			[2]string{"replication_delay_last_ms", strconv.FormatFloat(float64(d.walDelayLast.Load())/1e6, 'f', 2, 64)},
			[2]string{"replication_delay_max_ms", strconv.FormatFloat(float64(dr.DelayMax)/1e6, 'f', 2, 64)},
			[2]string{"replication_delay_p50_ms", delayMs(dr.DelayP50, dr.WALInvalidations)},
			[2]string{"replication_delay_p99_ms", delayMs(dr.DelayP99, dr.WALInvalidations)},
			[2]string{"replication_reconnects", itoa(ws.Reconnects)},
			[2]string{"replication_last_error", ws.LastError},
		)
	}
	return rows
}

func delayMs(d time.Duration, n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64)
}

// configRows lists the effective configuration: Server.ConfigReport when
// set (the command line's flags with their sources), else the proxy's own
// options.
func (srv *Server) configRows() [][3]string {
	if srv.ConfigReport != nil {
		return srv.ConfigReport()
	}
	o := srv.Cache
	rows := [][3]string{
		{"upstream", srv.Upstream.String(), "proxy"},
		{"cache_enabled", strconv.FormatBool(o.Enabled), "proxy"},
		{"wal", strconv.FormatBool(o.WAL), "proxy"},
		{"cache_max_bytes", strconv.FormatInt(cmp.Or(o.MaxBytes, cachecore.DefaultMaxBytes), 10), "proxy"},
		{"cache_max_entry_bytes", strconv.Itoa(cmp.Or(o.MaxEntryBytes, cachecore.DefaultMaxEntryBytes)), "proxy"},
		{"cache_ttl", o.TTL.String(), "proxy"},
		{"tx_policy", o.TxPolicy.String(), "proxy"},
		{"max_staleness", o.maxStaleness().String(), "proxy"},
		{"admin_roles", strings.Join(srv.AdminRoles, ","), "proxy"},
	}
	slices.SortFunc(rows, func(a, b [3]string) int { return strings.Compare(a[0], b[0]) })
	return rows
}
