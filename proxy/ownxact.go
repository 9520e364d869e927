package proxy

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/query"
)

// A write through the proxy is invalidated when it commits, before the client
// learns that it did; the replication stream reports the same transaction a
// moment later. Invalidating again then would drop what was filled in between,
// although those fills started after the commit was visible and so saw it. To
// tell its own transactions in the stream, the proxy learns their IDs: it sends
// a FunctionCall of pg_current_xact_id_if_assigned() in the same transaction
// (just before the Sync of an autocommit batch, or just before the COMMIT of a
// block) and drops its answer. When the stream reports a transaction the proxy
// committed and invalidated itself, only the relations it did not invalidate
// at commit are invalidated (a trigger's, say); everything else about the
// transaction was already announced before any of the fills it would drop.
// Writes whose ID is unknown (simple-protocol autocommit statements, a report
// that overtakes the commit's ReadyForQuery) are invalidated twice, as before.

// ownXactTTL bounds how long the proxy waits for the stream to report one of
// its transactions; a lost stream drops everything of the database anyway.
const ownXactTTL = time.Minute

// ownXact is what the proxy invalidated itself when a transaction committed.
type ownXact struct {
	tags []cachecore.Tag
	all  bool // the whole database (or cache) was invalidated
	at   time.Time
}

// ownXacts are a database's committed transactions whose report the proxy
// still expects from the stream.
type ownXacts struct {
	mu sync.Mutex
	m  map[uint32]ownXact

	fnMu    sync.Mutex
	fn      uint32    // the function's OID; 0: unknown or unavailable
	fnTried time.Time // when the lookup last ran
}

// register records that xid committed, its writes invalidated as tags (or all
// of the database).
func (o *ownXacts) register(xid uint32, tags []cachecore.Tag, all bool, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[uint32]ownXact{}
	}
	o.m[xid] = ownXact{tags: append([]cachecore.Tag(nil), tags...), all: all, at: now}
}

// take removes and returns what was recorded for xid.
func (o *ownXacts) take(xid uint32) (ownXact, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	x, ok := o.m[xid]
	if ok {
		delete(o.m, xid)
	}
	return x, ok
}

// prune forgets transactions the stream did not report in time.
func (o *ownXacts) prune(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for xid, x := range o.m {
		if now.Sub(x.at) > ownXactTTL {
			delete(o.m, xid)
		}
	}
}

// xactIDFunction returns the OID of pg_current_xact_id_if_assigned() in d,
// looking it up on the catalog connection the first time (and again a minute
// after a failed lookup); 0 when it is not available.
func (cs *cacheState) xactIDFunction(d *dbState) uint32 {
	o := &d.own
	o.fnMu.Lock()
	defer o.fnMu.Unlock()
	if o.fn != 0 || time.Since(o.fnTried) < time.Minute {
		return o.fn
	}
	o.fnTried = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	oid, err := d.catalog.XactIDFunction(ctx)
	if err != nil {
		cs.catalogFailed(d, err)
		return 0
	}
	o.fn = oid
	return oid
}

// appendXactIDCall appends a FunctionCall of function oid with no arguments
// and a text result.
func appendXactIDCall(b []byte, oid uint32) []byte {
	b = append(b, 'F', 0, 0, 0, 14)
	b = binary.BigEndian.AppendUint32(b, oid)
	b = binary.BigEndian.AppendUint16(b, 0) // argument format codes
	b = binary.BigEndian.AppendUint16(b, 0) // arguments
	return binary.BigEndian.AppendUint16(b, 0)
}

// parseXactID reads the transaction ID from a FunctionCallResponse body: the
// low 32 bits of the xid8 (as the stream reports it); ok is false for NULL
// (no ID assigned: the transaction wrote nothing).
func parseXactID(body []byte) (xid uint32, ok bool) {
	if len(body) < 4 {
		return 0, false
	}
	n := int32(binary.BigEndian.Uint32(body))
	if n < 0 || int(n) != len(body)-4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(body[4:]), 10, 64)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// askXactID sends the FunctionCall that reports the current transaction's ID
// and queues the instruction to read its answer.
func (s *session) askXactID() {
	oid := s.srv.cache.xactIDFunction(s.cache.db)
	if oid == 0 {
		return
	}
	s.upBuf = appendXactIDCall(s.upBuf, oid)
	s.pipe.pushX('F', &pendingX{xid: true, swallow: true, result: -1})
}

// commitNeedsXactID reports whether st, about to be sent in a transaction
// block (state) with nothing in flight upstream (idle), is a COMMIT that
// should be preceded by the FunctionCall: a plain COMMIT (not AND CHAIN, not
// COMMIT PREPARED) of a block with writes the proxy will invalidate, with WAL
// invalidation on.
func (s *session) commitNeedsXactID(st *query.Statement, state state, idle bool) bool {
	if !s.srv.cache.opts.WAL || !idle || state != stateInTx || st.Tx == nil || st.Tx.Kind != query.TxCommit || st.Tx.Chain {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache
	return len(c.pendTags) > 0 || c.pendScope || c.pendAll
}
