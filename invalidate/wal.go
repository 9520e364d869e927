package invalidate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Defaults of Consumer's zero fields.
const (
	DefaultPublication  = "pgmemo"
	DefaultPollInterval = 100 * time.Millisecond
	// DDLMessagePrefix is the prefix of the logical messages the DDL hook
	// emits (see DDLHookSQL).
	DDLMessagePrefix = "pgmemo.ddl"
)

// Consumer follows one database's logical replication stream (the pgoutput
// plugin, protocol version 2 with streaming of large transactions) and reports
// every committed change: the relations written by each transaction when it
// commits (never before, and never for an aborted one), schema changes, and
// DDL announced by the DDL hook. It also measures how current it is: every
// PollInterval it reads the server's WAL insert position on a service
// connection and asks the stream for a reply; once everything up to that
// position has been received and reported, the consumer is current as of the
// moment the position was read (FreshAsOf).
//
// Run reconnects with backoff when the stream is lost (server restart, slot
// dropped, connection killed) and calls OnLost first: whatever was cached
// from the database must stop being served, because changes may be missed
// until the new stream starts. The zero value is not usable: set ReplConnect,
// Connect and OnChange. A Consumer never logs; Status reports its state and
// last error.
type Consumer struct {
	// ReplConnect opens a replication connection to the database
	// (replication=database); its role needs the REPLICATION attribute.
	ReplConnect func(ctx context.Context) (*pgconn.PgConn, error)
	// Connect opens an ordinary connection to the same database, used to
	// create the publication and to read the server's WAL position.
	Connect func(ctx context.Context) (*pgconn.PgConn, error)
	// Publication is the publication streamed (DefaultPublication if
	// empty). It is created FOR ALL TABLES when it does not exist.
	Publication string
	// Slot names a persistent replication slot, created if missing. Empty
	// means a temporary slot, dropped by the server when the stream ends.
	Slot string
	// PollInterval is how often freshness is measured (DefaultPollInterval).
	PollInterval time.Duration

	// OnChange receives the OIDs of the relations a committed transaction
	// wrote (leaf partitions as the stream reports them), with its
	// transaction ID and commit time. It is called on the consumer's
	// goroutine, in commit order.
	OnChange func(xid uint32, oids []uint32, commitTime time.Time)
	// OnSchema is called with the OID of a relation whose definition
	// changed (a Relation message that differs from the one this stream sent
	// before for it), and with nil when the DDL hook announced DDL: every
	// cached result and plan of the database may be stale. The first
	// Relation message of a relation in a stream is not a change: the
	// server sends it with the relation's first row change, which OnChange
	// reports anyway.
	OnSchema func(oids []uint32)
	// OnLost is called when the stream is lost or cannot start, before the
	// consumer retries.
	OnLost func(err error)

	mu        sync.Mutex
	status    WALStatus
	freshAsOf atomic.Int64 // unix ns; 0: not current
	connected atomic.Bool
}

// WALStatus is a snapshot of a Consumer's state.
type WALStatus struct {
	Connected   bool
	Slot        string
	Publication string
	// ReceivedLSN is the position up to which every committed change has
	// been reported; ServerLSN the server's insert position last read.
	ReceivedLSN, ServerLSN pglogrepl.LSN
	// LagBytes is ServerLSN - ReceivedLSN (0 when caught up).
	LagBytes uint64
	// FreshAsOf is the latest moment up to which every committed change is
	// known to have been reported; zero when not current.
	FreshAsOf time.Time
	// Transactions and Changes count committed transactions with changes to
	// published relations, and the relation changes reported.
	Transactions, Changes uint64
	// Reconnects counts streams lost.
	Reconnects uint64
	LastError  string
	LastErrAt  time.Time
}

// Status returns the consumer's state.
func (c *Consumer) Status() WALStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	st.Connected = c.connected.Load()
	if ns := c.freshAsOf.Load(); ns > 0 {
		st.FreshAsOf = time.Unix(0, ns)
	}
	if st.ServerLSN > st.ReceivedLSN {
		st.LagBytes = uint64(st.ServerLSN - st.ReceivedLSN)
	}
	return st
}

