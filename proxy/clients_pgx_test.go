package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgxConnect opens a pgx connection to url; tweak may adjust its configuration.
// The connection is closed when the test ends.
func pgxConnect(t testing.TB, url string, tweak ...func(*pgx.ConnConfig)) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgxPair connects through p and directly to db, with the same configuration.
func pgxPair(t testing.TB, p *testProxy, db string, tweak ...func(*pgx.ConnConfig)) (viaProxy, direct *pgx.Conn) {
	t.Helper()
	return pgxConnect(t, p.URL("", "", db), tweak...), pgxConnect(t, directURL("", "", db), tweak...)
}

func withMode(m pgx.QueryExecMode) func(*pgx.ConnConfig) {
	return func(c *pgx.ConnConfig) { c.DefaultQueryExecMode = m }
}

// testCtx is a context for one test step, bounded so a hang fails instead of
// blocking the test binary.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// queryResult is everything a client sees of one query.
type queryResult struct {
	Fields []string // name:oid:format
	Raw    [][][]byte
	Values [][]any
	Tag    string
	Err    string // SQLSTATE: message, or another error's text
}

func runQuery(ctx context.Context, conn *pgx.Conn, sql string, args ...any) queryResult {
	var r queryResult
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		r.Err = errText(err)
		return r
	}
	for _, f := range rows.FieldDescriptions() {
		r.Fields = append(r.Fields, fmt.Sprintf("%s:%d:%d", f.Name, f.DataTypeOID, f.Format))
	}
	for rows.Next() {
		var raw [][]byte
		for _, v := range rows.RawValues() {
			if v != nil {
				v = bytes.Clone(v)
			}
			raw = append(raw, v)
		}
		r.Raw = append(r.Raw, raw)
		vals, err := rows.Values()
		if err != nil {
			r.Err = errText(err)
			rows.Close()
			return r
		}
		r.Values = append(r.Values, normalize(vals))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		r.Err = errText(err)
	}
	r.Tag = rows.CommandTag().String()
	return r
}

// normalize makes decoded values comparable with reflect.DeepEqual: times in UTC.
func normalize(vals []any) []any {
	for i, v := range vals {
		if tm, ok := v.(time.Time); ok {
			vals[i] = tm.UTC()
		}
	}
	return vals
}

func errText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code + ": " + pe.Message
	}
	return err.Error()
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func diffResults(t *testing.T, what string, viaProxy, direct queryResult) {
	t.Helper()
	if !reflect.DeepEqual(viaProxy, direct) {
		t.Errorf("%s: proxy and direct results differ\nproxy:  %+v\ndirect: %+v", what, viaProxy, direct)
	}
}

var queryExecModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement, // pgx's default
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

