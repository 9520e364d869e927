package proxy

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/invalidate"
)

// maxQueryStats bounds the statements tracked per database for
// SHOW pgmemo.queries; later ones are counted under the empty fingerprint.
const maxQueryStats = 5000

// queryStats counts how one normalized statement (a pg_query fingerprint) of
// a database was served. Parameter values are never kept.
type queryStats struct {
	fingerprint string
	normalized  string
	calls       atomic.Uint64
	hits        atomic.Uint64
	misses      atomic.Uint64 // sent upstream: not cacheable, cold, invalidated, bypassed
	upstreamN   atomic.Uint64 // upstream executions timed
	upstreamNs  atomic.Uint64 // their total time
}

// queryStatsFor returns the stats of a plan's statement in d.
func (d *dbState) queryStatsFor(p *plan) *queryStats {
	fp := p.an.Fingerprint
	if v, ok := d.queries.Load(fp); ok {
		return v.(*queryStats)
	}
	if d.nqueries.Load() >= maxQueryStats {
		fp = ""
	}
	qs := &queryStats{fingerprint: fp, normalized: p.an.Normalized}
	if fp == "" {
		qs.normalized = "(other statements)"
	}
	v, loaded := d.queries.LoadOrStore(fp, qs)
	if !loaded {
		d.nqueries.Add(1)
	}
	return v.(*queryStats)
}

// relStats counts the invalidations of one relation of a database.
type relStats struct {
	invalidations atomic.Uint64
	last          atomic.Int64 // unix ns
}

// noteInvalidation records invalidations of relations (OIDs) of d.
func (d *dbState) noteInvalidation(oids ...uint32) {
	now := time.Now().UnixNano()
	for _, oid := range oids {
		v, ok := d.rels.Load(oid)
		if !ok {
			v, _ = d.rels.LoadOrStore(oid, &relStats{})
		}
		r := v.(*relStats)
		r.invalidations.Add(1)
		r.last.Store(now)
	}
}

// CacheReport is a snapshot of the cache and of each database's state.
type CacheReport struct {
	// Mode is "statement" or "wal" ("off" when caching is disabled; the
	// rest is then zero).
	Mode     string
	TxPolicy string
	Cache    cachecore.Stats
	MaxBytes int64
	// NotCacheable counts statements sent upstream because they cannot be
	// cached; Bypassed cacheable reads sent upstream because of the
	// session's state (transaction, settings, replication not current).
	NotCacheable, Bypassed uint64
	// LocalBatches counts extended-protocol batches answered locally.
	LocalBatches uint64
	// SessionChecksPassed counts sessions that ran code pgmemo cannot see
	// (DO, CALL, a volatile function, a trigger) and were found unchanged
	// afterwards, so they use the cache again; SessionChecksFailed those
	// that changed or could not be checked, which bypass it until DISCARD
	// ALL.
	SessionChecksPassed, SessionChecksFailed uint64
	// InvalidationsStatement, InvalidationsWAL, InvalidationsAdmin and
	// InvalidationsAccess count invalidations by their source: writes
	// through the proxy, the replication stream, PGMEMO INVALIDATE, and a
	// change of roles, privileges or policies found by polling.
	InvalidationsStatement, InvalidationsWAL, InvalidationsAdmin, InvalidationsAccess uint64

	Databases []DatabaseReport
}

// DatabaseReport is one upstream database's part of a CacheReport.
type DatabaseReport struct {
	Name string
	// Serving is false while the database's results may not be served
	// (replication not current); Reason says why.
	Serving bool
	Reason  string
	// WAL is the replication consumer's state; nil without WAL
	// invalidation.
	WAL *invalidate.WALStatus
	// Staleness is how far behind the server the stream may be, when
	// Current.
	Staleness time.Duration
	Current   bool
	// WALInvalidations counts relation changes reported by the stream;
	// Delay* are the commit-to-invalidation delays (p50 and p99 over the
	// latest 4096, and the largest seen).
	WALInvalidations             uint64
	DelayP50, DelayP99, DelayMax time.Duration
}

// QueryReport is how one normalized statement was served.
type QueryReport struct {
	Database, Fingerprint, Normalized string
	Calls, Hits, Misses               uint64
	// MeanUpstream is the mean time the server took when the statement went
	// upstream; Saved estimates the time hits saved (Hits * MeanUpstream).
	MeanUpstream, Saved time.Duration
}

// TableReport is how a relation is cached: the servable entries that read it
// (an entry that read several relations counts for each) and how often it was
// invalidated.
type TableReport struct {
	Database string
	OID      uint32
	Entries  int
	Bytes    uint64 // the weight of those entries
	// Invalidations counts the relation's invalidations; LastInvalidated is
	// the latest, zero if none.
	Invalidations   uint64
	LastInvalidated time.Time
}

