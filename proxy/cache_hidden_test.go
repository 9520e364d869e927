package proxy_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/invalidate"
	"github.com/pgmemo/pgmemo/proxy"
)

// Results that depend on what the proxy cannot see (row-level policies,
// settings changed inside functions, role defaults, temporary tables made by
// DO, tables truncated by cascade) are never shared or kept stale. Each test
// was first written to reproduce the gap it names, against PostgreSQL.

var testRoleSeq atomic.Int64

// testRole creates a role with attrs for the test and drops it afterwards.
func testRole(t *testing.T, setup *pgx.Conn, base, attrs string) string {
	t.Helper()
	name := fmt.Sprintf("hid_%s_%d_%d", base, testRoleSeq.Add(1), time.Now().UnixNano()%100000)
	mustExec(t, setup, "CREATE ROLE "+name+" "+attrs)
	t.Cleanup(func() {
		ctx := context.Background()
		setup.Exec(ctx, "DROP OWNED BY "+name)
		setup.Exec(ctx, "DROP ROLE "+name)
	})
	return name
}

// A policy that reads another table: the member who leaves the team must stop
// seeing the rows, so tables with row-level security are not cached.
func TestCacheRowSecurityNotCached(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	bob := testRole(t, setup, "bob", "LOGIN")
	mustExec(t, setup, fmt.Sprintf(`CREATE TABLE members(username text, team int);
CREATE TABLE docs(team int, body text);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON docs USING (team IN (SELECT team FROM members WHERE username = current_user));
GRANT SELECT ON docs, members TO %[1]s;
INSERT INTO members VALUES ('%[1]s', 1); INSERT INTO docs VALUES (1, 'secret plan');
CREATE VIEW docs_v AS SELECT body FROM docs;
GRANT SELECT ON docs_v TO %[1]s;`, bob))
	const q = "SELECT coalesce(string_agg(body, ','), '') FROM docs"
	const qv = "SELECT coalesce(string_agg(body, ','), '') FROM docs_v"
	b := pgxConnect(t, p.URL(bob, "", db))
	admin := pgxConnect(t, p.URL("", "", db))
	expect(t, b, "member", q, "secret plan", "miss-not-cacheable")
	expectReason(t, b, "row_level_security:docs")
	// The view reads docs as its owner (a superuser here, whom no policy
	// restricts), but its rows are still not cached.
	expect(t, b, "member, through a view", qv, "secret plan", "miss-not-cacheable")
	mustExec(t, admin, "DELETE FROM members WHERE username = $1", bob)
	expect(t, b, "after leaving the team", q, "", "miss-not-cacheable")

	// A policy on a setting: the same role sees different rows per session.
	mustExec(t, setup, fmt.Sprintf(`CREATE TABLE tdocs(tenant int, body text);
ALTER TABLE tdocs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_p ON tdocs USING (tenant = current_setting('app.tenant', true)::int);
GRANT SELECT ON tdocs TO %[1]s; INSERT INTO tdocs VALUES (1, 't1'), (2, 't2')`, bob))
	const qt = "SELECT coalesce(string_agg(body, ','), '') FROM tdocs"
	mustExec(t, b, "SELECT set_config('app.tenant', '1', false)")
	expect(t, b, "tenant policy", qt, "t1", "")
	if l := showLast(t, b); l.Result == "miss-filled" || l.Result == "hit" {
		t.Errorf("a read under a policy on a setting was served %+v", l)
	}
	// A policy on the role alone is cached: the key holds the role
	// (TestCacheKeyIsolation checks that roles do not share its rows).
	mustExec(t, setup, fmt.Sprintf(`CREATE TABLE mine(owner name, body text);
ALTER TABLE mine ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON mine USING (owner = current_user);
GRANT SELECT ON mine TO %[1]s; INSERT INTO mine VALUES ('%[1]s', 'mine'), ('someone', 'theirs')`, bob))
	b2 := pgxConnect(t, p.URL(bob, "", db))
	expect(t, b2, "role-only policy", "SELECT coalesce(string_agg(body, ','), '') FROM mine", "mine", "miss-filled")
}

