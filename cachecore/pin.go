package cachecore

import (
	"sync"
	"sync/atomic"
)

// pinState accounts for the pinned entries. Otter gives them weight 0, which
// it never evicts, so their real weight is kept here and taken off otter's
// maximum: MaxBytes bounds pinned and unpinned entries together.
type pinState struct {
	bytes   atomic.Int64
	entries atomic.Int64
	refused atomic.Uint64 // pins stored unpinned because MaxPinnedBytes was reached
	dirty   atomic.Bool   // bytes changed since otter's maximum was last set
	keys    sync.Map      // key -> *entry, the pinned entries, for Sweep
}

// pin makes e a pinned entry of key if MaxPinnedBytes allows.
func (c *Cache) pin(key string, e *entry) {
	p := &c.pins
	for {
		cur := p.bytes.Load()
		if cur+int64(e.size) > c.maxPinned {
			p.refused.Add(1)
			return
		}
		if p.bytes.CompareAndSwap(cur, cur+int64(e.size)) {
			break
		}
	}
	p.entries.Add(1)
	e.pinned, e.weight = true, 0
	p.keys.Store(key, e)
}

// unpinned accounts for the deletion of a pinned entry. It runs under otter's
// bucket lock (OnAtomicDeletion), so it may not call the cache.
func (c *Cache) unpinned(key string, e *entry) {
	p := &c.pins
	p.bytes.Add(-int64(e.size))
	p.entries.Add(-1)
	p.keys.CompareAndDelete(key, e)
	p.dirty.Store(true)
}

// adjustMaximum gives otter what the pinned entries leave of MaxBytes.
func (c *Cache) adjustMaximum() {
	c.pins.dirty.Store(false)
	target := uint64(max(c.maxBytes-c.pins.bytes.Load(), 1))
	if c.store.GetMaximum() != target {
		c.store.SetMaximum(target)
	}
}

// Sweep drops the pinned entries that went stale (invalidated or expired) and
// returns how many it dropped. Unpinned stale entries need no sweeping (they
// are evicted like cold ones), but pinned ones are never evicted: a caller that
// pins should call Sweep every few seconds so that their memory returns to the
// other entries. It costs O(pinned entries).
func (c *Cache) Sweep() int {
	n := 0
	c.pins.keys.Range(func(k, v any) bool {
		e := v.(*entry)
		if !c.servable(e) {
			c.drop(k.(string), e)
			n++
		}
		return true
	})
	c.adjustMaximum()
	return n
}
