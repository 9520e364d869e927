package proxy_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// TestCachePinRule: results pinned by a rule stay cached while far more than
// the cache's bound of other results go through it, are still invalidated by
// writes, and their memory is reported.
func TestCachePinRule(t *testing.T) {
	const maxBytes = 256 << 10
	p := startProxy(t, withCache(func(o *proxy.CacheOptions) {
		o.MaxBytes = maxBytes
		o.Rules = []proxy.Rule{{Relation: "hot", Action: proxy.RulePin}}
	}))
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE hot(k int PRIMARY KEY, v text); INSERT INTO hot SELECT g, 'hot ' || g FROM generate_series(1, 20) g")
	mustExec(t, c, "CREATE TABLE cold(k int PRIMARY KEY, v text); INSERT INTO cold SELECT g, repeat('c', 2000) FROM generate_series(1, 3000) g")
	const hotQ = "SELECT v FROM hot WHERE k = $1"
	for k := 1; k <= 20; k++ {
		expect(t, c, "hot fill", hotQ, "hot "+strconv.Itoa(k), "miss-filled", k)
	}
	if st, _ := p.Srv.CacheStats(); st.PinnedEntries != 20 || st.PinnedBytes == 0 {
		t.Fatalf("after 20 pinned fills: %+v", st)
	}
	// 3,000 results of 2 kB: over twenty times the cache's bound.
	ctx := testCtx(t)
	b := &pgx.Batch{}
	for k := 1; k <= 3000; k++ {
		b.Queue("SELECT v FROM cold WHERE k = $1", k)
	}
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 3000; k += 100 {
		var v string
		if err := c.QueryRow(ctx, "SELECT v FROM cold WHERE k = $1", k).Scan(&v); err != nil || len(v) != 2000 {
			t.Fatalf("cold %d: %q %v", k, v, err)
		}
	}
	st, _ := p.Srv.CacheStats()
	if st.Evictions == 0 {
		t.Fatalf("no evictions after 6 MB through a 256 KiB cache: %+v", st)
	}
	for k := 1; k <= 20; k++ {
		expect(t, c, "pinned after evictions", hotQ, "hot "+strconv.Itoa(k), "hit", k)
	}
	// Pinned results are invalidated like any other.
	mustExec(t, c, "UPDATE hot SET v = 'new' WHERE k = 1")
	expect(t, c, "after a write", hotQ, "new", "miss-filled", 1)
	expect(t, c, "again", hotQ, "new", "hit", 1)
	if st, _ := p.Srv.CacheStats(); st.Bytes > maxBytes+maxBytes/4 {
		t.Errorf("cache holds %d bytes, bound %d: %+v", st.Bytes, maxBytes, st)
	}
	rows, err := adminRows(t, c, "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]string{}
	for _, r := range rows {
		stats[r[0]] = r[1]
	}
	if stats["pinned_entries"] != "20" || stats["pinned_bytes"] == "0" || stats["pinned_bytes"] == "" {
		t.Errorf("SHOW pgmemo.stats pinned rows: entries %q, bytes %q", stats["pinned_entries"], stats["pinned_bytes"])
	}
}

// TestTablesShowsEntries: SHOW pgmemo.tables and TableReports count the
// servable entries of each relation, before and after an invalidation.
func TestTablesShowsEntries(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two'), (3, 'three')")
	mustExec(t, c, "CREATE TABLE other(k int PRIMARY KEY); INSERT INTO other VALUES (1)")
	for k, v := range map[int]string{1: "one", 2: "two", 3: "three"} {
		expect(t, c, "fill", "SELECT v FROM kv WHERE k = $1", v, "miss-filled", k)
	}
	expect(t, c, "fill join", "SELECT v FROM kv JOIN other USING (k)", "one", "miss-filled")
	entries := func() map[string]string {
		rows, err := adminRows(t, c, "SHOW pgmemo.tables", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range rows {
			if len(r) != 6 || r[0] != db {
				t.Fatalf("SHOW pgmemo.tables row %q", r)
			}
			m[r[1]] = r[2] + " entries, " + r[4] + " invalidations"
		}
		return m
	}
	got := entries()
	if got["public.kv"] != "4 entries, 0 invalidations" || got["public.other"] != "1 entries, 0 invalidations" {
		t.Errorf("before a write: %v", got)
	}
	mustExec(t, c, "UPDATE other SET k = 1")
	got = entries()
	if got["public.kv"] != "3 entries, 0 invalidations" || got["public.other"] != "0 entries, 1 invalidations" {
		t.Errorf("after a write to other: %v", got)
	}
	tr := p.Srv.TableReports()
	if len(tr) < 2 || tr[0].Entries != 3 || tr[0].Bytes == 0 {
		t.Errorf("TableReports %+v", tr)
	}
}

// TestAdminCommandsCachingOff: with caching off, pgmemo commands sent as
// simple queries are still answered by the proxy (and never reach the
// server), permissions still apply, and everything else is relayed.
func TestAdminCommandsCachingOff(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	super := pgxConnect(t, p.URL("", "", db))
	ctx := testCtx(t)
	rows, err := adminRows(t, super, "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol)
	if err != nil || len(rows) != 1 || rows[0][0] != "invalidation" || rows[0][1] != "off" {
		t.Errorf("SHOW pgmemo.stats: %v %v", rows, err)
	}
	rows, err = adminRows(t, super, " /* c */ show PGMEMO.last;", pgx.QueryExecModeSimpleProtocol)
	if err != nil || len(rows) != 1 || rows[0][0] != "off" {
		t.Errorf("SHOW pgmemo.last: %v %v", rows, err)
	}
	for _, cmd := range []string{"SHOW pgmemo.queries", "SHOW pgmemo.tables", "SHOW pgmemo.replication"} {
		if rows, err := adminRows(t, super, cmd, pgx.QueryExecModeSimpleProtocol); err != nil || len(rows) != 0 {
			t.Errorf("%s: %v %v", cmd, rows, err)
		}
	}
	if rows, err := adminRows(t, super, "SHOW pgmemo.config", pgx.QueryExecModeSimpleProtocol); err != nil || len(rows) == 0 {
		t.Errorf("SHOW pgmemo.config: %v %v", rows, err)
	}
	if _, err := super.Exec(ctx, "PGMEMO INVALIDATE ALL", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("PGMEMO INVALIDATE ALL: %v", err)
	}
	// Inside a transaction block the ReadyForQuery keeps the block's status.
	tx, err := super.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := adminRows(t, super, "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol); err != nil || len(rows) != 1 {
		t.Errorf("SHOW pgmemo.stats in a block: %v %v", rows, err)
	}
	if st := super.PgConn().TxStatus(); st != 'T' {
		t.Errorf("transaction status after a local answer in a block: %c", st)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	plain := pgxConnect(t, p.URL(pgtest.TrustUser, "", db))
	if _, err := adminRows(t, plain, "SHOW pgmemo.config", pgx.QueryExecModeSimpleProtocol); sqlState(err) != "42501" {
		t.Errorf("SHOW pgmemo.config as a plain role: %v, want 42501", err)
	}
	// Ordinary SHOWs still reach the server.
	var tz string
	if err := plain.QueryRow(ctx, "SHOW TimeZone", pgx.QueryExecModeSimpleProtocol).Scan(&tz); err != nil || tz == "" {
		t.Errorf("SHOW TimeZone: %q %v", tz, err)
	}
	var n int
	if err := plain.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Errorf("SELECT 1 after the commands: %v", err)
	}
}

// TestAdminOtherDatabases: SHOW pgmemo.tables and SHOW pgmemo.replication
// list every database to admins, and only the session's own to other roles.
func TestAdminOtherDatabases(t *testing.T) {
	p := startProxy(t, withCache())
	dbA, dbB := newDB(t), newDB(t)
	for _, db := range []string{dbA, dbB} {
		c := pgxConnect(t, p.URL("", "", db))
		mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'); GRANT SELECT ON kv TO PUBLIC")
		expect(t, c, "fill", "SELECT v FROM kv WHERE k = $1", "one", "miss-filled", 1)
	}
	databases := func(c *pgx.Conn, cmd string) map[string]bool {
		rows, err := adminRows(t, c, cmd, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		m := map[string]bool{}
		for _, r := range rows {
			m[r[0]] = true
		}
		return m
	}
	super := pgxConnect(t, p.URL("", "", dbA))
	plain := pgxConnect(t, p.URL(pgtest.TrustUser, "", dbA))
	for _, cmd := range []string{"SHOW pgmemo.tables", "SHOW pgmemo.replication"} {
		if got := databases(super, cmd); !got[dbA] || !got[dbB] {
			t.Errorf("%s as a superuser lists %v, want both databases", cmd, got)
		}
		if got := databases(plain, cmd); !got[dbA] || got[dbB] || len(got) != 1 {
			t.Errorf("%s as a plain role lists %v, want only %s", cmd, got, dbA)
		}
	}
}
