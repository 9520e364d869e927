package query

import (
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults for Config's zero values.
const (
	// DefaultCacheSize is the number of analyses an Analyzer keeps when
	// Config.CacheSize is 0.
	DefaultCacheSize = 10000
	// DefaultMaxCachedLen is the length, in bytes, of the longest text an
	// Analyzer keeps when Config.MaxCachedLen is 0.
	DefaultMaxCachedLen = 64 << 10
)

// Config configures an Analyzer. The zero value is ready to use.
type Config struct {
	// CacheSize is the number of analyses kept, least recently used first
	// out. 0 means DefaultCacheSize; a negative size disables the cache.
	CacheSize int
	// MaxCachedLen is the length of the longest text kept: longer texts
	// (bulk INSERTs with inline values, say) are analyzed on every call
	// rather than filling the cache. 0 means DefaultMaxCachedLen; negative
	// means no limit.
	MaxCachedLen int
}

// Analyzer analyzes SQL text and keeps the analyses of recent texts, keyed by
// the exact text, in a count-bounded LRU. It is safe for concurrent use.
// Repeated text yields the same *Analysis, which callers must treat as
// read-only.
type Analyzer struct {
	cache  *lru.Cache[string, *Analysis]
	size   int
	maxLen int
	hits   atomic.Uint64
	misses atomic.Uint64
}

// Stats is a snapshot of an Analyzer's cache counters.
type Stats struct {
	// Hits and Misses count Analyze calls answered from the cache and
	// calls that parsed (texts too long to cache count as misses).
	Hits   uint64
	Misses uint64
	// Entries is the number of analyses held; Capacity the most it holds.
	Entries  int
	Capacity int
}

// NewAnalyzer returns an Analyzer configured by cfg.
func NewAnalyzer(cfg Config) *Analyzer {
	a := &Analyzer{maxLen: cfg.MaxCachedLen}
	if a.maxLen == 0 {
		a.maxLen = DefaultMaxCachedLen
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		// lru.New fails only for a size below 1.
		a.cache, _ = lru.New[string, *Analysis](size)
		a.size = size
	}
	return a
}

// Analyze returns the analysis of sql, from the cache when the same text was
// analyzed recently. Like the package-level Analyze it never fails.
func (a *Analyzer) Analyze(sql string) *Analysis {
	if a.cache == nil || (a.maxLen > 0 && len(sql) > a.maxLen) {
		a.misses.Add(1)
		return Analyze(sql)
	}
	if an, ok := a.cache.Get(sql); ok {
		a.hits.Add(1)
		return an
	}
	a.misses.Add(1)
	// The cache keeps the key and the Analysis refers to it: copy the text
	// so that a caller's string built over a reused buffer cannot change
	// under them.
	sql = strings.Clone(sql)
	an := Analyze(sql)
	if prev, found, _ := a.cache.PeekOrAdd(sql, an); found {
		// Another goroutine analyzed the same text meanwhile: hand out
		// the one the cache holds.
		return prev
	}
	return an
}

// Stats returns the cache counters.
func (a *Analyzer) Stats() Stats {
	s := Stats{Hits: a.hits.Load(), Misses: a.misses.Load()}
	if a.cache != nil {
		s.Entries = a.cache.Len()
		s.Capacity = a.size
	}
	return s
}