// A volatile function that calls set_config: the session's settings are no
// longer known, so it stops using the cache, until DISCARD ALL.
func TestCacheSetConfigInFunction(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, `CREATE TABLE t(v text); INSERT INTO t VALUES ('x');
CREATE FUNCTION set_path(text) RETURNS text VOLATILE LANGUAGE sql AS $$ SELECT set_config('search_path', $1, false) $$;
CREATE SCHEMA other; CREATE TABLE other.t(v text); INSERT INTO other.t VALUES ('other')`)
	const q = "SELECT v FROM t"
	a := pgxConnect(t, p.URL("", "", db))
	b := pgxConnect(t, p.URL("", "", db))
	expect(t, b, "fill", q, "x", "miss-filled")
	expect(t, a, "hit", q, "x", "hit")
	mustExec(t, a, "SELECT set_path('other')")
	expect(t, a, "after set_config inside a function", q, "other", "bypass")
	expectReason(t, a, "hidden_effects")
	expect(t, b, "the other session", q, "x", "") // the call also invalidated the database
	expect(t, b, "the other session again", q, "x", "hit")
	mustExec(t, a, "DISCARD ALL")
	if err := a.DeallocateAll(context.Background()); err != nil { // pgx's statement cache
		t.Fatal(err)
	}
	expect(t, a, "after DISCARD ALL", q, "x", "hit")
}

// A temporary table created inside DO shadows a cached table for its session
// only: that session stops using the cache, the other keeps its hits.
func TestCacheTempTableByDO(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	a := pgxConnect(t, p.URL("", "", db))
	b := pgxConnect(t, p.URL("", "", db))
	mustExec(t, a, "CREATE TABLE shadow(v text); INSERT INTO shadow VALUES ('public')")
	const q = "SELECT v FROM shadow"
	expect(t, a, "fill", q, "public", "miss-filled")
	mustExec(t, a, "DO $$BEGIN CREATE TEMP TABLE shadow(v text); INSERT INTO shadow VALUES ('private of a'); END$$")
	expect(t, a, "a reads its temporary table", q, "private of a", "bypass")
	expect(t, b, "b reads public.shadow", q, "public", "")
	expect(t, b, "b again", q, "public", "hit")
}

// ALTER ROLE ... SET defaults are part of the key: sessions that started
// under different defaults do not share results.
func TestCacheRoleDefaultsInKey(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	app := testRole(t, setup, "ten", "LOGIN")
	mustExec(t, setup, fmt.Sprintf(`CREATE TABLE nums(x float8); INSERT INTO nums VALUES (1.0 / 3);
GRANT SELECT ON nums TO %[1]s;
ALTER ROLE %[1]s SET extra_float_digits = 0`, app))
	const q = "SELECT x::text FROM nums"
	a := pgxConnect(t, p.URL(app, "", db))
	mustExec(t, setup, fmt.Sprintf("ALTER ROLE %s SET extra_float_digits = 3", app))
	b := pgxConnect(t, p.URL(app, "", db))
	expect(t, b, "new default fills", q, "0.3333333333333333", "miss-filled")
	expect(t, a, "old default", q, "0.333333333333333", "miss-filled")
	expect(t, a, "old default again", q, "0.333333333333333", "hit")
}

// TRUNCATE ... CASCADE empties tables it does not name: the writer's next
// read of one of them is not stale.
func TestCacheTruncateCascade(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	other := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE o(id int PRIMARY KEY); CREATE TABLE oi(oid int REFERENCES o); INSERT INTO o VALUES (1); INSERT INTO oi VALUES (1)")
	const q = "SELECT count(*)::text FROM oi"
	expect(t, other, "fill", q, "1", "miss-filled")
	expect(t, c, "hit", q, "1", "hit")
	mustExec(t, c, "TRUNCATE o CASCADE")
	// The cascade fires the other tables' triggers: a session check first.
	expect(t, c, "the writer reads its own TRUNCATE", q, "0", "bypass")
	expect(t, c, "the writer again", q, "0", "miss-filled")
	expect(t, other, "the other session", q, "0", "hit")
}

