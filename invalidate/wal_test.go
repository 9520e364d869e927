package invalidate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/invalidate"
)

// walRecorder collects what a Consumer reports.
type walRecorder struct {
	mu      sync.Mutex
	changes [][]uint32
	xids    map[uint32][]uint32 // the OIDs reported for each transaction ID
	schema  [][]uint32
	lost    []error
}

func (r *walRecorder) onChange(xid uint32, oids []uint32, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(oids)
	r.changes = append(r.changes, oids)
	if r.xids == nil {
		r.xids = map[uint32][]uint32{}
	}
	r.xids[xid] = oids
}

// ofXID returns what was reported for transaction xid.
func (r *walRecorder) ofXID(xid uint32) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.xids[xid]
}

func (r *walRecorder) onSchema(oids []uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.schema = append(r.schema, oids)
}

// changed reports whether some transaction reported exactly oids.
func (r *walRecorder) changed(oids ...uint32) bool {
	slices.Sort(oids)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		if slices.Equal(c, oids) {
			return true
		}
	}
	return false
}

func (r *walRecorder) snapshot() [][]uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

func (r *walRecorder) reset() {
	r.mu.Lock()
	r.changes, r.schema = nil, nil
	r.mu.Unlock()
}

// startConsumer runs a Consumer on db until the test ends and waits until it
// is current.
func startConsumer(t *testing.T, db string, tweak ...func(*invalidate.Consumer)) (*invalidate.Consumer, *walRecorder) {
	t.Helper()
	c := pgtest.Need(t, cluster)
	rec := &walRecorder{}
	cons := &invalidate.Consumer{
		ReplConnect: func(ctx context.Context) (*pgconn.PgConn, error) {
			cfg, err := pgconn.ParseConfig(c.URL("", "", db))
			if err != nil {
				return nil, err
			}
			cfg.RuntimeParams["replication"] = "database"
			cfg.RuntimeParams["logical_decoding_work_mem"] = "64kB" // large transactions stream
			return pgconn.ConnectConfig(ctx, cfg)
		},
		Connect: func(ctx context.Context) (*pgconn.PgConn, error) {
			return pgconn.Connect(ctx, c.URL("", "", db))
		},
		OnChange: rec.onChange,
		OnSchema: rec.onSchema,
		OnLost: func(err error) {
			rec.mu.Lock()
			rec.lost = append(rec.lost, err)
			rec.mu.Unlock()
		},
		PollInterval: 20 * time.Millisecond,
	}
	for _, f := range tweak {
		f(cons)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cons.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitCurrent(t, cons)
	return cons, rec
}

func waitCurrent(t *testing.T, cons *invalidate.Consumer) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() error {
		if d, ok := cons.Staleness(time.Now()); !ok || d > time.Second {
			return fmt.Errorf("consumer not current: %+v", cons.Status())
		}
		return nil
	})
}

