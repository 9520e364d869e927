package query

import "testing"

// FuzzAnalyze feeds arbitrary text to Analyze, seeded with the golden corpus:
// it must not panic, and a cacheable text is one read with no reason.
func FuzzAnalyze(f *testing.F) {
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		"WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x",
		"SELECT * FROM t WHERE ts > 'today 10:00'::timestamptz AND a === b",
		"SELECT set_config('a.b', $1, false); BEGIN; SELECT 1 FOR UPDATE",
		"SELECT x::app.t, CAST(y AS int), 'r'::regclass FROM s.v",
	} {
		f.Add(sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		a := Analyze(sql)
		if a.Cacheable && (len(a.Statements) != 1 || a.Class != Read) {
			t.Fatalf("%q: cacheable %v with %d statements", sql, a.Class, len(a.Statements))
		}
		for _, st := range a.Statements {
			if st.Cacheable != (st.Class == Read && st.Reason == "") {
				t.Fatalf("%q: cacheable %v, class %v, reason %q", sql, st.Cacheable, st.Class, st.Reason)
			}
		}
	})
}
