package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Protocol sequences where the proxy's record of the session's statements or
// transaction could drift from the server's: each compares what the client
// sees through the proxy with what PostgreSQL itself answers, and checks that
// the cache holds no wrong row afterwards.

// rawDirect is rawConnect to PostgreSQL itself.
func rawDirect(t *testing.T, db string) *rawPG {
	t.Helper()
	return rawConnect(t, fmt.Sprintf("127.0.0.1:%d", cluster.Port), db)
}

// A write sent with Flush leaves the implicit transaction open; a read in it
// sees the uncommitted row and must not fill the shared cache, because the
// transaction may still roll back.
func TestCacheFlushedWriteThenRead(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE ph(k int PRIMARY KEY, v text); INSERT INTO ph VALUES (1, 'committed')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM ph WHERE k = 1"
	read := func(last pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{&pgproto3.Parse{Query: q}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, last}
	}
	a := rawConnect(t, p.Addr, db)
	a.roundTrip(&pgproto3.Parse{Query: "UPDATE ph SET v = 'uncommitted' WHERE k = 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
	got := a.roundTrip(read(&pgproto3.Flush{})...)
	if !slices.Contains(got, `DataRow "uncommitted"`) {
		t.Fatalf("the writer's own read: %q", got)
	}
	a.roundTrip(&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}) // rolls it back
	b := rawConnect(t, p.Addr, db)
	got = b.roundTrip(read(&pgproto3.Sync{})...)
	if !slices.Contains(got, `DataRow "committed"`) {
		t.Errorf("another session read %q after the rollback", got)
	}
	if l := b.showLast(); l.Result != "miss-filled" {
		t.Errorf("another session's read was served %+v, want miss-filled (nothing cached by the rolled-back transaction)", l)
	}
}

// Parse of a name already taken fails with 42P05 and leaves the first
// statement in place; the proxy must keep executing (and keying) the first.
func TestCacheParseOfTakenName(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two'), (42, 'forty-two')"); err != nil {
		t.Fatal(err)
	}
	const q1, q2 = "SELECT v FROM kv WHERE k = 1", "SELECT v FROM kv WHERE k = 2"
	script := []scriptStep{
		{"parse s1", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s1", Query: q1}, &pgproto3.Sync{}}},
		{"parse s1 again, other text", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s1", Query: q2}, &pgproto3.Sync{}}},
		{"execute s1", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"SQL PREPARE s4", []pgproto3.FrontendMessage{&pgproto3.Query{String: "PREPARE s4 AS SELECT v FROM kv WHERE k = 42"}}},
		{"parse s4", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s4", Query: q1}, &pgproto3.Sync{}}},
		{"execute s4", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s4"}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
	}
	compareScript(t, p, db, script)
	other := rawConnect(t, p.Addr, db)
	got := other.roundTrip(&pgproto3.Parse{Query: q2}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if !slices.Contains(got, `DataRow "two"`) {
		t.Errorf("another session's %s: %q", q2, got)
	}
}

type scriptStep struct {
	what string
	msgs []pgproto3.FrontendMessage
}

// compareScript runs script straight against PostgreSQL, then twice through
// the proxy on new connections (the second round is answered partly from the
// cache), and reports any answer that differs.
func compareScript(t *testing.T, p *testProxy, db string, script []scriptStep) {
	t.Helper()
	want := runScript(rawDirect(t, db), script)
	for round := range 2 {
		if got := runScript(rawConnect(t, p.Addr, db), script); !slices.Equal(got, want) {
			t.Errorf("round %d through the proxy:\n%s\nPostgreSQL:\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// runScript sends each step's messages and returns each step's answers.
func runScript(r *rawPG, script []scriptStep) []string {
	var out []string
	for _, step := range script {
		syncs := 0
		for _, m := range step.msgs {
			if _, ok := m.(*pgproto3.Sync); ok {
				syncs++
			}
		}
		if syncs < 2 {
			out = append(out, step.what+": "+strings.Join(r.roundTrip(step.msgs...), ", "))
			continue
		}
		// Pipelined batches: all sent at once, then every answer read.
		for _, m := range step.msgs {
			r.fe.Send(m)
		}
		if err := r.fe.Flush(); err != nil {
			r.t.Fatal(err)
		}
		got := r.receiveUntil(func(m pgproto3.BackendMessage) bool {
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				syncs--
			}
			return syncs == 0
		})
		out = append(out, step.what+": "+strings.Join(got, ", "))
	}
	return out
}

// SQL-level DEALLOCATE and PREPARE sent through the extended protocol (as
// psycopg 3 pipelines do) keep the proxy's record of statements right.
func TestCacheDeallocateInExtendedProtocol(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM kv WHERE k = 1"
	ext := func(sql string) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{&pgproto3.Parse{Query: sql}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}
	}
	script := []scriptStep{
		{"parse, execute", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "_pg3_0", Query: q}, &pgproto3.Bind{PreparedStatement: "_pg3_0"}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"parse again (42P05)", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "_pg3_0", Query: q}, &pgproto3.Sync{}}},
		{"DEALLOCATE", ext("DEALLOCATE _pg3_0")},
		{"parse (free again)", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "_pg3_0", Query: q}, &pgproto3.Sync{}}},
		{"PREPARE", ext("PREPARE named AS SELECT 7")},
		{"parse of the PREPAREd name (42P05)", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "named", Query: q}, &pgproto3.Sync{}}},
		{"DEALLOCATE ALL", ext("DEALLOCATE ALL")},
		{"bind (26000)", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "_pg3_0"}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
	}
	compareScript(t, p, db, script)
}