func execDB(t *testing.T, db, sql string) {
	t.Helper()
	if err := cluster.Exec(context.Background(), db, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func oidOf(t *testing.T, db, name string) uint32 {
	t.Helper()
	conn, err := cluster.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	return oids(t, context.Background(), conn.PgConn, name)[0]
}

func TestConsumerReportsCommittedChanges(t *testing.T) {
	c := pgtest.Need(t, cluster)
	const db = "invalidate_wal"
	if err := c.CreateDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	execDB(t, db, `CREATE TABLE a(id int PRIMARY KEY, v text); CREATE TABLE b(id int PRIMARY KEY, v text);
CREATE TABLE audit(n int); ALTER TABLE audit REPLICA IDENTITY FULL; CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO audit VALUES (1); RETURN NEW; END';
CREATE TRIGGER t AFTER INSERT ON b FOR EACH ROW EXECUTE FUNCTION bump();
CREATE TABLE parent(id int PRIMARY KEY); CREATE TABLE child(pid int REFERENCES parent ON DELETE CASCADE); ALTER TABLE child REPLICA IDENTITY FULL;
CREATE TABLE part(id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (k); CREATE TABLE part1 PARTITION OF part FOR VALUES FROM (0) TO (100);`)
	a, b, audit, parent, child, part1 := oidOf(t, db, "a"), oidOf(t, db, "b"), oidOf(t, db, "audit"), oidOf(t, db, "parent"), oidOf(t, db, "child"), oidOf(t, db, "part1")
	cons, rec := startConsumer(t, db)
	st := cons.Status()
	if !st.Connected || !strings.HasPrefix(st.Slot, "pgmemo_") || st.Publication != invalidate.DefaultPublication {
		t.Errorf("status %+v", st)
	}

	wait := func(what string, oids ...uint32) {
		t.Helper()
		pgtest.Eventually(t, 5*time.Second, func() error {
			if !rec.changed(oids...) {
				return fmt.Errorf("%s: %v not reported; got %v", what, oids, rec.snapshot())
			}
			return nil
		})
	}
	// Each step starts from an empty record, so a report of an earlier step
	// cannot satisfy it.
	step := func(sql, what string, oids ...uint32) {
		t.Helper()
		rec.reset()
		execDB(t, db, sql)
		wait(what, oids...)
	}
	step("INSERT INTO a VALUES (1, 'x')", "insert", a)
	step("BEGIN; UPDATE a SET v = 'y'; DELETE FROM a; INSERT INTO parent VALUES (1); COMMIT", "one transaction, two tables", a, parent)
	step("INSERT INTO b VALUES (1, 'z')", "trigger", audit, b)
	step("INSERT INTO child VALUES (1)", "child", child)
	step("DELETE FROM parent", "cascade", child, parent)
	step("INSERT INTO part VALUES (1, 1)", "partition", part1)
	step("TRUNCATE a", "truncate", a)
	waitCurrent(t, cons) // every report of the steps above is in

	// An aborted transaction reports nothing; a large one streams and is
	// reported at commit only.
	rec.reset()
	execDB(t, db, "BEGIN; INSERT INTO a SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g; ROLLBACK")
	execDB(t, db, "BEGIN; INSERT INTO b SELECT g, repeat('x', 100) FROM generate_series(2, 5000) g; ROLLBACK")
	// A large transaction left open: its changes stream (logical_decoding_work_mem
	// is 64kB on the replication connection) but nothing is reported until it
	// commits.
	open, err := cluster.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(context.Background())
	if _, err := open.Exec(context.Background(), "BEGIN; INSERT INTO a SELECT g, repeat('y', 100) FROM generate_series(1, 5000) g").ReadAll(); err != nil {
		t.Fatal(err)
	}
	execDB(t, db, "INSERT INTO parent VALUES (42)") // a later, small transaction that commits first
	wait("small transaction committed during the large one", parent)
	waitCurrent(t, cons)
	if rec.changed(a) {
		t.Fatalf("an uncommitted streamed transaction was reported: %v (a=%d parent=%d b=%d)", rec.snapshot(), a, parent, b)
	}
	res, err := open.Exec(context.Background(), "SELECT pg_current_xact_id_if_assigned()::text").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	bigXID, _ := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 64)
	if _, err := open.Exec(context.Background(), "COMMIT").ReadAll(); err != nil {
		t.Fatal(err)
	}
	wait("large transaction", a)
	// Reports carry the transaction's ID (the low 32 bits of xid8), also for
	// a streamed one.
	if got := rec.ofXID(uint32(bigXID)); !slices.Equal(got, []uint32{a}) {
		t.Errorf("streamed transaction %d reported %v, want [a=%d]", bigXID, got, a)
	}
	if _, err := open.Exec(context.Background(), "BEGIN; INSERT INTO parent VALUES (43)").ReadAll(); err != nil {
		t.Fatal(err)
	}
	res, err = open.Exec(context.Background(), "SELECT pg_current_xact_id_if_assigned()::text; COMMIT").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	smallXID, _ := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 64)
	pgtest.Eventually(t, 5*time.Second, func() error {
		if got := rec.ofXID(uint32(smallXID)); !slices.Equal(got, []uint32{parent}) {
			return fmt.Errorf("transaction %d reported %v, want [parent=%d]", smallXID, got, parent)
		}
		return nil
	})
	for _, ch := range rec.snapshot() {
		if slices.Contains(ch, b) || slices.Contains(ch, audit) {
			t.Errorf("aborted transaction reported: %v", ch)
		}
	}
	waitCurrent(t, cons)
	if st := cons.Status(); st.LagBytes > 0 && st.ServerLSN <= st.ReceivedLSN {
		t.Errorf("lag %+v", st)
	}

	// DDL with the hook: a logical message at commit.
	execDB(t, db, invalidate.DDLHookSQL)
	rec.reset()
	execDB(t, db, "ALTER TABLE b ADD COLUMN extra int")
	pgtest.Eventually(t, 5*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, s := range rec.schema {
			if s == nil {
				return nil
			}
		}
		return fmt.Errorf("DDL not announced: %v", rec.schema)
	})
}