// TestPgxQueryExecModes runs the same parameterised queries in every pgx query
// execution mode through the proxy and directly; the fields, raw and decoded
// values, command tags and errors must be the same, each query runs twice (so
// cached statements are reused), and an error leaves the connection usable.
func TestPgxQueryExecModes(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123456000, time.UTC)
	type step struct {
		sql     string
		args    []any
		wantErr string // SQLSTATE expected
		check   func(queryResult) error
	}
	steps := []step{
		{sql: "CREATE TEMP TABLE modes(id int8 PRIMARY KEY, name text, at timestamptz, data bytea)"},
		{sql: "SELECT $1::int8 + 1 AS a, $2::text || '!' AS b, $3::bool AS c, $4::float8 AS d", args: []any{int64(41), "hi", true, 2.5},
			check: func(r queryResult) error {
				if !reflect.DeepEqual(r.Values, [][]any{{int64(42), "hi!", true, 2.5}}) {
					return fmt.Errorf("values %v", r.Values)
				}
				return nil
			}},
		{sql: "SELECT g, g * g AS sq, repeat('x', g) AS s FROM generate_series(1, $1::int) g", args: []any{200},
			check: func(r queryResult) error {
				if len(r.Values) != 200 || r.Tag != "SELECT 200" {
					return fmt.Errorf("%d rows, tag %q", len(r.Values), r.Tag)
				}
				return nil
			}},
		{sql: "INSERT INTO modes VALUES ($1, $2, $3, $4), ($1 + 1, $2 || '2', $3, NULL) RETURNING id, name, at, data", args: []any{int64(1), "first", ts, []byte{0, 1, 2, 255}},
			check: func(r queryResult) error {
				if r.Tag != "INSERT 0 2" || len(r.Values) != 2 {
					return fmt.Errorf("tag %q, %d rows", r.Tag, len(r.Values))
				}
				if got := r.Values[0]; !reflect.DeepEqual(got, []any{int64(1), "first", ts, []byte{0, 1, 2, 255}}) {
					return fmt.Errorf("first row %#v", got)
				}
				return nil
			}},
		{sql: "SELECT id, name, at, data FROM modes WHERE id = ANY($1::int8[]) ORDER BY id", args: []any{[]int64{1, 2, 3}}},
		{sql: "UPDATE modes SET name = $1 WHERE id > $2", args: []any{"updated", 0},
			check: func(r queryResult) error {
				if r.Tag != "UPDATE 4" { // two rows inserted in each round
					return fmt.Errorf("tag %q", r.Tag)
				}
				return nil
			}},
		{sql: "SELECT 1 / $1::int", args: []any{0}, wantErr: "22012"},
		// An error after rows have been sent.
		{sql: "SELECT 10 / ($1::int - g) FROM generate_series(1, 1000) g", args: []any{500}, wantErr: "22012",
			check: func(r queryResult) error {
				if len(r.Values) != 499 {
					return fmt.Errorf("%d rows before the error, want 499", len(r.Values))
				}
				return nil
			}},
		{sql: "SELECT 1 WHERE false"},
		{sql: "DO $$BEGIN RAISE NOTICE 'a notice'; END$$"},
		{sql: "SELECT no_such_column FROM modes", wantErr: "42703"},
		{sql: "SELECT count(*), min(name) FROM modes"},
		{sql: "DELETE FROM modes"},
	}
	for _, mode := range queryExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			viaProxy, direct := pgxPair(t, p, db, withMode(mode))
			for i, s := range steps {
				for round := 1; round <= 2; round++ {
					if round == 2 && strings.HasPrefix(s.sql, "CREATE") {
						continue
					}
					args := s.args
					if round == 2 && strings.HasPrefix(s.sql, "INSERT") {
						args = append([]any{int64(10)}, args[1:]...) // a fresh key
					}
					what := fmt.Sprintf("step %d round %d (%s)", i, round, s.sql)
					rp := runQuery(ctx, viaProxy, s.sql, args...)
					rd := runQuery(ctx, direct, s.sql, args...)
					if s.wantErr != "" && !strings.HasPrefix(rp.Err, s.wantErr+":") {
						t.Errorf("%s: error %q, want SQLSTATE %s", what, rp.Err, s.wantErr)
					} else if s.wantErr == "" && rp.Err != "" {
						t.Errorf("%s: %s", what, rp.Err)
					}
					if s.check != nil && round == 1 {
						if err := s.check(rp); err != nil {
							t.Errorf("%s: %v", what, err)
						}
					}
					diffResults(t, what, rp, rd)
				}
			}
			var n int
			if err := viaProxy.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
				t.Errorf("connection after the steps: %d, %v", n, err)
			}
		})
	}
}

