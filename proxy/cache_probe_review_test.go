package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// Findings of a review of the session check (proxy/probe.go), each
// reproduced against PostgreSQL before its fix.

// Hidden code that renames a temporary table so that it shadows t keeps the
// set of temporary OIDs: the digest names the objects too, so the check
// fails, and no session gets the temporary table's rows from the cache.
func TestCacheSessionCheckSeesTempRename(t *testing.T) {
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
	mustExec(t, c, "CREATE TEMP TABLE tmp_x(v text); INSERT INTO tmp_x VALUES ('temp')")
	expect(t, c, "warm", q, "x", "")
	expect(t, c, "hit", q, "x", "hit")
	mustExec(t, c, "DO $$BEGIN ALTER TABLE tmp_x RENAME TO t; END$$")
	for i := range 3 {
		expect(t, c, fmt.Sprintf("read %d after the hidden rename", i), q, "temp", "bypass")
	}
	other := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
	expect(t, other, "another session", q, "x", "")
}

// An ordinary role (not a superuser, unlike the service role) can read every
// setting the probe digests, so its checks pass.
func TestCacheSessionCheckPassesForAnOrdinaryRole(t *testing.T) {
	p, db, setup := probeSetup(t)
	app := testRole(t, setup, "app", "LOGIN")
	mustExec(t, setup, fmt.Sprintf("GRANT SELECT ON t TO %s", app))
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL(app, "", db))
	expect(t, c, "warm", q, "x", "")
	expect(t, c, "hit", q, "x", "hit")
	passed, failed := sessionChecks(p)
	mustExec(t, c, "SELECT noop()")
	expectReadmitted(t, c, "after the code", q, "x")
	if p2, f2 := sessionChecks(p); p2 != passed+1 || f2 != failed {
		t.Errorf("checks passed %d->%d, failed %d->%d; want one more passed", passed, p2, failed, f2)
	}
}

// After a Parse or a Bind too large for pgmemo to read, the server may hold
// an unnamed statement pgmemo does not know; no probe may destroy it.
func TestCacheSessionCheckKeepsAnUnknownUnnamedStatement(t *testing.T) {
	p, db, _ := probeSetup(t)
	ctx := context.Background()
	pad := strings.Repeat("x", 9<<20)
	t.Run("large Parse", func(t *testing.T) {
		c := pgxConnect(t, p.URL("", "", db)).PgConn()
		if _, err := c.Prepare(ctx, "", "SELECT v FROM t WHERE v = $1 /* "+pad+" */", nil); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			r := c.ExecPrepared(ctx, "", [][]byte{[]byte("x")}, nil, nil).Read()
			if r.Err != nil || len(r.Rows) != 1 {
				t.Errorf("execution %d of the unnamed statement: %v, %v", i, r.Rows, r.Err)
			}
		}
	})
	t.Run("large Bind", func(t *testing.T) {
		c := pgxConnect(t, p.URL("", "", db)).PgConn()
		if _, err := c.Prepare(ctx, "", "SELECT length($1::text)", nil); err != nil {
			t.Fatal(err)
		}
		for i, arg := range []string{pad, "small", "small"} {
			if r := c.ExecPrepared(ctx, "", [][]byte{[]byte(arg)}, nil, nil).Read(); r.Err != nil {
				t.Errorf("execution %d (%d bytes): %v", i, len(arg), r.Err)
			}
		}
	})
}

// A cancel that reaches the server while the probe runs in front of the
// client's statement fails the probe: pgmemo sends it again, and the
// client's statement is cancelled as it asked. The probe is held up here by
// a lock on pg_depend, so that the cancel surely lands on it.
func TestCacheCancelThatHitsTheProbe(t *testing.T) {
	p, db, setup := probeSetup(t)
	ctx := context.Background()
	c := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
	mustExec(t, c, "SELECT noop()") // hidden: the next batch carries a probe
	locker := pgxConnect(t, directURL("", "", db))
	mustExec(t, locker, "BEGIN; LOCK TABLE pg_catalog.pg_depend IN ACCESS EXCLUSIVE MODE")
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(5)")
		done <- err
	}()
	pgtest.Eventually(t, 5*time.Second, func() error {
		var n int
		if err := setup.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT pg_catalog.md5%'`).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return errors.New("the probe is not waiting for its lock yet")
		}
		return nil
	})
	if err := c.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Errorf("the client's statement after its cancel: %v, want 57014", err)
	}
	mustExec(t, locker, "ROLLBACK")
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "x" {
		t.Errorf("the session after the cancel: %q, %v", v, err)
	}
}

