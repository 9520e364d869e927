package cachecore

import (
	"sync"
	"sync/atomic"
)

// cacheLine is the assumed size of a CPU cache line, for padding.
const cacheLine = 64

// A cell holds the version of one tag or the epoch of one scope. It only ever
// grows (Add(1)). Cells are padded to a cache line so that bumping a
// frequently written tag does not slow down hits on entries of neighbouring
// tags through false sharing.
type cell struct {
	v atomic.Uint64
	_ [cacheLine - 8]byte
}

// versionShards is the number of shards of a versionStore (a power of two).
const versionShards = 64

// A versionStore maps identities (Tag or Scope values) to their cells. Cells
// are created on first use by Snapshot and never removed, so a cell pointer
// stays valid, and keeps counting, for the life of the cache: entries keep the
// pointers and check them on every hit without a map lookup.
//
// Forgetting a cell would reintroduce ABA: a later Snapshot would create a
// fresh cell starting again at version 0 while existing entries still point at
// the old one, which no Invalidate would ever bump again, so they would be
// served forever. Tags name relations (a finite set), so keeping every cell is
// bounded: about 150 bytes per tag ever snapshotted.
type versionStore struct {
	shards [versionShards]versionShard
}

type versionShard struct {
	mu sync.RWMutex
	m  map[uint64]*cell
	_  [cacheLine - 32]byte
}

func newVersionStore() *versionStore {
	s := &versionStore{}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*cell)
	}
	return s
}

func (s *versionStore) shard(id uint64) *versionShard {
	// Fibonacci hashing spreads small sequential identities (scopes) too.
	return &s.shards[(id*0x9E3779B97F4A7C15)>>(64-6)]
}

// cell returns the cell of id, creating it at version 0 if needed.
func (s *versionStore) cell(id uint64) *cell {
	sh := s.shard(id)
	sh.mu.RLock()
	c := sh.m[id]
	sh.mu.RUnlock()
	if c != nil {
		return c
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c = sh.m[id]; c == nil {
		c = new(cell)
		sh.m[id] = c
	}
	return c
}

// lookup returns the cell of id, or nil if no Snapshot ever used it. An
// identity without a cell needs no bump: no entry can depend on it, and a
// Snapshot that creates the cell later is ordered after the write that the
// bump would announce.
func (s *versionStore) lookup(id uint64) *cell {
	sh := s.shard(id)
	sh.mu.RLock()
	c := sh.m[id]
	sh.mu.RUnlock()
	return c
}

// len returns the number of cells.
func (s *versionStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