// CacheReport returns the cache's state; Mode is "off" when caching is
// disabled.
func (s *Server) CacheReport() CacheReport {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs == nil {
		return CacheReport{Mode: "off"}
	}
	r := CacheReport{
		Mode:         "statement",
		TxPolicy:     cs.opts.TxPolicy.String(),
		Cache:        cs.c.Stats(),
		MaxBytes:     cs.maxBytes(),
		NotCacheable: cs.notCacheable.Load(),
		Bypassed:     cs.bypass.Load(),
		LocalBatches: cs.localAnswers.Load(),

		SessionChecksPassed: cs.checksPassed.Load(),
		SessionChecksFailed: cs.checksFailed.Load(),

		InvalidationsStatement: cs.invStatement.Load(),
		InvalidationsWAL:       cs.invWAL.Load(),
		InvalidationsAdmin:     cs.invAdmin.Load(),
		InvalidationsAccess:    cs.invAccess.Load(),
	}
	if cs.opts.WAL {
		r.Mode = "wal"
	}
	for _, d := range cs.databases() {
		r.Databases = append(r.Databases, cs.databaseReport(d))
	}
	return r
}

func (cs *cacheState) databases() []*dbState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	dbs := make([]*dbState, 0, len(cs.dbs))
	for _, d := range cs.dbs {
		dbs = append(dbs, d)
	}
	slices.SortFunc(dbs, func(a, b *dbState) int { return int(a.id) - int(b.id) })
	return dbs
}

func (cs *cacheState) databaseReport(d *dbState) DatabaseReport {
	dr := DatabaseReport{Name: d.name, Serving: true}
	if d.wal == nil {
		return dr
	}
	ws := d.wal.Status()
	dr.WAL = &ws
	dr.Reason = cs.walBypass(d)
	dr.Serving = dr.Reason == ""
	dr.Staleness, dr.Current = d.wal.Staleness(time.Now())
	dr.WALInvalidations = d.walInvalidations.Load()
	if q := d.walDelays.quantiles(0.5, 0.99); q != nil {
		dr.DelayP50, dr.DelayP99 = time.Duration(q[0]), time.Duration(q[1])
	}
	dr.DelayMax = time.Duration(d.walDelayMax.Load())
	return dr
}

// QueryReports lists the statements seen, most calls first.
func (s *Server) QueryReports() []QueryReport {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs == nil {
		return nil
	}
	var out []QueryReport
	for _, d := range cs.databases() {
		d.queries.Range(func(_, v any) bool {
			q := v.(*queryStats)
			qr := QueryReport{Database: d.name, Fingerprint: q.fingerprint, Normalized: q.normalized,
				Calls: q.calls.Load(), Hits: q.hits.Load(), Misses: q.misses.Load()}
			if n := q.upstreamN.Load(); n > 0 {
				qr.MeanUpstream = time.Duration(q.upstreamNs.Load() / n)
				qr.Saved = time.Duration(qr.Hits) * qr.MeanUpstream
			}
			out = append(out, qr)
			return true
		})
	}
	slices.SortFunc(out, func(a, b QueryReport) int {
		if a.Calls != b.Calls {
			if a.Calls > b.Calls {
				return -1
			}
			return 1
		}
		if a.Database != b.Database {
			if a.Database < b.Database {
				return -1
			}
			return 1
		}
		if a.Fingerprint < b.Fingerprint {
			return -1
		}
		return 1
	})
	return out
}

// TableReports lists the relations that have cached entries or were
// invalidated, most entries first, then most invalidations. It walks the
// whole cache (cachecore.Cache.TagUsage): it is for reports, not for a hot
// path.
func (s *Server) TableReports() []TableReport {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs == nil {
		return nil
	}
	usage := cs.c.TagUsage()
	var out []TableReport
	for _, d := range cs.databases() {
		seen := map[uint32]bool{}
		d.rels.Range(func(k, v any) bool {
			r := v.(*relStats)
			oid := k.(uint32)
			u := usage[d.tag(oid)]
			seen[oid] = true
			out = append(out, TableReport{Database: d.name, OID: oid, Entries: u.Entries, Bytes: u.Bytes,
				Invalidations: r.invalidations.Load(), LastInvalidated: time.Unix(0, r.last.Load())})
			return true
		})
		for tag, u := range usage {
			db, oid, ok := relationOfTag(tag)
			if ok && db == d.id && !seen[oid] && u.Entries > 0 {
				out = append(out, TableReport{Database: d.name, OID: oid, Entries: u.Entries, Bytes: u.Bytes})
			}
		}
	}
	slices.SortFunc(out, func(a, b TableReport) int {
		switch {
		case a.Entries != b.Entries:
			return b.Entries - a.Entries
		case a.Invalidations != b.Invalidations:
			if a.Invalidations > b.Invalidations {
				return -1
			}
			return 1
		case a.Database != b.Database:
			return strings.Compare(a.Database, b.Database)
		}
		return int(a.OID) - int(b.OID)
	})
	return out
}