// Staleness returns how far behind the server the consumer may be: the time
// since FreshAsOf, or ok=false when it is not current at all (not connected,
// or not caught up since it connected).
func (c *Consumer) Staleness(now time.Time) (d time.Duration, ok bool) {
	ns := c.freshAsOf.Load()
	if ns == 0 || !c.connected.Load() {
		return 0, false
	}
	return now.Sub(time.Unix(0, ns)), true
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.status.LastError, c.status.LastErrAt = err.Error(), time.Now()
	c.mu.Unlock()
}

// Run follows the stream until ctx ends, reconnecting with backoff (100 ms
// doubling to 5 s) whenever it is lost. It returns ctx's error.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := c.stream(ctx)
		c.connected.Store(false)
		c.freshAsOf.Store(0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.setErr(err)
		c.mu.Lock()
		c.status.Reconnects++
		c.mu.Unlock()
		if c.OnLost != nil {
			c.OnLost(err)
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// position is a server WAL position read at a moment.
type position struct {
	lsn pglogrepl.LSN
	at  time.Time
}

// stream runs one replication connection until it fails.
func (c *Consumer) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pub := c.Publication
	if pub == "" {
		pub = DefaultPublication
	}
	svc, err := c.Connect(ctx)
	if err != nil {
		return fmt.Errorf("service connection: %w", err)
	}
	defer svc.Close(context.Background())
	if err := ensurePublication(ctx, svc, pub); err != nil {
		return err
	}
	repl, err := c.ReplConnect(ctx)
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	defer repl.Close(context.Background())

	slot, temporary := c.Slot, c.Slot == ""
	if temporary {
		slot = fmt.Sprintf("pgmemo_%d", time.Now().UnixNano())
	}
	var start pglogrepl.LSN
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: temporary, Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	switch {
	case err == nil:
		if start, err = pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
			return fmt.Errorf("slot %s: consistent point: %w", slot, err)
		}
	case !temporary && isCode(err, "42710"): // a persistent slot that exists already
	default:
		return fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	if !temporary {
		// A persistent slot may hold changes from before this stream: they
		// are reported too, harmlessly (OnLost already dropped the cache).
		start = 0
	}
	args := []string{"proto_version '2'", "publication_names '" + strings.ReplaceAll(pub, "'", "''") + "'", "messages 'true'", "streaming 'on'"}
	if err := pglogrepl.StartReplication(ctx, repl, slot, start, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		return fmt.Errorf("start replication on slot %s: %w", slot, err)
	}
	c.mu.Lock()
	c.status.Slot, c.status.Publication, c.status.ReceivedLSN = slot, pub, start
	c.mu.Unlock()
	c.connected.Store(true)

	// The poller reads the server's position on the service connection and
	// hands it to the stream loop, which asks the server for a keepalive.
	polls := make(chan position, 64)
	pollErr := make(chan error, 1)
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); c.poll(ctx, svc, polls, pollErr) }()
	defer func() { cancel(); <-pollDone }() // before svc is closed

	d := decoder{c: c, streams: map[uint32]*txChanges{}, rels: map[uint32]string{}}
	var pending []position // read positions not yet reached
	received := start
	interval := c.pollInterval()
	// The loop wakes at least every interval to pass the poller's positions
	// on. A read deadline on the socket does that; a context per message (what
	// ReceiveMessage would need) cost a timer and a watcher for every change
	// in a busy stream. Cancelling ctx expires the deadline at once.
	conn := repl.Conn()
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopWake()
	conn.SetReadDeadline(time.Now().Add(interval))
	for {
		msg, err := repl.ReceiveMessage(context.Background())
		switch {
		case err == nil:
		case ctx.Err() != nil: // cancelled: stopWake expired the deadline
			return fmt.Errorf("replication stream: %w", ctx.Err())
		case pgconn.Timeout(err): // the interval's wake-up
			conn.SetReadDeadline(time.Now().Add(interval))
		default:
			return fmt.Errorf("replication stream: %w", err)
		}
		// Drain the poller's positions and ask for a keepalive.
		asked := false
		for more := true; more; {
			select {
			case p := <-polls:
				pending = append(pending, p)
				c.mu.Lock()
				c.status.ServerLSN = p.lsn
				c.mu.Unlock()
				asked = true
			case err := <-pollErr:
				return fmt.Errorf("reading the server's WAL position: %w", err)
			default:
				more = false
			}
		}
		if asked {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: received, ReplyRequested: true}); err != nil {
				return fmt.Errorf("standby status update: %w", err)
			}
		}
		if err != nil { // a timeout: no message
			continue
		}
		var reached pglogrepl.LSN
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("keepalive: %w", err)
				}
				reached = ka.ServerWALEnd
				if ka.ReplyRequested {
					if err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: received}); err != nil {
						return fmt.Errorf("standby status update: %w", err)
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("xlog data: %w", err)
				}
				end, err := d.handle(xld.WALData)
				if err != nil {
					return err
				}
				reached = end
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return errors.New("replication stream: the server ended it")
		}
		if d.inTx() {
			continue
		}
		if reached > received {
			received = reached
			c.mu.Lock()
			c.status.ReceivedLSN = received
			c.mu.Unlock()
		}
		{
			n := 0
			for n < len(pending) && pending[n].lsn <= received {
				n++
			}
			if n > 0 {
				c.freshAsOf.Store(pending[n-1].at.UnixNano())
				pending = pending[n:]
			}
		}
	}
}

