package proxy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lib/pq"
)

// libpqOpen opens a database/sql pool with the lib/pq driver; it is closed when
// the test ends.
func libpqOpen(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
	return db
}

// libpqPair opens pools through p and directly to db.
func libpqPair(t testing.TB, p *testProxy, db string) []*sql.DB {
	return []*sql.DB{libpqOpen(t, p.URL("", "", db)), libpqOpen(t, directURL("", "", db))}
}

// TestLibPQQueries runs parameterised queries with lib/pq (which sends them in
// the extended protocol, unnamed statements, text results) through the proxy
// and directly, scanning the same values.
func TestLibPQQueries(t *testing.T) {
	p := startProxy(t)
	ctx := testCtx(t)
	tests := []struct {
		name  string
		query string
		args  []any
		want  []any
	}{
		{"ints and text", "SELECT $1::int + $2::int, $3::text || '!'", []any{40, 2, "hi"}, []any{int64(42), "hi!"}},
		{"bytea and bool", "SELECT $1::bytea, $2::bool", []any{[]byte{0, 1, 0xff}, true}, []any{[]byte{0, 1, 0xff}, true}},
		{"timestamptz", "SELECT $1::timestamptz AT TIME ZONE 'UTC'", []any{time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC)}, []any{time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC)}},
		{"null", "SELECT $1::text IS NULL, NULL::int", []any{nil}, []any{true, nil}},
		{"array", "SELECT $1::int[]", []any{pq.Array([]int64{1, 2, 3})}, []any{[]byte("{1,2,3}")}},
		{"unicode", "SELECT $1::text", []any{"héllo ☃"}, []any{"héllo ☃"}},
	}
	dbs := libpqPair(t, p, "postgres")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var results [][]any
			for _, db := range dbs {
				got := make([]any, len(tc.want))
				ptrs := make([]any, len(got))
				for i := range got {
					ptrs[i] = &got[i]
				}
				if err := db.QueryRowContext(ctx, tc.query, tc.args...).Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range got {
					if tm, ok := v.(time.Time); ok {
						got[i] = tm.UTC()
					}
				}
				results = append(results, got)
			}
			if !reflect.DeepEqual(results[0], tc.want) {
				t.Errorf("through the proxy: %#v, want %#v", results[0], tc.want)
			}
			if !reflect.DeepEqual(results[0], results[1]) {
				t.Errorf("proxy %#v, direct %#v", results[0], results[1])
			}
		})
	}
	t.Run("many rows", func(t *testing.T) {
		var sums []int64
		for _, db := range dbs {
			rows, err := db.QueryContext(ctx, "SELECT g, md5(g::text) FROM generate_series(1, $1::int) g", 5000)
			if err != nil {
				t.Fatal(err)
			}
			var sum, n int64
			for rows.Next() {
				var g int64
				var h string
				if err := rows.Scan(&g, &h); err != nil {
					t.Fatal(err)
				}
				sum += g
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != 5000 {
				t.Errorf("%d rows, want 5000", n)
			}
			sums = append(sums, sum)
		}
		if sums[0] != 5000*5001/2 || sums[0] != sums[1] {
			t.Errorf("sums: proxy %d, direct %d, want %d", sums[0], sums[1], 5000*5001/2)
		}
	})
}

