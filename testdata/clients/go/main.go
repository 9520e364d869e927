// Command go is the client-matrix scenario for the Go drivers: pgx v5 in its
// five query execution modes, a connection pool shared by concurrent
// goroutines (pgxpool, see pool.go), batches,
// CopyFrom and CopyTo, a transaction, and lib/pq through database/sql. See
// testdata/clients/README.md for the contract: it prints "result" lines with
// what the drivers decoded (the same directly and through pgmemo) and, through
// pgmemo only, "check" lines from SHOW pgmemo.last and SHOW pgmemo.stats.
package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lib/pq"
)

var (
	viaProxy bool
	dbURL    string
	simple   = pgx.QueryExecModeSimpleProtocol
)

func main() {
	viaProxy = os.Getenv("PGMEMO_TARGET") == "proxy"
	dbURL = os.Getenv("DATABASE_URL")
	if dbURL == "" {
		fatalf("DATABASE_URL is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()

	setup := connect(ctx, pgx.QueryExecModeCacheStatement)
	defer setup.Close(ctx)
	createSchema(ctx, setup)

	for _, m := range []pgx.QueryExecMode{
		pgx.QueryExecModeCacheStatement, // pgx's default
		pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeExec,
		pgx.QueryExecModeSimpleProtocol,
	} {
		execMode(ctx, m)
	}
	transaction(ctx)
	pool(ctx)
	batches(ctx)
	copyFromTo(ctx)
	libpq(ctx)
	fmt.Printf("done in %v\n", time.Since(start).Round(time.Millisecond))
}

// --- output ----------------------------------------------------------------

func result(label string, format string, args ...any) {
	fmt.Printf("result %s %s\n", label, fmt.Sprintf(format, args...))
}

// check prints a check line; only through pgmemo.
func check(label string, ok bool, format string, args ...any) {
	if !viaProxy {
		return
	}
	verdict := "ok"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Printf("check %s %s %s\n", label, verdict, fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scenario failed: "+format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fatalf("%s: %v", what, err)
	}
}

// errCode is the SQLSTATE of err, or its text.
func errCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	var qe *pq.Error
	if errors.As(err, &qe) {
		return string(qe.Code)
	}
	return err.Error()
}

// fmtValue formats a value pgx decoded, stably: times in UTC, bytea in hex,
// json as compact JSON with sorted keys, arrays in braces, NULL as NULL.
func fmtValue(v any, oid uint32) string {
	switch oid {
	case pgtype.JSONOID, pgtype.JSONBOID:
		if v == nil {
			return "NULL"
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "json-error:" + err.Error()
		}
		return string(b)
	}
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(x)
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case int16:
		return "int2:" + strconv.FormatInt(int64(x), 10)
	case int32:
		return "int4:" + strconv.FormatInt(int64(x), 10)
	case int64:
		return "int8:" + strconv.FormatInt(x, 10)
	case float64:
		return "float8:" + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case pgtype.Numeric:
		s, err := x.Value()
		if err != nil {
			return "numeric-error:" + err.Error()
		}
		if s == nil {
			return "NULL"
		}
		return "numeric:" + s.(string)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmtValue(e, 0)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprintf("%T:%v", v, v)
}

// querier is what pgx.Conn, pgx.Tx and pgxpool.Conn have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// rowsText runs a query with pgx and formats every row it decoded, the
// columns' names and types, and the command tag, or the error's SQLSTATE.
func rowsText(ctx context.Context, q querier, sql string, args ...any) string {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return "error " + errCode(err)
	}
	defer rows.Close()
	return collect(rows)
}