// TestPgxPrepare prepares a named statement through the proxy and runs it by
// name repeatedly; the statement description matches the direct one, and the
// statement lives on the proxy connection's backend until deallocated.
func TestPgxPrepare(t *testing.T) {
	p := startProxy(t)
	ctx := testCtx(t)
	viaProxy, direct := pgxPair(t, p, "postgres")
	const sql = "SELECT $1::int4 * $1::int4 AS square, $2::text AS label, now() IS NOT NULL AS ok"
	var descs []*pgconn.StatementDescription
	for _, conn := range []*pgx.Conn{viaProxy, direct} {
		sd, err := conn.Prepare(ctx, "square", sql)
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, sd)
	}
	sd := descs[0]
	if sd.Name != "square" || !reflect.DeepEqual(sd.ParamOIDs, []uint32{pgtype.Int4OID, pgtype.TextOID}) || len(sd.Fields) != 3 || sd.Fields[0].Name != "square" {
		t.Errorf("statement description %+v", sd)
	}
	if !reflect.DeepEqual(descs[0], descs[1]) {
		t.Errorf("descriptions differ: proxy %+v, direct %+v", descs[0], descs[1])
	}
	for i := int32(1); i <= 20; i++ {
		var sq int32
		var label string
		var ok bool
		if err := viaProxy.QueryRow(ctx, "square", i, fmt.Sprint("n", i)).Scan(&sq, &label, &ok); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if sq != i*i || label != fmt.Sprint("n", i) || !ok {
			t.Fatalf("run %d: got %d %q %v", i, sq, label, ok)
		}
	}
	rows, _ := viaProxy.Query(ctx, "SELECT name FROM pg_prepared_statements ORDER BY name", pgx.QueryExecModeSimpleProtocol)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{"square"}) {
		t.Errorf("prepared statements on the backend: %q, want [square]", names)
	}
	if err := viaProxy.Deallocate(ctx, "square"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := viaProxy.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 0 {
		t.Errorf("after Deallocate: %d prepared statements, err %v", n, err)
	}
}

// TestPgxBatch sends batches with an error in the middle through the proxy and
// directly, in the pipelined extended protocol and in the simple protocol: each
// query's outcome, and what the batch left in the table, must agree.
func TestPgxBatch(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE b(id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			var outcomes [][]string
			for _, conn := range []*pgx.Conn{pgxConnect(t, p.URL("", "", db), withMode(mode)), pgxConnect(t, directURL("", "", db), withMode(mode))} {
				if _, err := conn.Exec(ctx, "DELETE FROM b"); err != nil {
					t.Fatal(err)
				}
				batch := &pgx.Batch{}
				batch.Queue("INSERT INTO b VALUES ($1)", 1)
				batch.Queue("SELECT count(*)::int FROM b")
				batch.Queue("SELECT g FROM generate_series(1, $1::int) g", 3)
				batch.Queue("SELECT 1 / $1::int", 0)
				batch.Queue("INSERT INTO b VALUES ($1)", 2)
				batch.Queue("SELECT 42")
				br := conn.SendBatch(ctx, batch)
				var out []string
				for range batch.Len() {
					rows, err := br.Query()
					if err != nil {
						out = append(out, "error "+errText(err))
						continue
					}
					vals, err := pgx.CollectRows(rows, pgx.RowTo[int32])
					if err != nil {
						out = append(out, "error "+errText(err))
						continue
					}
					out = append(out, fmt.Sprint(vals, " ", rows.CommandTag()))
				}
				if err := br.Close(); err != nil {
					out = append(out, "close "+errText(err))
				}
				var n int
				if err := conn.QueryRow(ctx, "SELECT count(*) FROM b").Scan(&n); err != nil {
					t.Fatalf("after the batch: %v", err)
				}
				outcomes = append(outcomes, append(out, fmt.Sprint("rows left: ", n)))
			}
			got := outcomes[0]
			if len(got) < 5 || got[0] != "[] INSERT 0 1" || got[1] != "[1] SELECT 1" || got[2] != "[1 2 3] SELECT 3" ||
				got[3] != "error 22012: division by zero" {
				t.Errorf("batch outcomes through the proxy: %q", got)
			}
			if !reflect.DeepEqual(outcomes[0], outcomes[1]) {
				t.Errorf("batch outcomes differ\nproxy:  %q\ndirect: %q", outcomes[0], outcomes[1])
			}
		})
	}
}

