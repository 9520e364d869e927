package proxy_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// Real clients through a caching proxy: every test checks both what the client
// saw (against the same client connected directly to PostgreSQL) and how the
// proxy served it (SHOW pgmemo.last, SHOW pgmemo.stats).

// cacheTypesSQL creates a table of many types, with a row of NULLs, for the
// client tests.
const cacheTypesSQL = `CREATE TABLE things(id int PRIMARY KEY, name text, data bytea, at timestamptz, price numeric,
	tags text[], ints int[], ok bool, ratio float8, doc jsonb, note text);
INSERT INTO things VALUES
	(1, 'one', '\x00ff5c27'::bytea, '2026-01-02 03:04:05.123456+00', 12345678901234567890.123456789,
		ARRAY['a', 'b c', '"q"', 'x,y'], ARRAY[1, NULL, 3], true, 0.1, '{"a": [1, 2]}', 'n1'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, 'héllo ☃', ''::bytea, '-infinity', 'NaN', '{}', ARRAY[]::int[], false, 'Infinity', 'null', ''),
	(4, 'four', decode(repeat('ab', 300), 'hex'), '1999-12-31 23:59:59.999999-08', -0.000001,
		ARRAY[NULL]::text[], ARRAY[-2147483648], true, -1.5e300, '[]', 'x')`

// --- database/sql helpers --------------------------------------------------

// sqlResult is everything a database/sql client sees of one query.
type sqlResult struct {
	Cols []string // name:database type
	Rows [][]any
	Err  string
}

// collectSQL reads rows completely; times are normalised to UTC.
func collectSQL(rows *sql.Rows, err error) sqlResult {
	var r sqlResult
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		r.Err = err.Error()
		return r
	}
	for _, ct := range cts {
		r.Cols = append(r.Cols, ct.Name()+":"+ct.DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			r.Err = err.Error()
			return r
		}
		r.Rows = append(r.Rows, normalize(vals))
	}
	if err := rows.Err(); err != nil {
		r.Err = err.Error()
	}
	return r
}

// sqlQueryer is a *sql.DB or a *sql.Conn.
type sqlQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// lastFrom builds a lastInfo from SHOW pgmemo.last's columns, by name (the
// command may grow columns).
func lastFrom(t testing.TB, cols, vals []string) lastInfo {
	t.Helper()
	if len(cols) != len(vals) {
		t.Fatalf("SHOW pgmemo.last: columns %q, values %q", cols, vals)
	}
	var l lastInfo
	seen := 0
	for i, c := range cols {
		switch c {
		case "result":
			l.Result = vals[i]
		case "reason":
			l.Reason = vals[i]
		case "fingerprint":
			l.Fingerprint = vals[i]
		default:
			continue
		}
		seen++
	}
	if seen != 3 {
		t.Fatalf("SHOW pgmemo.last: columns %q lack result, reason or fingerprint", cols)
	}
	return l
}

// sqlShowLast asks how the previous statement of the connection was served.
// Without arguments lib/pq sends it as a simple Query.
func sqlShowLast(t testing.TB, q sqlQueryer) lastInfo {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), "SHOW pgmemo.last")
	if err != nil {
		t.Fatalf("SHOW pgmemo.last: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		t.Fatalf("SHOW pgmemo.last: no row (%v)", rows.Err())
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatalf("SHOW pgmemo.last: %v", err)
	}
	if rows.Next() {
		t.Fatal("SHOW pgmemo.last: more than one row")
	}
	strs := make([]string, len(vals))
	for i, v := range vals {
		strs[i] = v.String
	}
	return lastFrom(t, cols, strs)
}

// sqlConn takes one connection of db for the whole test: the statements run
// on it share a session.
func sqlConn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func diffSQL(t *testing.T, what string, viaProxy, direct sqlResult) {
	t.Helper()
	if viaProxy.Err != "" || direct.Err != "" {
		t.Errorf("%s: errors: proxy %q, direct %q", what, viaProxy.Err, direct.Err)
	}
	if !reflect.DeepEqual(viaProxy, direct) {
		t.Errorf("%s: proxy and direct results differ\nproxy:  %#v\ndirect: %#v", what, viaProxy, direct)
	}
}

// wantServed fails unless l.Result is want.
func wantServed(t *testing.T, what string, l lastInfo, want string) {
	t.Helper()
	if l.Result != want {
		t.Errorf("%s: SHOW pgmemo.last = %+v, want result %s", what, l, want)
	}
}