func collect(rows pgx.Rows) string {
	var out []string
	fds := rows.FieldDescriptions()
	var cols []string
	for _, f := range fds {
		cols = append(cols, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "error " + errCode(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = fmtValue(v, fds[i].DataTypeOID)
		}
		out = append(out, "("+strings.Join(cells, " ")+")")
	}
	if err := rows.Err(); err != nil {
		return strings.Join(append(out, "error "+errCode(err)), " ")
	}
	return "[" + strings.Join(cols, ",") + "] " + strings.Join(out, " ") + " tag=" + strconv.Quote(rows.CommandTag().String())
}

// --- pgmemo's own commands (through the proxy only) --------------------------

// last is SHOW pgmemo.last on the connection: how its previous statement was
// served.
func last(ctx context.Context, q querier) (result, reason string) {
	var fp, warnings string
	if err := q.QueryRow(ctx, "SHOW pgmemo.last", simple).Scan(&result, &reason, &fp, &warnings); err != nil {
		fatalf("SHOW pgmemo.last: %v", err)
	}
	return result, reason
}

// expectLast checks how the connection's previous statement was served.
func expectLast(ctx context.Context, q querier, label string, want ...string) {
	if !viaProxy {
		return
	}
	res, reason := last(ctx, q)
	ok := false
	for _, w := range want {
		ok = ok || res == w || res+"/"+reason == w
	}
	extra := ""
	if !ok {
		// What invalidated it: the counters so far.
		st := stats(ctx, q)
		for _, k := range []string{"invalidations", "invalidations_statement", "invalidations_wal", "invalidations_admin",
			"replication_transactions", "replication_invalidations", "replication_reconnects", "replication_received_lsn"} {
			extra += " " + k + "=" + st[k]
		}
	}
	check(label, ok, "served %s (reason %q), want %s%s", res, reason, strings.Join(want, " or "), extra)
}

// stats is SHOW pgmemo.stats: the counters of all clients.
func stats(ctx context.Context, q querier) map[string]string {
	m := map[string]string{}
	if !viaProxy {
		return m
	}
	rows, err := q.Query(ctx, "SHOW pgmemo.stats", simple)
	must(err, "SHOW pgmemo.stats")
	defer rows.Close()
	for rows.Next() {
		var k, v string
		must(rows.Scan(&k, &v), "SHOW pgmemo.stats")
		m[k] = v
	}
	must(rows.Err(), "SHOW pgmemo.stats")
	return m
}

func counter(m map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(m[name], 10, 64)
	return n
}

// delta formats the change of some counters between two SHOW pgmemo.stats.
func delta(before, after map[string]string, names ...string) (map[string]int64, string) {
	d := map[string]int64{}
	var parts []string
	for _, n := range names {
		d[n] = counter(after, n) - counter(before, n)
		parts = append(parts, fmt.Sprintf("%s+%d", n, d[n]))
	}
	return d, strings.Join(parts, " ")
}

func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// waitWAL waits until pgmemo's replication stream has reached the server's
// current WAL position, so that the invalidations of the writes made so far
// have all arrived: a read filled after this is not evicted by the stream's
// late news of a write committed before it. Through the proxy only.
func waitWAL(ctx context.Context, c *pgx.Conn, label string) {
	if !viaProxy {
		return
	}
	// The insert position: under synchronous_commit=off a commit may not
	// be written yet, and pg_current_wal_lsn() (the write position) would
	// be short of it.
	var lsn string
	must(c.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text", simple).Scan(&lsn), "pg_current_wal_insert_lsn")
	want := parseLSN(lsn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := stats(ctx, c)
		if parseLSN(st["replication_received_lsn"]) >= want && st["replication_serving"] == "true" {
			return
		}
		if time.Now().After(deadline) {
			check(label+"/wal-current", false, "the replication stream did not reach %s within 10s: received %s, serving %s",
				lsn, st["replication_received_lsn"], st["replication_serving"])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// afterWrite is how the first read after a write through pgmemo may be
// served: not a hit. pgmemo invalidates what the write touched when it
// commits, so the read goes upstream and fills, unless the write's own
// invalidation through the replication stream, which follows the commit by
// about as long as the read takes, arrives while it fills: the result is then
// not stored.
var afterWrite = []string{"miss-filled", "miss-not-filled/invalidated_while_filling"}

// --- connections -------------------------------------------------------------

func connect(ctx context.Context, mode pgx.QueryExecMode) *pgx.Conn {
	cfg, err := pgx.ParseConfig(dbURL)
	must(err, "parse DATABASE_URL")
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(ctx, cfg)
	must(err, "connect")
	return c
}

func exec(ctx context.Context, c *pgx.Conn, sql string, args ...any) string {
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		fatalf("%s: %v", sql, err)
	}
	return tag.String()
}

// --- the scenario ------------------------------------------------------------

// Every table has a primary key: through pgmemo the database has a FOR ALL
// TABLES publication, under which UPDATE and DELETE need a replica identity.
func createSchema(ctx context.Context, c *pgx.Conn) {
	exec(ctx, c, `CREATE TABLE items (
		id int8 PRIMARY KEY,
		name text NOT NULL,
		price numeric(10,2),
		qty int4,
		tags text[],
		at timestamptz,
		data bytea,
		doc jsonb,
		note text
	)`)
	exec(ctx, c, `INSERT INTO items
		SELECT g, 'item ' || g, g * 1.25, g * 10, ARRAY['t' || g, 'common', CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' END],
		       timestamptz '2024-02-29 23:59:58.123456+00' + g * interval '1 day 1 hour',
		       CASE WHEN g % 4 = 0 THEN NULL ELSE decode(lpad(to_hex(g * 4097), 6, '0') || '00ff', 'hex') END,
		       jsonb_build_object('n', g, 'even', g % 2 = 0, 'list', jsonb_build_array(g, 'a', NULL), 'half', g / 2.0),
		       CASE WHEN g % 2 = 0 THEN 'note ' || g END
		FROM generate_series(1, 40) g`)
	exec(ctx, c, `CREATE TABLE copied (
		id int4 PRIMARY KEY,
		label text,
		amount numeric(12,3),
		at timestamptz,
		data bytea,
		nums int4[]
	)`)
	var n int64
	must(c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n), "count items")
	result("setup/items", "%d rows", n)
	waitWAL(ctx, c, "setup")
}

const itemsByIDs = "SELECT id, name, price, qty, tags, at, data, doc, note FROM items WHERE id = ANY($1::int8[]) ORDER BY id"
const itemByID = "SELECT id, name, note, price FROM items WHERE id = $1"

// execMode runs reads in one pgx query execution mode: each read three times
// (a miss that fills, then hits), a write followed by the read it changes,
// and an error.
func execMode(ctx context.Context, mode pgx.QueryExecMode) {
	c := connect(ctx, mode)
	defer c.Close(ctx)
	m := strings.ReplaceAll(mode.String(), " ", "_")
	// Each mode reads its own rows: its first read is a miss whatever the
	// modes before it left in the cache.
	base := modeBase(mode)
	ids := []int64{base, base + 1, base + 2, base + 3}
	for run := 1; run <= 3; run++ {
		lbl := fmt.Sprintf("pgx/%s/types#%d", m, run)
		before := stats(ctx, c)
		result(lbl, "%s", rowsText(ctx, c, itemsByIDs, ids))
		after := stats(ctx, c)
		d, detail := delta(before, after, "hits", "misses")
		if run == 1 {
			expectLast(ctx, c, lbl, "miss-filled")
			// SHOW pgmemo.stats: misses count every lookup that found
			// nothing, so at least one for a statement that missed.
			check(lbl+"/stats", d["hits"] == 0 && d["misses"] >= 1, "%s", detail)
		} else {
			expectLast(ctx, c, lbl, "hit")
			check(lbl+"/stats", d["hits"] == 1 && d["misses"] == 0, "%s", detail)
		}
	}
	// A statement without parameters.
	noParams := "SELECT count(*) AS n, sum(price) AS total, max(at) AS latest FROM items WHERE id <= " + strconv.FormatInt(base+3, 10)
	for run := 1; run <= 2; run++ {
		lbl := fmt.Sprintf("pgx/%s/aggregate#%d", m, run)
		result(lbl, "%s", rowsText(ctx, c, noParams))
		expectLast(ctx, c, lbl, fillThenHit(run))
	}
	// Scanning into Go types.
	{
		var name string
		var note pgtype.Text
		var price pgtype.Numeric
		var id int64
		for run := 1; run <= 2; run++ {
			lbl := fmt.Sprintf("pgx/%s/scan#%d", m, run)
			err := c.QueryRow(ctx, itemByID, base).Scan(&id, &name, &note, &price)
			must(err, lbl)
			result(lbl, "id=%d name=%q note=%s price=%s", id, name, fmtText(note), fmtValue(price, 0))
			expectLast(ctx, c, lbl, fillThenHit(run))
		}
		// A write through the proxy is seen by the next read, which is
		// not a hit.
		tag := exec(ctx, c, "UPDATE items SET note = $1 WHERE id = $2", "written in "+m, base)
		result("pgx/"+m+"/update", "%s", tag)
		err := c.QueryRow(ctx, itemByID, base).Scan(&id, &name, &note, &price)
		must(err, "read after write")
		result("pgx/"+m+"/after-write", "id=%d name=%q note=%s price=%s", id, name, fmtText(note), fmtValue(price, 0))
		expectLast(ctx, c, "pgx/"+m+"/after-write", afterWrite...)
		// Once the write's own WAL invalidation is in, the new value is
		// cached again.
		waitWAL(ctx, c, "pgx/"+m)
		for run := 1; run <= 2; run++ {
			err := c.QueryRow(ctx, itemByID, base).Scan(&id, &name, &note, &price)
			must(err, "read after write")
			result(fmt.Sprintf("pgx/%s/after-write#%d", m, run+1), "note=%s", fmtText(note))
		}
		expectLast(ctx, c, "pgx/"+m+"/after-write-cached", "hit")
	}
	// An error is not cached and leaves the connection usable.
	for run := 1; run <= 2; run++ {
		lbl := fmt.Sprintf("pgx/%s/error#%d", m, run)
		result(lbl, "%s", rowsText(ctx, c, "SELECT id, 10 / (id - $1) AS q FROM items WHERE id <= $2 ORDER BY id", base+1, base+2))
		expectLast(ctx, c, lbl, "miss-not-filled")
	}
	var one int
	must(c.QueryRow(ctx, "SELECT 1").Scan(&one), "after the error")
	result("pgx/"+m+"/usable", "%d", one)
}

// fillThenHit is how the run-th read of the same statement is served: the
// first fills the cache, the next ones hit.
func fillThenHit(run int) string {
	if run == 1 {
		return "miss-filled"
	}
	return "hit"
}

func modeBase(mode pgx.QueryExecMode) int64 {
	switch mode {
	case pgx.QueryExecModeCacheStatement:
		return 1
	case pgx.QueryExecModeCacheDescribe:
		return 5
	case pgx.QueryExecModeDescribeExec:
		return 9
	case pgx.QueryExecModeExec:
		return 13
	}
	return 17
}

func fmtText(t pgtype.Text) string {
	if !t.Valid {
		return "NULL"
	}
	return strconv.Quote(t.String)
}

// transaction: in a READ COMMITTED block, reads hit until the block's first
// write; after it they go upstream and see the block's own write; the commit
// invalidates; a rolled-back write leaves the cache as it was.
func transaction(ctx context.Context) {
	c := connect(ctx, pgx.QueryExecModeCacheStatement)
	defer c.Close(ctx)
	const id = 21
	read := func(q querier, lbl string) {
		var name string
		var note pgtype.Text
		var price pgtype.Numeric
		var got int64
		must(q.QueryRow(ctx, itemByID, id).Scan(&got, &name, &note, &price), lbl)
		result(lbl, "name=%q note=%s price=%s", name, fmtText(note), fmtValue(price, 0))
	}
	read(c, "tx/before#1")
	expectLast(ctx, c, "tx/before#1", "miss-filled")
	read(c, "tx/before#2")
	expectLast(ctx, c, "tx/before#2", "hit")

	tx, err := c.Begin(ctx)
	must(err, "begin")
	read(tx, "tx/in-block-before-write")
	expectLast(ctx, tx, "tx/in-block-before-write", "hit")
	tag, err := tx.Exec(ctx, "UPDATE items SET name = $1, price = price + 1 WHERE id = $2", "renamed in tx", id)
	must(err, "update in tx")
	result("tx/update", "%s", tag)
	read(tx, "tx/in-block-after-write")
	expectLast(ctx, tx, "tx/in-block-after-write", "bypass")
	must(tx.Commit(ctx), "commit")
	read(c, "tx/after-commit")
	expectLast(ctx, c, "tx/after-commit", afterWrite...)
	waitWAL(ctx, c, "tx")
	read(c, "tx/after-commit#2")
	read(c, "tx/after-commit#3")
	expectLast(ctx, c, "tx/after-commit#3", "hit")

	// A rolled-back write: the cached entry stays valid.
	tx, err = c.Begin(ctx)
	must(err, "begin")
	_, err = tx.Exec(ctx, "UPDATE items SET name = 'rolled back' WHERE id = $1", id)
	must(err, "update in tx")
	read(tx, "tx/rollback-in-block")
	must(tx.Rollback(ctx), "rollback")
	read(c, "tx/after-rollback")
	expectLast(ctx, c, "tx/after-rollback", "hit")
}

// pool: several goroutines share a pgxpool (pool.go); every read of a statement
// the cache holds is a hit, and concurrent first reads of new keys fill once.
func pool(ctx context.Context) {
	const workers, reps, maxConns = 8, 5, 4
	p := newPool(ctx, dbURL, maxConns)
	defer p.close()
	result("pool/kind", "%d connections", maxConns)
	fmt.Printf("info: pool implementation %s\n", p.kind())
	const q = "SELECT id, name, tags, doc FROM items WHERE id BETWEEN $1 AND $2 ORDER BY id"

	// Fill once.
	var want string
	var before map[string]string
	p.with(ctx, func(c querier) {
		want = rowsText(ctx, c, q, 25, 27)
		result("pool/fill", "%s", want)
		expectLast(ctx, c, "pool/fill", "miss-filled")
		before = stats(ctx, c)
	})

	var mu sync.Mutex
	same, total := 0, 0
	served := map[string]int{} // how each read was served
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < reps; r++ {
				var got, how string
				p.with(ctx, func(c querier) {
					got = rowsText(ctx, c, q, 25, 27)
					if viaProxy {
						res, reason := last(ctx, c)
						how = strings.TrimSuffix(res+"/"+reason, "/")
					}
				})
				mu.Lock()
				total++
				if got == want {
					same++
				}
				served[how]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	result("pool/concurrent", "%d of %d reads returned the filled result", same, total)
	var after map[string]string
	p.with(ctx, func(c querier) { after = stats(ctx, c) })
	d, detail := delta(before, after, "hits", "misses", "misses_cold", "misses_invalidated", "fills", "bypassed", "not_cacheable",
		"invalidations", "invalidations_statement", "invalidations_wal", "replication_invalidations", "replication_reconnects")
	check("pool/concurrent-hits", d["hits"] >= workers*reps && d["misses"] == 0 && served["hit"] == workers*reps,
		"%s for %d reads; served %v", detail, workers*reps, served)

	// Each worker its own key, read twice: a miss that fills, then a hit
	// (the pool may hand the two reads to different connections, which
	// changes nothing).
	before = after
	results := make([]string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := int64(22 + w)
			var first, second string
			p.with(ctx, func(c querier) { first = rowsText(ctx, c, itemByID, id) })
			p.with(ctx, func(c querier) { second = rowsText(ctx, c, itemByID, id) })
			if first != second {
				second = "DIFFERENT: " + second
			}
			results[w] = first + " | " + second
		}()
	}
	wg.Wait()
	for w, r := range results {
		result(fmt.Sprintf("pool/own-key/%d", w), "%s", r)
	}
	p.with(ctx, func(c querier) { after = stats(ctx, c) })
	d, detail = delta(before, after, "hits", "misses", "fills")
	check("pool/own-key-hits", d["hits"] >= workers && d["misses"] == workers, "%s for %d keys read twice", detail, workers)
}

// batches: SendBatch of reads, repeated: the first round fills, the next
// ones are answered entirely from the cache. A batch with a write before a
// read: the read sees the write, and the read after the batch is a miss.
func batches(ctx context.Context) {
	c := connect(ctx, pgx.QueryExecModeCacheStatement)
	defer c.Close(ctx)
	queue := func() *pgx.Batch {
		b := &pgx.Batch{}
		b.Queue("SELECT id, name, at FROM items WHERE id = $1", 33)
		b.Queue("SELECT count(*) AS n FROM items WHERE price > $1", 20)
		b.Queue("SELECT tags, doc, data FROM items WHERE id = $1", 34)
		b.Queue("SELECT sum(qty) AS qty, min(name) AS first FROM items")
		return b
	}
	for round := 1; round <= 3; round++ {
		before := stats(ctx, c)
		b := queue()
		out := sendBatch(ctx, c, b)
		lbl := fmt.Sprintf("batch/reads#%d", round)
		for i, o := range out {
			result(fmt.Sprintf("%s/%d", lbl, i), "%s", o)
		}
		after := stats(ctx, c)
		d, detail := delta(before, after, "hits", "misses", "fills", "local_batches")
		if round == 1 {
			// Every read of the batch went to the server and was filled
			// (the next rounds hit): one miss each.
			check(lbl, d["misses"] == int64(b.Len()) && d["hits"] == 0, "%s, want %d misses", detail, b.Len())
		} else {
			check(lbl, d["hits"] == int64(b.Len()) && d["misses"] == 0, "%s, want %d hits", detail, b.Len())
			expectLast(ctx, c, lbl+"/last", "hit")
		}
	}

	// A write and reads in one batch.
	const id = 35
	result("batch/mixed/before", "%s", rowsText(ctx, c, itemByID, id))
	result("batch/mixed/before#2", "%s", rowsText(ctx, c, itemByID, id))
	expectLast(ctx, c, "batch/mixed/before#2", "hit")
	b := &pgx.Batch{}
	b.Queue("SELECT note FROM items WHERE id = $1", id)
	b.Queue("UPDATE items SET note = $1 WHERE id = $2", "written in a batch", id)
	b.Queue(itemByID, id)
	br := c.SendBatch(ctx, b)
	rows, err := br.Query()
	must(err, "batch read")
	result("batch/mixed/0", "%s", collect(rows))
	rows.Close()
	tag, err := br.Exec()
	must(err, "batch update")
	result("batch/mixed/1", "%s", tag)
	rows, err = br.Query()
	must(err, "batch read")
	result("batch/mixed/2", "%s", collect(rows))
	rows.Close()
	must(br.Close(), "batch close")
	expectLast(ctx, c, "batch/mixed/read-after-write", "bypass")
	result("batch/mixed/after", "%s", rowsText(ctx, c, itemByID, id))
	expectLast(ctx, c, "batch/mixed/after", afterWrite...)

	// In the simple protocol pgx sends a batch as one multi-statement
	// Query: correct, but not cacheable.
	cs := connect(ctx, simple)
	defer cs.Close(ctx)
	for round := 1; round <= 2; round++ {
		out := sendBatch(ctx, cs, queue())
		for i, o := range out {
			result(fmt.Sprintf("batch/simple#%d/%d", round, i), "%s", o)
		}
	}
	expectLast(ctx, cs, "batch/simple", "miss-not-cacheable/multi_statement")
}

// copyFromTo: CopyFrom into a table whose reads are cached: the next read
// sees the rows. CopyTo streams a query's rows out.
func copyFromTo(ctx context.Context) {
	c := connect(ctx, pgx.QueryExecModeCacheStatement)
	defer c.Close(ctx)
	const summary = "SELECT count(*) AS n, sum(amount) AS total, min(at) AS first, max(label) AS last FROM copied"
	const some = "SELECT id, label, amount, at, data, nums FROM copied WHERE id = ANY($1::int4[]) ORDER BY id"
	result("copy/before", "%s", rowsText(ctx, c, summary))
	result("copy/before#2", "%s", rowsText(ctx, c, summary))
	expectLast(ctx, c, "copy/before#2", "hit")

	base := time.Date(2023, 12, 31, 22, 30, 0, 987654000, time.FixedZone("CET", 3600))
	var src [][]any
	for i := 1; i <= 500; i++ {
		var data []byte
		if i%5 != 0 {
			data = []byte{byte(i), byte(i >> 8), 0, 0xff}
		}
		var label any = fmt.Sprintf("row %03d, with \"quotes\" and \t tab", i)
		if i%7 == 0 {
			label = nil
		}
		amount := pgtype.Numeric{}
		must(amount.Scan(fmt.Sprintf("%d.%03d", i*3, i%1000)), "numeric")
		src = append(src, []any{int32(i), label, amount, base.Add(time.Duration(i) * time.Minute), data, []int32{int32(i), int32(-i), 0}})
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"copied"}, []string{"id", "label", "amount", "at", "data", "nums"}, pgx.CopyFromRows(src))
	must(err, "CopyFrom")
	result("copy/from", "%d rows", n)
	result("copy/after", "%s", rowsText(ctx, c, summary))
	expectLast(ctx, c, "copy/after", afterWrite...)
	ids := []int32{1, 5, 7, 250, 500}
	result("copy/rows", "%s", rowsText(ctx, c, some, ids))
	waitWAL(ctx, c, "copy")
	result("copy/rows#2", "%s", rowsText(ctx, c, some, ids))
	result("copy/rows#3", "%s", rowsText(ctx, c, some, ids))
	expectLast(ctx, c, "copy/rows#3", "hit")

	var buf strings.Builder
	tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, label, amount, at, data, nums FROM copied WHERE id % 100 IN (0, 7) ORDER BY id) TO STDOUT")
	must(err, "CopyTo")
	result("copy/to", "%s", tag)
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		result(fmt.Sprintf("copy/to/%d", i), "%q", line)
	}
	// COPY TO STDOUT in CSV with a header.
	buf.Reset()
	_, err = c.PgConn().CopyTo(ctx, &buf, "COPY items (id, name, tags, doc) TO STDOUT WITH (FORMAT csv, HEADER)")
	must(err, "CopyTo csv")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	result("copy/to-csv", "%d lines, first %q, second %q", len(lines), lines[0], lines[1])
	var one int
	must(c.QueryRow(ctx, "SELECT 1").Scan(&one), "after COPY")
	result("copy/usable", "%d", one)
}

