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
	t := unsafeString(text)
	rest := t[skipSpaceAndComments(t):]
	return hasPrefixFold(rest, "pgmemo") ||
		hasPrefixFold(rest, "show") && strings.Contains(strings.ToLower(rest[:min(len(rest), 64)]), "pgmemo.")
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

// hasPrefixFold reports whether b starts with prefix, a lower-case ASCII
// word, in any case. It does not allocate: the relay calls it for every
// Query when caching is off.
func hasPrefixFold(b string, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if b[i]|0x20 != prefix[i] {
			return false
		}
	}
	return true
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
		out = wire.AppendErrorResponse(out, "ERROR", adminDenied(cmd))
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
	s.localOut = appendReady(out, routing{st: s.state()}.status())
	s.writeLocal(s.localOut)
	return true
}