// A volatile function in a schema the service role may not use is not found
// by the catalog lookups: it is taken for code that may write anything.
func TestCacheFunctionTheServiceRoleCannotSee(t *testing.T) {
	p := startProxy(t, withCache(), withServiceRole(t, pgtest.ReplUser, ""))
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, `CREATE TABLE public.kv(k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0);
CREATE SCHEMA app; REVOKE ALL ON SCHEMA app FROM PUBLIC;
CREATE FUNCTION app.bump() RETURNS int VOLATILE LANGUAGE sql AS 'UPDATE public.kv SET v = v + 1 WHERE k = 1 RETURNING v'`)
	c := pgxConnect(t, p.URL("", "", db))
	other := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "SET search_path = app, public")
	const q = "SELECT v::text FROM public.kv WHERE k = 1"
	expect(t, c, "fill", q, "0", "miss-filled")
	expect(t, c, "hit", q, "0", "hit")
	expect(t, other, "fill for another session", q, "0", "miss-filled")
	mustExec(t, c, "SELECT bump()")
	expect(t, c, "the writer reads its write", q, "1", "bypass")
	expect(t, other, "another session after the write", q, "1", "miss-filled")
}

// A materialized view is cached only where the DDL hook reports a REFRESH
// made without the proxy; the replication stream does not carry it.
func TestCacheMaterializedViewNeedsTheHook(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE base(n int); INSERT INTO base VALUES (1); CREATE MATERIALIZED VIEW mv AS SELECT count(*)::text AS n FROM base")
	const q = "SELECT n FROM mv"
	expect(t, c, "without the hook", q, "1", "miss-not-cacheable")
	expectReason(t, c, "materialized_view_without_ddl_hook:mv")
	mustExec(t, c, invalidate.DDLHookSQL) // DDL through the proxy: plans are made again
	expect(t, c, "with the hook", q, "1", "miss-filled")
	expect(t, c, "with the hook, again", q, "1", "hit")
}

