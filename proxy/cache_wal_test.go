package proxy_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/invalidate"
	"github.com/pgmemo/pgmemo/proxy"
)

// withWAL turns caching on with invalidation through logical replication.
func withWAL(o ...func(*proxy.CacheOptions)) func(*proxy.Server) {
	return withCache(append([]func(*proxy.CacheOptions){func(o *proxy.CacheOptions) { o.WAL = true }}, o...)...)
}

// showStats returns SHOW pgmemo.stats as a map.
func showStats(t testing.TB, conn *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitServing waits until conn's database is served from the cache (its
// replication stream is current).
func waitServing(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		if st := showStats(t, conn); st["replication_serving"] != "true" {
			return fmt.Errorf("not serving: %v", st)
		}
		return nil
	})
}

// eventuallyReads waits (up to 2 s) until q through the proxy returns what it
// returns directly.
func eventuallyReads(t *testing.T, viaProxy, direct *pgx.Conn, what, q string, args ...any) {
	t.Helper()
	ctx := context.Background()
	pgtest.Eventually(t, 2*time.Second, func() error {
		want := runQuery(ctx, direct, q, args...)
		got := runQuery(ctx, viaProxy, q, args...)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: %s through the proxy = %+v, directly %+v", what, q, got, want)
		}
		return nil
	})
}

// TestWALInvalidatesDirectWrites: writes that do not go through the proxy
// invalidate cached reads through the replication stream.
func TestWALInvalidatesDirectWrites(t *testing.T) {
	p := startProxy(t, withWAL())
	db := newDB(t)
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, direct, invalidate.DDLHookSQL)
	mustExec(t, direct, `CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two');
CREATE TABLE audit(id int PRIMARY KEY, n int); INSERT INTO audit VALUES (1, 0);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN UPDATE audit SET n = n + 1 WHERE id = 1; RETURN NEW; END';
CREATE TABLE trig(id int PRIMARY KEY); CREATE TRIGGER t AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION bump();
CREATE FUNCTION writer() RETURNS int VOLATILE LANGUAGE sql AS 'UPDATE audit SET n = n + 100 WHERE id = 1 RETURNING n';
CREATE TABLE parent(id int PRIMARY KEY); CREATE TABLE child(id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE);
INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);
CREATE TABLE part(id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE part1 PARTITION OF part FOR VALUES FROM (0) TO (10); INSERT INTO part VALUES (1, 1);
CREATE VIEW kv_view AS SELECT k, upper(v) AS v FROM kv;
CREATE MATERIALIZED VIEW kv_mat AS SELECT count(*) AS n FROM kv;
CREATE TABLE recreated(id int PRIMARY KEY, v text); INSERT INTO recreated VALUES (1, 'old');`)
	viaProxy := pgxConnect(t, p.URL("", "", db))
	waitServing(t, viaProxy)

	steps := []struct {
		what, query, write string
	}{
		{"update", "SELECT v FROM kv WHERE k = 1", "UPDATE kv SET v = 'uno' WHERE k = 1"},
		{"insert", "SELECT count(*) FROM kv", "INSERT INTO kv VALUES (3, 'three')"},
		{"delete", "SELECT string_agg(v, ',' ORDER BY k) FROM kv", "DELETE FROM kv WHERE k = 3"},
		{"trigger", "SELECT n FROM audit WHERE id = 1", "INSERT INTO trig VALUES (1)"},
		{"function", "SELECT n FROM audit WHERE id = 1", "SELECT writer()"},
		{"cascade", "SELECT count(*) FROM child", "DELETE FROM parent"},
		{"partition through its parent", "SELECT count(*) FROM part", "INSERT INTO part1 VALUES (2, 2)"},
		{"view over a base table", "SELECT v FROM kv_view WHERE k = 2", "UPDATE kv SET v = 'dos' WHERE k = 2"},
		{"materialized view refresh", "SELECT n FROM kv_mat", "INSERT INTO kv VALUES (4, 'four'); REFRESH MATERIALIZED VIEW kv_mat"},
		{"truncate", "SELECT count(*) FROM kv", "TRUNCATE kv CASCADE"},
		{"ALTER TABLE ADD COLUMN under SELECT *", "SELECT * FROM recreated", "ALTER TABLE recreated ADD COLUMN extra text DEFAULT 'x'"},
		{"DROP and CREATE with the same name", "SELECT * FROM recreated", "DROP TABLE recreated; CREATE TABLE recreated(id int PRIMARY KEY, w int); INSERT INTO recreated VALUES (7, 7)"},
	}
	for _, st := range steps {
		// Simple protocol: a prepared SELECT * would fail after the schema
		// changes, directly as well.
		q := st.query
		r1 := runQuery(context.Background(), viaProxy, q, pgx.QueryExecModeSimpleProtocol)
		runQuery(context.Background(), viaProxy, q, pgx.QueryExecModeSimpleProtocol)
		if l := showLast(t, viaProxy); l.Result != "hit" {
			t.Errorf("%s: before the write, %s served %+v, want hit (%+v)", st.what, q, l, r1)
		}
		mustExec(t, direct, st.write)
		eventuallyReads(t, viaProxy, direct, st.what, q, pgx.QueryExecModeSimpleProtocol)
	}
	if st := showStats(t, viaProxy); st["replication_invalidations"] == "0" {
		t.Errorf("no invalidation came from the stream: %v", st)
	}
}