// TestPgxCopyFrom copies 10,000 rows through the proxy with the COPY protocol
// and checks, through the proxy and directly, that exactly those rows arrived.
func TestPgxCopyFrom(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	ctx := testCtx(t)
	viaProxy, direct := pgxPair(t, p, db)
	if _, err := viaProxy.Exec(ctx, "CREATE TABLE c(id int PRIMARY KEY, name text, amount numeric, at timestamptz, data bytea)"); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	digest := md5.New()
	for i := range rows {
		id := i + 1
		name := fmt.Sprintf("row %d ☃", id)
		if id%100 == 0 {
			rows[i] = []any{id, nil, nil, nil, nil}
		} else {
			rows[i] = []any{id, name, fmt.Sprintf("%d.%02d", id, id%100), base.Add(time.Duration(id) * time.Second), []byte{byte(id), byte(id >> 8)}}
		}
		if i > 0 {
			digest.Write([]byte{','})
		}
		if id%100 == 0 {
			fmt.Fprintf(digest, "%d:", id)
		} else {
			fmt.Fprintf(digest, "%d:%s", id, name)
		}
	}
	copied, err := viaProxy.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "name", "amount", "at", "data"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
	if copied != n {
		t.Errorf("CopyFrom reported %d rows, want %d", copied, n)
	}
	const check = `SELECT count(*), sum(id), count(name), sum(amount)::text, max(at), md5(string_agg(id || ':' || coalesce(name, ''), ',' ORDER BY id)) FROM c`
	rp, rd := runQuery(ctx, viaProxy, check), runQuery(ctx, direct, check)
	diffResults(t, "summary", rp, rd)
	cents := 0
	for id := 1; id <= n; id++ {
		if id%100 != 0 {
			cents += 100*id + id%100
		}
	}
	want := []any{int64(n), int64(n * (n + 1) / 2), int64(n - n/100), fmt.Sprintf("%d.%02d", cents/100, cents%100),
		base.Add((n - 1) * time.Second), hex.EncodeToString(digest.Sum(nil))}
	if len(rp.Values) != 1 {
		t.Fatalf("summary: %+v", rp)
	}
	got := rp.Values[0]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary of copied rows %v, want %v", got, want)
	}

	// Failed copies, through the proxy and directly: the client aborts with
	// CopyFail, or the server rejects a row. Nothing is added, and the
	// connection goes on.
	failures := []struct {
		name string
		src  func() pgx.CopyFromSource
		want func(error) bool
	}{
		{"client aborts", func() pgx.CopyFromSource {
			i := 0
			return pgx.CopyFromFunc(func() ([]any, error) {
				if i++; i > 3000 {
					return nil, errors.New("source broke")
				}
				return []any{n + i, "x", nil, nil, nil}, nil
			})
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "source broke") }},
		{"server rejects a row", func() pgx.CopyFromSource {
			return pgx.CopyFromRows([][]any{{n + 1, "new", nil, nil, nil}, {1, "duplicate", nil, nil, nil}})
		}, func(err error) bool { return sqlState(err) == "23505" }},
	}
	for _, f := range failures {
		for i, conn := range []*pgx.Conn{viaProxy, direct} {
			_, err := conn.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "name", "amount", "at", "data"}, f.src())
			if !f.want(err) {
				t.Errorf("%s (%s): error %v", f.name, []string{"proxy", "direct"}[i], err)
			}
			var count int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM c").Scan(&count); err != nil || count != n {
				t.Errorf("%s (%s): then %d rows (%v), want %d", f.name, []string{"proxy", "direct"}[i], count, err, n)
			}
		}
	}
}

