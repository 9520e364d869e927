package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// served runs q on conn and returns its single value and how it was served.
func served(t *testing.T, conn *pgx.Conn, q string, args ...any) (string, lastInfo) {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v, showLast(t, conn)
}

// expect runs q and checks its value and how it was served ("" skips the
// check).
func expect(t *testing.T, conn *pgx.Conn, what, q, wantVal, wantServed string, args ...any) {
	t.Helper()
	v, l := served(t, conn, q, args...)
	if v != wantVal {
		t.Errorf("%s: %s = %q, want %q", what, q, v, wantVal)
	}
	if wantServed != "" && l.Result != wantServed {
		t.Errorf("%s: %s served %+v, want %s", what, q, l, wantServed)
	}
}

func TestCacheReadYourWrites(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	a := pgxConnect(t, p.URL("", "", db))
	b := pgxConnect(t, p.URL("", "", db))
	mustExec(t, a, "CREATE TABLE kv(k int PRIMARY KEY, v text)")
	mustExec(t, a, "INSERT INTO kv VALUES (1, 'one'), (2, 'two')")
	const q = "SELECT v FROM kv WHERE k = $1"

	expect(t, a, "cold", q, "one", "miss-filled", 1)
	expect(t, a, "warm", q, "one", "hit", 1)
	expect(t, b, "other session", q, "one", "hit", 1)

	// Autocommit write: both sessions see it at once.
	mustExec(t, a, "UPDATE kv SET v = 'uno' WHERE k = 1")
	expect(t, a, "after autocommit update", q, "uno", "miss-filled", 1)
	expect(t, b, "other session after update", q, "uno", "hit", 1)

	// In a block: the writer reads its own write (upstream), the other
	// session keeps the committed value until COMMIT, then sees the new one.
	mustExec(t, a, "BEGIN")
	expect(t, a, "read before write in block", q, "uno", "hit", 1)
	mustExec(t, a, "UPDATE kv SET v = 'eins' WHERE k = 1")
	expect(t, a, "own uncommitted write", q, "eins", "bypass", 1)
	expect(t, b, "other session before commit", q, "uno", "hit", 1)
	mustExec(t, a, "COMMIT")
	expect(t, b, "other session after commit", q, "eins", "miss-filled", 1)
	expect(t, a, "writer after commit", q, "eins", "hit", 1)

	// ROLLBACK leaves the cache valid.
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE kv SET v = 'rolled back' WHERE k = 1")
	expect(t, a, "own write before rollback", q, "rolled back", "bypass", 1)
	mustExec(t, a, "ROLLBACK")
	expect(t, a, "after rollback", q, "eins", "hit", 1)
	expect(t, b, "other session after rollback", q, "eins", "hit", 1)

	// A failed autocommit write invalidates nothing; a failed block neither.
	if _, err := a.Exec(context.Background(), "UPDATE kv SET k = 2 WHERE k = 1"); err == nil {
		t.Fatal("duplicate key update succeeded")
	}
	expect(t, a, "after failed update", q, "eins", "hit", 1)

	// Extended-protocol write in a pipelined batch, then reads in the same
	// batch and the next: the batch's read goes upstream, the next one sees
	// the write.
	batch := &pgx.Batch{}
	batch.Queue("UPDATE kv SET v = 'batched' WHERE k = 2")
	batch.Queue(q, 2)
	var inBatch string
	br := a.SendBatch(context.Background(), batch)
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	if err := br.QueryRow().Scan(&inBatch); err != nil {
		t.Fatal(err)
	}
	br.Close()
	if inBatch != "batched" {
		t.Errorf("read in the writing batch = %q", inBatch)
	}
	expect(t, b, "after batched write", q, "batched", "", 2)

	// Savepoint rolled back: the write after it is gone, the cache still
	// right (invalidation at commit is conservative).
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "SAVEPOINT s")
	mustExec(t, a, "UPDATE kv SET v = 'sp' WHERE k = 2")
	mustExec(t, a, "ROLLBACK TO SAVEPOINT s")
	mustExec(t, a, "COMMIT")
	expect(t, b, "after savepoint rollback", q, "batched", "", 2)

	// Multi-statement simple query with a write.
	if _, err := a.Exec(context.Background(), "UPDATE kv SET v = 'multi' WHERE k = 2; SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	expect(t, b, "after multi-statement write", q, "multi", "miss-filled", 2)

	// A multi-statement query that fails after a write rolls the write back.
	if _, err := a.Exec(context.Background(), "UPDATE kv SET v = 'never' WHERE k = 2; SELECT 1/0", pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("division by zero succeeded")
	}
	expect(t, b, "after failed multi-statement write", q, "multi", "hit", 2)
}