func TestConsumerReconnects(t *testing.T) {
	c := pgtest.Need(t, cluster)
	const db = "invalidate_wal_lost"
	if err := c.CreateDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	execDB(t, db, "CREATE TABLE a(id int PRIMARY KEY)")
	a := oidOf(t, db, "a")
	cons, rec := startConsumer(t, db)
	// Kill the walsender: the stream is lost, reported, and comes back.
	execDB(t, db, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = '' OR true")
	pgtest.Eventually(t, 5*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.lost) == 0 {
			return fmt.Errorf("loss not reported")
		}
		return nil
	})
	waitCurrent(t, cons)
	execDB(t, db, "INSERT INTO a VALUES (1)")
	pgtest.Eventually(t, 5*time.Second, func() error {
		if !rec.changed(a) {
			return fmt.Errorf("not reported after reconnect")
		}
		return nil
	})
	if cons.Status().Reconnects == 0 {
		t.Error("no reconnect counted")
	}
}

// setupError runs a Consumer of publication (empty: the default) in db and
// returns the error it reports before streaming (its ReplConnect must not be
// reached).
func setupError(t *testing.T, c *pgtest.Cluster, db, publication string) error {
	t.Helper()
	errc := make(chan error, 1)
	cons := &invalidate.Consumer{
		Publication: publication,
		ReplConnect: func(ctx context.Context) (*pgconn.PgConn, error) { return nil, fmt.Errorf("not reached") },
		Connect:     func(ctx context.Context) (*pgconn.PgConn, error) { return pgconn.Connect(ctx, c.URL("", "", db)) },
		OnChange:    func(uint32, []uint32, time.Time) {},
		OnLost: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cons.Run(ctx)
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
		return nil
	}
}

func TestConsumerKeepsWritesWorking(t *testing.T) {
	c := pgtest.Need(t, cluster)
	const db = "invalidate_wal_identity"
	if err := c.CreateDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	execDB(t, db, "CREATE TABLE nokey(v int); INSERT INTO nokey VALUES (1)")
	var nri *invalidate.NoReplicaIdentityError
	if err := setupError(t, c, db, ""); !errors.As(err, &nri) || !slices.Equal(nri.Tables, []string{"nokey"}) {
		t.Fatalf("got %v, want a NoReplicaIdentityError for nokey", err)
	}
	// The application's writes still work: no publication was created.
	execDB(t, db, "UPDATE nokey SET v = 2; DELETE FROM nokey")
}

// TestConsumerRefusesANarrowPublication: an existing publication that leaves
// changes out is reported, not used.
func TestConsumerRefusesANarrowPublication(t *testing.T) {
	c := pgtest.Need(t, cluster)
	for _, tt := range []struct{ name, create string }{
		{"some tables", "CREATE PUBLICATION narrow FOR TABLE one"},
		{"no deletes", "CREATE PUBLICATION narrow FOR ALL TABLES WITH (publish = 'insert, update, truncate')"},
		{"via root", "CREATE PUBLICATION narrow FOR ALL TABLES WITH (publish_via_partition_root = true)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := "invalidate_wal_narrow_" + strings.ReplaceAll(tt.name, " ", "_")
			if err := c.CreateDatabase(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			execDB(t, db, "CREATE TABLE one(id int PRIMARY KEY); "+tt.create)
			var pe *invalidate.PublicationError
			if err := setupError(t, c, db, "narrow"); !errors.As(err, &pe) || pe.Publication != "narrow" {
				t.Fatalf("got %v, want a PublicationError for narrow", err)
			}
		})
	}
}