// TestWALStreamLost: when the stream is lost nothing is served from the cache
// until it is current again, and no read is stale meanwhile.
func TestWALStreamLost(t *testing.T) {
	for _, tt := range []struct {
		name, slot, kill string
	}{
		{"walsender terminated", "", "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'pgmemo wal'"},
		{"persistent slot dropped", "pgmemo_lost",
			"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'pgmemo\\_lost\\_%'; " +
				"SELECT pg_sleep(0.05); SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgmemo\\_lost\\_%' AND NOT active"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, withWAL(func(o *proxy.CacheOptions) { o.ReplicationSlot = tt.slot }))
			db := newDB(t)
			direct := pgxConnect(t, directURL("", "", db))
			mustExec(t, direct, "CREATE TABLE kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0)")
			if tt.slot != "" {
				t.Cleanup(func() {
					p.Srv.Shutdown(context.Background())
					direct.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 AND NOT active", tt.slot+"_%")
				})
			}
			viaProxy := pgxConnect(t, p.URL("", "", db))
			waitServing(t, viaProxy)
			const q = "SELECT v FROM kv WHERE k = 1"
			expect(t, viaProxy, "fill", q, "0", "miss-filled")
			expect(t, viaProxy, "hit", q, "0", "hit")
			for i := 1; i <= 2; i++ {
				want := fmt.Sprint(i)
				// Kill the stream, write directly while it is down, then
				// read: the old value may be read only until the stream is
				// found lost, never after the new value was.
				mustExec(t, direct, tt.kill)
				mustExec(t, direct, "UPDATE kv SET v = $1 WHERE k = 1", i)
				pgtest.Eventually(t, 5*time.Second, func() error {
					if v, _ := served(t, viaProxy, q); v != want {
						return fmt.Errorf("after stream loss %d: read %q, want %q", i, v, want)
					}
					return nil
				})
				for j := 0; j < 20; j++ {
					if v, _ := served(t, viaProxy, q); v != want {
						t.Fatalf("read %q after %q was read", v, want)
					}
				}
				waitServing(t, viaProxy)
				expect(t, viaProxy, "caching resumes", q, want, "")
				expect(t, viaProxy, "caching resumes: hit", q, want, "hit")
			}
			st := showStats(t, viaProxy)
			if st["replication_reconnects"] == "0" {
				t.Errorf("no reconnect: %v", st)
			}
			if tt.slot != "" && st["replication_slot"] != tt.slot+"_"+db {
				t.Errorf("slot %q, want %q", st["replication_slot"], tt.slot+"_"+db)
			}
		})
	}
}