func TestCacheTransactionPolicy(t *testing.T) {
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')")
	const q = "SELECT v FROM kv WHERE k = $1"

	t.Run("until-write", func(t *testing.T) {
		p := startProxy(t, withCache())
		c := pgxConnect(t, p.URL("", "", db))
		expect(t, c, "fill", q, "one", "miss-filled", 1)
		mustExec(t, c, "BEGIN")
		expect(t, c, "read committed block", q, "one", "hit", 1)
		mustExec(t, c, "INSERT INTO kv VALUES (2, 'two')")
		expect(t, c, "after first write", q, "one", "bypass", 1)
		mustExec(t, c, "ROLLBACK")
		expect(t, c, "after the block", q, "one", "hit", 1)

		// A locking read is the block's first write: what it locked may
		// be newer than the cache knows (a commit elsewhere that the
		// stream has yet to report), so later reads go upstream.
		mustExec(t, c, "BEGIN")
		expect(t, c, "before the locking read", q, "one", "hit", 1)
		expect(t, c, "locking read", "SELECT v FROM kv WHERE k = $1 FOR UPDATE", "one", "miss-not-cacheable", 1)
		expect(t, c, "after the locking read", q, "one", "bypass", 1)
		mustExec(t, c, "COMMIT")

		for _, begin := range []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
			if _, err := c.Exec(context.Background(), begin, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			expect(t, c, begin, q, "one", "bypass", 1)
			mustExec(t, c, "COMMIT")
		}
		// A session default of REPEATABLE READ applies to every block.
		mustExec(t, c, "SET default_transaction_isolation = 'repeatable read'")
		mustExec(t, c, "BEGIN")
		expect(t, c, "default repeatable read", q, "one", "bypass", 1)
		mustExec(t, c, "COMMIT")
		expect(t, c, "autocommit under repeatable read default", q, "one", "", 1)
		mustExec(t, c, "RESET default_transaction_isolation")

		// A failed block goes upstream (and gets the server's error).
		mustExec(t, c, "BEGIN")
		if _, err := c.Exec(context.Background(), "SELECT 1/0"); err == nil {
			t.Fatal("no error")
		}
		if _, err := c.Exec(context.Background(), q, 1); err == nil || !strings.Contains(err.Error(), "25P02") {
			t.Errorf("read in a failed block: %v, want SQLSTATE 25P02", err)
		}
		mustExec(t, c, "ROLLBACK")
	})
	t.Run("never", func(t *testing.T) {
		p := startProxy(t, withCache(func(o *proxy.CacheOptions) { o.TxPolicy = proxy.TxNever }))
		c := pgxConnect(t, p.URL("", "", db))
		expect(t, c, "fill", q, "one", "miss-filled", 1)
		mustExec(t, c, "BEGIN")
		expect(t, c, "in a block", q, "one", "bypass", 1)
		mustExec(t, c, "COMMIT")
		expect(t, c, "after", q, "one", "hit", 1)
	})
}

