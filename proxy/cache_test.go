package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// withCache turns caching on.
func withCache(o ...func(*proxy.CacheOptions)) func(*proxy.Server) {
	return func(s *proxy.Server) {
		s.Cache.Enabled = true
		for _, f := range o {
			f(&s.Cache)
		}
	}
}

// lastInfo is a row of SHOW pgmemo.last.
type lastInfo struct{ Result, Reason, Fingerprint, Warnings string }

// showLast asks the connection how its previous statement was served.
func showLast(t testing.TB, conn *pgx.Conn) lastInfo {
	t.Helper()
	var l lastInfo
	// The simple protocol keeps pgx from preparing the command itself.
	err := conn.QueryRow(context.Background(), "SHOW pgmemo.last", pgx.QueryExecModeSimpleProtocol).Scan(&l.Result, &l.Reason, &l.Fingerprint, &l.Warnings)
	if err != nil {
		t.Fatalf("SHOW pgmemo.last: %v", err)
	}
	return l
}

// mustExec runs sql on conn.
// expectReason checks the reason SHOW pgmemo.last gives for conn's previous
// statement.
func expectReason(t testing.TB, conn *pgx.Conn, want string) {
	t.Helper()
	if l := showLast(t, conn); l.Reason != want {
		t.Errorf("SHOW pgmemo.last: reason %q, want %q", l.Reason, want)
	}
}

func mustExec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestCacheHitEveryPgxMode runs the same read twice in each pgx query
// execution mode: the first is a miss that fills, the second a hit, and both
// return what PostgreSQL returns directly. A write through the proxy is seen by
// the next read.
func TestCacheHitEveryPgxMode(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, "CREATE TABLE items(id int PRIMARY KEY, name text, price numeric, tags text[], at timestamptz)")
	mustExec(t, setup, "INSERT INTO items SELECT g, 'item ' || g, g * 1.5, ARRAY['a', 'b'], '2026-01-01'::timestamptz + g * interval '1 day' FROM generate_series(1, 50) g")

	for _, mode := range queryExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			viaProxy, direct := pgxPair(t, p, db, withMode(mode))
			ctx := testCtx(t)
			const q = "SELECT id, name, price, tags, at FROM items WHERE id = $1"
			for i, want := range []string{"miss-filled", "hit", "hit"} {
				got := runQuery(ctx, viaProxy, q, 7)
				diffResults(t, q, got, runQuery(ctx, direct, q, 7))
				if l := showLast(t, viaProxy); l.Result != want {
					t.Errorf("run %d: served %+v, want %s", i, l, want)
				}
			}
			logStats(t, p)
			// Another parameter is another entry.
			got := runQuery(ctx, viaProxy, q, 8)
			diffResults(t, q, got, runQuery(ctx, direct, q, 8))
			if l := showLast(t, viaProxy); l.Result != "miss-filled" {
				t.Errorf("other parameter: served %+v, want miss-filled", l)
			}
			// A write through the proxy is visible at once.
			mustExec(t, viaProxy, "UPDATE items SET name = name || '!' WHERE id = 7")
			got = runQuery(ctx, viaProxy, q, 7)
			diffResults(t, q+" after update", got, runQuery(ctx, direct, q, 7))
			if l := showLast(t, viaProxy); l.Result != "miss-filled" {
				t.Errorf("after update: served %+v, want miss-filled", l)
			}
		})
	}
}

// withServiceRole makes the proxy's service connections (catalog,
// replication) log in as user.
func withServiceRole(t testing.TB, user, password string) func(*proxy.Server) {
	up, err := proxy.ParseUpstream(cluster.URL(user, password, ""))
	if err != nil {
		t.Fatal(err)
	}
	return func(s *proxy.Server) { s.Upstream = up }
}

func logStats(t *testing.T, p *testProxy) {
	st, _ := p.Srv.CacheStats()
	t.Logf("cache stats: %+v", st)
}

// TestCacheCatalogUnavailable: when the service connection cannot log in,
// nothing is cached, but clients get correct answers and writes work.
func TestCacheCatalogUnavailable(t *testing.T) {
	p := startProxy(t, withCache(), withServiceRole(t, pgtest.PasswordUser, "wrong password"))
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')")
	for i := 0; i < 2; i++ {
		expect(t, c, "uncached read", "SELECT v FROM kv WHERE k = $1", "one", "miss-not-cacheable", 1)
		expectReason(t, c, "catalog_unavailable")
	}
	mustExec(t, c, "UPDATE kv SET v = 'uno'")
	expect(t, c, "after update", "SELECT v FROM kv WHERE k = $1", "uno", "miss-not-cacheable", 1)
}

