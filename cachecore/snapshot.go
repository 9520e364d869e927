package cachecore

// A Tag identifies something whose changes invalidate cached results, normally
// a relation: the caller chooses the identity, for example a hash of the
// database and the relation's OID. Tags of different databases must differ.
type Tag uint64

// A Scope groups entries that can be invalidated together by InvalidateScope,
// normally a database. Scopes and tags are separate name spaces.
type Scope uint64

// A Snapshot records the versions of a scope and a set of tags at one moment.
// Take it with Cache.Snapshot before the query is sent upstream, and store the
// query's result with it: the result is served only while the snapshot is
// current, that is until one of its tags, its scope or the whole cache is
// invalidated.
//
// A Snapshot is immutable and may be shared between goroutines. The zero
// Snapshot is never current.
type Snapshot struct {
	c      *Cache // the cache the versions belong to
	all    uint64 // c's global epoch
	scope  *cell
	scopeV uint64
	tags   []tagVersion
}

type tagVersion struct {
	cell *cell
	v    uint64
	tag  Tag // for reports (Cache.TagUsage)
}

// Snapshot returns the current versions of scope and tags. Call it before the
// query that reads those tags is sent upstream, so that any write the result
// may miss is announced by an Invalidate that comes after it.
//
// Snapshot costs O(len(tags)) map lookups and allocates the snapshot's tag
// list; a tag or scope seen for the first time is registered (see the package
// documentation on memory).
func (c *Cache) Snapshot(scope Scope, tags ...Tag) Snapshot {
	s := Snapshot{c: c, scope: c.scopes.cell(uint64(scope))}
	if len(tags) > 0 {
		s.tags = make([]tagVersion, len(tags))
		for i, t := range tags {
			s.tags[i].cell, s.tags[i].tag = c.tags.cell(uint64(t)), t
		}
	}
	// The loads come after every cell exists, so they are as close together
	// as possible; their order does not matter for correctness.
	s.all = c.all.v.Load()
	s.scopeV = s.scope.v.Load()
	for i := range s.tags {
		s.tags[i].v = s.tags[i].cell.v.Load()
	}
	return s
}

// Current reports whether no tag or scope of s, nor the whole cache, has been
// invalidated since s was taken. A result stored with a snapshot that is no
// longer current is discarded, so a caller may skip buffering it.
func (s Snapshot) Current() bool { return s.current() }

// current is the hit path check: O(len(tags)) atomic loads, no locks, no
// lookups.
func (s *Snapshot) current() bool {
	if s.c == nil || s.c.all.v.Load() != s.all || s.scope.v.Load() != s.scopeV {
		return false
	}
	for i := range s.tags {
		if s.tags[i].cell.v.Load() != s.tags[i].v {
			return false
		}
	}
	return true
}

// Invalidate marks every entry whose snapshot covers one of tags as stale, in
// O(len(tags)). Call it after the write to those tags is visible to new
// queries (committed): a Snapshot taken before it sees the old version, so the
// entries filled from it are never served once Invalidate returns, and a
// Snapshot taken after it is taken after the write. Calling it also before the
// commit is harmless, but only the call after the commit makes the cache
// correct.
func (c *Cache) Invalidate(tags ...Tag) {
	for _, t := range tags {
		if cl := c.tags.lookup(uint64(t)); cl != nil {
			cl.v.Add(1)
		}
	}
	c.stats.invalidations.Add(uint64(len(tags)))
}

// InvalidateScope marks every entry of scope as stale, in O(1). Use it when the
// changes of a scope can no longer be tracked (the replication stream was lost)
// or a statement had side effects that cannot be attributed to tags.
func (c *Cache) InvalidateScope(scope Scope) {
	if cl := c.scopes.lookup(uint64(scope)); cl != nil {
		cl.v.Add(1)
	}
	c.stats.invalidations.Add(1)
}

// InvalidateAll marks every entry of the cache as stale, in O(1).
func (c *Cache) InvalidateAll() {
	c.all.v.Add(1)
	c.stats.invalidations.Add(1)
}
