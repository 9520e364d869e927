package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// The date/time inputs 'now', 'today', 'tomorrow' and 'yesterday' read the
// clock wherever they stand in a value ('today 10:00', '[today,)'), in the
// statement's text or in a parameter: such results are never cached.
func TestCacheClockWords(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, c, `CREATE TABLE ev(id int PRIMARY KEY, at timestamptz);
		INSERT INTO ev VALUES (1, now() - interval '2 days'), (2, now() + interval '2 days')`)

	// In the text, inside a longer value: served as PostgreSQL answers, never
	// from the cache.
	for _, q := range []string{
		"SELECT count(*)::text FROM ev WHERE at < 'today 00:00'",
		"SELECT count(*)::text FROM ev WHERE at::date <@ '[yesterday,tomorrow)'::daterange",
		"SELECT count(*)::text FROM ev WHERE at < '10:00 tomorrow'",
	} {
		var want string
		if err := direct.QueryRow(context.Background(), q).Scan(&want); err != nil {
			t.Fatalf("direct %s: %v", q, err)
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			for range 2 {
				v, l := served(t, c, q, mode)
				if v != want || l.Result != "miss-not-cacheable" || !strings.HasPrefix(l.Reason, "time_literal:") {
					t.Errorf("%s (%v): %q, %+v; want %q, not cached for a time literal", q, mode, v, l, want)
				}
			}
		}
	}

	// In a parameter: each execution reads the clock again.
	const q = "SELECT $1::timestamptz::text"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
		first, _ := served(t, c, q, mode, "now")
		pgtest.Eventually(t, 2*time.Second, func() error {
			v, l := served(t, c, q, mode, "now")
			if l.Result != "miss-not-cacheable" || l.Reason != "time_parameter:now" {
				t.Fatalf("%v: second 'now' served %+v, want miss-not-cacheable time_parameter:now", mode, l)
			}
			if v == first {
				return fmt.Errorf("%v: 'now' gave %s twice", mode, v)
			}
			return nil
		})
		v, l := served(t, c, "SELECT count(*)::text FROM ev WHERE at < $1", mode, "today 00:00")
		if v != "1" || l.Reason != "time_parameter:today" {
			t.Errorf("%v: 'today 00:00' parameter: %q, %+v; want 1, time_parameter:today", mode, v, l)
		}
	}
	// A parameter that merely contains the letters is cached as usual.
	expect(t, c, "first", "SELECT $1::text", "nowhere", "", "nowhere")
	expect(t, c, "again", "SELECT $1::text", "nowhere", "hit", "nowhere")
}
