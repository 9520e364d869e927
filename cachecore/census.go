package cachecore

// Usage is what the servable entries that read one tag hold.
type Usage struct {
	Entries int
	Bytes   uint64 // their total weight (see EntryOverhead)
}

// TagUsage counts, for every tag, the entries that read it and are still
// servable (current and not expired), and their weight; an entry that read
// several tags counts for each; metadata entries (EntryOptions.Meta) are not
// counted. It walks every entry, O(entries), so it is for
// reports, not for the hit path.
func (c *Cache) TagUsage() map[Tag]Usage {
	out := map[Tag]Usage{}
	for _, e := range c.store.All() {
		if e.meta || !c.servable(e) {
			continue
		}
		for _, tv := range e.snap.tags {
			u := out[tv.tag]
			u.Entries++
			u.Bytes += uint64(e.size)
			out[tv.tag] = u
		}
	}
	return out
}