// TestCacheKeyIsolation checks that results are never shared between sessions
// that could see different rows or render them differently.
func TestCacheKeyIsolation(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, `
CREATE ROLE iso_alice LOGIN; CREATE ROLE iso_bob LOGIN; CREATE ROLE iso_carol LOGIN;
CREATE TABLE docs(id int PRIMARY KEY, owner text, body text);
INSERT INTO docs VALUES (1, 'iso_alice', 'alice''s'), (2, 'iso_bob', 'bob''s');
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON docs USING (owner = current_user);
GRANT SELECT ON docs TO iso_alice, iso_bob;
GRANT iso_alice TO iso_carol;
CREATE TABLE secret(x int); INSERT INTO secret VALUES (42); GRANT SELECT ON secret TO iso_alice;
CREATE SCHEMA s1; CREATE SCHEMA s2;
CREATE TABLE s1.t(v text); CREATE TABLE s2.t(v text);
INSERT INTO s1.t VALUES ('from s1'); INSERT INTO s2.t VALUES ('from s2');
CREATE TABLE ts(at timestamptz); INSERT INTO ts VALUES ('2026-06-01 12:00:00+00');
GRANT USAGE ON SCHEMA s1, s2 TO PUBLIC; GRANT SELECT ON ALL TABLES IN SCHEMA s1, s2 TO PUBLIC; GRANT SELECT ON ts TO PUBLIC;`)
	t.Cleanup(func() {
		setup.Exec(context.Background(), "DROP OWNED BY iso_alice, iso_bob, iso_carol; DROP ROLE iso_alice, iso_bob, iso_carol")
	})
	const rlsQ = "SELECT coalesce(string_agg(body, ',' ORDER BY id), '') FROM docs"
	alice := pgxConnect(t, p.URL("iso_alice", "", db))
	bob := pgxConnect(t, p.URL("iso_bob", "", db))
	expect(t, alice, "alice fills", rlsQ, "alice's", "miss-filled")
	expect(t, alice, "alice hits", rlsQ, "alice's", "hit")
	expect(t, bob, "bob must not get alice's rows", rlsQ, "bob's", "miss-filled")

	// Privileges: bob may not read secret even when alice's result is cached.
	expect(t, alice, "alice reads secret", "SELECT x::text FROM secret", "42", "miss-filled")
	if _, err := bob.Exec(context.Background(), "SELECT x::text FROM secret"); err == nil || !strings.Contains(err.Error(), "42501") {
		t.Errorf("bob read secret: %v, want 42501", err)
	}

	// SET ROLE changes the key, RESET ROLE changes it back.
	carol := pgxConnect(t, p.URL("iso_carol", "", db))
	expect(t, carol, "carol as herself", rlsQ, "", "")
	mustExec(t, carol, "SET ROLE iso_alice")
	// (the key has the session user too: carol's own fill, not alice's)
	expect(t, carol, "carol as alice", rlsQ, "alice's", "miss-filled")
	expect(t, carol, "carol as alice again", rlsQ, "alice's", "hit")
	mustExec(t, carol, "RESET ROLE")
	expect(t, carol, "carol after RESET ROLE", rlsQ, "", "hit")
	// SET LOCAL ROLE ends with the block.
	mustExec(t, carol, "BEGIN")
	mustExec(t, carol, "SET LOCAL ROLE iso_alice")
	expect(t, carol, "carol as alice in a block", rlsQ, "alice's", "hit")
	mustExec(t, carol, "COMMIT")
	expect(t, carol, "SET LOCAL ROLE ended with its block", rlsQ, "", "hit")
	// A rolled-back SET ROLE does not stick; a committed one does.
	mustExec(t, carol, "BEGIN")
	mustExec(t, carol, "SET ROLE iso_alice")
	expect(t, carol, "SET ROLE in a block", rlsQ, "alice's", "hit")
	mustExec(t, carol, "ROLLBACK")
	expect(t, carol, "rolled-back SET ROLE", rlsQ, "", "hit")
	mustExec(t, carol, "BEGIN")
	mustExec(t, carol, "SET ROLE iso_alice")
	mustExec(t, carol, "COMMIT")
	expect(t, carol, "committed SET ROLE", rlsQ, "alice's", "hit")
	// Savepoints: ROLLBACK TO undoes the SET ROLE after it.
	mustExec(t, carol, "BEGIN")
	mustExec(t, carol, "SAVEPOINT s")
	mustExec(t, carol, "RESET ROLE")
	expect(t, carol, "RESET ROLE after a savepoint", rlsQ, "", "hit")
	mustExec(t, carol, "ROLLBACK TO SAVEPOINT s")
	expect(t, carol, "after ROLLBACK TO", rlsQ, "alice's", "hit")
	mustExec(t, carol, "COMMIT")

	// search_path: the same text reads different tables.
	const tq = "SELECT v FROM t"
	one := pgxConnect(t, p.URL("", "", db))
	two := pgxConnect(t, p.URL("", "", db))
	mustExec(t, one, "SET search_path = s1")
	mustExec(t, two, "SET search_path = s2")
	expect(t, one, "s1", tq, "from s1", "miss-filled")
	expect(t, two, "s2", tq, "from s2", "miss-filled")
	expect(t, one, "s1 again", tq, "from s1", "hit")
	expect(t, two, "s2 again", tq, "from s2", "hit")
	// A write to s2.t invalidates s2's entry only.
	mustExec(t, two, "UPDATE t SET v = 'new s2'")
	expect(t, two, "s2 after write", tq, "new s2", "miss-filled")
	expect(t, one, "s1 after write to s2", tq, "from s1", "hit")

	// TimeZone and DateStyle change how the same row is rendered.
	const tsq = "SELECT at::text FROM ts"
	utc := pgxConnect(t, p.URL("", "", db))
	tokyo := pgxConnect(t, p.URL("", "", db))
	mustExec(t, utc, "SET TimeZone = 'UTC'")
	mustExec(t, tokyo, "SET TimeZone = 'Asia/Tokyo'")
	expect(t, utc, "utc", tsq, "2026-06-01 12:00:00+00", "miss-filled")
	expect(t, tokyo, "tokyo", tsq, "2026-06-01 21:00:00+09", "miss-filled")
	expect(t, utc, "utc again", tsq, "2026-06-01 12:00:00+00", "hit")

	// set_config cannot be tracked: the session bypasses until RESET ALL.
	mustExec(t, utc, "SELECT set_config('TimeZone', $1, false)", "America/New_York")
	expect(t, utc, "after set_config", tsq, "2026-06-01 08:00:00-04", "bypass")
	mustExec(t, utc, "RESET ALL")
	var def string
	if err := setup.QueryRow(context.Background(), tsq).Scan(&def); err != nil {
		t.Fatal(err)
	}
	expect(t, utc, "after RESET ALL", tsq, def, "") // the session default, the server's TimeZone
	expect(t, utc, "after RESET ALL, again", tsq, def, "hit")
}

