package proxy

import (
	"strconv"
	"strings"
	"time"

	"github.com/pgmemo/pgmemo/query"
)

// adminCommand is a pgmemo command a client runs on its own connection; the
// proxy answers it and never sends it upstream.
type adminCommand uint8

const (
	adminNone  adminCommand = iota
	adminLast               // SHOW pgmemo.last
	adminStats              // SHOW pgmemo.stats
)

// adminCommandOf recognises SHOW pgmemo.last and SHOW pgmemo.stats.
func adminCommandOf(an *query.Analysis) adminCommand {
	if len(an.Statements) != 1 || an.Statements[0].Node != "VariableShowStmt" {
		return adminNone
	}
	f := strings.Fields(strings.ToLower(strings.TrimRight(an.Statements[0].Text, "; \t\r\n")))
	if len(f) != 2 || f[0] != "show" {
		return adminNone
	}
	switch f[1] {
	case "pgmemo.last":
		return adminLast
	case "pgmemo.stats":
		return adminStats
	}
	return adminNone
}

func (a adminCommand) columns() []string {
	if a == adminLast {
		return []string{"result", "reason", "fingerprint", "warnings"}
	}
	return []string{"name", "value"}
}

func (a adminCommand) appendRowDescription(b []byte) []byte {
	return appendRowDescription(b, a.columns()...)
}

// appendAdmin appends the answer to an admin command: RowDescription when
// withDesc (simple protocol), the rows and CommandComplete.
func (s *session) appendAdmin(b []byte, a adminCommand, withDesc bool) []byte {
	if withDesc {
		b = a.appendRowDescription(b)
	}
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
		b = appendDataRow(b, l.result, l.reason, fp, warnings)
	case adminStats:
		for _, kv := range s.srv.cacheStatsRows(s.cache.db) {
			b = appendDataRow(b, kv[0], kv[1])
		}
	}
	return appendCommandComplete(b, "SHOW")
}

// cacheStatsRows lists the cache's counters as name/value pairs, and the
// replication state of database d.
func (srv *Server) cacheStatsRows(d *dbState) [][2]string {
	cs := srv.cache
	st := cs.c.Stats()
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	mode := "statement"
	if cs.opts.WAL {
		mode = "wal"
	}
	rows := [][2]string{
		{"hits", u(st.Hits)},
		{"misses", u(st.Misses)},
		{"misses_cold", u(st.MissesCold)},
		{"misses_invalidated", u(st.MissesInvalidated)},
		{"misses_expired", u(st.MissesExpired)},
		{"not_cacheable", u(cs.notCacheable.Load())},
		{"bypassed", u(cs.bypass.Load())},
		{"hit_ratio", strconv.FormatFloat(st.HitRatio(), 'f', 4, 64)},
		{"fills", u(st.Fills)},
		{"fills_discarded", u(st.FillsDiscarded)},
		{"rejected_too_large", u(st.Rejects)},
		{"coalesced", u(st.Coalesced)},
		{"evictions", u(st.Evictions)},
		{"invalidations", u(st.Invalidations)},
		{"entries", strconv.Itoa(st.Entries)},
		{"bytes", u(st.Bytes)},
		{"max_bytes", strconv.FormatInt(cs.maxBytes(), 10)},
		{"local_batches", u(cs.localAnswers.Load())},
		{"invalidation", mode},
		{"tx_policy", cs.opts.TxPolicy.String()},
	}
	if d.wal != nil {
		ws := d.wal.Status()
		stale, current := d.wal.Staleness(time.Now())
		q := d.walDelays.quantiles(0.5, 0.99)
		ms := func(q []int64, i int) string {
			if q == nil {
				return ""
			}
			return strconv.FormatFloat(float64(q[i])/1e6, 'f', 2, 64)
		}
		staleness := "not current"
		if current {
			staleness = strconv.FormatInt(stale.Milliseconds(), 10)
		}
		rows = append(rows,
			[2]string{"replication_connected", strconv.FormatBool(ws.Connected)},
			[2]string{"replication_serving", strconv.FormatBool(cs.walBypass(d) == "")},
			[2]string{"replication_staleness_ms", staleness},
			[2]string{"replication_lag_bytes", u(ws.LagBytes)},
			[2]string{"replication_received_lsn", ws.ReceivedLSN.String()},
			[2]string{"replication_server_lsn", ws.ServerLSN.String()},
			[2]string{"replication_slot", ws.Slot},
			[2]string{"replication_transactions", u(ws.Transactions)},
			[2]string{"replication_invalidations", u(d.walInvalidations.Load())},
			[2]string{"replication_delay_last_ms", strconv.FormatFloat(float64(d.walDelayLast.Load())/1e6, 'f', 2, 64)},
			[2]string{"replication_delay_max_ms", strconv.FormatFloat(float64(d.walDelayMax.Load())/1e6, 'f', 2, 64)},
			[2]string{"replication_delay_p50_ms", ms(q, 0)},
			[2]string{"replication_delay_p99_ms", ms(q, 1)},
			[2]string{"replication_reconnects", u(ws.Reconnects)},
			[2]string{"replication_last_error", ws.LastError},
		)
	}
	return rows
}
