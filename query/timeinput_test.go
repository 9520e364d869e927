package query_test

import (
	"testing"

	"github.com/pgmemo/pgmemo/query"
)

// A date/time type cast of a string the query computes may read the clock
// ('to' || 'day'); casts of constants, parameters, columns and non-text
// expressions do not make the statement uncacheable.
func TestTimeInputOfComputedText(t *testing.T) {
	for _, tt := range []struct{ sql, reason string }{
		{"SELECT concat('to', 'day')::date", "time_input:date"},
		{"SELECT ('to' || 'day')::timestamptz", "time_input:timestamptz"},
		{"SELECT CAST(lower(name) AS date) FROM t", "time_input:date"},
		{"SELECT date(lower(name)) FROM t", "time_input:date"},
		{"SELECT x FROM t WHERE d < format('%s', a)::timestamp", "time_input:timestamp"},
		{"SELECT (n::text)::date FROM t", "time_input:date"},
		{"SELECT coalesce(upper(a), 'x')::date FROM t", "time_input:date"},
		{"SELECT concat('[', lower(a), ',)')::daterange FROM t", "time_input:daterange"},
		{"SELECT created_at::date, count(*) FROM t GROUP BY 1", ""},
		{"SELECT date_trunc('day', created_at)::date FROM t", ""},
		{"SELECT (created_at + interval '1 day')::date FROM t", ""},
		{"SELECT '2024-01-01'::date", ""},
		{"SELECT $1::text::date", ""},
		{"SELECT date(created_at) FROM t", ""},
		{"SELECT concat(a, b)::int FROM t", ""},
	} {
		a := query.Analyze(tt.sql)
		if got := a.Reason; got != tt.reason || a.Cacheable != (tt.reason == "") {
			t.Errorf("%s: cacheable %v reason %q, want %q", tt.sql, a.Cacheable, got, tt.reason)
		}
	}
}
