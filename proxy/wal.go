package proxy

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/invalidate"
)

// newWAL sets up d's replication consumer; acquire runs it.
func (cs *cacheState) newWAL(d *dbState) {
	connect := func(ctx context.Context, replication bool) (*pgconn.PgConn, error) {
		cfg := cs.up.Config.Copy()
		cfg.Database = d.name
		params := map[string]string{}
		for k, v := range cfg.RuntimeParams {
			params[k] = v
		}
		params["application_name"] = "pgmemo wal"
		if replication {
			params["replication"] = "database"
		}
		cfg.RuntimeParams = params
		return pgconn.ConnectConfig(ctx, serviceConfig(cfg))
	}
	c := cs.c
	d.wal = &invalidate.Consumer{
		ReplConnect: func(ctx context.Context) (*pgconn.PgConn, error) { return connect(ctx, true) },
		Connect:     func(ctx context.Context) (*pgconn.PgConn, error) { return connect(ctx, false) },
		Publication: cs.opts.Publication,
		Slot:        slotName(cs.opts.ReplicationSlot, d.name),
		OnChange: func(xid uint32, oids []uint32, commitTime time.Time) {
			// A transaction committed through this proxy had what the proxy
			// knew it wrote invalidated before the client learned of the
			// commit: only the rest is news (see ownxact.go).
			own, isOwn := d.own.take(xid)
			tags := make([]cachecore.Tag, 0, len(oids))
			kept := oids[:0]
			for _, oid := range oids {
				t := d.tag(oid)
				if isOwn && (own.all || slices.Contains(own.tags, t)) {
					continue
				}
				tags, kept = append(tags, t), append(kept, oid)
			}
			cs.walOwn.Add(uint64(len(oids) - len(kept)))
			oids = kept
			if len(tags) > 0 {
				c.Invalidate(tags...)
				d.noteInvalidation(oids...)
				cs.invWAL.Add(1)
			}
			d.walInvalidations.Add(uint64(len(oids)))
			delay := time.Since(commitTime).Nanoseconds()
			d.walDelays.add(delay)
			cs.walDelayHist.observe(time.Duration(delay))
			d.walDelayLast.Store(delay)
			if delay > d.walDelayMax.Load() {
				d.walDelayMax.Store(delay)
			}
		},
		OnSchema: func(oids []uint32) {
			if oids == nil {
				c.InvalidateScope(d.scope) // DDL announced by the hook
			} else {
				for _, oid := range oids {
					c.Invalidate(d.tag(oid))
				}
			}
			d.forget()
		},
		OnLost: func(err error) {
			// Changes may be missed until a new stream starts: nothing
			// cached from this database may be served any more.
			c.InvalidateScope(d.scope)
			now := time.Now()
			if last := d.walLastWarn.Load(); now.UnixNano()-last > int64(time.Minute) {
				d.walLastWarn.Store(now.UnixNano())
				cs.log.Warn("replication stream lost or not available; reads of this database go upstream until it is current again",
					"database", d.name, "err", err)
			}
		},
	}
}

// runWAL starts d's replication stream. d.walMu is held.
func (cs *cacheState) runWAL(d *dbState) {
	ctx, stop := context.WithCancel(cs.ctx)
	done := make(chan struct{})
	d.walStop, d.walDone = stop, done
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		defer close(done)
		d.wal.Run(ctx)
	}()
}

// stopIdleWAL stops d's stream if d has had no client for
// CacheOptions.WALIdleTimeout. Changes made while a stream is stopped are
// never seen, so everything cached from d is dropped, after the stream has
// stopped (until then it was current, and no fill happens after: without a
// current stream nothing is served or filled).
func (cs *cacheState) stopIdleWAL(d *dbState, now time.Time) {
	idle := cs.opts.walIdleTimeout()
	if idle <= 0 || d.wal == nil || d.clients.Load() != 0 || now.UnixNano()-d.idleSince.Load() < int64(idle) {
		return
	}
	d.walMu.Lock()
	defer d.walMu.Unlock()
	if d.walStop != nil && d.clients.Load() == 0 {
		d.walStop()
		<-d.walDone
		d.walStop, d.walDone = nil, nil
		cs.c.InvalidateScope(d.scope)
		cs.log.Info("replication stream stopped: no client of the database", "database", d.name, "idle", idle)
	}
}

// walBypass says why d's results may not be served now ("" when they may).
func (cs *cacheState) walBypass(d *dbState) string {
	if d.wal == nil {
		return ""
	}
	stale, ok := d.wal.Staleness(time.Now())
	if !ok {
		return reasonReplication
	}
	if stale > cs.opts.maxStaleness() {
		return reasonReplicationLag
	}
	return ""
}

// slotName is the persistent slot of database db: slot names are cluster-wide,
// so each database gets its own, the configured name plus the database's name
// (lower case, other characters as _, as slot names allow). Empty stays empty
// (temporary slots).
func slotName(slot, db string) string {
	if slot == "" {
		return ""
	}
	b := []byte(strings.ToLower(slot + "_" + db))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}
