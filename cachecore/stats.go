package cachecore

import (
	"sync/atomic"
	"unsafe"
)

// Stats is a snapshot of a Cache's counters, returned by Cache.Stats. The
// counters are cumulative since New; each is read atomically, but not all at
// the same instant.
type Stats struct {
	Hits uint64 // Get calls that returned a value

	// Misses is the number of Get calls that returned nothing:
	// MissesCold + MissesInvalidated + MissesExpired.
	Misses            uint64
	MissesCold        uint64 // no entry for the key (never stored, evicted, deleted, or reclaimed)
	MissesInvalidated uint64 // an entry whose tag, scope or cache was invalidated; it was dropped
	MissesExpired     uint64 // an entry past its TTL; it was dropped

	Fills          uint64 // values stored by Set, SetWithTTL and Fill.Complete
	FillsDiscarded uint64 // values not stored because their snapshot was stale (a write raced with the fill)
	Rejects        uint64 // values not stored because they exceed MaxEntryBytes
	Coalesced      uint64 // followers served the value of a leader's fill (Fill.Wait returned ok)

	Evictions     uint64 // entries evicted to keep the cache within MaxBytes
	Invalidations uint64 // tags passed to Invalidate, plus calls of InvalidateScope and InvalidateAll

	// Entries and Bytes describe the current content, including stale and
	// expired entries not yet dropped. Otter updates them asynchronously, so
	// they lag writes and evictions slightly.
	Entries int    // number of entries held
	Bytes   uint64 // total weight of the entries (see EntryOverhead), pinned ones included

	PinnedEntries int    // entries pinned (EntryOptions.Pin)
	PinnedBytes   uint64 // their weight, within Options.MaxPinnedBytes
	PinsRefused   uint64 // pins stored unpinned because MaxPinnedBytes was reached
	Tags          int    // tags ever snapshotted; their versions are kept for the life of the cache
}

// HitRatio returns Hits/(Hits+Misses), or 0 before the first Get.
func (s Stats) HitRatio() float64 {
	if n := s.Hits + s.Misses; n > 0 {
		return float64(s.Hits) / float64(n)
	}
	return 0
}

// stripes is the number of stripes of a counter (a power of two).
const stripes = 8

// A counter is striped over cache lines, so that goroutines counting hits on
// different cores rarely write the same line. Go does not expose the current
// P, so the stripe is picked by the address of the goroutine's stack (as otter
// does): a goroutine keeps using one stripe, and goroutines running at the
// same time mostly use different ones. A random stripe per call was measured
// to be slower, as every line then moves between all cores.
type counter struct {
	s [stripes]struct {
		n atomic.Uint64
		_ [cacheLine - 8]byte
	}
}

func (c *counter) inc() { c.s[stackHash()&(stripes-1)].n.Add(1) }

// stackHash returns a hash of the calling goroutine's stack address.
func stackHash() uint64 {
	var x byte
	// Bits below the minimum stack size (2 KiB) depend on the call depth, not
	// on the goroutine.
	h := uint64(uintptr(unsafe.Pointer(&x))) >> 11
	return (h * 0x9E3779B97F4A7C15) >> 32
}

func (c *counter) load() uint64 {
	var n uint64
	for i := range c.s {
		n += c.s[i].n.Load()
	}
	return n
}

// padded is a counter off the hit path: a single atomic on its own line.
type padded struct {
	atomic.Uint64
	_ [cacheLine - 8]byte
}

type counters struct {
	hits, missCold, missInvalidated, missExpired counter

	fills, fillsDiscarded, rejects, coalesced, evictions, invalidations padded
}

// Stats returns a snapshot of the cache's counters and size.
func (c *Cache) Stats() Stats {
	st := &c.stats
	s := Stats{
		Hits:              st.hits.load(),
		MissesCold:        st.missCold.load(),
		MissesInvalidated: st.missInvalidated.load(),
		MissesExpired:     st.missExpired.load(),
		Fills:             st.fills.Load(),
		FillsDiscarded:    st.fillsDiscarded.Load(),
		Rejects:           st.rejects.Load(),
		Coalesced:         st.coalesced.Load(),
		Evictions:         st.evictions.Load(),
		Invalidations:     st.invalidations.Load(),
		Entries:           c.store.EstimatedSize(),
		Bytes:             c.store.WeightedSize() + uint64(max(c.pins.bytes.Load(), 0)),
		Tags:              c.tags.len(),
		PinnedEntries:     int(c.pins.entries.Load()),
		PinnedBytes:       uint64(max(c.pins.bytes.Load(), 0)),
		PinsRefused:       c.pins.refused.Load(),
	}
	s.Misses = s.MissesCold + s.MissesInvalidated + s.MissesExpired
	return s
}