func TestCacheInvalidationByStatementKind(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	other := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, `CREATE TABLE a(id int PRIMARY KEY, v int); INSERT INTO a VALUES (1, 10);
CREATE TABLE audit(n int); INSERT INTO audit VALUES (0);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN UPDATE audit SET n = n + 1; RETURN NEW; END';
CREATE TABLE trig(id int); CREATE TRIGGER t AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION bump();
CREATE FUNCTION writer() RETURNS int VOLATILE LANGUAGE sql AS 'UPDATE audit SET n = n + 100 RETURNING n';
CREATE TABLE parent(id int PRIMARY KEY); CREATE TABLE child(pid int REFERENCES parent ON DELETE CASCADE);
INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);
CREATE VIEW av AS SELECT id, v * 2 AS dbl FROM a;
CREATE TABLE part(id int, k int) PARTITION BY RANGE (k);
CREATE TABLE part1 PARTITION OF part FOR VALUES FROM (0) TO (10); INSERT INTO part VALUES (1, 1);`)

	const auditQ = "SELECT n::text FROM audit"
	expect(t, other, "fill audit", auditQ, "0", "miss-filled")
	mustExec(t, c, "INSERT INTO trig VALUES (1)") // the trigger writes audit
	expect(t, other, "after trigger", auditQ, "1", "miss-filled")

	mustExec(t, c, "SELECT writer()") // a volatile function writes audit
	expect(t, other, "after volatile function", auditQ, "101", "miss-filled")

	const childQ = "SELECT count(*)::text FROM child"
	expect(t, other, "fill child", childQ, "1", "miss-filled")
	mustExec(t, c, "DELETE FROM parent") // cascades to child
	expect(t, other, "after cascade", childQ, "0", "miss-filled")

	const viewQ = "SELECT dbl::text FROM av WHERE id = 1"
	expect(t, other, "fill view", viewQ, "20", "miss-filled")
	mustExec(t, c, "UPDATE a SET v = 11")
	expect(t, other, "view after base update", viewQ, "22", "miss-filled")

	const partQ = "SELECT count(*)::text FROM part"
	expect(t, other, "fill partitioned", partQ, "1", "miss-filled")
	mustExec(t, c, "INSERT INTO part1 VALUES (2, 2)") // straight into the partition
	expect(t, other, "after write to a partition", partQ, "2", "miss-filled")

	mustExec(t, c, "TRUNCATE audit")
	expect(t, other, "after truncate", "SELECT count(*)::text FROM audit", "0", "")

	const colsQ = "SELECT * FROM a WHERE id = 1"
	// (simple protocol: a prepared SELECT * fails after ALTER TABLE, directly too)
	r1 := runQuery(context.Background(), other, colsQ, pgx.QueryExecModeSimpleProtocol)
	r1 = runQuery(context.Background(), other, colsQ, pgx.QueryExecModeSimpleProtocol)
	mustExec(t, c, "ALTER TABLE a ADD COLUMN extra text DEFAULT 'x'")
	r2 := runQuery(context.Background(), other, colsQ, pgx.QueryExecModeSimpleProtocol)
	if len(r2.Fields) != len(r1.Fields)+1 {
		t.Errorf("after ALTER TABLE: fields %v, before %v", r2.Fields, r1.Fields)
	}

	// Not cacheable: time, locking clauses, temporary tables.
	for q, reason := range map[string]string{
		"SELECT now()::text":                  "time_function:now",
		"SELECT v::text FROM a FOR UPDATE":    "locking_clause",
		"SELECT random()::text":               "volatile_function:random",
		"SELECT pg_backend_pid()::text":       "",
		"SELECT count(*)::text FROM pg_class": "system_catalog:pg_class",
	} {
		served(t, c, q)
		if l := showLast(t, c); l.Result != "miss-not-cacheable" || reason != "" && l.Reason != reason {
			t.Errorf("%s: served %+v, want miss-not-cacheable %s", q, l, reason)
		}
	}
	mustExec(t, c, "CREATE TEMP TABLE a(id int, v int)")
	mustExec(t, c, "INSERT INTO a VALUES (1, 999)")
	expect(t, c, "temp table shadows a", "SELECT v::text FROM a WHERE id = $1", "999", "miss-not-cacheable", 1)
	expect(t, other, "other session still reads public.a", "SELECT v::text FROM a WHERE id = $1", "11", "", 1)
}

