package cachecore

import "time"

// Defaults used for the zero values of Options fields.
const (
	// DefaultMaxBytes is the byte budget used when Options.MaxBytes is zero.
	DefaultMaxBytes = 256 << 20
	// DefaultMaxEntryBytes is the per-entry limit used when Options.MaxEntryBytes is zero.
	DefaultMaxEntryBytes = 1 << 20
	// DefaultFillTimeout is the fill lifetime used when Options.FillTimeout is zero.
	DefaultFillTimeout = 30 * time.Second
)

// Weight accounting. An entry weighs len(key) + cap(value) + EntryOverhead +
// TagOverhead per tag of its snapshot. The overheads estimate the memory that
// holds an entry besides its key and value bytes: the entry struct and its
// snapshot, the otter node and its hash table slot.
const (
	EntryOverhead = 160
	TagOverhead   = 24
)

// maxWeight is the largest weight otter can record for one entry.
const maxWeight = 1<<32 - 1

// Options configures a Cache. The zero value is ready to use: a 256 MiB cache of
// entries up to 1 MiB that never expire.
type Options struct {
	// MaxBytes bounds the total weight of the cached entries (see EntryOverhead).
	// When it is exceeded the least valuable entries are evicted (otter's
	// W-TinyLFU policy). Eviction runs asynchronously, so the weight may exceed
	// the bound briefly after a write. Zero means DefaultMaxBytes.
	MaxBytes int64

	// MaxEntryBytes bounds len(key)+len(value) of one entry; larger values are
	// refused by Set and Fill.Complete with ErrTooLarge and counted as Rejects,
	// and the caller is expected to stream such results uncached. Zero means
	// DefaultMaxEntryBytes. It is lowered to MaxBytes if it is larger.
	MaxEntryBytes int

	// TTL is how long an entry is served after it was stored. Zero means
	// entries never expire; they still stop being served as soon as a tag or
	// scope of their snapshot is invalidated. SetWithTTL and
	// Fill.CompleteWithTTL override it per entry.
	TTL time.Duration

	// MaxPinnedBytes bounds the total weight of pinned entries (see
	// EntryOptions.Pin), which count against MaxBytes too: the unpinned
	// entries get what the pinned ones leave. A pin that would exceed it is
	// stored unpinned. Zero means MaxBytes/4; it may not exceed MaxBytes.
	MaxPinnedBytes int64

	// FillTimeout is how long a fill begun by BeginFill may stay unfinished.
	// After it, the fill is abandoned: its followers are released (Wait reports
	// ok=false) and the next BeginFill for the key leads a new fill. The
	// leader's late Complete still stores its value. It guards against leaders
	// that neither complete nor abort. Zero means DefaultFillTimeout; a negative
	// value disables the timeout, leaving followers bounded by their contexts.
	FillTimeout time.Duration

	// Now returns the current time, for TTL expiry. Nil means time.Now (on the
	// monotonic clock). Tests inject a fake clock here; with a custom Now the
	// cache does no periodic background clean-up, and expired entries are
	// reclaimed during writes or when read.
	Now func() time.Time
}

// EntryOptions are one entry's own settings, for SetWith and
// Fill.CompleteWith.
type EntryOptions struct {
	// TTL is how long the entry is served: zero means Options.TTL, a
	// negative value that it never expires.
	TTL time.Duration
	// Pin keeps the entry across evictions: it is served until its snapshot
	// is invalidated or its TTL passes, however much else is stored, within
	// Options.MaxPinnedBytes. Pinned entries that went stale are reclaimed by
	// Sweep, or by the next Get of their key.
	Pin bool
	// Meta marks an entry as metadata a caller keeps beside its results (a
	// statement's description, say): TagUsage does not count it.
	Meta bool
}

// neverIfNotPositive maps SetWithTTL's ttl (zero or less: never expires) to
// EntryOptions.TTL (negative: never expires).
func neverIfNotPositive(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return -1
	}
	return ttl
}

func (o EntryOptions) ttl(def time.Duration) time.Duration {
	switch {
	case o.TTL == 0:
		return def
	case o.TTL < 0:
		return 0
	}
	return o.TTL
}
