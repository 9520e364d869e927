package proxy_test

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestCacheMixedBatches sends the batches PgJDBC sends with autocommit off:
// BEGIN in front of the transaction's first statement, and the Close of a
// cursor's portal in front of the next statement. The BEGIN and the Close go
// to the server, the cached read is answered by the proxy, and the client
// receives exactly what PostgreSQL sends for the same batches.
func TestCacheMixedBatches(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE mx(id int PRIMARY KEY, v text); INSERT INTO mx SELECT g, 'v' || g FROM generate_series(1, 5) g"); err != nil {
		t.Fatal(err)
	}
	const sel = "SELECT id, v FROM mx WHERE id = $1"
	read := func(id int) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: sel, ParameterOIDs: []uint32{23}},
			&pgproto3.Bind{Parameters: [][]byte{[]byte(strconv.Itoa(id))}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
		}
	}
	begin := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}}
	cat := func(parts ...[]pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
		var out []pgproto3.FrontendMessage
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	sync := []pgproto3.FrontendMessage{&pgproto3.Sync{}}
	steps := []struct {
		name  string
		msgs  []pgproto3.FrontendMessage
		want  string // SHOW pgmemo.last through the proxy; "" skips
		query string // a simple Query instead
	}{
		{name: "fill", msgs: cat(read(2), sync), want: "miss-filled"},
		{name: "hit", msgs: cat(read(2), sync), want: "hit"},
		{name: "BEGIN and a read", msgs: cat(begin, read(2), sync), want: "hit"},
		{name: "a cursor", msgs: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "S_1", Query: "SELECT id FROM mx ORDER BY id", ParameterOIDs: nil},
			&pgproto3.Bind{DestinationPortal: "C_1", PreparedStatement: "S_1"},
			&pgproto3.Execute{Portal: "C_1", MaxRows: 10},
			&pgproto3.Sync{}}},
		{name: "Close of the cursor and a read", msgs: cat([]pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'P', Name: "C_1"}}, read(2), sync), want: "hit"},
		{name: "Close of the cursor again, a statement, and a miss", msgs: cat([]pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'P', Name: "C_1"}, &pgproto3.Close{ObjectType: 'S', Name: "S_1"}}, read(3), sync), want: "miss-filled"},
		{name: "COMMIT", query: "COMMIT"},
		{name: "BEGIN READ ONLY and a read", msgs: cat([]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "BEGIN READ ONLY"}, &pgproto3.Bind{}, &pgproto3.Execute{}}, read(3), sync), want: "hit"},
		{name: "ROLLBACK", query: "ROLLBACK"},
		{name: "BEGIN ISOLATION LEVEL REPEATABLE READ and a read", msgs: cat([]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "BEGIN ISOLATION LEVEL REPEATABLE READ"}, &pgproto3.Bind{}, &pgproto3.Execute{}}, read(3), sync), want: "bypass"},
		{name: "COMMIT again", query: "COMMIT"},
		{name: "a failing BEGIN in front of a hit", msgs: cat([]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{}}, read(2), sync)},
	}
	viaProxy := rawConnect(t, p.Addr, db)
	direct := rawConnect(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(cluster.Port)), db)
	for _, st := range steps {
		msgs := st.msgs
		if st.query != "" {
			msgs = []pgproto3.FrontendMessage{&pgproto3.Query{String: st.query}}
		}
		got := viaProxy.roundTrip(msgs...)
		want := direct.roundTrip(msgs...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: through the proxy\n  %q\ndirectly\n  %q", st.name, got, want)
		}
		if st.want != "" {
			if l := viaProxy.showLast(); l.Result != st.want {
				t.Errorf("%s: served %+v, want %s", st.name, l, st.want)
			}
		}
	}
}