// TestPgxListenNotify has a connection through the proxy LISTEN and wait idle
// for a notification sent by another connection, directly and through the
// proxy, and by itself; the notification arrives with its channel, payload and
// the sending backend's PID.
func TestPgxListenNotify(t *testing.T) {
	p := startProxy(t)
	tests := []struct {
		name     string
		notifier string // "proxy", "direct" or "self"
	}{
		{"notifier direct", "direct"},
		{"notifier via proxy", "proxy"},
		{"self", "self"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			listener := pgxConnect(t, p.URL("", "", ""))
			channel := fmt.Sprintf("events_%d", i)
			if _, err := listener.Exec(ctx, "LISTEN "+channel); err != nil {
				t.Fatal(err)
			}
			notifier := listener
			switch tc.notifier {
			case "direct":
				notifier = pgxConnect(t, directURL("", "", ""))
			case "proxy":
				notifier = pgxConnect(t, p.URL("", "", ""))
			}
			var notifierPID uint32
			if err := notifier.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&notifierPID); err != nil {
				t.Fatal(err)
			}
			payload := fmt.Sprintf("payload %d ☃ %s", i, strings.Repeat("p", 1000))
			if _, err := notifier.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			n, err := listener.WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("WaitForNotification: %v", err)
			}
			if n.Channel != channel || n.Payload != payload || n.PID != notifierPID {
				t.Errorf("notification %q %q from %d, want %q %q from %d", n.Channel, n.Payload[:20], n.PID, channel, payload[:20], notifierPID)
			}
			// The listener is still in sync afterwards.
			var one int
			if err := listener.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Errorf("listener after the notification: %d, %v", one, err)
			}
		})
	}
}

// TestPgxOwnNotificationPID follows PostgreSQL's documented way to recognise
// one's own notifications (NOTIFY docs: compare the notifying PID with "one's
// own session's PID (available from libpq)", i.e. the BackendKeyData PID, which
// pgx exposes as PgConn().PID()). Directly this holds; the PID must also be the
// one pg_backend_pid() reports.
func TestPgxOwnNotificationPID(t *testing.T) {
	p := startProxy(t)
	for _, ep := range endpoints(p) {
		t.Run(ep.Name, func(t *testing.T) {
			ctx := testCtx(t)
			conn := pgxConnect(t, ep.URL("", "", ""))
			if _, err := conn.Exec(ctx, "LISTEN own_pid"); err != nil {
				t.Fatal(err)
			}
			var backendPID uint32
			if err := conn.QueryRow(ctx, "SELECT pg_backend_pid() FROM pg_notify('own_pid', 'mine')").Scan(&backendPID); err != nil {
				t.Fatal(err)
			}
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n.PID != backendPID {
				t.Errorf("notification PID %d, pg_backend_pid() %d", n.PID, backendPID)
			}
			if own := conn.PgConn().PID(); n.PID != own || backendPID != own {
				t.Errorf("own notification not recognisable: notification PID %d and pg_backend_pid() %d, but the session's PID (BackendKeyData) is %d", n.PID, backendPID, own)
			}
		})
	}
}

// TestPgxCancel runs SELECT pg_sleep(30) under a 300 ms context, through the
// proxy and directly, with pgx's default context handling (the connection is
// closed) and with a CancelRequest (the connection survives). The call must
// return quickly with a timeout or cancel error, and the connection, or a new
// one if pgx closed it, must work.
func TestPgxCancel(t *testing.T) {
	p := startProxy(t)
	handlers := []struct {
		name      string
		tweak     func(*pgx.ConnConfig)
		keepsConn bool
		wantErr   func(error) bool
	}{
		// pgx's default: the context's end sets a deadline on the socket; the
		// read times out and pgx closes the connection.
		{"default", func(*pgx.ConnConfig) {}, false, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
		}},
		// A CancelRequest, forwarded by the proxy to the right backend, makes
		// the server end the statement with 57014; the connection stays.
		{"cancel request", func(c *pgx.ConnConfig) {
			c.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
			}
		}, true, func(err error) bool { return sqlState(err) == "57014" }},
	}
	for _, h := range handlers {
		for _, ep := range endpoints(p) {
			t.Run(h.name+" "+ep.Name, func(t *testing.T) {
				url := ep.URL("", "", "")
				conn := pgxConnect(t, url, h.tweak)
				marker := fmt.Sprintf("cancel test %s %s", h.name, ep.Name)
				t.Cleanup(func() { terminateQueries(t, marker) })
				before := p.Srv.Stats().CancelsForwarded

				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				_, err := conn.Exec(ctx, fmt.Sprintf("SELECT pg_sleep(30) /* %s */", marker))
				elapsed := time.Since(start)
				if err == nil {
					t.Fatal("pg_sleep(30) under a 300ms context succeeded")
				}
				if elapsed > 5*time.Second {
					t.Errorf("the cancelled call took %v", elapsed)
				}
				if !h.wantErr(err) {
					t.Errorf("error %v (%T) after %v", err, err, elapsed)
				}
				if h.keepsConn {
					if conn.IsClosed() {
						t.Fatal("the connection was closed although the query was cancelled with a CancelRequest")
					}
					if ep.Name == "proxy" {
						pgtest.Eventually(t, 5*time.Second, func() error {
							if got := p.Srv.Stats().CancelsForwarded; got <= before {
								return fmt.Errorf("cancels forwarded: %d", got)
							}
							return nil
						})
					}
				} else if !conn.IsClosed() {
					t.Log("pgx kept the connection open")
				}
				if conn.IsClosed() {
					conn = pgxConnect(t, url, h.tweak)
				}
				qctx := testCtx(t)
				var n int
				if err := conn.QueryRow(qctx, "SELECT 40 + $1::int", 2).Scan(&n); err != nil || n != 42 {
					t.Errorf("query after the cancel: %d, %v", n, err)
				}
				if ep.Name == "proxy" {
					// A closed client connection took its upstream with it.
					pgtest.Eventually(t, 5*time.Second, func() error {
						if st := p.Srv.Stats(); st.ClientConnections != 1 || st.UpstreamConnections != 1 {
							return fmt.Errorf("%d client and %d upstream connections, want 1 and 1", st.ClientConnections, st.UpstreamConnections)
						}
						return nil
					})
				}
			})
		}
	}
}

