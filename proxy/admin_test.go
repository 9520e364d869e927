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

// adminRows runs a pgmemo command and returns its rows as text.
func adminRows(t *testing.T, conn *pgx.Conn, sql string, mode pgx.QueryExecMode) ([][]string, error) {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, mode)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i], _ = v.(string)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func TestAdminCommands(t *testing.T) {
	p := startProxy(t, withCache(), func(s *proxy.Server) { s.AdminRoles = []string{pgtest.MD5User} })
	db := newDB(t)
	super := pgxConnect(t, p.URL("", "", db))
	mustExec(t, super, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two'); GRANT SELECT ON kv TO PUBLIC")
	const q = "SELECT v FROM kv WHERE k = $1"
	expect(t, super, "fill", q, "one", "miss-filled", 1)
	expect(t, super, "hit", q, "one", "hit", 1)
	fp := showLast(t, super).Fingerprint

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			rows, err := adminRows(t, super, "SHOW pgmemo.queries", mode)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rows {
				if r[1] == fp {
					found = true
					if r[0] != db || !strings.Contains(r[2], "kv") || r[3] == "0" || r[4] == "0" {
						t.Errorf("queries row %v", r)
					}
				}
			}
			if !found {
				t.Errorf("fingerprint %s not in SHOW pgmemo.queries: %v", fp, rows)
			}
			if rows, err := adminRows(t, super, "SHOW pgmemo.config", mode); err != nil || len(rows) == 0 || len(rows[0]) != 3 {
				t.Errorf("SHOW pgmemo.config: %v %v", rows, err)
			}
			if rows, err := adminRows(t, super, "SHOW pgmemo.replication", mode); err != nil || len(rows) == 0 {
				t.Errorf("SHOW pgmemo.replication: %v %v", rows, err)
			}
		})
	}

	// PGMEMO INVALIDATE QUERY, TABLE, ALL each make the next read a miss.
	for _, cmd := range []string{"PGMEMO INVALIDATE QUERY '" + fp + "'", "PGMEMO INVALIDATE TABLE kv", "pgmemo invalidate all;"} {
		expect(t, super, "warm", q, "one", "", 1)
		expect(t, super, "warm hit", q, "one", "hit", 1)
		if _, err := super.Exec(context.Background(), cmd, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		expect(t, super, "after "+cmd, q, "one", "miss-filled", 1)
	}
	// Another statement of the table survives INVALIDATE QUERY.
	expect(t, super, "other statement", "SELECT count(*)::text FROM kv", "2", "miss-filled")
	mustExec(t, super, "PGMEMO INVALIDATE QUERY '"+fp+"'", pgx.QueryExecModeSimpleProtocol)
	expect(t, super, "other statement after INVALIDATE QUERY", "SELECT count(*)::text FROM kv", "2", "hit")

	rows, err := adminRows(t, super, "SHOW pgmemo.tables", pgx.QueryExecModeSimpleProtocol)
	if err != nil || len(rows) == 0 || rows[0][1] != "public.kv" {
		t.Errorf("SHOW pgmemo.tables: %v %v", rows, err)
	}
	if _, err := super.Exec(context.Background(), "PGMEMO INVALIDATE TABLE nope", pgx.QueryExecModeSimpleProtocol); sqlState(err) != "42P01" {
		t.Errorf("unknown table: %v, want 42P01", err)
	}

	// Permissions: aggregate stats for everyone; queries, config and
	// INVALIDATE for superusers and --admin-roles only.
	plain := pgxConnect(t, p.URL(pgtest.TrustUser, "", db))
	if _, err := adminRows(t, plain, "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("SHOW pgmemo.stats as a plain role: %v", err)
	}
	for _, cmd := range []string{"SHOW pgmemo.queries", "SHOW pgmemo.config", "PGMEMO INVALIDATE ALL", "PGMEMO INVALIDATE TABLE kv", "PGMEMO INVALIDATE QUERY 'x'"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, err := adminRows(t, plain, cmd, mode)
			if sqlState(err) != "42501" {
				t.Errorf("%s as a plain role (%s): %v, want 42501", cmd, mode, err)
			}
		}
		// The connection is still usable.
		expect(t, plain, "after a denial", q, "one", "", 1)
	}
	admin := pgxConnect(t, p.URL(pgtest.MD5User, pgtest.RolePassword, db))
	if _, err := adminRows(t, admin, "SHOW pgmemo.queries", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("SHOW pgmemo.queries as an --admin-roles member: %v", err)
	}
}

func TestReports(t *testing.T) {
	p := startProxy(t, withWAL())
	db := newDB(t)
	direct := pgxConnect(t, directURL("", "", db))
	mustExec(t, direct, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')")
	c := pgxConnect(t, p.URL("", "", db))
	waitServing(t, c)
	const q = "SELECT v FROM kv WHERE k = $1"
	expect(t, c, "fill", q, "one", "miss-filled", 1)
	expect(t, c, "hit", q, "one", "hit", 1)
	mustExec(t, c, "UPDATE kv SET v = 'uno'")
	mustExec(t, direct, "UPDATE kv SET v = 'eins'")
	eventuallyReads(t, c, direct, "direct write", q, 1)

	d := p.Srv.QueryDurations()
	for _, r := range []string{"hit", "miss", "passthrough"} {
		if d[r].Count == 0 || d[r].Buckets[len(d[r].Buckets)-1] > d[r].Count {
			t.Errorf("%s durations: %+v", r, d[r])
		}
	}
	pgtest.Eventually(t, 5*time.Second, func() error {
		if h := p.Srv.InvalidationDelays(); h.Count < 2 {
			return fmt.Errorf("invalidation delays observed: %+v", h)
		}
		return nil
	})
	r := p.Srv.CacheReport()
	if r.Mode != "wal" || len(r.Databases) != 1 || r.Databases[0].Name != db || r.Databases[0].WAL == nil || !r.Databases[0].Serving {
		t.Errorf("report %+v", r)
	}
	var found bool
	for _, qr := range p.Srv.QueryReports() {
		if qr.Database == db && strings.Contains(qr.Normalized, "FROM kv WHERE k = $1") {
			found = qr.Hits >= 1 && qr.Calls >= 3 && qr.MeanUpstream > 0
		}
	}
	if !found {
		t.Errorf("query report missing or wrong: %+v", p.Srv.QueryReports())
	}
	if tr := p.Srv.TableReports(); len(tr) == 0 || tr[0].Invalidations < 2 {
		t.Errorf("table reports %+v", tr)
	}
}