// TestLibPQPrepared prepares statements once with db.Prepare and reuses them
// many times through the proxy, for a query and for an insert.
func TestLibPQPrepared(t *testing.T) {
	p := startProxy(t)
	dbName := newDB(t)
	ctx := testCtx(t)
	db := libpqOpen(t, p.URL("", "", dbName))
	db.SetMaxOpenConns(2)
	if _, err := db.ExecContext(ctx, "CREATE TABLE items(id int PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	ins, err := db.PrepareContext(ctx, "INSERT INTO items VALUES ($1, $2)")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	sel, err := db.PrepareContext(ctx, "SELECT name, $2::int * id FROM items WHERE id = $1")
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	for i := 1; i <= 50; i++ {
		res, err := ins.ExecContext(ctx, i, fmt.Sprint("item ", i))
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("insert %d affected %d rows", i, n)
		}
	}
	for i := 1; i <= 50; i++ {
		var name string
		var x int
		if err := sel.QueryRowContext(ctx, i, 3).Scan(&name, &x); err != nil {
			t.Fatalf("select %d: %v", i, err)
		}
		if name != fmt.Sprint("item ", i) || x != 3*i {
			t.Fatalf("select %d: %q %d", i, name, x)
		}
	}
	if err := sel.QueryRowContext(ctx, 999, 1).Scan(new(string), new(int)); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("select of a missing row: %v, want sql.ErrNoRows", err)
	}
	if got := directRows(t, dbName, "SELECT count(*), sum(id) FROM items"); got != "50|1275\n" {
		t.Errorf("count|sum directly: %q, want 50|1275", got)
	}
}

// TestLibPQTransaction commits one transaction and rolls another back through
// the proxy; only the committed rows are visible directly.
func TestLibPQTransaction(t *testing.T) {
	p := startProxy(t)
	dbName := newDB(t)
	ctx := testCtx(t)
	db := libpqOpen(t, p.URL("", "", dbName))
	if _, err := db.ExecContext(ctx, "CREATE TABLE tx(id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := 0
		if commit {
			base = 100
		}
		for i := 1; i <= 3; i++ {
			if _, err := tx.ExecContext(ctx, "INSERT INTO tx VALUES ($1)", base+i); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tx").Scan(&n); err != nil || n != 3 {
			t.Errorf("inside the transaction: %d rows (%v), want 3", n, err)
		}
		if got := directRows(t, dbName, "SELECT count(*) FROM tx"); got != "0\n" {
			t.Errorf("uncommitted rows visible directly: %q", got)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := directRows(t, dbName, "SELECT string_agg(id::text, ',' ORDER BY id) FROM tx"); got != "101,102,103\n" {
		t.Errorf("after rollback and commit: %q, want 101,102,103", got)
	}
}

// TestLibPQErrors checks that server errors reach lib/pq as *pq.Error with every
// field identical to a direct connection's, and that the pool goes on working.
func TestLibPQErrors(t *testing.T) {
	p := startProxy(t)
	dbName := newDB(t)
	ctx := testCtx(t)
	if err := cluster.Exec(ctx, dbName, "CREATE TABLE u(id int CONSTRAINT u_pk PRIMARY KEY); INSERT INTO u VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		query    string
		args     []any
		code     string
		message  string
		check    func(*pq.Error) error
		prepared bool
	}{
		{name: "division by zero", query: "SELECT 1 / $1::int", args: []any{0}, code: "22012", message: "division by zero"},
		{name: "unique violation", query: "INSERT INTO u VALUES ($1)", args: []any{1}, code: "23505", message: `duplicate key value violates unique constraint "u_pk"`,
			check: func(e *pq.Error) error {
				if e.Constraint != "u_pk" || e.Table != "u" || e.Detail != "Key (id)=(1) already exists." {
					return fmt.Errorf("constraint %q table %q detail %q", e.Constraint, e.Table, e.Detail)
				}
				return nil
			}},
		{name: "syntax error", query: "SELEC 1", code: "42601", message: `syntax error at or near "SELEC"`,
			check: func(e *pq.Error) error {
				if e.Position != "1" {
					return fmt.Errorf("position %q", e.Position)
				}
				return nil
			}},
		{name: "prepare error", query: "SELECT missing FROM u", code: "42703", message: `column "missing" does not exist`, prepared: true},
		{name: "raise", query: `DO $$BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'P0042', DETAIL = 'd', HINT = 'h'; END$$`, code: "P0042", message: "custom",
			check: func(e *pq.Error) error {
				if e.Detail != "d" || e.Hint != "h" || e.Severity != "ERROR" {
					return fmt.Errorf("detail %q hint %q severity %q", e.Detail, e.Hint, e.Severity)
				}
				return nil
			}},
	}
	dbs := libpqPair(t, p, dbName)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs []*pq.Error
			for _, db := range dbs {
				var err error
				if tc.prepared {
					_, err = db.PrepareContext(ctx, tc.query)
				} else {
					_, err = db.ExecContext(ctx, tc.query, tc.args...)
				}
				var pe *pq.Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T), want *pq.Error", err, err)
				}
				errs = append(errs, pe)
			}
			e := errs[0]
			if string(e.Code) != tc.code || e.Message != tc.message {
				t.Errorf("error %s %q, want %s %q", e.Code, e.Message, tc.code, tc.message)
			}
			if tc.check != nil {
				if err := tc.check(e); err != nil {
					t.Error(err)
				}
			}
			if !reflect.DeepEqual(errs[0], errs[1]) {
				t.Errorf("errors differ\nproxy:  %#v\ndirect: %#v", errs[0], errs[1])
			}
			var n int
			if err := dbs[0].QueryRowContext(ctx, "SELECT count(*) FROM u").Scan(&n); err != nil || n != 1 {
				t.Errorf("after the error: %d, %v", n, err)
			}
		})
	}
}

