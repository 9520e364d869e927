package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// After code the proxy cannot see (a volatile user function, DO, CALL, a
// trigger), the session is checked (proxy/probe.go): if the code left the
// session as it was, the session uses the cache again after one bypassed
// read; if it changed the session (set_config, a temporary table), the
// session keeps bypassing until DISCARD ALL.

// probeSchema is the schema of the session-check tests: t holds 'x' in
// public and 'other' in schema other.
const probeSchema = `CREATE TABLE t(v text); INSERT INTO t VALUES ('x');
CREATE SCHEMA other; CREATE TABLE other.t(v text); INSERT INTO other.t VALUES ('other');
CREATE FUNCTION noop() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION set_local_path(text) RETURNS text VOLATILE LANGUAGE sql AS $$ SELECT set_config('search_path', $1, true) $$;
CREATE PROCEDURE nothing() LANGUAGE sql AS 'SELECT 1';
CREATE TABLE items(n int); CREATE TABLE audit(n int);
CREATE FUNCTION audit_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit VALUES (NEW.n); RETURN NEW; END$$;
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION audit_f();
CREATE TABLE events(n int);
CREATE FUNCTION switch_path() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('search_path', 'other', false); RETURN NEW; END$$;
CREATE TRIGGER events_path BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION switch_path()`

// probeSetup starts a caching proxy and a database holding probeSchema, and
// returns them with a direct connection to the database.
func probeSetup(t *testing.T) (*testProxy, string, *pgx.Conn) {
	t.Helper()
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, probeSchema)
	return p, db, setup
}

// expectReadmitted reads q three times after hidden code that changed
// nothing: bypassed (the check goes in front of it), a miss (the code may
// have written), a hit.
func expectReadmitted(t *testing.T, c *pgx.Conn, what, q, want string) {
	t.Helper()
	expect(t, c, what, q, want, "bypass")
	expect(t, c, what+", again", q, want, "")
	expect(t, c, what+", a third time", q, want, "hit")
}

// expectBypassing reads q n times, each bypassing the cache.
func expectBypassing(t *testing.T, c *pgx.Conn, what, q, want string, n int) {
	t.Helper()
	for i := range n {
		expect(t, c, fmt.Sprintf("%s, read %d", what, i), q, want, "bypass")
	}
}

func sessionChecks(p *testProxy) (passed, failed uint64) {
	r := p.Srv.CacheReport()
	return r.SessionChecksPassed, r.SessionChecksFailed
}

// Hidden code that changes nothing of the session: one bypassed read, then
// the cache again, in every protocol mode.
func TestCacheSessionCheckPasses(t *testing.T) {
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"prepared", pgx.QueryExecModeCacheStatement},
		{"describe", pgx.QueryExecModeCacheDescribe},
		{"exec", pgx.QueryExecModeExec},
		{"simple", pgx.QueryExecModeSimpleProtocol},
	}
	hiddenCode := []string{
		"SELECT noop()",
		"DO $$BEGIN PERFORM 1; END$$",
		"CALL nothing()",
		"SELECT set_local_path('other')", // undone when its transaction ends
		"INSERT INTO items VALUES (1)",   // a trigger that writes another table
	}
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := pgxConnect(t, p.URL("", "", db), withMode(m.mode))
			expect(t, c, "warm", q, "x", "")
			expect(t, c, "hit", q, "x", "hit")
			for i, code := range hiddenCode {
				if i == 2 {
					// A tracked change first: the check after the code
					// needs a digest taken after it.
					mustExec(t, c, "SET search_path = public")
				}
				passed, failed := sessionChecks(p)
				mustExec(t, c, code)
				expect(t, c, "after "+code, q, "x", "bypass")
				expectReason(t, c, "hidden_effects")
				expect(t, c, "after "+code+", again", q, "x", "") // the code may have written: a miss
				expect(t, c, "after "+code+", hit", q, "x", "hit")
				if p2, f2 := sessionChecks(p); p2 != passed+1 || f2 != failed {
					t.Errorf("after %s: checks passed %d->%d, failed %d->%d; want one more passed", code, passed, p2, failed, f2)
				}
			}
		})
	}
}

