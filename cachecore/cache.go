package cachecore

import (
	"errors"
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// expiryGrace is how long after its TTL otter reclaims an entry by itself. Until
// then a read finds the expired entry, drops it and counts it in
// MissesExpired; after it a read counts a cold miss.
const expiryGrace = time.Second

// coarseResolution is the resolution of the clock otter reads on every Get.
// Otter only uses it to reclaim entries expiryGrace after their TTL, so it
// need not be precise, and a coarse clock is an atomic load where the precise
// one costs a clock read; the cache's own TTL check uses the precise clock.
const coarseResolution = 100 * time.Millisecond

// Cache is the cache engine. It is safe for concurrent use; create it with New.
type Cache struct {
	store *otter.Cache[string, *entry]

	tags   *versionStore
	scopes *versionStore
	all    cell // global epoch, bumped by InvalidateAll

	flights     [flightShards]flightShard
	flightSeed  maphash.Seed
	fillTimeout time.Duration

	maxBytes   int64
	maxEntry   int
	maxPinned  int64
	pins       pinState
	defaultTTL time.Duration
	now        func() time.Time // nil: monotonic clock from start
	start      time.Time

	stats counters
}

// An entry is what the cache stores for a key. It is immutable once stored.
type entry struct {
	value     []byte
	snap      Snapshot
	expiresAt int64         // on c's clock, in ns; 0 means never
	ttl       time.Duration // for otter's reclamation; 0 means never
	weight    uint32        // otter's weight: 0 when pinned
	size      uint32        // what the entry weighs in memory, pinned or not
	pinned    bool
	meta      bool        // not counted by TagUsage
	gone      atomic.Bool // otter dropped or replaced it (a Ref to it is no longer valid)
}

// New returns a Cache configured by opts. It fails only for negative sizes.
func New(opts Options) (*Cache, error) {
	c := &Cache{
		tags:        newVersionStore(),
		scopes:      newVersionStore(),
		flightSeed:  maphash.MakeSeed(),
		maxBytes:    opts.MaxBytes,
		maxEntry:    opts.MaxEntryBytes,
		defaultTTL:  opts.TTL,
		fillTimeout: opts.FillTimeout,
		now:         opts.Now,
		start:       time.Now(),
	}
	switch {
	case c.maxBytes < 0:
		return nil, &ConfigError{Field: "MaxBytes", Err: errors.New("negative")}
	case c.maxBytes == 0:
		c.maxBytes = DefaultMaxBytes
	}
	switch {
	case c.maxEntry < 0:
		return nil, &ConfigError{Field: "MaxEntryBytes", Err: errors.New("negative")}
	case c.maxEntry == 0:
		c.maxEntry = DefaultMaxEntryBytes
	}
	c.maxEntry = int(min(int64(c.maxEntry), c.maxBytes, maxWeight-EntryOverhead))
	switch {
	case opts.MaxPinnedBytes < 0:
		return nil, &ConfigError{Field: "MaxPinnedBytes", Err: errors.New("negative")}
	case opts.MaxPinnedBytes == 0:
		c.maxPinned = c.maxBytes / 4
	case opts.MaxPinnedBytes > c.maxBytes:
		return nil, &ConfigError{Field: "MaxPinnedBytes", Err: errors.New("larger than MaxBytes")}
	default:
		c.maxPinned = opts.MaxPinnedBytes
	}
	if c.defaultTTL < 0 {
		return nil, &ConfigError{Field: "TTL", Err: errors.New("negative")}
	}
	if c.fillTimeout == 0 {
		c.fillTimeout = DefaultFillTimeout
	}
	for i := range c.flights {
		c.flights[i].m = make(map[string]*flight)
	}

	o := &otter.Options[string, *entry]{
		MaximumWeight: uint64(c.maxBytes),
		Weigher:       func(_ string, e *entry) uint32 { return e.weight },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			if e.Value.ttl <= 0 || e.Value.ttl > math.MaxInt64-expiryGrace {
				return math.MaxInt64
			}
			return e.Value.ttl + expiryGrace
		}),
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *entry]) {
			e.Value.gone.Store(true)
			if e.Cause == otter.CauseOverflow {
				c.stats.evictions.Add(1)
			}
			if e.Value.pinned {
				c.unpinned(e.Key, e.Value)
			}
		},
		Logger: &otter.NoopLogger{},
	}
	if c.now != nil {
		o.Clock = clock{c.now}
	} else {
		// Its goroutine ends once the cache is garbage collected.
		o.Clock = otter.NewCoarseClock(coarseResolution)
	}
	store, err := otter.New(o)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	c.store = store
	return c, nil
}

// clock adapts Options.Now to otter. It does not tick, so otter does no
// periodic clean-up with a custom clock.
type clock struct{ now func() time.Time }

func (k clock) NowNano() int64                      { return k.now().UnixNano() }
func (k clock) Tick(time.Duration) <-chan time.Time { return nil }

// nowNano returns the time in ns on the cache's clock.
// monoNano is the time on the monotonic clock since the cache was made, in
// ns, whatever Options.Now says (for fill deadlines, which are not TTLs).
func (c *Cache) monoNano() int64 { return int64(time.Since(c.start)) }

func (c *Cache) nowNano() int64 {
	if c.now != nil {
		return c.now().UnixNano()
	}
	return int64(time.Since(c.start))
}

// Get returns the value stored for key if its snapshot is still current and it
// has not expired. The returned slice is the cache's own copy, shared with
// every other reader: callers must not modify it. A hit does not allocate.
//
// An entry found stale or expired is dropped and counted in MissesInvalidated
// or MissesExpired.
func (c *Cache) Get(key string) ([]byte, bool) {
	if e, ok := c.lookup(key); ok {
		c.stats.hits.inc()
		return e.value, true
	}
	return nil, false
}

