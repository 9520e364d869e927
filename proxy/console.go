package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/wire"
)

// ConsoleDatabase is the virtual database of the admin console: a client that
// connects to it is authenticated by the upstream server (against its
// Upstream.Config.Database) and then talks to pgmemo itself, in the simple
// query protocol, with PgBouncer's admin commands and column names (SHOW
// STATS, SHOW CLIENTS, SHOW SERVERS, SHOW CONFIG, SHOW DATABASES, SHOW
// VERSION, SHOW HELP) and pgmemo's own commands, so that existing dashboards
// and scripts work.
const ConsoleDatabase = "pgmemo"

// consoleStartup rewrites a StartupMessage for the console: the same user
// and options, the upstream URL's database (authentication only).
func (s *session) consoleStartup(st *pgproto3.StartupMessage) ([]byte, error) {
	params := make(map[string]string, len(st.Parameters))
	for k, v := range st.Parameters {
		params[k] = v
	}
	db := s.srv.Upstream.Config.Database
	if db == "" {
		db = "postgres"
	}
	params["database"] = db
	params["application_name"] = "pgmemo console"
	msg := pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params}
	return msg.Encode(nil)
}

// serveConsole runs the admin console after authentication: the upstream
// connection is closed, and each Query is answered by pgmemo.
func (s *session) serveConsole() {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if up != nil {
		up.Close() // authentication is all the console needed from it
	}
	s.log.Debug("admin console session")
	for {
		m, err := s.cr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.clientReadFailed(err)
			}
			return
		}
		switch m.Type {
		case 'X':
			return
		case 'Q':
			text := string(m.Body[:max(0, len(m.Body)-1)])
			out, werr := s.consoleCommand(s.localOut[:0], text)
			if werr != nil {
				out = wire.AppendErrorResponse(out, "ERROR", werr)
			}
			s.localOut = appendReady(out, 'I')
			s.writeLocal(s.localOut)
		default:
			if m.Large {
				s.cr.DiscardBody()
			}
			if m.Type == 'S' || m.Type == 'H' || m.Type == 'P' || m.Type == 'B' || m.Type == 'D' || m.Type == 'E' || m.Type == 'C' {
				if m.Type != 'S' {
					continue // answered with one error at Sync
				}
				out := wire.AppendErrorResponse(s.localOut[:0], "ERROR", wire.Errorf(wire.CodeFeatureNotSupported,
					"the pgmemo admin console speaks only the simple query protocol (psql, or preferQueryMode=simple)"))
				s.localOut = appendReady(out, 'I')
				s.writeLocal(s.localOut)
				continue
			}
			s.cw.sendError("FATAL", wire.Errorf(wire.CodeProtocolViolation, "unexpected message type %q on the admin console", m.Type))
			return
		}
	}
}

// consoleCommand answers one console command.
func (s *session) consoleCommand(b []byte, text string) ([]byte, *wire.Error) {
	t := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(text), ";"))
	f := strings.Fields(strings.ToLower(t))
	if len(f) == 0 {
		return append(b, 'I', 0, 0, 0, 4), nil // EmptyQueryResponse
	}
	if f[0] != "show" || len(f) != 2 {
		return b, wire.Errorf(wire.CodeFeatureNotSupported, "unsupported admin console command %q; try SHOW HELP", t)
	}
	what := f[1]
	if s.srv.cache != nil {
		if cmd := showCommands[what]; cmd != adminNone {
			if s.cache == nil {
				return b, wire.Errorf(wire.CodeFeatureNotSupported, "%s needs a client connection to a database", t)
			}
		}
	}
	admin := s.consoleAdmin()
	table := func(cols []string, rows [][]string) []byte {
		b = appendRowDescription(b, cols...)
		for _, r := range rows {
			b = appendDataRow(b, r...)
		}
		return appendCommandComplete(b, "SHOW")
	}
	switch what {
	case "help":
		return table([]string{"command"}, [][]string{{"SHOW STATS"}, {"SHOW CLIENTS"}, {"SHOW SERVERS"}, {"SHOW DATABASES"}, {"SHOW CONFIG"}, {"SHOW VERSION"}, {"SHOW HELP"}}), nil
	case "version":
		return table([]string{"version"}, [][]string{{"pgmemo"}}), nil
	case "stats":
		return table(statsColumns, s.srv.consoleStats()), nil
	case "databases":
		return table([]string{"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool", "pool_mode", "max_connections", "current_connections", "paused", "disabled"},
			s.srv.consoleDatabases()), nil
	case "clients", "servers", "config":
		if !admin {
			return b, wire.Errorf(wire.CodeInsufficientPrivilege, "permission denied: SHOW %s needs a superuser or a role in --admin-roles", strings.ToUpper(what))
		}
		switch what {
		case "clients":
			return table(clientColumns, s.srv.consoleConns(false)), nil
		case "servers":
			return table(clientColumns, s.srv.consoleConns(true)), nil
		default:
			var rows [][]string
			if s.srv.cache != nil {
				for _, r := range s.srv.configRows() {
					rows = append(rows, []string{r[0], r[1], "", strconv.FormatBool(r[0] == "rules" || r[0] == "log_level")})
				}
			} else {
				rows = append(rows, []string{"upstream", s.srv.Upstream.String(), "", "no"}, []string{"cache_enabled", "false", "", "no"})
			}
			return table([]string{"key", "value", "default", "changeable"}, rows), nil
		}
	}
	return b, wire.Errorf(wire.CodeFeatureNotSupported, "unsupported admin console command %q; try SHOW HELP", t)
}