// TestCacheClientLibPQ runs a parameterised query with lib/pq (extended
// protocol, unnamed statements, bytea columns in binary) through a caching
// proxy: the first run fills, the next ones hit, on the same connection and on
// another, ad hoc and through prepared statements, and every result, including
// bytea, timestamptz, numeric, arrays and NULLs, is what lib/pq decodes
// directly. An UPDATE through the proxy is seen at once on both connections.
func TestCacheClientLibPQ(t *testing.T) {
	p := startProxy(t, withCache())
	dbName := newDB(t)
	ctx := testCtx(t)
	if err := cluster.Exec(ctx, dbName, cacheTypesSQL); err != nil {
		t.Fatal(err)
	}
	db := libpqOpen(t, p.URL("", "", dbName))
	direct := libpqOpen(t, directURL("", "", dbName))
	conn := sqlConn(t, db)
	const q = "SELECT id, name, data, at, price, tags, ints, ok, ratio, doc, note FROM things WHERE id <= $1 ORDER BY id"

	for i, want := range []string{"miss-filled", "hit", "hit"} {
		got := collectSQL(conn.QueryContext(ctx, q, 4))
		diffSQL(t, fmt.Sprintf("ad hoc run %d", i), got, collectSQL(direct.QueryContext(ctx, q, 4)))
		wantServed(t, fmt.Sprintf("ad hoc run %d", i), sqlShowLast(t, conn), want)
		if i == 0 {
			checkThings(t, got)
		}
	}

	// Another session of the same pool shares the entry.
	conn2 := sqlConn(t, db)
	diffSQL(t, "other connection", collectSQL(conn2.QueryContext(ctx, q, 4)), collectSQL(direct.QueryContext(ctx, q, 4)))
	wantServed(t, "other connection", sqlShowLast(t, conn2), "hit")

	// A prepared statement of the same text: same parameters, same entry.
	stmt, err := conn.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	diffSQL(t, "prepared, same parameter", collectSQL(stmt.QueryContext(ctx, 4)), collectSQL(direct.QueryContext(ctx, q, 4)))
	wantServed(t, "prepared, same parameter", sqlShowLast(t, conn), "hit")
	for i, want := range []string{"miss-filled", "hit", "hit", "hit"} {
		what := fmt.Sprintf("prepared, other parameter, run %d", i)
		diffSQL(t, what, collectSQL(stmt.QueryContext(ctx, 2)), collectSQL(direct.QueryContext(ctx, q, 2)))
		wantServed(t, what, sqlShowLast(t, conn), want)
	}

	// A pool-level prepared statement on a one-connection pool, so that SHOW
	// pgmemo.last runs on the connection that executed it.
	pool := libpqOpen(t, p.URL("", "", dbName))
	pool.SetMaxOpenConns(1)
	pstmt, err := pool.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer pstmt.Close()
	for i, want := range []string{"miss-filled", "hit", "hit"} {
		what := fmt.Sprintf("db.Prepare, run %d", i)
		diffSQL(t, what, collectSQL(pstmt.QueryContext(ctx, 3)), collectSQL(direct.QueryContext(ctx, q, 3)))
		wantServed(t, what, sqlShowLast(t, pool), want)
	}

	// A write through the proxy: the next read on another connection and on
	// the writer's own sees it.
	res, err := conn.ExecContext(ctx, "UPDATE things SET name = name || '!', price = price + 1, data = data || '\\x01'::bytea WHERE id = $1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("UPDATE affected %d rows", n)
	}
	got := collectSQL(conn2.QueryContext(ctx, q, 4))
	diffSQL(t, "other connection after update", got, collectSQL(direct.QueryContext(ctx, q, 4)))
	wantServed(t, "other connection after update", sqlShowLast(t, conn2), "miss-filled")
	if len(got.Rows) > 0 && got.Rows[0][1] != "one!" {
		t.Errorf("after update: name %#v, want \"one!\"", got.Rows[0][1])
	}
	diffSQL(t, "writer after update", collectSQL(conn.QueryContext(ctx, q, 4)), collectSQL(direct.QueryContext(ctx, q, 4)))
	wantServed(t, "writer after update", sqlShowLast(t, conn), "hit")
	diffSQL(t, "prepared after update", collectSQL(stmt.QueryContext(ctx, 2)), collectSQL(direct.QueryContext(ctx, q, 2)))
	wantServed(t, "prepared after update", sqlShowLast(t, conn), "miss-filled")
	diffSQL(t, "db.Prepare after update", collectSQL(pstmt.QueryContext(ctx, 3)), collectSQL(direct.QueryContext(ctx, q, 3)))
	wantServed(t, "db.Prepare after update", sqlShowLast(t, pool), "miss-filled")
	logStats(t, p)
}