// A role that loses its membership without the proxy (REVOKE straight to
// the server) stops getting the rows: the replication stream does not carry
// role changes, the poll of the access rules (roles, memberships, privileges,
// policies) finds it.
func TestCacheAccessChangedElsewhere(t *testing.T) {
	p := startProxy(t, withWAL())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	readers := testRole(t, setup, "readers", "NOLOGIN")
	carl := testRole(t, setup, "carl", "LOGIN")
	mustExec(t, setup, fmt.Sprintf("GRANT %[1]s TO %[2]s; CREATE TABLE gated(v text PRIMARY KEY); INSERT INTO gated VALUES ('gated'); GRANT SELECT ON gated TO %[1]s", readers, carl))
	c := pgxConnect(t, p.URL(carl, "", db))
	waitServing(t, c)
	const q = "SELECT v FROM gated"
	expect(t, c, "fill", q, "gated", "miss-filled")
	expect(t, c, "hit", q, "gated", "hit")
	mustExec(t, setup, fmt.Sprintf("REVOKE %s FROM %s", readers, carl))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v string
		err := c.QueryRow(context.Background(), q).Scan(&v)
		if err != nil {
			if !strings.Contains(err.Error(), "42501") {
				t.Fatalf("after the REVOKE: %v, want permission denied (42501)", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carl still reads %q 20 s after losing the membership", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := showStats(t, c)["invalidations_access"]; n == "0" || n == "" {
		t.Errorf("invalidations_access = %q", n)
	}
}

// With the DDL hook installed, a table privilege revoked directly on the
// server reaches the proxy through the replication stream, in commit order,
// without waiting for the access poll (here an hour apart).
func TestCacheAccessChangedElsewhereWithDDLHook(t *testing.T) {
	p := startProxy(t, withWAL(func(o *proxy.CacheOptions) { o.AccessCheckInterval = time.Hour }))
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	dora := testRole(t, setup, "dora", "LOGIN")
	mustExec(t, setup, invalidate.DDLHookSQL)
	mustExec(t, setup, fmt.Sprintf("CREATE TABLE gated(v text PRIMARY KEY); INSERT INTO gated VALUES ('gated'); GRANT SELECT ON gated TO %s", dora))
	c := pgxConnect(t, p.URL(dora, "", db))
	waitServing(t, c)
	const q = "SELECT v FROM gated"
	expect(t, c, "fill", q, "gated", "miss-filled")
	expect(t, c, "hit", q, "gated", "hit")
	mustExec(t, setup, fmt.Sprintf("REVOKE SELECT ON gated FROM %s", dora))
	pgtest.Eventually(t, 2*time.Second, func() error {
		var v string
		err := c.QueryRow(context.Background(), q).Scan(&v)
		if err == nil {
			return fmt.Errorf("dora still reads %q", v)
		}
		if !strings.Contains(err.Error(), "42501") {
			t.Fatalf("after the REVOKE: %v, want permission denied (42501)", err)
		}
		return nil
	})
	if n := showStats(t, c)["invalidations_access"]; n != "0" {
		t.Errorf("invalidations_access = %q: the poll, not the stream, saw it", n)
	}
}

// A user-defined operator runs its function: a VOLATILE or STABLE one (which
// may read other tables) makes the read not cacheable, as calling the
// function would; an IMMUTABLE one does not. pg_catalog's STABLE operators
// (timestamptz against date) stay cacheable: TimeZone is in the key.
func TestCacheUserOperators(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, `CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');
		CREATE TABLE allowed(k int); INSERT INTO allowed VALUES (1);
		CREATE FUNCTION vol_eq(int, int) RETURNS bool VOLATILE LANGUAGE sql AS 'SELECT $1 = $2';
		CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = vol_eq);
		CREATE FUNCTION allowed_eq(int, int) RETURNS bool STABLE LANGUAGE sql AS 'SELECT $1 = $2 AND EXISTS (SELECT FROM allowed WHERE k = $1)';
		CREATE OPERATOR =?= (LEFTARG = int, RIGHTARG = int, FUNCTION = allowed_eq);
		CREATE FUNCTION imm_eq(int, int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1 = $2';
		CREATE OPERATOR =!= (LEFTARG = int, RIGHTARG = int, FUNCTION = imm_eq)`)
	for _, tt := range []struct{ op, served, reason string }{
		{"===", "miss-not-cacheable", "volatile_function:operator(===)"},
		{"=?=", "miss-not-cacheable", "stable_function:operator(=?=)"},
		{"=!=", "hit", ""},
		{"=", "hit", ""},
	} {
		// A session that ran a VOLATILE user operator bypasses the cache
		// until DISCARD ALL (hidden_effects), as after a VOLATILE function.
		mustExec(t, c, "DISCARD ALL")
		q := "SELECT v FROM kv WHERE k " + tt.op + " 1"
		expect(t, c, "first", q, "one", "")
		expect(t, c, "again", q, "one", tt.served)
		if l := showLast(t, c); l.Reason != tt.reason && tt.reason != "" {
			t.Errorf("%s: reason %q, want %q", q, l.Reason, tt.reason)
		}
	}
	// The STABLE operator reads allowed: a change there must be seen.
	mustExec(t, c, "DISCARD ALL")
	mustExec(t, c, "DELETE FROM allowed")
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kv WHERE k =?= 1").Scan(&n); err != nil || n != 0 {
		t.Errorf("after the DELETE: %d rows, %v; want 0", n, err)
	}
	expect(t, c, "builtin stable operator", "SELECT v FROM kv WHERE now()::date < '2999-01-01'::timestamptz", "one", "")
	expect(t, c, "builtin stable operator again", "SELECT v FROM kv WHERE '2000-01-01'::date < '2999-01-01'::timestamptz", "one", "")
	expect(t, c, "builtin stable operator, cached", "SELECT v FROM kv WHERE '2000-01-01'::date < '2999-01-01'::timestamptz", "one", "hit")
}

// A search_path that names pg_catalog after another schema lets a user's
// function shadow a builtin that the analysis trusts by name: such sessions
// are not cached. Without pg_catalog in it, the builtin wins and is cached.
func TestCacheBuiltinShadowedBySearchPath(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, `CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'One');
		CREATE FUNCTION public.lower(text) RETURNS text VOLATILE LANGUAGE sql AS 'SELECT $1 || random()::text'`)
	const q = "SELECT lower(v) FROM kv WHERE k = 1"
	expect(t, c, "builtin first", q, "one", "miss-filled")
	expect(t, c, "builtin, cached", q, "one", "hit")
	mustExec(t, c, "SET search_path = public, pg_catalog")
	for _, what := range []string{"shadowed", "shadowed again"} {
		v, l := served(t, c, q)
		if v == "one" || l.Result != "miss-not-cacheable" || l.Reason != "search_path_before_pg_catalog" {
			t.Errorf("%s: %q, %+v; want the user's lower, not cached", what, v, l)
		}
	}
}