// TestCacheRace has writers increment a counter through the proxy while
// readers read it through the proxy: no read may return a value older than the
// last write acknowledged before the read started.
func TestCacheRace(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, p.URL("", "", db))
	mustExec(t, setup, "CREATE TABLE counter(id int PRIMARY KEY, n bigint); INSERT INTO counter VALUES (1, 0), (2, 0)")
	var acked [3]atomic.Int64 // per row: highest value acknowledged to a writer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var reads, hits, violations atomic.Int64
	errc := make(chan error, 16)
	for w := 0; w < 2; w++ {
		conn := pgxConnect(t, p.URL("", "", db))
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			for ctx.Err() == nil {
				var n int64
				if err := conn.QueryRow(ctx, "UPDATE counter SET n = n + 1 WHERE id = $1 RETURNING n", id).Scan(&n); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				for {
					cur := acked[id].Load()
					if n <= cur || acked[id].CompareAndSwap(cur, n) {
						break
					}
				}
			}
		}(w + 1)
	}
	for r := 0; r < 6; r++ {
		mode := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}[r%3]
		conn := pgxConnect(t, p.URL("", "", db), withMode(mode))
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			id := 1 + r%2
			for ctx.Err() == nil {
				floor := acked[id].Load()
				var n int64
				if err := conn.QueryRow(ctx, "SELECT n FROM counter WHERE id = $1", id).Scan(&n); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				reads.Add(1)
				if n < floor {
					violations.Add(1)
					errc <- fmt.Errorf("row %d: read %d after %d was acknowledged", id, n, floor)
				}
			}
		}(r)
	}
	wg.Wait()
	close(errc)
	n := 0
	for err := range errc {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	st, _ := p.Srv.CacheStats()
	hits.Store(int64(st.Hits))
	t.Logf("%d reads, %d hits, %d violations, %d fills discarded", reads.Load(), hits.Load(), violations.Load(), st.FillsDiscarded)
	if reads.Load() == 0 || st.Hits == 0 {
		t.Errorf("the race did not exercise the cache: %d reads, %d hits", reads.Load(), st.Hits)
	}
}