// DISCARD ALL undoes what hidden code did, also hidden code run while the
// session was already bypassing: afterwards, harmless code passes its check.
func TestCacheSessionCheckAfterDiscardAll(t *testing.T) {
	p, db, _ := probeSetup(t)
	const q = "SELECT v FROM t"
	c := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
	expect(t, c, "warm", q, "x", "")
	mustExec(t, c, "DO $$BEGIN PERFORM set_config('search_path', 'other', false); END$$")
	expect(t, c, "the session changed", q, "other", "bypass")
	mustExec(t, c, "SELECT public.noop()") // more hidden code while bypassing
	mustExec(t, c, "DISCARD ALL")
	_, failed := sessionChecks(p)
	expect(t, c, "after DISCARD ALL", q, "x", "")
	expect(t, c, "after DISCARD ALL, hit", q, "x", "hit")
	mustExec(t, c, "SELECT noop()")
	expectReadmitted(t, c, "after harmless code", q, "x")
	if _, f := sessionChecks(p); f != failed {
		t.Errorf("checks failed %d->%d after DISCARD ALL, want none", failed, f)
	}
}

// EXPLAIN ANALYZE and a cursor run the code of the statement they hold: a
// volatile function there is hidden code too.
func TestCacheHiddenCodeInsideExplainAndCursor(t *testing.T) {
	p, db, setup := probeSetup(t)
	mustExec(t, setup, `CREATE FUNCTION go_other() RETURNS text VOLATILE LANGUAGE sql AS $$ SELECT set_config('search_path', 'other', false) $$`)
	const q = "SELECT v FROM t"
	for _, code := range []string{
		"EXPLAIN ANALYZE SELECT go_other()",
		"BEGIN; DECLARE cur CURSOR FOR SELECT go_other(); FETCH cur; COMMIT",
	} {
		t.Run(code, func(t *testing.T) {
			c := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
			expect(t, c, "warm", q, "x", "")
			expect(t, c, "hit", q, "x", "hit")
			mustExec(t, c, code)
			expectBypassing(t, c, "after the code", q, "other", 2)
			other := pgxConnect(t, p.URL("", "", db), withMode(pgx.QueryExecModeSimpleProtocol))
			expect(t, other, "another session", q, "x", "")
		})
	}
}

// A write whose row-level policy or domain default runs a user function is
// hidden code: one that changes the session keeps it bypassing.
func TestCacheWriteRunsPolicyOrDomainDefaultCode(t *testing.T) {
	p, db, setup := probeSetup(t)
	app := testRole(t, setup, "pol", "LOGIN")
	mustExec(t, setup, fmt.Sprintf(`CREATE FUNCTION public.ok_row(int) RETURNS bool VOLATILE LANGUAGE sql AS $$ SELECT set_config('search_path', 'other', false) IS NOT NULL $$;
CREATE TABLE public.guarded(n int); ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON public.guarded FOR ALL USING (true) WITH CHECK (public.ok_row(n));
CREATE FUNCTION public.dflt() RETURNS int VOLATILE LANGUAGE sql AS $$ SELECT length(set_config('search_path', 'other', false)) $$;
CREATE DOMAIN public.dint AS int DEFAULT public.dflt();
CREATE TABLE public.domd(n int, d public.dint);
GRANT USAGE ON SCHEMA other TO %[1]s; GRANT SELECT ON t, other.t TO %[1]s; GRANT INSERT ON public.guarded, public.domd TO %[1]s`, app))
	const q = "SELECT v FROM t"
	for _, w := range []string{"INSERT INTO public.guarded VALUES (1)", "INSERT INTO public.domd(n) VALUES (1)"} {
		t.Run(w, func(t *testing.T) {
			c := pgxConnect(t, p.URL(app, "", db), withMode(pgx.QueryExecModeSimpleProtocol))
			expect(t, c, "warm", q, "x", "")
			expect(t, c, "hit", q, "x", "hit")
			mustExec(t, c, w)
			expectBypassing(t, c, "after the code", q, "other", 2)
		})
	}
}