// checkThings checks the values lib/pq decoded from the things table through
// the proxy, beyond their equality with the direct ones.
func checkThings(t *testing.T, r sqlResult) {
	t.Helper()
	if len(r.Rows) != 4 {
		t.Fatalf("%d rows, want 4: %#v", len(r.Rows), r)
	}
	r1 := r.Rows[0]
	want1 := []any{int64(1), "one", []byte{0, 0xff, 0x5c, 0x27}, time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		[]byte("12345678901234567890.123456789"), []byte(`{a,"b c","\"q\"","x,y"}`), []byte("{1,NULL,3}"), true, 0.1, []byte(`{"a": [1, 2]}`), "n1"}
	if !reflect.DeepEqual(r1, want1) {
		t.Errorf("row 1 = %#v\nwant    %#v", r1, want1)
	}
	for i, v := range r.Rows[1][1:] {
		if v != nil {
			t.Errorf("row 2 column %d = %#v, want NULL", i+1, v)
		}
	}
	if b, ok := r.Rows[3][2].([]byte); !ok || len(b) != 300 || b[0] != 0xab {
		t.Errorf("row 4 bytea = %#v, want 300 bytes of 0xab", r.Rows[3][2])
	}
}

// --- pgbench ----------------------------------------------------------------

// pgbenchCacheScript reads one of 100 accounts whose abalance was set to
// aid * 7, and makes the client fail (a division by zero in pgbench itself) if
// the value it received is another.
const pgbenchCacheScript = `\set aid random(1, 100)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid \gset
\if :abalance != :aid * 7
\set wrong_abalance_received 1 / 0
\endif
`

// statsDelta returns after-before of the counter name.
func statsDelta(t *testing.T, before, after map[string]string, name string) int64 {
	t.Helper()
	b, err1 := strconv.ParseInt(before[name], 10, 64)
	a, err2 := strconv.ParseInt(after[name], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("counter %q: before %q, after %q", name, before[name], after[name])
	}
	return a - b
}

// TestCacheClientPgbench runs a read-only custom script with pgbench through a
// caching proxy in each query mode: pgbench reports no failure (the script
// itself checks every value read), and SHOW pgmemo.stats shows that most reads
// were hits.
func TestCacheClientPgbench(t *testing.T) {
	needTool(t, "pgbench")
	db := newDB(t)
	res := runTool(t, pgbenchTimeout, "", "pgbench", "-h", "127.0.0.1", "-p", strconv.Itoa(cluster.Port), "-U", pgtest.SuperUser, "-i", "-s", "1", db)
	if res.Exit != 0 {
		t.Fatalf("pgbench -i directly: exit %d\nstdout:\n%s\nstderr:\n%s", res.Exit, res.Stdout, res.Stderr)
	}
	if err := cluster.Exec(context.Background(), db, "UPDATE pgbench_accounts SET abalance = aid * 7 WHERE aid <= 100"); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "read.sql")
	if err := os.WriteFile(script, []byte(pgbenchCacheScript), 0o644); err != nil {
		t.Fatal(err)
	}

	// The script works directly (so that a failure below is the proxy's).
	res = runTool(t, pgbenchTimeout, "", "pgbench", "-h", "127.0.0.1", "-p", strconv.Itoa(cluster.Port), "-U", pgtest.SuperUser,
		"-n", "-f", script, "-t", "20", "-c", "1", db)
	checkPgbenchReport(t, res, "simple", 20)

	const clients, perClient = 2, 300
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			p := startProxy(t, withCache())
			statsConn := pgxConnect(t, p.URL("", "", db))
			before := showStats(t, statsConn)
			res := pgbench(t, p, db, "-n", "-M", mode, "-f", script, "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(clients))
			checkPgbenchReport(t, res, mode, clients*perClient)
			after := showStats(t, statsConn)
			hits, fills := statsDelta(t, before, after, "hits"), statsDelta(t, before, after, "fills")
			t.Logf("%s: hits +%d, misses +%d, fills +%d, coalesced +%d, bypassed +%d, not_cacheable +%d, entries %s", mode, hits,
				statsDelta(t, before, after, "misses"), fills, statsDelta(t, before, after, "coalesced"),
				statsDelta(t, before, after, "bypassed"), statsDelta(t, before, after, "not_cacheable"), after["entries"])
			t.Logf("%s: local_batches +%d", mode, statsDelta(t, before, after, "local_batches"))
			reads := int64(clients * perClient)
			if hits < reads/2 {
				t.Errorf("%s: %d hits for %d reads of 100 rows, want at least %d", mode, hits, reads, reads/2)
			}
			// hits also counts the statement descriptions found in the
			// extended protocol: that Executes hit is shown by the few
			// misses (every read is a hit or a miss, none is bypassed)
			// and by the batches answered without the server.
			if n := statsDelta(t, before, after, "misses"); n >= reads/2 {
				t.Errorf("%s: %d misses for %d reads of 100 rows, want fewer than %d", mode, n, reads, reads/2)
			}
			for _, c := range []string{"bypassed", "not_cacheable", "fills_discarded"} {
				if n := statsDelta(t, before, after, c); n != 0 {
					t.Errorf("%s: %s +%d, want 0", mode, c, n)
				}
			}
			if n := statsDelta(t, before, after, "local_batches"); mode != "simple" && n < reads/2 {
				t.Errorf("%s: %d batches answered locally for %d reads, want at least %d", mode, n, reads, reads/2)
			}
			if fills < 1 {
				t.Errorf("%s: no fill", mode)
			}
			// Nothing is written: one entry per account read (and, in the
			// extended protocol, the statement's description).
			if n, err := strconv.Atoi(after["entries"]); err != nil || n < 1 || n > 101 {
				t.Errorf("%s: %q entries, want 1 to 101 (100 results and a description)", mode, after["entries"])
			}
			if n := statsDelta(t, before, after, "invalidations"); n != 0 {
				t.Errorf("%s: %d invalidations by a read-only workload", mode, n)
			}
		})
	}
}

