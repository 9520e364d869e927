package proxy

import (
	"strings"

	"github.com/pgmemo/pgmemo/query"
)

// Statement shapes let statements that differ only in their literals share
// one plan. Clients that inline values (the simple protocol, psql, psycopg2,
// pgbench -M simple) send a new text for every value; analysing each one with
// pg_query costs tens of microseconds, more than the server takes for a
// primary-key lookup. What a plan holds (cacheable or not, the relations read
// and written, the effects) does not depend on numeric or string literals, with
// the exceptions that shapeSafe and shapeOf exclude: settings (SET, set_config)
// and the date/time input words 'now', 'today', 'tomorrow', 'yesterday'. The cache
// key is still the exact text.

// shapeOf returns text with its numeric literals replaced by ? and its string
// literals by '?', and ok=false when it cannot tell the literals safely (a
// dollar-quoted string, a backslash in a string, an unterminated literal or
// comment) or when a string literal holds a date/time input word
// (query.TimeWord).
// Comments and quoted identifiers are kept: comments may carry hints.
func shapeOf(text string) (shape string, ok bool) {
	var b strings.Builder
	b.Grow(len(text))
	changed := false
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			b.WriteString(text[i : i+j])
			i += j
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j, depth := i+2, 1
			for depth > 0 {
				if j+1 >= len(text) {
					return "", false
				}
				switch {
				case text[j] == '/' && text[j+1] == '*':
					depth++
					j += 2
				case text[j] == '*' && text[j+1] == '/':
					depth--
					j += 2
				default:
					j++
				}
			}
			b.WriteString(text[i:j])
			i = j
		case c == '"':
			j := i + 1
			for {
				k := strings.IndexByte(text[j:], '"')
				if k < 0 {
					return "", false
				}
				j += k + 1
				if j < len(text) && text[j] == '"' {
					j++
					continue
				}
				break
			}
			b.WriteString(text[i:j])
			i = j
		case c == '\'':
			j := i + 1
			var val strings.Builder
			for {
				if j >= len(text) {
					return "", false
				}
				if text[j] == '\\' {
					return "", false // E'' escapes, or standard_conforming_strings off
				}
				if text[j] == '\'' {
					if j+1 < len(text) && text[j+1] == '\'' {
						val.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				val.WriteByte(text[j])
				j++
			}
			if query.TimeWord(val.String()) != "" {
				return "", false
			}
			b.WriteString("'?'")
			i = j + 1
			changed = true
		case c == '$':
			if i+1 < len(text) && (text[i+1] == '$' || isIdentStart(text[i+1])) {
				// $tag$ opens a dollar-quoted string ($1 is a parameter).
				j := i + 1
				for j < len(text) && isIdentChar(text[j]) && text[j] != '$' {
					j++
				}
				if j < len(text) && text[j] == '$' {
					return "", false
				}
			}
			j := i + 1
			for j < len(text) && text[j] >= '0' && text[j] <= '9' {
				j++
			}
			b.WriteString(text[i:j])
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentChar(text[j]) {
				j++
			}
			if j < len(text) && text[j] == '\'' || j < len(text) && text[j] == '&' {
				return "", false // E'..', B'..', X'..', N'..', U&'..'
			}
			b.WriteString(text[i:j])
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			j := i + 1
			for j < len(text) {
				d := text[j]
				if d >= '0' && d <= '9' || d == '.' || d == '_' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' {
					if (d == 'e' || d == 'E') && j+1 < len(text) && (text[j+1] == '+' || text[j+1] == '-') {
						j++
					}
					j++
					continue
				}
				break
			}
			b.WriteByte('?')
			i = j
			changed = true
		default:
			b.WriteByte(c)
			i++
		}
	}
	if !changed {
		return text, true
	}
	return b.String(), true
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

// shapeSafe reports whether a plan may serve every text of its shape: one
// statement that reads or writes rows, changes no setting and whose
// cacheability does not depend on a literal.
func shapeSafe(p *plan) bool {
	an := p.an
	if len(an.Statements) != 1 || p.admin != adminNone || !p.expires.IsZero() {
		return false
	}
	st := an.Statements[0]
	if st.Class != query.Read && st.Class != query.Write || len(st.Settings) > 0 || st.Discard != "" {
		return false
	}
	return !strings.HasPrefix(p.reason, query.ReasonTimeLiteral)
}