// A write made by an extension's function (dblink_exec, on another
// connection) is code pgmemo cannot see: the database's entries are dropped,
// and the next read returns the new row, with statement invalidation alone.
func TestCacheDblinkExecWrite(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	if _, err := c.Exec(context.Background(), "CREATE EXTENSION dblink"); err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), "is not available") {
			t.Skip("dblink is not installed")
		}
		t.Fatal(err)
	}
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'old')")
	const q = "SELECT v FROM kv WHERE k = 1"
	expect(t, c, "fill", q, "old", "miss-filled")
	expect(t, c, "hit", q, "old", "hit")
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=%s", cluster.Port, db, pgtest.SuperUser)
	mustExec(t, c, "SELECT dblink_exec($1, 'UPDATE kv SET v = ''new'' WHERE k = 1')", conninfo)
	// The session ran code pgmemo cannot see: it bypasses the cache.
	expect(t, c, "after dblink_exec", q, "new", "bypass")
	other := pgxConnect(t, p.URL("", "", db))
	expect(t, other, "another session", q, "new", "miss-filled")
}

// A schema of the client's search_path that the service role may not use:
// unqualified names are not cached, since the proxy would resolve them to
// another schema's table and watch the wrong one.
func TestCacheSchemaTheServiceRoleCannotUse(t *testing.T) {
	p := startProxy(t, withCache(), withServiceRole(t, pgtest.ReplUser, ""))
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, `CREATE SCHEMA app; CREATE TABLE app.t(k int PRIMARY KEY, v text); INSERT INTO app.t VALUES (1, 'app');
CREATE TABLE public.t(k int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'public');
REVOKE ALL ON SCHEMA app FROM PUBLIC`)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "SET search_path = app, public")
	expect(t, c, "unqualified", "SELECT v FROM t WHERE k = 1", "app", "miss-not-cacheable")
	expectReason(t, c, "schema_not_usable_by_service_role:app")
	expect(t, c, "qualified", "SELECT v FROM public.t WHERE k = 1", "public", "miss-filled")
}

// A configuration reload may change the server-wide value of a setting that
// shapes results but that sessions do not report (here bytea_output): the
// access poll sees the reload and drops the database's entries.
func TestCacheServerConfigReload(t *testing.T) {
	p := startProxy(t, withWAL(func(o *proxy.CacheOptions) { o.AccessCheckInterval = 100 * time.Millisecond }))
	db := newDB(t)
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, direct, `CREATE TABLE bin(id int PRIMARY KEY, b bytea); INSERT INTO bin VALUES (1, '\x0102')`)
	c := pgxConnect(t, p.URL("", "", db))
	waitServing(t, c)
	t.Cleanup(func() {
		mustExec(t, direct, "ALTER SYSTEM RESET bytea_output")
		mustExec(t, direct, "SELECT pg_reload_conf()")
	})
	const q = "SELECT b::text FROM bin"
	expect(t, c, "fill", q, `\x0102`, "miss-filled")
	expect(t, c, "hit", q, `\x0102`, "hit")
	mustExec(t, direct, "ALTER SYSTEM SET bytea_output = escape")
	mustExec(t, direct, "SELECT pg_reload_conf()")
	// The reload reaches each backend when the postmaster's signal does.
	pgtest.Eventually(t, 2*time.Second, func() error {
		if v := runQuery(context.Background(), direct, q); fmt.Sprint(v.Values) != `[[\001\002]]` {
			return fmt.Errorf("directly: %v", v.Values)
		}
		return nil
	})
	eventuallyReads(t, c, direct, "after the reload", q)
	expect(t, c, "after the reload, cached again", q, `\001\002`, "hit")
}

