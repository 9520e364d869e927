// Package cachecore is pgmemo's embedded cache engine: a byte-bounded,
// concurrency-safe map from keys the proxy builds (database, role, settings,
// statement, parameters, ...) to the encoded wire responses of read queries,
// which serves an entry only while every relation it read is unchanged and
// coalesces concurrent misses of a key into one upstream query. It knows
// nothing about PostgreSQL: values are opaque bytes, and relations and
// databases are opaque numbers (Tag, Scope) chosen by the caller.
//
// # Usage
//
// A read query goes through the cache like this:
//
//	if v, ok := c.Get(key); ok {
//		return v, nil // the cached response; never modify it
//	}
//	snap := c.Snapshot(scope, tags...) // BEFORE the query is sent upstream
//	f, leader := c.BeginFill(key, snap)
//	if !leader {
//		v, ok, err := f.Wait(ctx)
//		if err != nil {
//			return nil, err
//		}
//		if ok {
//			return v, nil // the leader's response
//		}
//		return queryUpstream() // the leader failed or read stale data
//	}
//	defer f.Abort() // releases the followers on failure; no-op after Complete
//	v, err := queryUpstream()
//	if err != nil {
//		return nil, err
//	}
//	f.Complete(v) // stored only if snap is still current and v fits
//	return v, nil
//
// Set and SetWithTTL store a value without single-flight. Writes are announced
// with Invalidate(tags...) once they are visible to new queries (committed),
// InvalidateScope(scope) when the changes of a scope cannot be tracked any more
// (the replication stream was lost, or a statement had unknown side effects),
// and InvalidateAll.
//
// # Validity: versions, not an index
//
// Every tag and scope has a version counter, and the cache has a global epoch.
// A Snapshot records the counters of its scope and tags and the epoch; an
// entry keeps the snapshot it was filled under and is served only while all of
// them are unchanged. Invalidate, InvalidateScope and InvalidateAll increment
// counters, so they cost O(number of tags) and O(1) whatever the number of
// entries, and Get checks an entry in O(number of its tags): a snapshot holds
// pointers to the counters themselves, so a hit makes one atomic load per tag
// and takes no lock and does no map lookup. The counters live in sharded maps
// (a read lock on one shard of 64, taken by Snapshot and Invalidate only) and
// are padded to a cache line each, so a frequently written tag does not slow
// down hits on others.
//
// The alternative, an index from tags to the keys that depend on them, was
// rejected: invalidation would cost O(entries), every Set and eviction would
// have to maintain the index under locks, and it would still need versions to
// close the race between a fill and a write. The price of versions is that
// stale entries are not removed at once: Get drops one when it finds it (and
// counts an invalidated miss), and entries that are never read again are
// evicted by size like any cold entry.
//
// The rules that make this correct:
//
//   - The snapshot is taken before the query is sent, and Invalidate is called
//     after the write is committed. Then a result that may miss a write was
//     filled under a snapshot older than that write's Invalidate, and it is
//     never served once the Invalidate has returned: a Set or Complete that
//     comes later discards it (ErrStale, counted in FillsDiscarded), and one
//     that raced ahead of the Invalidate stored an entry that every Get checks.
//   - Counters only grow, and a tag or scope is never forgotten once a
//     Snapshot has seen it. Forgetting one would allow ABA: a new counter would
//     start again at zero while older entries still point at the old one, which
//     nothing would ever increment again. Tags name relations, a finite set, so
//     this costs about 150 bytes per relation for the life of the cache
//     (Stats.Tags). Invalidating a tag that no Snapshot has seen does nothing
//     and registers nothing.
//
// # Single-flight fills
//
// BeginFill makes the first caller for a key the leader and registers its fill
// in a sharded in-flight map; later callers become followers and Wait. A caller
// joins a fill only while the fill's snapshot is current: after a write, a new
// caller leads a new fill instead of waiting for a result that would be
// discarded. Complete stores the value, then releases the followers with it if
// the snapshot was still current (also when the value was too large to cache).
// Wait checks the snapshot again before returning, so a follower, like Get,
// never returns a value after an Invalidate of its tags has returned. Followers
// never wait forever: Wait ends with its context, Abort releases them with
// ok=false, and a fill that is neither completed nor aborted within
// Options.FillTimeout releases them too and lets the next caller lead.
//
// # Limits and expiry
//
// The cache is an otter W-TinyLFU cache bounded by weight: an entry weighs
// len(key) + cap(value) + EntryOverhead + TagOverhead per tag, and the total is
// kept within Options.MaxBytes (evictions run asynchronously, so it may exceed
// it briefly). A key and value larger than Options.MaxEntryBytes are refused
// (ErrTooLarge, counted in Rejects); the caller streams such results uncached.
// Options.TTL, or the ttl of SetWithTTL and Fill.CompleteWithTTL, bounds how
// long an entry is served; Get checks it against Options.Now, which tests
// replace with a fake clock, and otter reclaims expired entries a second later
// on its own (coarse) clock.
//
// # Memory ownership and speed
//
// The cache keeps the slices given to Set and Complete and returns them from
// Get and Wait without copying, to every reader: neither the caller that
// stored a value nor those that read it may modify it. A hit does not allocate
// and costs roughly otter's lookup (100-200 ns) plus one atomic load per tag.
//
// # Statistics
//
// Stats returns a snapshot of cumulative counters (hits; misses split into
// cold, invalidated and expired; fills, discarded fills, rejects, coalesced
// followers, evictions, invalidations) and of the current size. The counters
// of the hit path are striped over cache lines.
//
// The package never logs: otter's logger is disabled, and failures are
// reported as errors (*SetError, *ConfigError) or in Stats.
package cachecore