// terminateQueries ends, directly, backends still running a query containing
// marker (a pg_sleep whose client went away sleeps on otherwise).
func terminateQueries(t testing.TB, marker string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, directURL("", "", ""))
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'", marker)
	if err != nil {
		t.Error(err)
	}
}

// TestPgxTransactions runs transactions through the proxy: a rollback discards
// the insert, a commit keeps it, a savepoint rolls back part, and a failed
// transaction refuses commands until rolled back. Visibility is checked
// directly.
func TestPgxTransactions(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	ctx := testCtx(t)
	viaProxy, direct := pgxPair(t, p, db)
	if _, err := viaProxy.Exec(ctx, "CREATE TABLE tx(id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	count := func(conn *pgx.Conn) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM tx").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Rollback.
	tx, err := viaProxy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tx VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if n := count(viaProxy); n != 2 {
		t.Errorf("inside the transaction: %d rows, want 2", n)
	}
	if n := count(direct); n != 0 {
		t.Errorf("uncommitted rows visible to another session: %d", n)
	}
	if st := viaProxy.PgConn().TxStatus(); st != 'T' {
		t.Errorf("transaction status %q, want T", st)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := count(viaProxy), count(direct); a != 0 || b != 0 {
		t.Errorf("after rollback: %d rows through the proxy, %d directly; want 0", a, b)
	}

	// Commit, with a savepoint rolled back inside.
	err = pgx.BeginFunc(ctx, viaProxy, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO tx VALUES (10)"); err != nil {
			return err
		}
		sp, err := tx.Begin(ctx) // SAVEPOINT
		if err != nil {
			return err
		}
		if _, err := sp.Exec(ctx, "INSERT INTO tx VALUES (11)"); err != nil {
			return err
		}
		return sp.Rollback(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	rows, _ := direct.Query(ctx, "SELECT id FROM tx ORDER BY id")
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil || !reflect.DeepEqual(ids, []int32{10}) {
		t.Errorf("after commit: ids %v (%v), want [10]", ids, err)
	}

	// A failed transaction.
	tx, err = viaProxy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tx VALUES (10)"); sqlState(err) != "23505" {
		t.Errorf("duplicate insert: %v, want 23505", err)
	}
	if st := viaProxy.PgConn().TxStatus(); st != 'E' {
		t.Errorf("transaction status %q, want E", st)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); sqlState(err) != "25P02" {
		t.Errorf("query in a failed transaction: %v, want 25P02", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Errorf("commit of a failed transaction: %v, want ErrTxCommitRollback", err)
	}
	if n := count(viaProxy); n != 1 {
		t.Errorf("after the failed transaction: %d rows, want 1", n)
	}
}

// TestPgxBinaryTypes reads values of many types in pgx's default mode, which
// asks for binary results (text for text, varchar and jsonb): every column comes
// back in the requested format, byte for byte as directly, and decodes to the
// same Go values.
func TestPgxBinaryTypes(t *testing.T) {
	p := startProxy(t)
	ctx := testCtx(t)
	viaProxy, direct := pgxPair(t, p, "postgres")
	at := time.Date(2024, 2, 29, 10, 34, 56, 789012000, time.UTC)
	columns := []struct {
		expr string
		want any // decoded value through the proxy; nil: compared with direct only
	}{
		{"9223372036854775807::int8", int64(9223372036854775807)},
		{"(-42)::int4", int32(-42)},
		{"7::int2", int16(7)},
		{"12345678901234567890.123456789::numeric", nil},
		{"'NaN'::numeric", nil},
		{"'2024-02-29 12:34:56.789012+02'::timestamptz", at},
		{"'2024-02-29 12:34:56.789012'::timestamp", time.Date(2024, 2, 29, 12, 34, 56, 789012000, time.UTC)},
		{"'2024-02-29'::date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"'1 day 02:03:04.5'::interval", pgtype.Interval{Days: 1, Microseconds: (2*3600 + 3*60 + 4.5) * 1e6, Valid: true}},
		{`'\xdeadbeef00ff'::bytea`, []byte{0xde, 0xad, 0xbe, 0xef, 0, 0xff}},
		{"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}},
		{`'{"a": [1, 2, {"b": null}], "c": "ü"}'::jsonb`, map[string]any{"a": []any{1.0, 2.0, map[string]any{"b": nil}}, "c": "ü"}},
		{"ARRAY[1, 2, 3]::int4[]", []any{int32(1), int32(2), int32(3)}},
		{"ARRAY['a', NULL, 'c d']::text[]", []any{"a", nil, "c d"}},
		{"ARRAY[[1.5, 2.5], [3.5, 4.5]]::float8[]", []any{1.5, 2.5, 3.5, 4.5}}, // pgx flattens
		{"'héllo wörld ☃'::text", "héllo wörld ☃"},
		{"'x'::varchar(10)", "x"},
		{"true", true},
		{"1.5::float4", float32(1.5)},
		{"'Infinity'::float8", nil},
		{"'192.168.0.1/24'::inet", nil},
		{"'[1,10)'::int4range", nil},
		{"''::text", ""},
	}
	exprs := make([]string, len(columns))
	for i, c := range columns {
		exprs[i] = c.expr
	}
	sql := "SELECT " + strings.Join(exprs, ", ")
	rp, rd := runQuery(ctx, viaProxy, sql), runQuery(ctx, direct, sql)
	if rp.Err != "" || len(rp.Values) != 1 {
		t.Fatalf("%+v", rp)
	}
	diffResults(t, "binary values", rp, rd)
	for i, c := range columns {
		// pgx asks for text, varchar and jsonb in text format, everything
		// else in binary.
		textual := strings.HasSuffix(c.expr, "::text") || strings.HasSuffix(c.expr, "::varchar(10)") || strings.HasSuffix(c.expr, "::jsonb")
		if want := map[bool]string{false: ":1", true: ":0"}[textual]; !strings.HasSuffix(rp.Fields[i], want) {
			t.Errorf("%s: field %s, want format %s", c.expr, rp.Fields[i], want[1:])
		}
		if c.want != nil && !reflect.DeepEqual(rp.Values[0][i], c.want) {
			t.Errorf("%s: decoded %#v, want %#v", c.expr, rp.Values[0][i], c.want)
		}
	}
	// Numeric decoded exactly.
	var num pgtype.Numeric
	if err := viaProxy.QueryRow(ctx, "SELECT 12345678901234567890.123456789::numeric").Scan(&num); err != nil {
		t.Fatal(err)
	}
	if v, _ := num.Value(); v != "12345678901234567890.123456789" {
		t.Errorf("numeric = %v", v)
	}
}

// TestPgxLargeBytea round-trips a 20 MB bytea value through the proxy, as a
// binary parameter and result (messages larger than the proxy's 8 MiB buffer
// limit, streamed in chunks) and in the simple protocol (a 40 MB query text
// and a 40 MB text result).
func TestPgxLargeBytea(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE big(id int PRIMARY KEY, data bytea)"); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 20<<20)
	rand.Read(data)
	sum := md5.Sum(data)
	for i, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			viaProxy, direct := pgxPair(t, p, db, withMode(mode))
			if _, err := viaProxy.Exec(ctx, "INSERT INTO big VALUES ($1, $2)", i, data); err != nil {
				t.Fatal(err)
			}
			var size int
			var digest string
			if err := direct.QueryRow(ctx, "SELECT length(data), md5(data) FROM big WHERE id = $1", i).Scan(&size, &digest); err != nil {
				t.Fatal(err)
			}
			if size != len(data) || digest != hex.EncodeToString(sum[:]) {
				t.Errorf("stored value: %d bytes, md5 %s; want %d bytes, md5 %x", size, digest, len(data), sum)
			}
			var got []byte
			if err := viaProxy.QueryRow(ctx, "SELECT data FROM big WHERE id = $1", i).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("value read through the proxy: %d bytes, differs from the %d bytes written", len(got), len(data))
			}
			// The connection is still in sync after the large messages.
			var n int
			if err := viaProxy.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil || n != i+1 {
				t.Errorf("count after the round trip: %d, %v", n, err)
			}
		})
	}
}