// TestCacheHints: /* pgmemo:no-cache */, /* pgmemo:ttl=... */ and unknown
// hints, as SHOW pgmemo.last reports them.
func TestCacheHints(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')")

	const noCache = "/* pgmemo:no-cache */ SELECT v FROM kv WHERE k = $1"
	expect(t, c, "no-cache", noCache, "one", "miss-not-cacheable", 1)
	expectReason(t, c, "no_cache_hint")
	const unknown = "SELECT v FROM kv WHERE k = $1 -- pgmemo:frobnicate"
	expect(t, c, "unknown hint", unknown, "one", "miss-filled", 1)
	if l := showLast(t, c); l.Warnings != "unknown hints: frobnicate" {
		t.Errorf("unknown hint: %+v", l)
	}
	const ttl = "/* pgmemo:ttl=1s */ SELECT v FROM kv WHERE k = $1"
	expect(t, c, "ttl fill", ttl, "one", "miss-filled", 1)
	expect(t, c, "ttl hit", ttl, "one", "hit", 1)
	pgtest.Eventually(t, 10*time.Second, func() error {
		if _, l := served(t, c, ttl, 1); l.Result != "miss-filled" {
			return fmt.Errorf("still %+v", l)
		}
		return nil
	})
}

// TestCacheRules: rules by relation and by fingerprint, opt-in mode, and
// replacing the rules while serving.
func TestCacheRules(t *testing.T) {
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, "CREATE TABLE hot(k int PRIMARY KEY, v text); CREATE TABLE secret(k int PRIMARY KEY, v text); CREATE VIEW hot_view AS SELECT * FROM hot;"+
		"INSERT INTO hot VALUES (1, 'h'); INSERT INTO secret VALUES (1, 's')")
	const hotQ, secretQ, viewQ = "SELECT v FROM hot WHERE k = $1", "SELECT v FROM secret WHERE k = $1", "SELECT v FROM hot_view WHERE k = $1"

	t.Run("auto", func(t *testing.T) {
		p := startProxy(t, withCache(func(o *proxy.CacheOptions) {
			o.Rules = []proxy.Rule{{Relation: "public.secret", Action: proxy.RuleNever}, {Relation: "hot_view", Action: proxy.RuleNever}}
		}))
		c := pgxConnect(t, p.URL("", "", db))
		expect(t, c, "secret", secretQ, "s", "miss-not-cacheable", 1)
		expectReason(t, c, "rule_never")
		expect(t, c, "view", viewQ, "h", "miss-not-cacheable", 1)
		expect(t, c, "hot", hotQ, "h", "miss-filled", 1)
		expect(t, c, "hot", hotQ, "h", "hit", 1)
		fp := showLast(t, c).Fingerprint
		// Reload: now the hot statement, by fingerprint, is never cached.
		p.Srv.SetRules([]proxy.Rule{{Fingerprint: fp, Action: proxy.RuleNever}})
		expect(t, c, "hot after reload", hotQ, "h", "miss-not-cacheable", 1)
		expect(t, c, "secret after reload", secretQ, "s", "miss-filled", 1)
	})
	t.Run("opt-in", func(t *testing.T) {
		p := startProxy(t, withCache(func(o *proxy.CacheOptions) {
			o.OptIn = true
			o.Rules = []proxy.Rule{{Relation: "hot", Action: proxy.RuleCache, TTL: time.Hour}}
		}))
		c := pgxConnect(t, p.URL("", "", db))
		expect(t, c, "not named", secretQ, "s", "miss-not-cacheable", 1)
		expectReason(t, c, "opt_in_no_rule")
		expect(t, c, "named", hotQ, "h", "miss-filled", 1)
		expect(t, c, "named", hotQ, "h", "hit", 1)
	})
}

// TestCacheDescriptionAfterDDL describes the same unnamed statement again and
// again through the proxy: the repeats are answered locally (from the
// description the session keeps), until an ALTER TABLE makes that
// description stale, after which the server answers with the new columns, as
// it does directly.
func TestCacheDescriptionAfterDDL(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	conn := pgxConnect(t, p.URL("", "", db))
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, direct, "CREATE TABLE d(id int PRIMARY KEY, v int); INSERT INTO d VALUES (1, 1)")
	const q = "SELECT * FROM d WHERE id = $1"
	ctx := context.Background()
	describe := func(c *pgx.Conn) []string {
		t.Helper()
		sd, err := c.PgConn().Prepare(ctx, "", q, nil)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		var names []string
		for _, f := range sd.Fields {
			names = append(names, f.Name)
		}
		return names
	}
	describe(conn) // the server describes it; the proxy keeps the answer
	before := showStats(t, conn)
	for range 3 {
		if got := describe(conn); strings.Join(got, ",") != "id,v" {
			t.Fatalf("fields %v, want id,v", got)
		}
	}
	if n := statsDelta(t, before, showStats(t, conn), "local_batches"); n < 3 {
		t.Errorf("%d of 3 repeated descriptions answered locally", n)
	}
	// Through the proxy (it invalidates at once), on another connection, so
	// that conn's unnamed statement lives on.
	mustExec(t, pgxConnect(t, p.URL("", "", db)), "ALTER TABLE d ADD COLUMN w text")
	want := strings.Join(describe(direct), ",")
	if want != "id,v,w" {
		t.Fatalf("directly: fields %s", want)
	}
	for range 2 {
		if got := strings.Join(describe(conn), ","); got != want {
			t.Errorf("through the proxy after ALTER TABLE: fields %s, want %s", got, want)
		}
	}
}