// TestWALNotAvailable: without logical WAL access (a role without
// REPLICATION) nothing is cached, and the reason is visible.
func TestWALNotAvailable(t *testing.T) {
	p := startProxy(t, withWAL(), withServiceRole(t, pgtest.TrustUser, ""))
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0)")
	for i := 0; i < 3; i++ {
		expect(t, c, "uncached", "SELECT v FROM kv WHERE k = 1", "0", "bypass")
	}
	if l := showLast(t, c); l.Reason != "replication_not_current" {
		t.Errorf("reason %q", l.Reason)
	}
	pgtest.Eventually(t, 5*time.Second, func() error {
		if st := showStats(t, c); st["replication_last_error"] == "" {
			return fmt.Errorf("no error shown: %v", st)
		}
		return nil
	})
}

// TestWALServerRestart restarts PostgreSQL under a proxy that caches, while
// clients read and write through it: the sessions end, the stream is lost, the
// clients reconnect, and no read is ever older than a write acknowledged
// through the proxy before it began, nor, after the restart, older than a
// direct write. Caching resumes under the same load.
func TestWALServerRestart(t *testing.T) {
	c := pgtest.Need(t, cluster)
	p := startProxy(t, withWAL())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, "CREATE TABLE kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0)")
	mustExec(t, setup, "CREATE TABLE hot(k int PRIMARY KEY, v text); INSERT INTO hot SELECT g, 'h' || g FROM generate_series(1, 10) g")
	const q = "SELECT v FROM kv WHERE k = 1"
	before := pgxConnect(t, p.URL("", "", db))
	waitServing(t, before)
	expect(t, before, "fill", q, "0", "miss-filled")
	expect(t, before, "hit", q, "0", "hit")

	// The load: a writer that increments v through the proxy, and readers
	// that check every read of v against the last acknowledged write and
	// also read a hot table that nobody writes (hits). Every client
	// reconnects when the restart ends its session.
	var (
		acked      atomic.Int64 // the last value whose UPDATE was acknowledged
		writeMu    sync.Mutex   // held by each write, so the test can write directly in between
		restarted  atomic.Bool
		stale      atomic.Int64
		readsAfter atomic.Int64
		hitsAfter  atomic.Int64
		errs       atomic.Int64
	)
	lctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := func(work func(ctx context.Context, conn *pgx.Conn) error) {
		defer wg.Done()
		for lctx.Err() == nil {
			conn, err := pgx.Connect(lctx, p.URL("", "", db))
			if err != nil {
				errs.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			}
			for lctx.Err() == nil {
				if err := work(lctx, conn); err != nil {
					errs.Add(1)
					break
				}
			}
			conn.Close(context.Background())
		}
	}
	wg.Add(4)
	go client(func(ctx context.Context, conn *pgx.Conn) error {
		writeMu.Lock()
		next := acked.Load() + 1
		_, err := conn.Exec(ctx, "UPDATE kv SET v = $1 WHERE k = 1", next)
		if err == nil {
			acked.Store(next)
		}
		writeMu.Unlock()
		time.Sleep(2 * time.Millisecond)
		return err
	})
	for r := 0; r < 3; r++ {
		go client(func(ctx context.Context, conn *pgx.Conn) error {
			lo := acked.Load()
			after := restarted.Load()
			var v int64
			if err := conn.QueryRow(ctx, q).Scan(&v); err != nil {
				return err
			}
			if v < lo {
				stale.Add(1)
				t.Errorf("stale read: v = %d after the write of %d was acknowledged", v, lo)
			}
			var h string
			if err := conn.QueryRow(ctx, "SELECT v FROM hot WHERE k = $1", v%10+1).Scan(&h); err != nil {
				return err
			}
			var result, reason, fp, warnings string
			if err := conn.QueryRow(ctx, "SHOW pgmemo.last", pgx.QueryExecModeSimpleProtocol).Scan(&result, &reason, &fp, &warnings); err != nil {
				return err
			}
			if after {
				readsAfter.Add(1)
				if result == "hit" {
					hitsAfter.Add(1)
				}
			}
			return nil
		})
	}
	defer func() {
		stopLoad()
		wg.Wait()
	}()
	pgtest.Eventually(t, 10*time.Second, func() error {
		if acked.Load() < 20 {
			return fmt.Errorf("only %d writes before the restart", acked.Load())
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted.Store(true)
	ackedAtRestart := acked.Load()
	// Write directly right after the restart, before the stream is back:
	// from now on no read may return an older value (the write's value is
	// larger than any the load wrote so far).
	direct := pgxConnect(t, directURL("", "", db))
	jump := ackedAtRestart + 1_000_000
	writeMu.Lock()
	mustExec(t, direct, "UPDATE kv SET v = $1 WHERE k = 1", jump)
	acked.Store(jump)
	writeMu.Unlock()
	after := pgxConnect(t, p.URL("", "", db))
	for i := 0; i < 50; i++ {
		v, _ := served(t, after, q)
		if n, _ := strconv.ParseInt(v, 10, 64); n < jump {
			t.Fatalf("read %d after the restart: %s, older than the direct write of %d", i, v, jump)
		}
	}
	waitServing(t, after)
	// Caching resumes under load: the readers get hits again.
	pgtest.Eventually(t, 10*time.Second, func() error {
		if hitsAfter.Load() < 20 || acked.Load() < jump+20 {
			return fmt.Errorf("after the restart: %d reads, %d hits, %d writes", readsAfter.Load(), hitsAfter.Load(), acked.Load()-jump)
		}
		return nil
	})
	stopLoad()
	wg.Wait()
	t.Logf("%d writes before the restart, %d after; %d reads after it, %d of them hits; %d client errors (sessions ended by the restart)",
		ackedAtRestart, acked.Load()-jump, readsAfter.Load(), hitsAfter.Load(), errs.Load())
	if stale.Load() != 0 {
		t.Errorf("%d stale reads", stale.Load())
	}
	if errs.Load() == 0 {
		t.Errorf("no client saw its session end: the restart did not happen under load")
	}
	// The last write may have committed as its client was stopped, without
	// an acknowledgement: the value is the last acknowledged one or the next.
	if v, _ := served(t, after, q); v != strconv.FormatInt(acked.Load(), 10) && v != strconv.FormatInt(acked.Load()+1, 10) {
		t.Errorf("after the load: v = %s, last acknowledged write %d", v, acked.Load())
	}
}

// TestWALIdleStop: a database's replication stream stops once it has had no
// client for WALIdleTimeout (its slot and WAL sender go away), what was cached
// from it is dropped, and the next client starts the stream again.
func TestWALIdleStop(t *testing.T) {
	p := startProxy(t, withWAL(func(o *proxy.CacheOptions) { o.WALIdleTimeout = 100 * time.Millisecond }))
	db := newDB(t)
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, direct, "CREATE TABLE kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0)")
	slots := func() int {
		var n int
		if err := direct.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND active").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const q = "SELECT v FROM kv WHERE k = 1"
	c := pgxConnect(t, p.URL("", "", db))
	waitServing(t, c)
	expect(t, c, "fill", q, "0", "miss-filled")
	expect(t, c, "hit", q, "0", "hit")
	if n := slots(); n != 1 {
		t.Fatalf("%d active slots for the database while a client is connected, want 1", n)
	}
	c.Close(context.Background())
	pgtest.Eventually(t, 15*time.Second, func() error {
		if n := slots(); n != 0 {
			return fmt.Errorf("%d active slots after the last client left", n)
		}
		return nil
	})
	// Written while nobody follows the stream: the next client must not be
	// served the old value.
	mustExec(t, direct, "UPDATE kv SET v = 1 WHERE k = 1")
	c2 := pgxConnect(t, p.URL("", "", db))
	if v, _ := served(t, c2, q); v != "1" {
		t.Fatalf("after the stream was stopped and the row written directly: read %q, want 1", v)
	}
	waitServing(t, c2)
	expect(t, c2, "after the restart", q, "1", "")
	expect(t, c2, "after the restart: hit", q, "1", "hit")
	if n := slots(); n != 1 {
		t.Errorf("%d active slots after a client came back, want 1", n)
	}
}

// TestWALOwnWritesNotInvalidatedTwice: a write through pgmemo is invalidated
// when it commits; when the replication stream then reports the same
// transaction, the result filled in between (after the commit, so fresh) is
// kept: the read after the stream caught up is a hit. Autocommit writes in
// the extended protocol, and blocks committed with a simple or an extended
// COMMIT. A relation the proxy did not know the transaction wrote (a
// trigger's) is still invalidated by the stream.
func TestWALOwnWritesNotInvalidatedTwice(t *testing.T) {
	p := startProxy(t, withWAL())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0)")
	waitServing(t, c)
	ctx := testCtx(t)
	const q = "SELECT v FROM kv WHERE k = 1"
	n := 0
	for _, tt := range []struct {
		name  string
		write func(v int) error
	}{
		{"autocommit, extended", func(v int) error {
			_, err := c.Exec(ctx, "UPDATE kv SET v = $1 WHERE k = 1", v)
			return err
		}},
		{"block, simple COMMIT", func(v int) error {
			for _, sql := range []string{"BEGIN", fmt.Sprintf("UPDATE kv SET v = %d WHERE k = 1", v), "COMMIT"} {
				if _, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
					return err
				}
			}
			return nil
		}},
		{"block, extended COMMIT", func(v int) error {
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "UPDATE kv SET v = $1 WHERE k = 1", v); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "COMMIT", pgx.QueryExecModeDescribeExec)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, c, "before", q, fmt.Sprint(n), "")
			expect(t, c, "before: hit", q, fmt.Sprint(n), "hit")
			st := showStats(t, c)
			n++
			if err := tt.write(n); err != nil {
				t.Fatal(err)
			}
			// The fill right after the write is never dropped: the stream
			// reports the transaction either before the proxy's own
			// invalidation at commit, or after it, when it is known as the
			// proxy's own.
			expect(t, c, "after the write", q, fmt.Sprint(n), "miss-filled")
			if got := showStats(t, c)["own_transactions_identified"]; got == st["own_transactions_identified"] {
				t.Errorf("the write's transaction ID was not learned (own_transactions_identified %s)", got)
			}
			before, _ := strconv.Atoi(st["replication_transactions"])
			pgtest.Eventually(t, 5*time.Second, func() error {
				if now, _ := strconv.Atoi(showStats(t, c)["replication_transactions"]); now <= before {
					return fmt.Errorf("the stream has not reported the write yet (%d transactions)", now)
				}
				return nil
			})
			waitServing(t, c)
			expect(t, c, "after the stream reported it", q, fmt.Sprint(n), "hit")
			t.Logf("relation changes skipped as the proxy's own: %s", showStats(t, c)["invalidations_wal_own_skipped"])
		})
	}
	t.Run("trigger", func(t *testing.T) {
		mustExec(t, c, `CREATE TABLE audit(id int PRIMARY KEY, n int); INSERT INTO audit VALUES (1, 0);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN UPDATE audit SET n = n + 1 WHERE id = 1; RETURN NEW; END';
CREATE TABLE trig(id int PRIMARY KEY); CREATE TRIGGER t AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION bump()`)
		waitServing(t, c)
		const a = "SELECT n FROM audit WHERE id = 1"
		expect(t, c, "fill", a, "0", "")
		expect(t, c, "hit", a, "0", "hit")
		if _, err := c.Exec(ctx, "INSERT INTO trig VALUES ($1)", 1); err != nil {
			t.Fatal(err)
		}
		expect(t, c, "after the trigger ran", a, "1", "")
	})
}