// --- psql -------------------------------------------------------------------

// psqlChunks splits psql output at the lines "@@" that the script echoes.
func psqlChunks(out string) []string {
	return strings.Split(out, "@@\n")
}

// psqlLast parses SHOW pgmemo.last as psql printed it, unaligned or aligned,
// with headers.
func psqlLast(t *testing.T, chunk string, aligned bool) lastInfo {
	t.Helper()
	lines := strings.Split(chunk, "\n")
	i := 1
	if aligned {
		i = 2 // after the header and its underline
	}
	if len(lines) <= i {
		t.Fatalf("SHOW pgmemo.last printed %q", chunk)
	}
	split := func(line string) []string {
		f := strings.Split(line, "|")
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		return f
	}
	return lastFrom(t, split(lines[0]), split(lines[i]))
}

// TestCacheClientPsql runs a query twice in one psql session through a
// caching proxy, asking SHOW pgmemo.last after each: the first fills, the
// second hits, and psql prints exactly what it prints for the query run
// directly. After an UPDATE in the same session the query is filled again with
// the new values.
func TestCacheClientPsql(t *testing.T) {
	needTool(t, "psql")
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, cacheTypesSQL); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT id, name, data, at, price, tags, ints, ok, ratio, doc, note FROM things ORDER BY id;\n"
	for _, format := range []struct {
		name    string
		args    []string
		aligned bool
	}{
		{"unaligned", []string{"-A"}, false},
		{"aligned", nil, true},
	} {
		t.Run(format.name, func(t *testing.T) {
			p := startProxy(t, withCache())
			args := append([]string{"-v", "ON_ERROR_STOP=1"}, format.args...)
			run := func(url, script string) []string {
				t.Helper()
				res := psql(t, url, script, args...)
				if res.Exit != 0 || res.Stderr != "" {
					t.Fatalf("psql exit %d, stderr %q, stdout:\n%s", res.Exit, res.Stderr, res.Stdout)
				}
				return psqlChunks(res.Stdout)
			}
			directBefore := run(directURL("", "", db), q)
			update := fmt.Sprintf("UPDATE things SET note = 'changed by %s' WHERE id = 1;\n", format.name)
			out := run(p.URL("", "", db), q+"\\echo @@\nSHOW pgmemo.last;\n\\echo @@\n"+q+"\\echo @@\nSHOW pgmemo.last;\n\\echo @@\n"+
				update+"\\echo @@\n"+q+"\\echo @@\nSHOW pgmemo.last;\n")
			directAfter := run(directURL("", "", db), q)
			if len(out) != 7 || len(directBefore) != 1 || len(directAfter) != 1 {
				t.Fatalf("psql printed %d chunks through the proxy (want 7), %d and %d directly (want 1):\n%q", len(out), len(directBefore), len(directAfter), out)
			}
			if !strings.Contains(directBefore[0], "héllo ☃") || !strings.Contains(directBefore[0], `\x00ff5c27`) || !strings.Contains(directAfter[0], "changed by "+format.name) {
				t.Fatalf("direct output lacks the expected values:\n%s\n%s", directBefore[0], directAfter[0])
			}
			for _, c := range []struct {
				what         string
				got, want    string
				last         string
				wantResult   string
				wantSameHash bool
			}{
				{"first run", out[0], directBefore[0], out[1], "miss-filled", false},
				{"second run", out[2], directBefore[0], out[3], "hit", true},
				{"after update", out[5], directAfter[0], out[6], "miss-filled", true},
			} {
				if c.got != c.want {
					t.Errorf("%s: psql printed through the proxy:\n%s\ndirectly:\n%s", c.what, c.got, c.want)
				}
				l := psqlLast(t, c.last, format.aligned)
				wantServed(t, c.what, l, c.wantResult)
				if first := psqlLast(t, out[1], format.aligned); l.Fingerprint == "" || l.Fingerprint != first.Fingerprint {
					t.Errorf("%s: fingerprint %q, first run's %q", c.what, l.Fingerprint, first.Fingerprint)
				}
			}
			if !strings.HasPrefix(out[4], "UPDATE 1\n") {
				t.Errorf("UPDATE printed %q", out[4])
			}
		})
	}
}