// TestPgxLargeMessagesCounted checks that the proxy's byte counters include
// messages too large to buffer, which are streamed through: a 20 MB parameter
// and a 20 MB result must count at least 20 MB each way.
func TestPgxLargeMessagesCounted(t *testing.T) {
	p := startProxy(t)
	ctx := testCtx(t)
	conn := pgxConnect(t, p.URL("", "", ""))
	data := make([]byte, 20<<20)
	rand.Read(data)
	before := p.Srv.Stats()
	var got []byte
	if err := conn.QueryRow(ctx, "SELECT $1::bytea", data).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("value echoed through the proxy differs")
	}
	after := p.Srv.Stats()
	from, to := after.BytesFromClients-before.BytesFromClients, after.BytesToClients-before.BytesToClients
	if from < uint64(len(data)) || to < uint64(len(data)) {
		t.Errorf("Stats counted %d bytes from the client and %d to it for a %d-byte value each way", from, to, len(data))
	}
}

// TestPgxNulls sends and reads NULLs of several types, as parameters, columns
// and array elements, through the proxy and directly.
func TestPgxNulls(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			viaProxy, direct := pgxPair(t, p, db, withMode(mode))
			const sql = "SELECT NULL::int4 AS a, NULL::text AS b, NULL::bytea AS c, NULL::jsonb AS d, $1::int8 AS e, $2::text AS f, ARRAY[1, NULL, 3] AS g, '' AS h"
			rp, rd := runQuery(ctx, viaProxy, sql, nil, nil), runQuery(ctx, direct, sql, nil, nil)
			diffResults(t, "nulls", rp, rd)
			want := []any{nil, nil, nil, nil, nil, nil, []any{int32(1), nil, int32(3)}, ""}
			if len(rp.Values) != 1 || !reflect.DeepEqual(rp.Values[0], want) {
				t.Errorf("values %#v, want %#v", rp.Values, want)
			}
			if len(rp.Raw) == 1 && (rp.Raw[0][0] != nil || rp.Raw[0][7] == nil) {
				t.Errorf("raw NULL/empty distinction lost: %q", rp.Raw[0])
			}
			var a *int32
			var b *string
			var c []byte
			if err := viaProxy.QueryRow(ctx, "SELECT $1::int4, $2::text, $3::bytea", nil, nil, nil).Scan(&a, &b, &c); err != nil {
				t.Fatal(err)
			}
			if a != nil || b != nil || c != nil {
				t.Errorf("scanned %v %v %v, want nils", a, b, c)
			}
		})
	}
}
