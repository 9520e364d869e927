package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgmemo/pgmemo/proxy"
)

// metricsSource is what the collector reads at scrape time: the proxy's
// snapshot APIs (a *proxy.Server).
type metricsSource interface {
	Stats() proxy.Stats
	CacheReport() proxy.CacheReport
	QueryDurations() map[string]proxy.Histogram
	InvalidationDelays() proxy.Histogram
}

// collector turns the proxy's snapshots into Prometheus metrics when
// scraped: nothing is counted twice and the proxy does not import
// Prometheus. Every name and meaning is listed in docs/OPERATIONS.md.
type collector struct {
	src metricsSource

	info, hits, misses, entries, bytes, pinnedBytes, maxBytes, evictions, fills, fillsDiscarded,
	rejected, coalesced, localBatches, sessionChecks, invalidations *prometheus.Desc

	clients, clientsTotal, waitingForFill, upstream, upstreamFailures, protocolErrors,
	cancels, bytesIn, bytesOut *prometheus.Desc

	queryDuration, invalidationDelay *prometheus.Desc

	replConnected, replCurrent, replServing, replLagBytes, replLagSeconds,
	replReconnects, replChanges *prometheus.Desc
}

func newCollector(src metricsSource) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("pgmemo_"+name, help, labels, nil)
	}
	return &collector{
		src:  src,
		info: d("info", "Always 1; the labels give the invalidation mode (wal, statement, off) and the transaction policy.", "invalidation", "tx_policy"),

		hits:           d("cache_hits_total", "Cache lookups that found a valid result (statements answered from memory)."),
		misses:         d("cache_misses_total", "Statements sent upstream, by reason: not_cacheable, cold (no entry), invalidated (entry dropped by a write or its TTL), bypass (session or replication state).", "reason"),
		entries:        d("cache_entries", "Entries held by the cache."),
		bytes:          d("cache_bytes", "Memory held by the cache's entries, keys and overhead, in bytes."),
		pinnedBytes:    d("cache_pinned_bytes", "Part of pgmemo_cache_bytes held by entries pinned by a pin rule (never evicted; bounded by --cache-max-pinned-bytes)."),
		maxBytes:       d("cache_max_bytes", "The cache's memory bound (--cache-max-bytes), in bytes."),
		evictions:      d("cache_evictions_total", "Entries evicted to keep the cache within its memory bound."),
		fills:          d("cache_fills_total", "Results stored in the cache."),
		fillsDiscarded: d("cache_fills_discarded_total", "Results not stored because a write raced with their query."),
		rejected:       d("cache_rejected_too_large_total", "Results not stored because they exceed --cache-max-entry-bytes."),
		coalesced:      d("cache_coalesced_total", "Concurrent identical misses served by one upstream query."),
		localBatches:   d("cache_local_batches_total", "Extended-protocol batches answered entirely by pgmemo."),
		sessionChecks:  d("cache_session_checks_total", "Checks of sessions that ran code pgmemo cannot see (DO, CALL, volatile functions, triggers) by result: passed (the session uses the cache again) or failed (it bypasses it until DISCARD ALL).", "result"),
		invalidations:  d("invalidations_total", "Invalidations by source: statement (writes through pgmemo), wal (the replication stream), ttl (entries expired), admin (PGMEMO INVALIDATE).", "source"),

		clients:          d("client_connections", "Client connections open now."),
		clientsTotal:     d("client_connections_total", "Client connections accepted since start."),
		waitingForFill:   d("clients_waiting_for_fill", "Clients whose query waits for another session's fill of the same result."),
		upstream:         d("upstream_connections", "Upstream connections of client sessions open now."),
		upstreamFailures: d("upstream_connect_failures_total", "Failed connection attempts to the upstream server."),
		protocolErrors:   d("protocol_errors_total", "Client connections closed for malformed messages."),
		cancels:          d("cancel_requests_total", "Cancel requests, by outcome: forwarded, unknown (matching no session).", "outcome"),
		bytesIn:          d("client_received_bytes_total", "Bytes received from clients."),
		bytesOut:         d("client_sent_bytes_total", "Bytes sent to clients."),

		queryDuration:     d("query_duration_seconds", "Statement durations by result: hit (answered from the cache), miss (a cacheable read sent upstream), passthrough (anything else sent upstream).", "result"),
		invalidationDelay: d("invalidation_delay_seconds", "Delay from a commit to its invalidation through the replication stream."),

		replConnected:  d("replication_connected", "1 while the database's replication stream is connected.", "database"),
		replCurrent:    d("replication_current", "1 while the database's replication stream is known current (caught up since it connected).", "database"),
		replServing:    d("replication_serving", "1 while results of the database may be served from the cache (stream current within --max-staleness).", "database"),
		replLagBytes:   d("replication_lag_bytes", "WAL between the server's insert position and what the stream has reported, in bytes.", "database"),
		replLagSeconds: d("replication_lag_seconds", "How far behind the server the stream may be (the staleness); absent while the stream is not current.", "database"),
		replReconnects: d("replication_reconnects_total", "Replication streams lost.", "database"),
		replChanges:    d("replication_invalidated_relations_total", "Relation changes reported by the replication stream.", "database"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.hits, c.misses, c.entries, c.bytes, c.pinnedBytes, c.maxBytes, c.evictions,
		c.fills, c.fillsDiscarded, c.rejected, c.coalesced, c.localBatches, c.sessionChecks, c.invalidations,
		c.clients, c.clientsTotal, c.waitingForFill, c.upstream, c.upstreamFailures, c.protocolErrors, c.cancels, c.bytesIn, c.bytesOut,
		c.queryDuration, c.invalidationDelay,
		c.replConnected, c.replCurrent, c.replServing, c.replLagBytes, c.replLagSeconds, c.replReconnects, c.replChanges} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	histogram := func(d *prometheus.Desc, h proxy.Histogram, labels ...string) {
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	st := c.src.Stats()
	gauge(c.clients, float64(st.ClientConnections))
	counter(c.clientsTotal, st.ClientConnectionsTotal)
	gauge(c.waitingForFill, float64(st.WaitingForFill))
	gauge(c.upstream, float64(st.UpstreamConnections))
	counter(c.upstreamFailures, st.UpstreamFailures)
	counter(c.protocolErrors, st.ProtocolErrors)
	counter(c.cancels, st.CancelsForwarded, "forwarded")
	counter(c.cancels, st.CancelsUnknown, "unknown")
	counter(c.bytesIn, st.BytesFromClients)
	counter(c.bytesOut, st.BytesToClients)

	r := c.src.CacheReport()
	gauge(c.info, 1, r.Mode, r.TxPolicy)
	cs := r.Cache
	counter(c.hits, cs.Hits)
	counter(c.misses, r.NotCacheable, "not_cacheable")
	counter(c.misses, cs.MissesCold, "cold")
	counter(c.misses, cs.MissesInvalidated+cs.MissesExpired, "invalidated")
	counter(c.misses, r.Bypassed, "bypass")
	gauge(c.entries, float64(cs.Entries))
	gauge(c.bytes, float64(cs.Bytes))
	gauge(c.pinnedBytes, float64(cs.PinnedBytes))
	gauge(c.maxBytes, float64(r.MaxBytes))
	counter(c.evictions, cs.Evictions)
	counter(c.fills, cs.Fills)
	counter(c.fillsDiscarded, cs.FillsDiscarded)
	counter(c.rejected, cs.Rejects)
	counter(c.coalesced, cs.Coalesced)
	counter(c.localBatches, r.LocalBatches)
	counter(c.sessionChecks, r.SessionChecksPassed, "passed")
	counter(c.sessionChecks, r.SessionChecksFailed, "failed")
	counter(c.invalidations, r.InvalidationsStatement, "statement")
	counter(c.invalidations, r.InvalidationsWAL, "wal")
	counter(c.invalidations, cs.MissesExpired, "ttl")
	counter(c.invalidations, r.InvalidationsAdmin, "admin")
	counter(c.invalidations, r.InvalidationsAccess, "access")

	if r.Mode != "off" {
		durations := c.src.QueryDurations()
		for _, result := range []string{"hit", "miss", "passthrough"} {
			if h, ok := durations[result]; ok {
				histogram(c.queryDuration, h, result)
			}
		}
	}
	if r.Mode == "wal" {
		histogram(c.invalidationDelay, c.src.InvalidationDelays())
	}
	for _, db := range r.Databases {
		if db.WAL == nil {
			continue
		}
		gauge(c.replConnected, b2f(db.WAL.Connected), db.Name)
		gauge(c.replCurrent, b2f(db.Current), db.Name)
		gauge(c.replServing, b2f(db.Serving), db.Name)
		gauge(c.replLagBytes, float64(db.WAL.LagBytes), db.Name)
		if db.Current {
			gauge(c.replLagSeconds, db.Staleness.Seconds(), db.Name)
		}
		counter(c.replReconnects, db.WAL.Reconnects, db.Name)
		counter(c.replChanges, db.WALInvalidations, db.Name)
	}
}

// metricsRegistry holds pgmemo's collector and the Go runtime and process
// collectors.
func metricsRegistry(src metricsSource) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