// TestLibPQCopyIn bulk-loads rows with lib/pq's COPY FROM STDIN support through
// the proxy and checks them directly.
func TestLibPQCopyIn(t *testing.T) {
	p := startProxy(t)
	dbName := newDB(t)
	ctx := testCtx(t)
	db := libpqOpen(t, p.URL("", "", dbName))
	if _, err := db.ExecContext(ctx, "CREATE TABLE c(id int PRIMARY KEY, name text, data bytea)"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 pq.CopyIn is the documented lib/pq way; its replacement is the same string.
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("c", "id", "name", "data"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 1; i <= n; i++ {
		var name any = fmt.Sprintf("name\t%d\n☃", i)
		if i%10 == 0 {
			name = nil
		}
		if _, err := stmt.ExecContext(ctx, i, name, []byte{byte(i), 0, '\\'}); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // flushes and ends the COPY
		t.Fatal(err)
	}
	if err := stmt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := directRows(t, dbName, `SELECT count(*), sum(id), count(name), min(name) = E'name\t1\n☃', bool_and(data = set_byte(E'\\x00005c'::bytea, 0, id % 256)) FROM c`)
	if want := fmt.Sprintf("%d|%d|%d|t|t\n", n, n*(n+1)/2, n-n/10); got != want {
		t.Errorf("copied rows: %q, want %q", got, want)
	}
}

// TestLibPQListener receives notifications with pq.Listener connected through
// the proxy, sent by connections through the proxy and directly.
func TestLibPQListener(t *testing.T) {
	p := startProxy(t)
	ctx := testCtx(t)
	events := make(chan pq.ListenerEventType, 16)
	l := pq.NewListener(p.URL("", "", ""), 10*time.Millisecond, time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			t.Logf("listener event %d: %v", ev, err)
		}
		select {
		case events <- ev:
		default:
		}
	})
	defer l.Close()
	select {
	case ev := <-events:
		if ev != pq.ListenerEventConnected {
			t.Fatalf("first listener event %d, want connected", ev)
		}
	case <-ctx.Done():
		t.Fatal("the listener did not connect")
	}
	if err := l.Listen("pq_events"); err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(); err != nil {
		t.Fatal(err)
	}
	for i, db := range libpqPair(t, p, "postgres") {
		var pid int
		if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		// One pool connection: the pid queried is the notifier's.
		db.SetMaxOpenConns(1)
		payload := fmt.Sprintf("hello %d", i)
		if _, err := db.ExecContext(ctx, "SELECT pg_notify('pq_events', $1)", payload); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-l.Notify:
			if n == nil || n.Channel != "pq_events" || n.Extra != payload || n.BePid != pid {
				t.Errorf("notification %+v, want channel pq_events, payload %q, pid %d", n, payload, pid)
			}
		case <-ctx.Done():
			t.Fatalf("no notification %q", payload)
		}
	}
	if err := l.Unlisten("pq_events"); err != nil {
		t.Errorf("unlisten: %v", err)
	}
}