// Miss counts a miss of key for a caller that goes upstream without calling
// Get (it decided so for reasons of its own, such as missing metadata), so
// that the statistics still count every result that was not served: a stale
// or expired entry is dropped and counted as such, anything else as a cold
// miss.
func (c *Cache) Miss(key string) {
	if _, ok := c.lookup(key); ok {
		c.stats.missCold.inc()
	}
}

// lookup returns key's entry if it may be served. Otherwise it counts the
// miss by its kind and drops a stale or expired entry.
func (c *Cache) lookup(key string) (*entry, bool) {
	e, ok := c.store.GetIfPresent(key)
	switch {
	case !ok:
		c.stats.missCold.inc()
	case !e.snap.current():
		c.stats.missInvalidated.inc()
		c.drop(key, e)
	case e.expiresAt != 0 && c.nowNano() >= e.expiresAt:
		c.stats.missExpired.inc()
		c.drop(key, e)
	default:
		return e, true
	}
	return nil, false
}

// servable reports whether e may be served: its snapshot is current and its
// TTL has not passed.
func (c *Cache) servable(e *entry) bool {
	return e.snap.current() && (e.expiresAt == 0 || c.nowNano() < e.expiresAt)
}

// Peek is Get without the statistics: for lookups that are not reads of a
// result (metadata a caller keeps beside its results), which would otherwise
// distort the hit ratio. A stale or expired entry is still dropped.
func (c *Cache) Peek(key string) ([]byte, bool) {
	r, ok := c.PeekRef(key)
	return r.Value(), ok
}

// A Ref is an entry as PeekRef found it. A caller that reads the same entry
// again and again (a prepared statement's description) keeps the Ref and
// checks Valid instead of looking the key up each time. Valid reports whether
// Peek would still return this entry: it is still the key's entry (not
// replaced, evicted or dropped), its snapshot is current and its TTL has not
// passed. The zero Ref is never valid.
type Ref struct {
	c *Cache
	e *entry
}

// Value is the entry's value, which the caller must not modify.
func (r Ref) Value() []byte {
	if r.e == nil {
		return nil
	}
	return r.e.value
}

// Valid reports whether the entry may still be served.
func (r Ref) Valid() bool { return r.c != nil && !r.e.gone.Load() && r.c.servable(r.e) }

// PeekRef is Peek returning a Ref to the entry.
func (c *Cache) PeekRef(key string) (Ref, bool) {
	e, ok := c.store.GetIfPresent(key)
	if !ok {
		return Ref{}, false
	}
	if !c.servable(e) {
		c.drop(key, e)
		return Ref{}, false
	}
	return Ref{c: c, e: e}, true
}

// drop removes e from the cache unless key was stored anew since it was read.
func (c *Cache) drop(key string, e *entry) {
	c.store.ComputeIfPresent(key, func(old *entry) (*entry, otter.ComputeOp) {
		if old == e {
			return nil, otter.InvalidateOp
		}
		return old, otter.CancelOp
	})
}

// Set stores value for key, to be served while snap is current and until
// Options.TTL has passed. It returns a *SetError wrapping ErrTooLarge or
// ErrStale when it does not store the value.
//
// The cache keeps value and hands it to readers as it is: the caller must not
// modify it after Set.
func (c *Cache) Set(key string, value []byte, snap Snapshot) error {
	return c.set(key, value, &snap, EntryOptions{})
}

// SetWithTTL is Set with an entry-specific TTL instead of Options.TTL; a ttl of
// zero or less means the entry never expires.
func (c *Cache) SetWithTTL(key string, value []byte, snap Snapshot, ttl time.Duration) error {
	return c.set(key, value, &snap, EntryOptions{TTL: neverIfNotPositive(ttl)})
}

// SetWith is Set with the entry's own options: its TTL and whether it is
// pinned (see EntryOptions).
func (c *Cache) SetWith(key string, value []byte, snap Snapshot, o EntryOptions) error {
	return c.set(key, value, &snap, o)
}

func (c *Cache) set(key string, value []byte, snap *Snapshot, o EntryOptions) error {
	ttl := o.ttl(c.defaultTTL)
	size := len(key) + len(value)
	if size > c.maxEntry {
		c.stats.rejects.Add(1)
		return &SetError{Key: key, Size: size, Err: ErrTooLarge}
	}
	// Checking here only spares the cache an entry that could never be
	// served: a write racing past this check is caught by Get.
	if snap.c != c || !snap.current() {
		c.stats.fillsDiscarded.Add(1)
		return &SetError{Key: key, Size: size, Err: ErrStale}
	}
	weight := uint32(min(int64(len(key))+int64(cap(value))+EntryOverhead+TagOverhead*int64(len(snap.tags)), maxWeight))
	e := &entry{
		value:  value,
		snap:   *snap,
		ttl:    ttl,
		weight: weight,
		size:   weight,
		meta:   o.Meta,
	}
	if o.Pin {
		c.pin(key, e)
	}
	if ttl > 0 {
		now := c.nowNano()
		e.expiresAt = math.MaxInt64
		if int64(ttl) < math.MaxInt64-now {
			e.expiresAt = now + int64(ttl)
		}
	}
	c.store.Set(key, e)
	c.stats.fills.Add(1)
	if e.pinned || c.pins.dirty.Load() {
		c.adjustMaximum()
	}
	return nil
}

// Delete removes the entry of key, if any, and reports whether there was one.
func (c *Cache) Delete(key string) bool {
	_, ok := c.store.Invalidate(key)
	return ok
}

// Len returns the approximate number of entries, including stale and expired
// ones that were not dropped yet.
func (c *Cache) Len() int { return c.store.EstimatedSize() }