// consoleAdmin reports whether the console user may see connections and
// configuration.
func (s *session) consoleAdmin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.params["is_superuser"] == "on" {
		return true
	}
	return slices.Contains(s.srv.AdminRoles, s.params["session_authorization"])
}

// PgBouncer's SHOW STATS columns. Times are in microseconds.
var statsColumns = []string{"database", "total_xact_count", "total_query_count", "total_received", "total_sent",
	"total_xact_time", "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_recv",
	"avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time", "total_cache_hits", "total_cache_misses"}

func (srv *Server) consoleStats() [][]string {
	st := srv.Stats()
	var rows [][]string
	var totalQ, totalHits, totalMiss, totalUs uint64
	if srv.cache != nil {
		for _, d := range srv.cache.databases() {
			var q, hits, misses, us uint64
			d.queries.Range(func(_, v any) bool {
				qs := v.(*queryStats)
				q += qs.calls.Load()
				hits += qs.hits.Load()
				misses += qs.misses.Load()
				us += qs.upstreamNs.Load() / 1000
				return true
			})
			totalQ, totalHits, totalMiss, totalUs = totalQ+q, totalHits+hits, totalMiss+misses, totalUs+us
			avg := "0"
			if misses > 0 {
				avg = itoa(us / misses)
			}
			rows = append(rows, []string{d.name, "0", itoa(q), "0", "0", "0", itoa(us), "0", "0", "0", "0", "0", "0", avg, "0", itoa(hits), itoa(misses)})
		}
	}
	rows = append(rows, []string{"*", "0", itoa(totalQ), itoa(st.BytesFromClients), itoa(st.BytesToClients), "0", itoa(totalUs), "0",
		"0", "0", "0", "0", "0", "0", "0", itoa(totalHits), itoa(totalMiss)})
	return rows
}

func (srv *Server) consoleDatabases() [][]string {
	host, port, _ := net.SplitHostPort(srv.Upstream.String())
	counts := map[string]int{}
	for _, c := range srv.sessionInfos() {
		counts[c.database]++
	}
	var rows [][]string
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		rows = append(rows, []string{name, host, port, name, "", "0", "0", "0", "session", "0", strconv.Itoa(counts[name]), "0", "0"})
	}
	return rows
}

// PgBouncer's SHOW CLIENTS / SHOW SERVERS columns.
var clientColumns = []string{"type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
	"connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls", "application_name"}

type sessionInfo struct {
	id                  uint64
	user, database, app string
	state               state
	client, clientLocal net.Addr
	upstream, upLocal   net.Addr
	upPID, clientPID    uint32
	started             time.Time
	tls                 bool
}

func (srv *Server) sessionInfos() []sessionInfo {
	srv.mu.Lock()
	sessions := make([]*session, 0, len(srv.sessions))
	for sess := range srv.sessions {
		sessions = append(sessions, sess)
	}
	srv.mu.Unlock()
	var out []sessionInfo
	for _, sess := range sessions {
		sess.mu.Lock()
		info := sessionInfo{id: sess.id, user: sess.startupParams["user"], database: sess.startupParams["database"],
			app: sess.params["application_name"], state: sess.state(), started: sess.started, upPID: sess.upKey.pid, clientPID: sess.key.pid}
		if info.database == "" {
			info.database = info.user
		}
		if sess.client != nil {
			info.client, info.clientLocal = sess.client.RemoteAddr(), sess.client.LocalAddr()
			_, info.tls = sess.client.(*tls.Conn)
		}
		if sess.up != nil && info.database != ConsoleDatabase {
			info.upstream, info.upLocal = sess.up.RemoteAddr(), sess.up.LocalAddr()
		}
		sess.mu.Unlock()
		if info.user == "" {
			continue // still negotiating
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b sessionInfo) int { return int(a.id) - int(b.id) })
	return out
}

func (srv *Server) consoleConns(servers bool) [][]string {
	var rows [][]string
	split := func(a net.Addr) (string, string) {
		if a == nil {
			return "", ""
		}
		h, p, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String(), ""
		}
		return h, p
	}
	for _, c := range srv.sessionInfos() {
		st := "active"
		if c.state == stateIdle {
			st = "idle"
		}
		connect := c.started.UTC().Format("2006-01-02 15:04:05 MST")
		if servers {
			if c.upstream == nil {
				continue
			}
			h, p := split(c.upstream)
			lh, lp := split(c.upLocal)
			rows = append(rows, []string{"S", c.user, c.database, st, h, p, lh, lp, connect, connect, "0", "0", "0",
				strconv.FormatUint(c.id, 16), strconv.FormatUint(c.id, 16), strconv.FormatUint(uint64(c.upPID), 10), "", c.app})
			continue
		}
		h, p := split(c.client)
		lh, lp := split(c.clientLocal)
		tls := ""
		if c.tls {
			tls = "TLS"
		}
		rows = append(rows, []string{"C", c.user, c.database, st, h, p, lh, lp, connect, connect, "0", "0", "0",
			strconv.FormatUint(c.id, 16), strconv.FormatUint(c.id, 16), strconv.FormatUint(uint64(c.clientPID), 10), tls, c.app})
	}
	return rows
}