// --- pgx, binary results ----------------------------------------------------

const cacheBinarySQL = `CREATE TABLE bin(id int PRIMARY KEY, price numeric, at timestamptz, big bigint, ratio float8, ok bool,
	ints int[], name text, data bytea, d date, iv interval, u uuid);
INSERT INTO bin VALUES
	(1, 12345678901234567890.123456789, '2026-01-02 03:04:05.123456+00', 9223372036854775807, 0.1, true,
		ARRAY[1, NULL, 3], 'one', '\x00ff'::bytea, '2024-02-29', '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, -0.000001, '1999-12-31 23:59:59.999999-08', -1, -1.5e300, false, ARRAY[]::int[], 'héllo ☃', ''::bytea, '0001-01-01', '-1 day', '00000000-0000-0000-0000-000000000000')`

// execParamsResult is what pgconn's ExecParams returns, with the values
// decoded by the connection's type map.
type execParamsResult struct {
	Fields []string // name:oid:format
	Raw    [][][]byte
	Values [][]any
	Tag    string
	Err    string
}

func execParams(ctx context.Context, conn *pgx.Conn, sql string, params [][]byte, oids []uint32, paramFormats, resultFormats []int16) execParamsResult {
	var r execParamsResult
	rr := conn.PgConn().ExecParams(ctx, sql, params, oids, paramFormats, resultFormats)
	fds := append([]pgconn.FieldDescription(nil), rr.FieldDescriptions()...)
	res := rr.Read()
	if res.Err != nil {
		r.Err = errText(res.Err)
		return r
	}
	for _, f := range fds {
		r.Fields = append(r.Fields, fmt.Sprintf("%s:%d:%d", f.Name, f.DataTypeOID, f.Format))
	}
	m := conn.TypeMap()
	for _, row := range res.Rows {
		r.Raw = append(r.Raw, row)
		vals := make([]any, len(row))
		for i, v := range row {
			if v == nil {
				continue
			}
			typ, ok := m.TypeForOID(fds[i].DataTypeOID)
			if !ok {
				r.Err = fmt.Sprintf("no type for OID %d", fds[i].DataTypeOID)
				return r
			}
			dv, err := typ.Codec.DecodeValue(m, fds[i].DataTypeOID, fds[i].Format, v)
			if err != nil {
				r.Err = fmt.Sprintf("column %s: %v", fds[i].Name, err)
				return r
			}
			vals[i] = dv
		}
		r.Values = append(r.Values, normalize(vals))
	}
	r.Tag = res.CommandTag.String()
	return r
}