func (c *Consumer) pollInterval() time.Duration {
	if c.PollInterval > 0 {
		return c.PollInterval
	}
	return DefaultPollInterval
}

// poll reads the server's WAL insert position every PollInterval.
func (c *Consumer) poll(ctx context.Context, svc *pgconn.PgConn, out chan<- position, errc chan<- error) {
	t := time.NewTicker(c.pollInterval())
	defer t.Stop()
	for {
		at := time.Now()
		res := svc.ExecParams(ctx, "SELECT pg_catalog.pg_current_wal_insert_lsn()", nil, nil, nil, nil).Read()
		if res.Err != nil {
			if ctx.Err() == nil {
				errc <- res.Err
			}
			return
		}
		lsn, err := pglogrepl.ParseLSN(string(res.Rows[0][0]))
		if err != nil {
			errc <- err
			return
		}
		select {
		case out <- position{lsn, at}:
		default: // the stream loop is busy; the next poll will do
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ensurePublication creates the publication FOR ALL TABLES unless it exists;
// one that exists must publish every change of every table, as its leaf
// partitions (a narrower one would leave writes uninvalidated).
func ensurePublication(ctx context.Context, svc *pgconn.PgConn, pub string) error {
	res := svc.ExecParams(ctx, `SELECT puballtables AND pubinsert AND pubupdate AND pubdelete AND pubtruncate AND NOT pubviaroot
FROM pg_catalog.pg_publication WHERE pubname = $1`, [][]byte{[]byte(pub)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("looking up publication %s: %w", pub, res.Err)
	}
	if len(res.Rows) > 0 {
		if string(res.Rows[0][0]) != "t" {
			return &PublicationError{Publication: pub}
		}
		return nil
	}
	// A publication that publishes updates and deletes makes PostgreSQL
	// reject UPDATE and DELETE on tables without a replica identity: creating
	// one would break the application's writes.
	res = svc.ExecParams(ctx, noIdentitySQL, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("looking for tables without a replica identity: %w", res.Err)
	}
	if len(res.Rows) > 0 {
		names := make([]string, len(res.Rows))
		for i, r := range res.Rows {
			names[i] = string(r[0])
		}
		return &NoReplicaIdentityError{Publication: pub, Tables: names}
	}
	_, err := svc.Exec(ctx, "CREATE PUBLICATION "+quoteIdent(pub)+" FOR ALL TABLES").ReadAll()
	if err != nil && !isCode(err, "42710") { // created concurrently
		return fmt.Errorf("creating publication %s FOR ALL TABLES (needs a superuser; or create it yourself): %w", pub, err)
	}
	return nil
}

// noIdentitySQL lists (up to 20) permanent tables whose UPDATE and DELETE a
// FOR ALL TABLES publication would make fail: no primary key under REPLICA
// IDENTITY DEFAULT, REPLICA IDENTITY NOTHING, or a missing identity index.
const noIdentitySQL = `SELECT c.oid::pg_catalog.regclass::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
  AND (c.relreplident = 'n'
    OR c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    OR c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
ORDER BY 1 LIMIT 20`

// NoReplicaIdentityError says why the consumer did not create its
// publication: PostgreSQL would then reject UPDATE and DELETE on these tables.
type NoReplicaIdentityError struct {
	Publication string
	Tables      []string // up to 20
}

func (e *NoReplicaIdentityError) Error() string {
	return fmt.Sprintf("not creating publication %s FOR ALL TABLES: PostgreSQL would then reject UPDATE and DELETE on tables without a replica identity (%s); give them a primary key or REPLICA IDENTITY FULL, or create the publication yourself",
		e.Publication, strings.Join(e.Tables, ", "))
}

// PublicationError reports an existing publication that does not publish
// every change: it must be FOR ALL TABLES, publish insert, update, delete and
// truncate, and not publish partitions through their root.
type PublicationError struct {
	Publication string
}

func (e *PublicationError) Error() string {
	return fmt.Sprintf("publication %s does not publish every change (it must be FOR ALL TABLES, publish insert, update, delete and truncate, and have publish_via_partition_root off); writes it leaves out would never invalidate cached results: drop it to let pgmemo create it, or fix it, or name another with --publication",
		e.Publication)
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// txChanges accumulates what one transaction wrote.
type txChanges struct {
	xid  uint32
	oids map[uint32]struct{}
	ddl  bool
}

func (t *txChanges) add(oid uint32) {
	if t.oids == nil {
		t.oids = map[uint32]struct{}{}
	}
	t.oids[oid] = struct{}{}
}

// decoder turns pgoutput messages into reports.
type decoder struct {
	c        *Consumer
	inStream bool
	cur      *txChanges // the transaction being received (not streamed)
	streams  map[uint32]*txChanges
	streamX  uint32            // the streamed transaction of the current chunk
	rels     map[uint32]string // the last definition of each relation the stream sent (relationSignature)
}

// relationSignature renders what a Relation message says of a relation.
func relationSignature(m *pglogrepl.RelationMessageV2) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.%s/%c", m.Namespace, m.RelationName, m.ReplicaIdentity)
	for _, c := range m.Columns {
		fmt.Fprintf(&b, "|%s:%d:%d:%d", c.Name, c.DataType, c.TypeModifier, c.Flags)
	}
	return b.String()
}

func (d *decoder) inTx() bool { return d.cur != nil || d.inStream }

// handle decodes one message; end is the position reached when the message
// ends a transaction (0 otherwise).
func (d *decoder) handle(data []byte) (end pglogrepl.LSN, err error) {
	if len(data) == 0 {
		return 0, nil
	}
	if xid, oid, ok := changedRelation(data, d.inStream); ok {
		d.tx(xid).add(oid)
		return 0, nil
	}
	msg, err := parseMessage(data, d.inStream)
	if err != nil {
		return 0, fmt.Errorf("decoding pgoutput message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		d.cur = &txChanges{xid: m.Xid}
	case *pglogrepl.CommitMessage:
		if d.cur != nil {
			d.report(d.cur, m.CommitTime)
		}
		d.cur = nil
		return m.TransactionEndLSN, nil
	case *pglogrepl.StreamStartMessageV2:
		d.inStream, d.streamX = true, m.Xid
		if d.streams[m.Xid] == nil {
			d.streams[m.Xid] = &txChanges{xid: m.Xid}
		}
	case *pglogrepl.StreamStopMessageV2:
		d.inStream = false
	case *pglogrepl.StreamCommitMessageV2:
		if t := d.streams[m.Xid]; t != nil {
			d.report(t, m.CommitTime)
			delete(d.streams, m.Xid)
		}
		return m.TransactionEndLSN, nil
	case *pglogrepl.StreamAbortMessageV2:
		if m.Xid == m.SubXid { // the whole transaction; a subtransaction's changes are kept (over-invalidation is safe)
			delete(d.streams, m.Xid)
		}
	case *pglogrepl.RelationMessageV2:
		sig := relationSignature(m)
		if old, seen := d.rels[m.RelationID]; seen && old != sig && d.c.OnSchema != nil {
			d.c.OnSchema([]uint32{m.RelationID})
		}
		d.rels[m.RelationID] = sig
		d.tx(m.Xid).add(m.RelationID)
	// Insert, Update and Delete never get here: changedRelation read them,
	// or they were too short for ParseV2 too.
	case *pglogrepl.TruncateMessageV2:
		t := d.tx(m.Xid)
		for _, oid := range m.RelationIDs {
			t.add(oid)
		}
	case *pglogrepl.LogicalDecodingMessageV2:
		if m.Prefix == DDLMessagePrefix {
			if m.Transactional {
				d.tx(m.Xid).ddl = true
			} else if d.c.OnSchema != nil {
				d.c.OnSchema(nil)
			}
		}
	}
	return 0, nil
}

// parseMessage is pglogrepl.ParseV2, which panics on some malformed messages
// (a Delete cut short, say): those become errors, so that a corrupt stream
// is dropped and reconnected like a lost one instead of ending the process.
func parseMessage(data []byte, inStream bool) (msg pglogrepl.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message: %v", r)
		}
	}()
	return pglogrepl.ParseV2(data, inStream)
}

// changedRelation reads the relation of an Insert, Update or Delete message,
// and its transaction ID inside a streamed chunk, without decoding its tuples:
// most of a busy stream is such messages, and the consumer only needs to know
// which relation changed. ok is false for any other message, and for one too
// short to hold the relation, which ParseV2 then rejects.
func changedRelation(data []byte, inStream bool) (xid, oid uint32, ok bool) {
	switch data[0] {
	case 'I', 'U', 'D':
	default:
		return 0, 0, false
	}
	p := data[1:]
	if inStream {
		if len(p) < 4 {
			return 0, 0, false
		}
		xid, p = binary.BigEndian.Uint32(p), p[4:]
	}
	if len(p) < 5 { // the relation and the kind of the tuple that follows
		return 0, 0, false
	}
	return xid, binary.BigEndian.Uint32(p), true
}

// tx returns the changes of the transaction a change belongs to.
func (d *decoder) tx(xid uint32) *txChanges {
	if d.inStream {
		t := d.streams[xid]
		if t == nil {
			t = &txChanges{xid: xid}
			d.streams[xid] = t
		}
		return t
	}
	if d.cur == nil { // a change outside Begin/Commit cannot happen; be safe
		d.cur = &txChanges{}
	}
	return d.cur
}

func (d *decoder) report(t *txChanges, at time.Time) {
	if t.ddl && d.c.OnSchema != nil {
		d.c.OnSchema(nil)
	}
	if len(t.oids) == 0 {
		return
	}
	oids := make([]uint32, 0, len(t.oids))
	for oid := range t.oids {
		oids = append(oids, oid)
	}
	d.c.mu.Lock()
	d.c.status.Transactions++
	d.c.status.Changes += uint64(len(oids))
	d.c.mu.Unlock()
	d.c.OnChange(t.xid, oids, at)
}

// DDLHookSQL installs, in one database, an event trigger that announces DDL
// on the replication stream: a transactional logical message with prefix
// DDLMessagePrefix, decoded at the DDL's commit. DDL changes no rows, so
// without it a schema change made outside pgmemo (ALTER TABLE ... ADD COLUMN
// under a cached SELECT *, DROP and CREATE of a table with the same name, a
// function redefined) would go unseen. Installing it needs a superuser; it is
// idempotent.
const DDLHookSQL = `CREATE OR REPLACE FUNCTION public.pgmemo_ddl_hook() RETURNS event_trigger
LANGUAGE plpgsql AS $pgmemo$
BEGIN
  PERFORM pg_catalog.pg_logical_emit_message(true, 'pgmemo.ddl', tg_tag);
END
$pgmemo$;
DROP EVENT TRIGGER IF EXISTS pgmemo_ddl_end;
DROP EVENT TRIGGER IF EXISTS pgmemo_ddl_drop;
CREATE EVENT TRIGGER pgmemo_ddl_end ON ddl_command_end EXECUTE FUNCTION public.pgmemo_ddl_hook();
CREATE EVENT TRIGGER pgmemo_ddl_drop ON sql_drop EXECUTE FUNCTION public.pgmemo_ddl_hook();`