// A trigger that changes the session's search_path: the session does not
// read public.t's cached row under the new path, then or later.
func TestCacheTriggerChangesTheSession(t *testing.T) {
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			c := pgxConnect(t, p.URL("", "", db), withMode(mode))
			expect(t, c, "warm", q, "x", "")
			expect(t, c, "hit", q, "x", "hit")
			_, failed := sessionChecks(p)
			mustExec(t, c, "INSERT INTO public.events VALUES (1)")
			expect(t, c, "after the trigger", q, "other", "bypass")
			expectBypassing(t, c, "later", q, "other", 3)
			if _, f := sessionChecks(p); f != failed+1 {
				t.Errorf("checks failed %d->%d, want one more", failed, f)
			}
			other := pgxConnect(t, p.URL("", "", db), withMode(mode))
			expect(t, other, "another session", q, "x", "")
			mustExec(t, c, "DISCARD ALL")
			if err := c.DeallocateAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			expect(t, c, "after DISCARD ALL", q, "x", "hit")
		})
	}
}

// Hidden code and a tracked SET in one interval cannot be told apart: the
// session stays hidden. A SET in the same simple Query as the code, and a
// batch pipelined behind the code, are such cases.
func TestCacheSessionCheckAmbiguous(t *testing.T) {
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL("", "", db))
	expect(t, c, "warm", q, "x", "")
	mustExec(t, c, "SET search_path = public; SELECT noop()", pgx.QueryExecModeSimpleProtocol)
	expectBypassing(t, c, "after the code", q, "x", 3)
	mustExec(t, c, "DISCARD ALL")
	if err := c.DeallocateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "after DISCARD ALL", q, "x", "")
	expect(t, c, "after DISCARD ALL, hit", q, "x", "hit")

	// A pipeline: the code and reads in one SendBatch, then checked at the
	// next quiet moment.
	b := &pgx.Batch{}
	b.Queue("SELECT noop()")
	b.Queue(q)
	b.Queue(q)
	res := c.SendBatch(context.Background(), b)
	if _, err := res.Exec(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var v string
		if err := res.QueryRow().Scan(&v); err != nil || v != "x" {
			t.Fatalf("batch read %d: %q, %v", i, v, err)
		}
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	expectReadmitted(t, c, "after the batch", q, "x")
}

// A probe that fails (here the role may not read pg_depend) leaves the session
// bypassing, and the client sees nothing of it.
func TestCacheSessionCheckFails(t *testing.T) {
	p, db, setup := probeSetup(t)
	app := testRole(t, setup, "probe", "LOGIN")
	mustExec(t, setup, fmt.Sprintf(`GRANT USAGE ON SCHEMA other TO %[1]s; GRANT SELECT ON t, other.t TO %[1]s; GRANT EXECUTE ON FUNCTION noop() TO %[1]s;
REVOKE SELECT ON pg_catalog.pg_depend FROM PUBLIC`, app))
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL(app, "", db))
	expect(t, c, "warm", q, "x", "")
	expect(t, c, "hit", q, "x", "hit")
	_, failed := sessionChecks(p)
	for i := range 5 {
		mustExec(t, c, "SELECT noop()")
		expect(t, c, fmt.Sprintf("after the code %d", i), q, "x", "bypass")
	}
	if _, f := sessionChecks(p); f != failed+1 {
		t.Errorf("checks failed %d->%d, want one more", failed, f)
	}
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Errorf("the client after failed probes: %d, %v", n, err)
	}
}

