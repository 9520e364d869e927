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
	TagOverhead   = 16
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
