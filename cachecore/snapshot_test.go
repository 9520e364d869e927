package cachecore

import (
	"errors"
	"testing"
)

func TestInvalidate(t *testing.T) {
	// The entry is stored with a snapshot of scope 1 and tags 10, 11.
	tests := []struct {
		name       string
		invalidate func(c *Cache)
		wantHit    bool
	}{
		{name: "nothing", invalidate: func(*Cache) {}, wantHit: true},
		{name: "first tag", invalidate: func(c *Cache) { c.Invalidate(10) }},
		{name: "second tag", invalidate: func(c *Cache) { c.Invalidate(11) }},
		{name: "several tags", invalidate: func(c *Cache) { c.Invalidate(99, 11, 10) }},
		{name: "unrelated tag", invalidate: func(c *Cache) { c.Invalidate(12) }, wantHit: true},
		{name: "tag equal to scope id", invalidate: func(c *Cache) { c.Invalidate(1) }, wantHit: true},
		{name: "no tags", invalidate: func(c *Cache) { c.Invalidate() }, wantHit: true},
		{name: "scope", invalidate: func(c *Cache) { c.InvalidateScope(1) }},
		{name: "other scope", invalidate: func(c *Cache) { c.InvalidateScope(2) }, wantHit: true},
		{name: "scope equal to tag id", invalidate: func(c *Cache) { c.InvalidateScope(10) }, wantHit: true},
		{name: "all", invalidate: func(c *Cache) { c.InvalidateAll() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, Options{})
			c.Snapshot(2, 12) // registers scope 2 and tag 12, used by other entries
			if err := c.Set("k", []byte("v"), c.Snapshot(1, 10, 11)); err != nil {
				t.Fatal(err)
			}
			tt.invalidate(c)
			_, hit := c.Get("k")
			if hit != tt.wantHit {
				t.Fatalf("Get hit = %v, want %v", hit, tt.wantHit)
			}
			if tt.wantHit {
				return
			}
			if s := c.Stats(); s.MissesInvalidated != 1 || s.MissesCold != 0 {
				t.Errorf("MissesInvalidated = %d, MissesCold = %d; want 1, 0", s.MissesInvalidated, s.MissesCold)
			}
			if n := c.Len(); n != 0 {
				t.Errorf("Len = %d, want 0: stale entry not dropped", n)
			}
			// A snapshot taken after the invalidation makes a servable entry again.
			if err := c.Set("k", []byte("v2"), c.Snapshot(1, 10, 11)); err != nil {
				t.Fatal(err)
			}
			if v, ok := c.Get("k"); !ok || string(v) != "v2" {
				t.Errorf("Get after refill = %q, %v", v, ok)
			}
		})
	}
}

// TestStaleSnapshotDiscarded checks that a value whose snapshot was overtaken
// by a write before Set is never stored.
func TestStaleSnapshotDiscarded(t *testing.T) {
	other := newCache(t, Options{})
	tests := []struct {
		name string
		snap func(c *Cache) Snapshot
	}{
		{name: "tag", snap: func(c *Cache) Snapshot { s := c.Snapshot(1, 10, 11); c.Invalidate(11); return s }},
		{name: "scope", snap: func(c *Cache) Snapshot { s := c.Snapshot(1, 10); c.InvalidateScope(1); return s }},
		{name: "all", snap: func(c *Cache) Snapshot { s := c.Snapshot(1, 10); c.InvalidateAll(); return s }},
		{name: "zero snapshot", snap: func(*Cache) Snapshot { return Snapshot{} }},
		{name: "another cache's snapshot", snap: func(*Cache) Snapshot { return other.Snapshot(1, 10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, Options{})
			snap := tt.snap(c)
			if snap.Current() && snap.c == c {
				t.Fatal("snapshot still current")
			}
			err := c.Set("k", []byte("v"), snap)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("Set: err = %v, want ErrStale", err)
			}
			if _, ok := c.Get("k"); ok {
				t.Fatal("stale value served")
			}
			if s := c.Stats(); s.FillsDiscarded != 1 || s.Fills != 0 || s.Entries != 0 {
				t.Errorf("FillsDiscarded=%d Fills=%d Entries=%d; want 1, 0, 0", s.FillsDiscarded, s.Fills, s.Entries)
			}
		})
	}
}

// TestInvalidateUnknownTag checks that invalidating a tag no snapshot has seen
// neither registers it nor breaks later snapshots of it.
func TestInvalidateUnknownTag(t *testing.T) {
	c := newCache(t, Options{})
	c.Invalidate(5)
	c.InvalidateScope(7)
	if n := c.Stats().Tags; n != 0 {
		t.Fatalf("Tags = %d after invalidating unknown tags, want 0", n)
	}
	if err := c.Set("k", []byte("v"), c.Snapshot(7, 5)); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("k"); !ok {
		t.Fatal("miss")
	}
	c.Invalidate(5)
	if _, ok := c.Get("k"); ok {
		t.Fatal("hit after Invalidate")
	}
	if s := c.Stats(); s.Invalidations != 3 || s.Tags != 1 {
		t.Errorf("Invalidations = %d, Tags = %d; want 3, 1", s.Invalidations, s.Tags)
	}
}

// TestVersionsMonotonic checks that a tag's version only grows and that
// snapshots share one cell per tag.
func TestVersionsMonotonic(t *testing.T) {
	c := newCache(t, Options{})
	var last uint64
	for i := range 100 {
		s := c.Snapshot(0, 42)
		if v := s.tags[0].v; v < last || v != uint64(i) {
			t.Fatalf("version %d after %d invalidations (previous %d)", v, i, last)
		}
		if s.tags[0].cell != c.tags.cell(42) {
			t.Fatal("snapshot does not share the tag's cell")
		}
		last = s.tags[0].v
		c.Invalidate(42)
	}
}