// libpq: lib/pq through database/sql on one connection: queries with
// parameters (lib/pq prepares an unnamed statement, then binds), a statement
// without parameters (the simple protocol), a prepared statement reused, a
// write and the read after it.
func libpq(ctx context.Context) {
	db, err := sql.Open("postgres", dbURL)
	must(err, "sql.Open")
	defer db.Close()
	conn, err := db.Conn(ctx)
	must(err, "db.Conn")
	defer conn.Close()
	show := func(label string, want ...string) {
		if !viaProxy {
			return
		}
		var res, reason, fp, warnings string
		must(conn.QueryRowContext(ctx, "SHOW pgmemo.last").Scan(&res, &reason, &fp, &warnings), "SHOW pgmemo.last")
		ok := false
		for _, w := range want {
			ok = ok || res == w || res+"/"+reason == w
		}
		check(label, ok, "served %s (reason %q), want %s", res, reason, strings.Join(want, " or "))
	}
	query := func(sqlText string, args ...any) string {
		rows, err := conn.QueryContext(ctx, sqlText, args...)
		if err != nil {
			return "error " + errCode(err)
		}
		defer rows.Close()
		cols, err := rows.ColumnTypes()
		must(err, "column types")
		var names []string
		for _, ct := range cols {
			names = append(names, ct.Name()+":"+ct.DatabaseTypeName())
		}
		var out []string
		for rows.Next() {
			var (
				id    int64
				name  string
				price sql.NullString
				qty   sql.NullInt64
				tags  []sql.NullString
				at    sql.NullTime
				data  []byte
				doc   sql.NullString
				note  sql.NullString
			)
			must(rows.Scan(&id, &name, &price, &qty, pq.Array(&tags), &at, &data, &doc, &note), "scan")
			var ts []string
			for _, t := range tags {
				ts = append(ts, nullString(t))
			}
			atS := "NULL"
			if at.Valid {
				atS = at.Time.UTC().Format(time.RFC3339Nano)
			}
			dataS := "NULL"
			if data != nil {
				dataS = `\x` + hex.EncodeToString(data)
			}
			qtyS := "NULL"
			if qty.Valid {
				qtyS = strconv.FormatInt(qty.Int64, 10)
			}
			out = append(out, fmt.Sprintf("(%d %q %s %s {%s} %s %s %s %s)", id, name, nullString(price), qtyS,
				strings.Join(ts, ","), atS, dataS, nullString(doc), nullString(note)))
		}
		if err := rows.Err(); err != nil {
			return "error " + errCode(err)
		}
		return "[" + strings.Join(names, ",") + "] " + strings.Join(out, " ")
	}
	const q = "SELECT id, name, price, qty, tags, at, data, doc, note FROM items WHERE id = $1 OR id = $2 ORDER BY id"
	for run := 1; run <= 3; run++ {
		lbl := fmt.Sprintf("pq/params#%d", run)
		result(lbl, "%s", query(q, 37, 38))
		show(lbl, fillThenHit(run))
	}
	const noParams = "SELECT id, name, price, qty, tags, at, data, doc, note FROM items WHERE id IN (39, 40) ORDER BY id"
	for run := 1; run <= 2; run++ {
		lbl := fmt.Sprintf("pq/simple#%d", run)
		result(lbl, "%s", query(noParams))
		show(lbl, fillThenHit(run))
	}

	st, err := conn.PrepareContext(ctx, "SELECT name, price, note FROM items WHERE id = $1")
	must(err, "prepare")
	defer st.Close()
	readPrepared := func(id int64, lbl string) {
		var name string
		var price, note sql.NullString
		must(st.QueryRowContext(ctx, id).Scan(&name, &price, &note), lbl)
		result(lbl, "name=%q price=%s note=%s", name, nullString(price), nullString(note))
	}
	for round := 1; round <= 2; round++ {
		for _, id := range []int64{2, 3, 4} {
			lbl := fmt.Sprintf("pq/prepared/%d#%d", id, round)
			readPrepared(id, lbl)
			show(lbl, fillThenHit(round))
		}
	}
	res, err := conn.ExecContext(ctx, "UPDATE items SET note = $1, price = $2 WHERE id = $3", "written by lib/pq", "99.50", 3)
	must(err, "update")
	n, err := res.RowsAffected()
	must(err, "rows affected")
	result("pq/update", "%d rows", n)
	readPrepared(3, "pq/prepared/after-write")
	show("pq/prepared/after-write", afterWrite...)
	readPrepared(2, "pq/prepared/other-row-after-write")
	// Its entry depends on the table written: invalidated too.
	show("pq/prepared/other-row-after-write", afterWrite...)

	// An error through lib/pq.
	var x int
	err = conn.QueryRowContext(ctx, "SELECT 1 / ($1::int - 1)", 1).Scan(&x)
	result("pq/error", "%s", errCode(err))
	must(conn.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&x), "after error")
	result("pq/usable", "%d", x)

	// Sorted list of the items' notes, as lib/pq reads them without
	// parameters.
	rows, err := conn.QueryContext(ctx, "SELECT id, note FROM items WHERE note LIKE 'written%' ORDER BY id")
	must(err, "notes")
	var notes []string
	for rows.Next() {
		var id int64
		var note string
		must(rows.Scan(&id, &note), "scan note")
		notes = append(notes, fmt.Sprintf("%d=%q", id, note))
	}
	must(rows.Err(), "notes")
	rows.Close()
	sort.Strings(notes)
	result("pq/notes", "%s", strings.Join(notes, " "))
}

func nullString(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return strconv.Quote(s.String)
}

// sendBatch sends b and returns what each of its queries returned.
func sendBatch(ctx context.Context, c *pgx.Conn, b *pgx.Batch) []string {
	br := c.SendBatch(ctx, b)
	var out []string
	for i := 0; i < b.Len(); i++ {
		rows, err := br.Query()
		if err != nil {
			out = append(out, "error "+errCode(err))
			continue
		}
		out = append(out, collect(rows))
		rows.Close()
	}
	must(br.Close(), "batch close")
	return out
}
