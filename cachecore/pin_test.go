package cachecore

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestPinSurvivesEviction: pinned entries stay while far more than MaxBytes
// of unpinned ones are stored, and the whole cache stays within MaxBytes.
func TestPinSurvivesEviction(t *testing.T) {
	c := newCache(t, Options{MaxBytes: 64 << 10})
	value := make([]byte, 1000)
	for i := range 10 {
		snap := c.Snapshot(1, Tag(i))
		if err := c.SetWith(fmt.Sprint("pinned", i), value, snap, EntryOptions{Pin: true}); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.PinnedEntries != 10 || st.PinnedBytes == 0 {
		t.Fatalf("after 10 pins: %+v", st)
	}
	for i := range 2000 {
		if err := c.Set(fmt.Sprint("plain", i), value, c.Snapshot(1, 99)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, c)
	for i := range 10 {
		if _, ok := c.Get(fmt.Sprint("pinned", i)); !ok {
			t.Errorf("pinned entry %d was evicted", i)
		}
	}
	st := c.Stats()
	if st.Evictions == 0 {
		t.Errorf("no evictions after storing 2 MB in 64 KiB: %+v", st)
	}
	if st.Bytes > uint64(c.maxBytes) {
		t.Errorf("cache holds %d bytes, more than MaxBytes %d", st.Bytes, c.maxBytes)
	}
}

// TestPinBound: pins beyond MaxPinnedBytes are stored unpinned and counted.
func TestPinBound(t *testing.T) {
	c := newCache(t, Options{MaxBytes: 1 << 20, MaxPinnedBytes: 5000})
	value := make([]byte, 1000)
	for i := range 10 {
		if err := c.SetWith(fmt.Sprint("k", i), value, c.Snapshot(1), EntryOptions{Pin: true}); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.PinnedBytes > 5000 || st.PinnedEntries == 0 || st.PinnedEntries >= 10 || st.PinsRefused == 0 {
		t.Fatalf("pinned %d entries (%d bytes), refused %d; want some pinned within 5000 bytes and some refused", st.PinnedEntries, st.PinnedBytes, st.PinsRefused)
	}
	if int(st.PinsRefused)+st.PinnedEntries != 10 {
		t.Errorf("refused %d + pinned %d != 10", st.PinsRefused, st.PinnedEntries)
	}
	for i := range 10 {
		if _, ok := c.Get(fmt.Sprint("k", i)); !ok {
			t.Errorf("entry %d not stored", i)
		}
	}
}

// TestPinInvalidateAndSweep: an invalidated pin is never served, and Sweep
// returns its memory; replacing or deleting a pinned key does too.
func TestPinInvalidateAndSweep(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Options{MaxBytes: 1 << 20, Now: clk.Now})
	value := make([]byte, 100)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetWith("a", value, c.Snapshot(1, 1), EntryOptions{Pin: true}))
	must(c.SetWith("b", value, c.Snapshot(1, 2), EntryOptions{Pin: true}))
	must(c.SetWith("c", value, c.Snapshot(1, 3), EntryOptions{Pin: true, TTL: time.Minute}))
	must(c.SetWith("d", value, c.Snapshot(1, 4), EntryOptions{Pin: true}))
	if n := c.Stats().PinnedEntries; n != 4 {
		t.Fatalf("%d pinned, want 4", n)
	}
	c.Invalidate(1)
	if _, ok := c.Get("a"); ok {
		t.Fatal("invalidated pinned entry served")
	}
	c.Invalidate(2)
	clk.Advance(2 * time.Minute)
	// b (invalidated) and c (expired); a was dropped by Get. Otter may have
	// reclaimed c itself already (its maintenance runs on its own goroutine
	// and reads the same clock), so Sweep drops 1 or 2 and leaves only d.
	if n := c.Sweep(); n != 1 && n != 2 {
		t.Errorf("Sweep dropped %d, want 2 (or 1 if otter reclaimed the expired one)", n)
	}
	if n := c.Stats().PinnedEntries; n != 1 {
		t.Errorf("after Sweep: %d pinned, want 1", n)
	}
	must(c.Set("d", value, c.Snapshot(1, 4))) // replaced by an unpinned value
	st := c.Stats()
	if st.PinnedEntries != 0 || st.PinnedBytes != 0 {
		t.Errorf("after invalidation, expiry, sweep and replacement: %d pinned, %d bytes", st.PinnedEntries, st.PinnedBytes)
	}
	if got := c.store.GetMaximum(); got != uint64(c.maxBytes) {
		t.Errorf("otter's maximum is %d with nothing pinned, want %d", got, c.maxBytes)
	}
	must(c.SetWith("e", value, c.Snapshot(1, 5), EntryOptions{Pin: true}))
	if !c.Delete("e") || c.Stats().PinnedEntries != 0 {
		t.Errorf("Delete left a pin: %+v", c.Stats())
	}
	var se *SetError
	if err := c.SetWith("f", value, Snapshot{}, EntryOptions{Pin: true}); !errors.As(err, &se) || !errors.Is(err, ErrStale) {
		t.Errorf("stale pin: %v", err)
	}
	if st := c.Stats(); st.PinnedBytes != 0 {
		t.Errorf("a refused stale pin reserved %d bytes", st.PinnedBytes)
	}
}

func TestMaxPinnedBytesConfig(t *testing.T) {
	for _, o := range []Options{{MaxPinnedBytes: -1}, {MaxBytes: 100, MaxPinnedBytes: 101}} {
		var ce *ConfigError
		if _, err := New(o); !errors.As(err, &ce) || ce.Field != "MaxPinnedBytes" {
			t.Errorf("New(%+v) = %v, want a ConfigError on MaxPinnedBytes", o, err)
		}
	}
	if c := newCache(t, Options{MaxBytes: 1000}); c.maxPinned != 250 {
		t.Errorf("default MaxPinnedBytes = %d, want MaxBytes/4", c.maxPinned)
	}
}

// TestTagUsage counts servable entries per tag.
func TestTagUsage(t *testing.T) {
	c := newCache(t, Options{})
	value := make([]byte, 10)
	for i, tags := range [][]Tag{{1}, {1, 2}, {2}, {3}} {
		if err := c.Set(fmt.Sprint(i), value, c.Snapshot(1, tags...)); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate(3)
	u := c.TagUsage()
	if u[1].Entries != 2 || u[2].Entries != 2 || u[3].Entries != 0 || u[1].Bytes == 0 {
		t.Errorf("TagUsage = %+v; want 2 entries of tag 1, 2 of tag 2, none of invalidated tag 3", u)
	}
}

// TestMiss counts a miss by the entry's state, like Get, without returning
// anything.
func TestMiss(t *testing.T) {
	c := newCache(t, Options{})
	if err := c.Set("stale", []byte("v"), c.Snapshot(1, 7)); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("fresh", []byte("v"), c.Snapshot(1)); err != nil {
		t.Fatal(err)
	}
	c.Invalidate(7)
	c.Miss("absent")
	c.Miss("stale")
	c.Miss("fresh")
	st := c.Stats()
	if st.MissesCold != 2 || st.MissesInvalidated != 1 || st.Hits != 0 || st.Misses != 3 {
		t.Errorf("after three Miss calls: %+v", st)
	}
	if _, ok := c.Peek("stale"); ok {
		t.Error("Miss kept a stale entry")
	}
}