// TestCacheClientPgxBinary: pgx asks for binary results of the types it knows
// (int, numeric, timestamptz...); such a query is a hit on its second run and
// decodes to the same Go values as directly. pgconn's ExecParams with explicit
// result formats, mixed text and binary, gets each column in the format it
// asked for, and each combination of formats is an entry of its own.
func TestCacheClientPgxBinary(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	ctx := testCtx(t)
	if err := cluster.Exec(ctx, db, cacheBinarySQL); err != nil {
		t.Fatal(err)
	}
	viaProxy, direct := pgxPair(t, p, db)
	const q = "SELECT id, price, at, big, ratio, ok, ints, name, data, d, iv, u FROM bin WHERE id >= $1 ORDER BY id"

	t.Run("pgx default mode", func(t *testing.T) {
		for i, want := range []string{"miss-filled", "hit", "hit"} {
			got := runQuery(ctx, viaProxy, q, 1)
			diffResults(t, fmt.Sprintf("run %d", i), got, runQuery(ctx, direct, q, 1))
			wantServed(t, fmt.Sprintf("run %d", i), showLast(t, viaProxy), want)
			if len(got.Fields) != 12 || len(got.Values) != 3 {
				t.Fatalf("run %d: fields %v, %d rows, error %q", i, got.Fields, len(got.Values), got.Err)
			}
			// id, price, at, big: binary.
			for _, c := range []int{0, 1, 2, 3} {
				if !strings.HasSuffix(got.Fields[c], ":1") {
					t.Errorf("run %d: field %s not in binary format", i, got.Fields[c])
				}
			}
			if tm, ok := got.Values[0][2].(time.Time); !ok || !tm.Equal(time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)) {
				t.Errorf("run %d: at = %#v", i, got.Values[0][2])
			}
			if got.Values[0][3] != int64(9223372036854775807) || got.Values[1][3] != nil {
				t.Errorf("run %d: big = %#v, %#v", i, got.Values[0][3], got.Values[1][3])
			}
		}
	})

	n := 12
	alt := func(first int16) []int16 {
		f := make([]int16, n)
		for i := range f {
			f[i] = (first + int16(i)) % 2
		}
		return f
	}
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name          string
		params        [][]byte
		oids          []uint32
		paramFormats  []int16
		resultFormats []int16
	}{
		{"mixed, text first", [][]byte{[]byte("1")}, nil, nil, alt(0)},
		{"mixed, binary first", [][]byte{[]byte("1")}, nil, nil, alt(1)},
		{"one binary code for all", [][]byte{[]byte("1")}, nil, nil, []int16{1}},
		{"no codes: text", [][]byte{[]byte("1")}, nil, nil, nil},
		{"binary parameter, mixed results", [][]byte{be32(1)}, []uint32{23}, []int16{1}, alt(0)},
	} {
		t.Run("ExecParams "+tc.name, func(t *testing.T) {
			// The format each column must arrive in.
			want := tc.resultFormats
			if len(want) <= 1 {
				want = make([]int16, n)
				for i := range want {
					if len(tc.resultFormats) == 1 {
						want[i] = tc.resultFormats[0]
					}
				}
			}
			for i, served := range []string{"miss-filled", "hit", "hit"} {
				what := fmt.Sprintf("run %d", i)
				got := execParams(ctx, viaProxy, q, tc.params, tc.oids, tc.paramFormats, tc.resultFormats)
				d := execParams(ctx, direct, q, tc.params, tc.oids, tc.paramFormats, tc.resultFormats)
				if !reflect.DeepEqual(got, d) {
					t.Errorf("%s: proxy and direct results differ\nproxy:  %+v\ndirect: %+v", what, got, d)
				}
				wantServed(t, what, showLast(t, viaProxy), served)
				if len(got.Fields) != n || len(got.Raw) != 3 || got.Tag != "SELECT 3" {
					t.Fatalf("%s: fields %v, %d rows, tag %q, error %q", what, got.Fields, len(got.Raw), got.Tag, got.Err)
				}
				for c, f := range got.Fields {
					if !strings.HasSuffix(f, ":"+strconv.Itoa(int(want[c]))) {
						t.Errorf("%s: field %s, want format %d", what, f, want[c])
					}
				}
			}
		})
	}
}

// --- row limits ---------------------------------------------------------------

// rawPG is a protocol-level client connection.
type rawPG struct {
	t    testing.TB
	conn net.Conn
	fe   *pgproto3.Frontend
}

func rawConnect(t testing.TB, addr, db string) *rawPG {
	t.Helper()
	conn := dialProxy(t, addr)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fe, _ := rawStartup(t, conn, map[string]string{"database": db})
	return &rawPG{t: t, conn: conn, fe: fe}
}

// summarize renders a backend message for comparison.
func summarize(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		var f []string
		for _, d := range m.Fields {
			f = append(f, fmt.Sprintf("%s:%d:%d:%d:%d:%d:%d", d.Name, d.TableOID, d.TableAttributeNumber, d.DataTypeOID, d.DataTypeSize, d.TypeModifier, d.Format))
		}
		return "RowDescription " + strings.Join(f, " ")
	case *pgproto3.DataRow:
		var v []string
		for _, c := range m.Values {
			if c == nil {
				v = append(v, "NULL")
			} else {
				v = append(v, fmt.Sprintf("%q", c))
			}
		}
		return "DataRow " + strings.Join(v, " ")
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag)
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus)
	case *pgproto3.ErrorResponse:
		return "ErrorResponse " + m.Code + " " + m.Message
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs)
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3.")
}

// roundTrip sends msgs and reads the answers: up to ReadyForQuery when the
// last message is Sync or Query, else up to the end of the last Execute
// (PortalSuspended, CommandComplete, EmptyQueryResponse or ErrorResponse).
func (r *rawPG) roundTrip(msgs ...pgproto3.FrontendMessage) []string {
	r.t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
	var wantReady bool
	switch msgs[len(msgs)-1].(type) {
	case *pgproto3.Sync, *pgproto3.Query:
		wantReady = true
	}
	return r.receiveUntil(func(msg pgproto3.BackendMessage) bool {
		switch msg.(type) {
		case *pgproto3.ReadyForQuery:
			return true
		case *pgproto3.PortalSuspended, *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse, *pgproto3.ErrorResponse:
			return !wantReady
		}
		return false
	})
}

// receiveUntil reads answers, summarized, up to the first for which last
// reports true.
func (r *rawPG) receiveUntil(last func(pgproto3.BackendMessage) bool) []string {
	r.t.Helper()
	var out []string
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("after %d answers %q: %v", len(out), out, err)
		}
		out = append(out, summarize(msg))
		if last(msg) {
			return out
		}
	}
}

