package proxy

import (
	"strings"

	"github.com/pgmemo/pgmemo/query"
	"github.com/pgmemo/pgmemo/wire"
)

// With caching off (Server.Cache.Enabled false) the session relays messages
// without looking at them, except for simple-protocol Queries that start like
// a pgmemo command: those are answered here, so that monitoring scripts and
// operators get an answer ("caching is off") instead of the server's error for
// an unknown parameter, and INVALIDATE succeeds as the no-op it is. The
// extended protocol is not intercepted in this mode: a pgmemo command sent as
// Parse reaches the server, which rejects it.

// maybeAdminCommand is the relay's cheap test: does text start, after
// whitespace and comments, with SHOW pgmemo. or PGMEMO?
func maybeAdminCommand(text []byte) bool {
	rest := text[skipSpaceAndComments(unsafeString(text)):]
	return hasPrefixFold(rest, "pgmemo") ||
		hasPrefixFold(rest, "show") && strings.Contains(strings.ToLower(string(rest[:min(len(rest), 64)])), "pgmemo.")
}

// skipSpaceAndComments returns the offset of text's first byte that is not
// whitespace or part of a comment (-- to the end of the line, /* */, nested as
// in PostgreSQL).
func skipSpaceAndComments(text string) int {
	i := 0
	for i < len(text) {
		switch c := text[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(text[i:], "--"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case strings.HasPrefix(text[i:], "/*"):
			depth := 0
			for i < len(text) {
				switch {
				case strings.HasPrefix(text[i:], "/*"):
					depth++
					i += 2
				case strings.HasPrefix(text[i:], "*/"):
					depth--
					i += 2
				default:
					i++
				}
				if depth == 0 {
					break
				}
			}
		default:
			return i
		}
	}
	return i
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// routeAdminOff answers m, a Query, if it is a pgmemo command and nothing is
// in flight upstream (a local answer must not overtake the server's). It
// reports whether it did.
func (s *session) routeAdminOff(m wire.Message) bool {
	body := m.Body
	if n := len(body); n > 0 && body[n-1] == 0 {
		body = body[:n-1]
	}
	if !maybeAdminCommand(body) || s.relayOpen || !s.pipe.empty() {
		return false
	}
	text := string(body)
	cmd, _ := adminCommandOf(text, query.Analyze(text))
	if cmd == adminNone {
		return false
	}
	out := s.localOut[:0]
	if cmd.privileged() && !s.isAdmin() {
		out = wire.AppendErrorResponse(out, "ERROR", wire.Errorf(wire.CodeInsufficientPrivilege, "permission denied: %s needs a superuser or a role in --admin-roles", adminName(cmd)))
	} else {
		out = cmd.appendRowDescription(out)
		switch cmd {
		case adminLast:
			out = appendDataRow(out, "off", reasonCachingOff, "", "")
		case adminStats:
			out = appendDataRow(out, "invalidation", "off")
		case adminConfig:
			for _, kv := range s.srv.configRows() {
				out = appendDataRow(out, kv[0], kv[1], kv[2])
			}
		}
		out = appendCommandComplete(out, cmd.tag())
	}
	s.mu.Lock()
	st := s.state()
	s.mu.Unlock()
	status := byte('I')
	switch st {
	case stateInTx:
		status = 'T'
	case stateFailedTx:
		status = 'E'
	}
	s.localOut = appendReady(out, status)
	s.writeLocal(s.localOut)
	return true
}