// TestCacheStatementsThatWriteNothing: SHOW, a cursor over a plain read
// (DECLARE, FETCH, CLOSE), COPY TO, LISTEN and EXPLAIN in a transaction block
// do not end its hits the way a write does; a cursor over a query calling a
// user's VOLATILE function does.
func TestCacheStatementsThatWriteNothing(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	c := pgxConnect(t, p.URL("", "", db))
	mustExec(t, c, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')")
	mustExec(t, c, "CREATE FUNCTION bump() RETURNS int VOLATILE LANGUAGE sql AS 'UPDATE kv SET v = v RETURNING 1'")
	const q = "SELECT v FROM kv WHERE k = $1"
	expect(t, c, "fill", q, "one", "miss-filled", 1)
	mustExec(t, c, "BEGIN")
	expect(t, c, "in the block", q, "one", "hit", 1)
	for _, stmt := range []string{
		"SHOW transaction_isolation",
		"DECLARE cur CURSOR FOR SELECT v FROM kv", "FETCH 1 FROM cur", "MOVE ABSOLUTE 0 IN cur", "CLOSE cur",
		"COPY kv TO STDOUT", "COPY (SELECT v FROM kv) TO STDOUT", "LISTEN chan", "UNLISTEN chan",
		"EXPLAIN SELECT v FROM kv",
	} {
		mustExec(t, c, stmt)
		expect(t, c, "after "+stmt, q, "one", "hit", 1)
	}
	mustExec(t, c, "DECLARE w CURSOR FOR SELECT bump()")
	expect(t, c, "after a cursor over a writing function", q, "one", "bypass", 1)
	mustExec(t, c, "COMMIT")
	// The cursor's function is hidden code: a session check goes in front
	// of the next read, which passes it.
	expect(t, c, "after the block", q, "one", "bypass", 1)
	expect(t, c, "after the block, again", q, "one", "miss-filled", 1)
}

// TestCacheStatsCountEveryMiss: in every pgx mode and in a batch, each read
// sent upstream counts one miss and each read answered from the cache one
// hit, also when the proxy gives up before looking the result up (no cached
// description yet).
func TestCacheStatsCountEveryMiss(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	setup := pgxConnect(t, p.URL("", "", db))
	mustExec(t, setup, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 100) g")
	stats := func() (hits, misses uint64) {
		st, _ := p.Srv.CacheStats()
		return st.Hits, st.Misses
	}
	for i, mode := range queryExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			c := pgxConnect(t, p.URL("", "", db), withMode(mode))
			ctx := testCtx(t)
			for run, want := range [][2]uint64{{0, 1}, {1, 0}} {
				h0, m0 := stats()
				var v string
				if err := c.QueryRow(ctx, "SELECT v FROM kv WHERE k = $1", i+1).Scan(&v); err != nil {
					t.Fatal(err)
				}
				h1, m1 := stats()
				if h1-h0 != want[0] || m1-m0 != want[1] {
					t.Errorf("read %d: %d hits and %d misses counted, want %d and %d", run, h1-h0, m1-m0, want[0], want[1])
				}
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		c := pgxConnect(t, p.URL("", "", db))
		ctx := testCtx(t)
		for run, want := range [][2]uint64{{0, 4}, {4, 0}} {
			b := &pgx.Batch{}
			for k := 50; k < 54; k++ {
				b.Queue("SELECT v FROM kv WHERE k = $1", k)
			}
			h0, m0 := stats()
			if err := c.SendBatch(ctx, b).Close(); err != nil {
				t.Fatal(err)
			}
			h1, m1 := stats()
			if h1-h0 != want[0] || m1-m0 != want[1] {
				t.Errorf("batch %d: %d hits and %d misses counted, want %d and %d", run, h1-h0, m1-m0, want[0], want[1])
			}
		}
	})
}

// TestCacheFlushBatchThenRowLimitedExecute is what pg-cursor does outside a
// transaction block: Parse, Bind of a named portal and Describe, then Flush
// (answered by the proxy from what it learned earlier), then Execute with a
// row limit and Flush, then Sync. The portal the proxy bound locally must reach
// the server before that Execute.
func TestCacheFlushBatchThenRowLimitedExecute(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE cur(id int PRIMARY KEY); INSERT INTO cur SELECT generate_series(1, 5)"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT id FROM cur WHERE id > $1 ORDER BY id"
	params := [][]byte{[]byte("1")}
	steps := [][]pgproto3.FrontendMessage{
		// Fill the statement's description and result.
		{&pgproto3.Parse{Query: q}, &pgproto3.Bind{Parameters: params}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
		{&pgproto3.Parse{Query: q}, &pgproto3.Bind{DestinationPortal: "C_1", Parameters: params}, &pgproto3.Describe{ObjectType: 'P', Name: "C_1"}, &pgproto3.Flush{}},
		{&pgproto3.Execute{Portal: "C_1", MaxRows: 2}, &pgproto3.Flush{}},
		{&pgproto3.Execute{Portal: "C_1", MaxRows: 2}, &pgproto3.Flush{}},
		{&pgproto3.Close{ObjectType: 'P', Name: "C_1"}, &pgproto3.Sync{}},
	}
	viaProxy := rawConnect(t, p.Addr, db)
	direct := rawConnect(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(cluster.Port)), db)
	for i, msgs := range steps {
		got, want := viaProxy.roundTripFlush(msgs...), direct.roundTripFlush(msgs...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("step %d: through the proxy\n  %q\ndirectly\n  %q", i, got, want)
		}
	}
}

// roundTripFlush is roundTrip that also stops after the answer to a Describe
// or a Close when the messages end with Flush.
func (r *rawPG) roundTripFlush(msgs ...pgproto3.FrontendMessage) []string {
	r.t.Helper()
	if _, ok := msgs[len(msgs)-1].(*pgproto3.Flush); !ok {
		return r.roundTrip(msgs...)
	}
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
	// The answer to the last message before Flush ends the round trip.
	var endOn func(pgproto3.BackendMessage) bool
	switch msgs[len(msgs)-2].(type) {
	case *pgproto3.Describe:
		endOn = func(m pgproto3.BackendMessage) bool {
			switch m.(type) {
			case *pgproto3.RowDescription, *pgproto3.NoData, *pgproto3.ErrorResponse:
				return true
			}
			return false
		}
	default: // Execute
		endOn = func(m pgproto3.BackendMessage) bool {
			switch m.(type) {
			case *pgproto3.PortalSuspended, *pgproto3.CommandComplete, *pgproto3.ErrorResponse:
				return true
			}
			return false
		}
	}
	return r.receiveUntil(endOn)
}
