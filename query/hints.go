package query

import (
	"strconv"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Hints are the caching hints a client gives in SQL comments. A hint comment
// is a comment whose text starts with "pgmemo:" (in any case), followed by
// hints separated by commas or spaces:
//
//	/* pgmemo:no-cache */ SELECT ...
//	SELECT ... -- pgmemo:ttl=30s
//	/* pgmemo: ttl=5m, no-cache */
//
// Known hints are "no-cache" (never serve this text from the cache) and
// "ttl=DURATION" (a Go duration such as 30s or 5m, or whole seconds). Hints in
// comments anywhere in the text count, including comments between statements;
// a hint inside a string literal does not. Comments not starting with
// "pgmemo:" are ignored.
type Hints struct {
	// NoCache reports a no-cache hint.
	NoCache bool
	// TTL is the time to live given by a ttl hint; 0 when none is given.
	// When several are given the last wins.
	TTL time.Duration
	// Unknown lists the hints not understood, as written: unknown names and
	// ttl values that are not a positive duration.
	Unknown []string
}

// IsZero reports whether no hint was given.
func (h Hints) IsZero() bool {
	return !h.NoCache && h.TTL == 0 && len(h.Unknown) == 0
}

const hintPrefix = "pgmemo:"

// parseHints finds the hint comments of sql. It scans only when the text
// mentions the prefix, so texts without hints cost one substring search.
func parseHints(sql string) Hints {
	var h Hints
	if !containsFold(sql, hintPrefix) {
		return h
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return h
	}
	for _, t := range res.Tokens {
		if t.Token != pg_query.Token_SQL_COMMENT && t.Token != pg_query.Token_C_COMMENT {
			continue
		}
		if t.Start < 0 || int(t.End) > len(sql) || t.Start >= t.End {
			continue
		}
		h.parseComment(sql[t.Start:t.End])
	}
	return h
}

// parseComment reads one comment, delimiters included.
func (h *Hints) parseComment(c string) {
	if strings.HasPrefix(c, "--") {
		c = c[2:]
	} else {
		c = strings.TrimPrefix(c, "/*")
		c = strings.TrimSuffix(c, "*/")
	}
	c = strings.TrimSpace(c)
	if len(c) < len(hintPrefix) || !strings.EqualFold(c[:len(hintPrefix)], hintPrefix) {
		return
	}
	items := strings.FieldsFunc(c[len(hintPrefix):], func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	for _, item := range items {
		h.parseItem(item)
	}
}

func (h *Hints) parseItem(item string) {
	name, value, hasValue := strings.Cut(item, "=")
	switch strings.ToLower(name) {
	case "no-cache":
		if !hasValue {
			h.NoCache = true
			return
		}
	case "ttl":
		if d, ok := parseTTL(value); ok {
			h.TTL = d
			return
		}
	}
	h.Unknown = append(h.Unknown, item)
}

// parseTTL accepts a Go duration ("30s", "1m30s") or whole seconds ("30").
func parseTTL(s string) (time.Duration, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// containsFold reports whether s contains the lower-case ASCII substr in any
// case, without allocating.
func containsFold(s, substr string) bool {
	n := len(substr)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != substr[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