// TestCacheMemoryBound fills far more than the cache's bound: it stays within
// it, and results stay right.
func TestCacheMemoryBound(t *testing.T) {
	const max = 2 << 20
	p := startProxy(t, withCache(func(o *proxy.CacheOptions) { o.MaxBytes = max; o.MaxEntryBytes = 64 << 10 }))
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE big(id int PRIMARY KEY, pad text); INSERT INTO big SELECT g, repeat(md5(g::text), 60) FROM generate_series(1, 5000) g")
	for i := 1; i <= 5000; i++ { // ~2 KiB per result, 10 MiB in all
		var pad string
		if err := c.QueryRow(context.Background(), "SELECT pad FROM big WHERE id = $1", i).Scan(&pad); err != nil {
			t.Fatal(err)
		}
		if len(pad) != 32*60 {
			t.Fatalf("row %d: pad of %d bytes", i, len(pad))
		}
	}
	// Entries bigger than MaxEntryBytes stream through uncached.
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM (SELECT pad FROM big WHERE id <= 100) s").Scan(&n); err != nil || n != 100 {
		t.Fatal(n, err)
	}
	rows, _ := c.Query(context.Background(), "SELECT pad FROM big WHERE id <= 100")
	for rows.Next() {
	}
	rows.Close()
	if l := showLast(t, c); l.Result != "miss-not-filled" || l.Reason != "too_large" {
		t.Errorf("a 190 KiB result: %+v, want miss-not-filled too_large", l)
	}
	var st proxyStats
	pgtestEventually(t, func() bool {
		s, _ := p.Srv.CacheStats()
		st = proxyStats(s)
		return s.Bytes <= max
	})
	if st.Fills < 4000 || st.Evictions == 0 {
		t.Errorf("stats %+v: expected thousands of fills and evictions", st)
	}
}

type proxyStats = cachecore.Stats

// pgtestEventually waits for f (the cache's evictions run asynchronously).
func pgtestEventually(t *testing.T, f func() bool) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		if f() {
			return nil
		}
		return fmt.Errorf("not yet")
	})
}