// Explicit casts run code: a user-defined cast's function, a domain's CHECK
// constraints. One that is VOLATILE, or user-defined and STABLE, keeps the
// result out of the cache; reg* casts read the catalog.
func TestCacheUserCasts(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, `CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');
		CREATE TABLE allowed(a int PRIMARY KEY); INSERT INTO allowed VALUES (1);
		CREATE FUNCTION is_allowed(int) RETURNS bool STABLE LANGUAGE sql AS 'SELECT EXISTS (SELECT FROM allowed WHERE a = $1)';
		CREATE DOMAIN allowed_int AS int CHECK (is_allowed(VALUE));
		CREATE DOMAIN positive AS int CHECK (VALUE > 0);
		CREATE TYPE vt AS (a int);
		CREATE FUNCTION int_to_vt(int) RETURNS vt VOLATILE LANGUAGE sql AS 'SELECT ROW($1)::vt';
		CREATE CAST (int AS vt) WITH FUNCTION int_to_vt(int)`)
	for _, tt := range []struct{ q, want, served, reason string }{
		{"SELECT (k::allowed_int)::text FROM kv", "1", "miss-not-cacheable", "stable_function:cast(allowed_int)"},
		{"SELECT (k::vt)::text FROM kv", "(1)", "miss-not-cacheable", "volatile_function:cast(vt)"},
		{"SELECT 'kv'::regclass::oid::text", "", "miss-not-cacheable", "system_catalog:regclass"},
		{"SELECT (k::positive)::text FROM kv", "1", "hit", ""},
		{"SELECT k::text || v::varchar FROM kv", "1one", "hit", ""},
	} {
		mustExec(t, c, "DISCARD ALL") // a VOLATILE user cast is hidden code, as a function is
		// The unnamed statement: DISCARD ALL drops prepared ones.
		served(t, c, tt.q, pgx.QueryExecModeExec)
		v, l := served(t, c, tt.q, pgx.QueryExecModeExec)
		if tt.want != "" && v != tt.want || l.Result != tt.served || l.Reason != tt.reason {
			t.Errorf("%s again: %q, %+v; want %q, %s %s", tt.q, v, l, tt.want, tt.served, tt.reason)
		}
	}
	// The domain's check reads allowed: a change there must be seen.
	mustExec(t, c, "DELETE FROM allowed")
	var v string
	err := c.QueryRow(context.Background(), "SELECT (k::allowed_int)::text FROM kv", pgx.QueryExecModeExec).Scan(&v)
	if err == nil || !strings.Contains(err.Error(), "23514") {
		t.Errorf("after the DELETE: %q, %v; want the domain's check_violation (23514)", v, err)
	}
}

// An implicit cast into a column's user-defined type runs its function
// without a cast in the text; a volatile one that reads another table makes
// the read's result depend on that table, so it is not cached.
func TestCacheImplicitCastNotCached(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, `CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE mapping(k int PRIMARY KEY, m mood); INSERT INTO mapping VALUES (1, 'sad');
CREATE FUNCTION int_mood(int) RETURNS mood VOLATILE LANGUAGE sql AS 'SELECT m FROM public.mapping WHERE k = $1';
CREATE CAST (int AS mood) WITH FUNCTION int_mood(int) AS IMPLICIT;
CREATE FUNCTION mood_eq(mood, mood) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1::text = $2::text';
CREATE OPERATOR public.= (LEFTARG = mood, RIGHTARG = mood, FUNCTION = mood_eq);
CREATE TABLE moods(m mood); INSERT INTO moods VALUES ('sad'), ('ok'), ('ok')`)
	const q = "SELECT count(*)::text FROM moods WHERE m = 1"
	c := pgxConnect(t, p.URL("", "", db))
	expect(t, c, "first read", q, "1", "miss-not-cacheable")
	expectReason(t, c, "implicit_cast:integer->mood")
	mustExec(t, setup, "UPDATE mapping SET m = 'ok'")
	expect(t, c, "after the mapping changed", q, "2", "miss-not-cacheable")
}

// A string the query computes, cast to a date, may spell 'today': the server
// reads the clock for it, so the read is not cached.
func TestCacheComputedDateStringNotCached(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE words(w text); INSERT INTO words VALUES ('to')")
	const q2 = "SELECT concat(w, 'day')::date::text FROM words"
	var direct string
	if err := pgxConnect(t, directURL("", "", db)).QueryRow(context.Background(), "SELECT current_date::text").Scan(&direct); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "the date it reads", q2, direct, "miss-not-cacheable")
	expectReason(t, c, "time_input:date")
}