// showLast asks the proxy how the previous statement was served.
func (r *rawPG) showLast() lastInfo {
	r.t.Helper()
	r.fe.Send(&pgproto3.Query{String: "SHOW pgmemo.last"})
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
	var cols, vals []string
	rows := 0
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("SHOW pgmemo.last: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			for _, f := range m.Fields {
				cols = append(cols, string(f.Name))
			}
		case *pgproto3.DataRow:
			rows++
			for _, v := range m.Values {
				vals = append(vals, string(v))
			}
		case *pgproto3.ErrorResponse:
			r.t.Fatalf("SHOW pgmemo.last: %s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			if rows != 1 {
				r.t.Fatalf("SHOW pgmemo.last: %d rows", rows)
			}
			return lastFrom(r.t, cols, vals)
		}
	}
}

// TestCacheClientRowLimit executes portals with a row limit (Execute with
// max_rows, and cursors with FETCH through pgx) through a caching proxy: each
// chunk is what PostgreSQL returns directly, a row-limited Execute is never
// reported as a hit, and no chunk of a portal ever fills the cache (the full
// query afterwards returns every row).
func TestCacheClientRowLimit(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE rl(id int PRIMARY KEY, v text); INSERT INTO rl SELECT g, 'row ' || g FROM generate_series(1, 6) g"); err != nil {
		t.Fatal(err)
	}

	t.Run("Execute max_rows", func(t *testing.T) {
		viaProxy := rawConnect(t, p.Addr, db)
		direct := rawConnect(t, fmt.Sprintf("127.0.0.1:%d", cluster.Port), db)
		const q = "SELECT id, v FROM rl WHERE id <= $1 ORDER BY id"
		parse := &pgproto3.Parse{Query: q}
		bind := func(portal, limit string) *pgproto3.Bind {
			return &pgproto3.Bind{DestinationPortal: portal, Parameters: [][]byte{[]byte(limit)}, ResultFormatCodes: []int16{1, 0}}
		}
		describe := func(portal string) *pgproto3.Describe { return &pgproto3.Describe{ObjectType: 'P', Name: portal} }
		exec := func(portal string, max uint32) *pgproto3.Execute {
			return &pgproto3.Execute{Portal: portal, MaxRows: max}
		}
		sync, flush := &pgproto3.Sync{}, &pgproto3.Flush{}
		// step sends msgs both ways, requires the same answers and
		// returns the proxy's.
		step := func(what string, msgs ...pgproto3.FrontendMessage) []string {
			t.Helper()
			got, want := viaProxy.roundTrip(msgs...), direct.roundTrip(msgs...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: answers differ\nproxy:  %q\ndirect: %q", what, got, want)
			}
			return got
		}
		// notHit requires that the previous statement is not reported a
		// hit.
		notHit := func(what string) lastInfo {
			t.Helper()
			l := viaProxy.showLast()
			if l.Result == "hit" || l.Result == "none" || l.Result == "" {
				t.Errorf("%s: SHOW pgmemo.last = %+v, want a miss (row-limited Execute)", what, l)
			}
			return l
		}
		rowsIn := func(out []string) int {
			n := 0
			for _, s := range out {
				if strings.HasPrefix(s, "DataRow ") {
					n++
				}
			}
			return n
		}

		// Cold: two rows of five, then the portal is suspended.
		out := step("row-limited, cold", parse, bind("", "5"), describe(""), exec("", 2), sync)
		if rowsIn(out) != 2 || out[len(out)-2] != "PortalSuspended" {
			t.Errorf("row-limited, cold: %q, want 2 rows and PortalSuspended", out)
		}
		if l := notHit("row-limited, cold"); l.Result != "miss-not-cacheable" || l.Reason != "row_limit" {
			t.Errorf("row-limited, cold: SHOW pgmemo.last = %+v, want miss-not-cacheable/row_limit", l)
		}
		// The same Bind executed in full: nothing was filled by the chunk.
		for i, served := range []string{"miss-filled", "hit"} {
			what := fmt.Sprintf("full execute %d", i)
			out := step(what, parse, bind("", "5"), describe(""), exec("", 0), sync)
			if rowsIn(out) != 5 {
				t.Errorf("%s: %q, want 5 rows", what, out)
			}
			wantServed(t, what, viaProxy.showLast(), served)
		}
		// Warm: the cached full result must not answer a row-limited
		// Execute.
		out = step("row-limited, warm", parse, bind("", "5"), describe(""), exec("", 2), sync)
		if rowsIn(out) != 2 || out[len(out)-2] != "PortalSuspended" {
			t.Errorf("row-limited, warm: %q, want 2 rows and PortalSuspended", out)
		}
		notHit("row-limited, warm")
		out = step("limit above the row count, warm", parse, bind("", "5"), describe(""), exec("", 10), sync)
		if rowsIn(out) != 5 || out[len(out)-2] != "CommandComplete SELECT 5" {
			t.Errorf("limit above the row count, warm: %q, want 5 rows and SELECT 5", out)
		}
		notHit("limit above the row count, warm")

		// A portal read in chunks, Flush between them, in the implicit
		// transaction; then the full query.
		out1 := step("chunk 1 of 3", parse, bind("", "4"), describe(""), exec("", 2), flush)
		out2 := step("chunk 2 of 3", exec("", 1), flush)
		out3 := step("chunk 3 of 3", exec("", 0), sync)
		if rowsIn(out1) != 2 || rowsIn(out2) != 1 || rowsIn(out3) != 1 {
			t.Errorf("chunks: %q, %q, %q; want 2, 1 and 1 rows", out1, out2, out3)
		}
		if l := notHit("after the last chunk"); l.Result == "miss-filled" {
			t.Errorf("after the last chunk: SHOW pgmemo.last = %+v: the rest of a suspended portal filled the cache", l)
		}
		out = step("full execute after chunks", parse, bind("", "4"), describe(""), exec("", 0), sync)
		if rowsIn(out) != 4 {
			t.Errorf("full execute after chunks: %q, want 4 rows", out)
		}
		wantServed(t, "full execute after chunks", viaProxy.showLast(), "miss-filled")

		// The same in a transaction block, with a named portal that
		// outlives the Syncs.
		step("BEGIN", &pgproto3.Query{String: "BEGIN"})
		out1 = step("in a block, chunk 1 of 2", parse, bind("p1", "3"), describe("p1"), exec("p1", 2), sync)
		notHit("in a block, chunk 1 of 2")
		out2 = step("in a block, chunk 2 of 2", exec("p1", 0), sync)
		if rowsIn(out1) != 2 || rowsIn(out2) != 1 {
			t.Errorf("chunks in a block: %q, %q; want 2 and 1 rows", out1, out2)
		}
		if l := notHit("in a block, after the last chunk"); l.Result == "miss-filled" {
			t.Errorf("in a block, after the last chunk: SHOW pgmemo.last = %+v: the rest of a suspended portal filled the cache", l)
		}
		step("COMMIT", &pgproto3.Query{String: "COMMIT"})
		for i, served := range []string{"miss-filled", "hit"} {
			what := fmt.Sprintf("full execute %d after chunks in a block", i)
			out := step(what, parse, bind("", "3"), describe(""), exec("", 0), sync)
			if rowsIn(out) != 3 {
				t.Errorf("%s: %q, want 3 rows", what, out)
			}
			wantServed(t, what, viaProxy.showLast(), served)
		}
	})

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run("pgx cursor "+mode.String(), func(t *testing.T) {
			viaProxy, direct := pgxPair(t, p, db, withMode(mode))
			ctx := testCtx(t)
			const q = "SELECT id, v FROM rl WHERE id <= $1 ORDER BY id"
			// Warm the cache with the cursor's query.
			for i, served := range []string{"miss-filled", "hit"} {
				diffResults(t, "warm up", runQuery(ctx, viaProxy, q, 5), runQuery(ctx, direct, q, 5))
				wantServed(t, fmt.Sprintf("warm up %d", i), showLast(t, viaProxy), served)
			}
			for round := 0; round < 2; round++ {
				for _, c := range []*pgx.Conn{viaProxy, direct} {
					mustExec(t, c, "BEGIN")
					if _, err := c.Exec(ctx, "DECLARE c CURSOR FOR SELECT id, v FROM rl WHERE id <= $1 ORDER BY id", 5); err != nil {
						t.Fatal(err)
					}
				}
				var total int
				for i, fetch := range []string{"FETCH 2 FROM c", "FETCH 2 FROM c", "FETCH 2 FROM c", "FETCH ALL FROM c"} {
					what := fmt.Sprintf("round %d, %s #%d", round, fetch, i)
					got := runQuery(ctx, viaProxy, fetch)
					diffResults(t, what, got, runQuery(ctx, direct, fetch))
					total += len(got.Values)
					if l := showLast(t, viaProxy); l.Result == "hit" || l.Result == "none" {
						t.Errorf("%s: SHOW pgmemo.last = %+v, want a miss", what, l)
					}
				}
				if total != 5 {
					t.Errorf("round %d: the cursor returned %d rows in all, want 5", round, total)
				}
				for _, c := range []*pgx.Conn{viaProxy, direct} {
					mustExec(t, c, "COMMIT")
				}
			}
			diffResults(t, "after the cursors", runQuery(ctx, viaProxy, q, 5), runQuery(ctx, direct, q, 5))
			if l := showLast(t, viaProxy); l.Result != "hit" && l.Result != "miss-filled" {
				t.Errorf("after the cursors: SHOW pgmemo.last = %+v, want hit or miss-filled", l)
			}
		})
	}
}