// The check is a simple Query, which destroys the unnamed statement
// upstream: a client that binds the unnamed statement it prepared before the
// hidden code still gets its rows.
func TestCacheSessionCheckKeepsTheUnnamedStatement(t *testing.T) {
	p, db, _ := probeSetup(t)
	ctx := context.Background()
	c := pgxConnect(t, p.URL("", "", db)).PgConn()
	if _, err := c.Prepare(ctx, "", "SELECT v FROM t WHERE v = $1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "code", "SELECT noop()", nil); err != nil {
		t.Fatal(err)
	}
	passed, _ := sessionChecks(p)
	for i, want := range []string{"x", "x", "x"} {
		if i == 1 {
			if r := c.ExecPrepared(ctx, "code", nil, nil, nil).Read(); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		r := c.ExecPrepared(ctx, "", [][]byte{[]byte("x")}, nil, nil).Read()
		if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != want {
			t.Fatalf("read %d of the unnamed statement: %v, %v", i, r.Rows, r.Err)
		}
	}
	if p2, _ := sessionChecks(p); p2 != passed+1 {
		t.Errorf("checks passed %d->%d, want one more", passed, p2)
	}
}

// A statement too large for pgmemo to read (over 8 MiB) may be anything:
// it is hidden code, which the session check then judges.
func TestCacheLargeStatementIsHiddenCode(t *testing.T) {
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	pad := " /* " + strings.Repeat("x", 9<<20) + " */"
	for _, tc := range []struct {
		name, sql, after string
		passes           bool
	}{
		{"harmless", "SELECT 1" + pad, "x", true},
		{"set_config", "SELECT set_config('search_path', 'other', false)" + pad, "other", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
			expect(t, c, "warm", q, "x", "")
			expect(t, c, "hit", q, "x", "hit")
			passed, failed := sessionChecks(p)
			mustExec(t, c, tc.sql)
			expect(t, c, "after the large statement", q, tc.after, "bypass")
			expect(t, c, "again", q, tc.after, "")
			want := "bypass"
			if tc.passes {
				want = "hit"
			}
			expect(t, c, "a third time", q, tc.after, want)
			p2, f2 := sessionChecks(p)
			if tc.passes && p2 != passed+1 || !tc.passes && f2 != failed+1 {
				t.Errorf("checks passed %d->%d, failed %d->%d", passed, p2, failed, f2)
			}
		})
	}
}

// DDL in a database with event triggers of the user's runs their code: it is
// hidden code, which the session check then judges.
func TestCacheEventTriggerIsHiddenCode(t *testing.T) {
	p, db, setup := probeSetup(t)
	mustExec(t, setup, `CREATE TABLE ddl_log(tag text);
CREATE FUNCTION ev_f() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public.ddl_log VALUES (tg_tag); END$$;
CREATE EVENT TRIGGER ev ON ddl_command_end EXECUTE FUNCTION ev_f()`)
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL("", "", db))
	expect(t, c, "warm", q, "x", "")
	expect(t, c, "hit", q, "x", "hit")
	passed, failed := sessionChecks(p)
	mustExec(t, c, "CREATE TABLE scratch1(a int)")
	expectReadmitted(t, c, "after DDL that fires a harmless event trigger", q, "x")
	if p2, _ := sessionChecks(p); p2 != passed+1 {
		t.Errorf("checks passed %d->%d, want one more", passed, p2)
	}

	mustExec(t, setup, `CREATE OR REPLACE FUNCTION ev_f() RETURNS event_trigger LANGUAGE plpgsql AS
$$BEGIN PERFORM set_config('search_path', 'other', false); END$$`)
	mustExec(t, c, "CREATE TABLE public.scratch2(a int)")
	expectBypassing(t, c, "after DDL whose event trigger changed the session", q, "other", 3)
	if _, f2 := sessionChecks(p); f2 != failed+1 {
		t.Errorf("checks failed %d->%d, want one more", failed, f2)
	}
	other := pgxConnect(t, p.URL("", "", db))
	expect(t, other, "another session", q, "x", "")
}