// A statement parsed only locally is sent by the proxy when a batch needs it;
// if the server skips that Parse (an earlier message of the batch failed) or
// rejects it (an aborted transaction block), the statement must be sent again
// next time, as the client still has it.
func TestCacheLocalStatementSentAgainAfterError(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM kv WHERE k = $1"
	bind := func(k string) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte(k)}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}}
	}
	fail := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{}}
	sync := &pgproto3.Sync{}
	script := []scriptStep{
		{"parse s2", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s2", Query: q, ParameterOIDs: []uint32{23}}, &pgproto3.Describe{ObjectType: 'S', Name: "s2"}, sync}},
		{"fill k=1", append(bind("1"), sync)},
		{"close s2", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'S', Name: "s2"}, sync}},
		// Parsed again: known to parse, so answered locally.
		{"parse s2 again", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s2", Query: q, ParameterOIDs: []uint32{23}}, sync}},
		{"an error, then s2 (skipped)", append(append(fail, bind("2")...), sync)},
		{"s2 after the error", append(bind("2"), sync)},
		{"close s2 once more", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'S', Name: "s2"}, sync}},
		{"parse s2 a third time", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s2", Query: q, ParameterOIDs: []uint32{23}}, sync}},
		{"a failed block", []pgproto3.FrontendMessage{&pgproto3.Query{String: "BEGIN"}}},
		{"error in it", append(fail, sync)},
		{"s2 in the failed block (25P02)", append(bind("2"), sync)},
		{"rollback", []pgproto3.FrontendMessage{&pgproto3.Query{String: "ROLLBACK"}}},
		{"s2 after the rollback", append(bind("2"), sync)},
	}
	compareScript(t, p, db, script)
}

// A Bind that does not fit its statement (parameter or result format counts)
// gets the server's 08P01, not a local BindComplete.
func TestCacheBindThatDoesNotFit(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM kv WHERE k = $1"
	one := [][]byte{[]byte("1")}
	sync := &pgproto3.Sync{}
	script := []scriptStep{
		{"parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: q}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, sync}},
		{"fill", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: one}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, sync}},
		{"hit", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: one}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, sync}},
		{"bind alone", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: one}, sync}},
		{"no parameter", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s"}, sync}},
		{"two parameters", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("1"), []byte("2")}}, sync}},
		{"two parameter formats", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{0, 0}, Parameters: one}, sync}},
		{"two result formats, one column", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: one, ResultFormatCodes: []int16{0, 0}}, sync}},
	}
	compareScript(t, p, db, script)
}

// A portal answered locally that is executed again gets what the server says
// for a portal run to its end (no rows), not the whole result once more:
// after a Flush, in a later batch of its own or beside a miss, and in a
// transaction block across a Sync.
func TestCachePortalExecutedAgain(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM kv WHERE k = $1"
	one := [][]byte{[]byte("1")}
	sync, flush := &pgproto3.Sync{}, &pgproto3.Flush{}
	bindP := &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", Parameters: one}
	execP := &pgproto3.Execute{Portal: "p"}
	script := []scriptStep{
		{"parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: q}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, sync}},
		{"fill", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s", Parameters: one}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, sync}},
		{"bind p, execute, flush", []pgproto3.FrontendMessage{bindP, execP, flush}},
		{"execute p again", []pgproto3.FrontendMessage{execP, flush}},
		{"and again, with a miss", []pgproto3.FrontendMessage{execP, &pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("2")}}, &pgproto3.Execute{}, sync}},
		{"begin", []pgproto3.FrontendMessage{&pgproto3.Query{String: "BEGIN"}}},
		{"bind p in the block", []pgproto3.FrontendMessage{bindP, &pgproto3.Describe{ObjectType: 'P', Name: "p"}, execP, sync}},
		{"execute p after the sync", []pgproto3.FrontendMessage{execP, sync}},
		{"describe p, execute it once more", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'P', Name: "p"}, execP, sync}},
		{"commit", []pgproto3.FrontendMessage{&pgproto3.Query{String: "COMMIT"}}},
	}
	compareScript(t, p, db, script)
	// Round 1 bound and ran p from the cache, in both places.
	if n, _ := strconv.Atoi(showStats(t, pgxConnect(t, p.URL("", "", db)))["hits"]); n < 2 {
		t.Errorf("hits = %d, want the two local runs of p at least", n)
	}
}

// The same, when the client pipelines the next batch before it reads the
// answer to the one whose earlier error made the server skip the proxy's
// Parse: the proxy must not take the statement as the server's (26000 on
// the next use) before it knows.
func TestCacheLocalStatementPipelinedAfterError(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	if err := cluster.Exec(context.Background(), db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two'), (3, 'three')"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT v FROM kv WHERE k = $1"
	bind := func(k string) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte(k)}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}}
	}
	fail := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{}}
	sync := &pgproto3.Sync{}
	var both []pgproto3.FrontendMessage
	both = append(append(append(both, fail...), bind("2")...), sync)
	both = append(append(both, bind("3")...), sync)
	script := []scriptStep{
		{"parse s2", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s2", Query: q, ParameterOIDs: []uint32{23}}, &pgproto3.Describe{ObjectType: 'S', Name: "s2"}, sync}},
		{"fill k=1", append(bind("1"), sync)},
		{"close s2", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'S', Name: "s2"}, sync}},
		{"parse s2 again (local)", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s2", Query: q, ParameterOIDs: []uint32{23}}, sync}},
		{"an error, then s2 (skipped); s2 again, pipelined", both},
		{"s2 once more", append(bind("2"), sync)},
	}
	compareScript(t, p, db, script)
}
