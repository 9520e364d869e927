package cachecore

import (
	"sync"
	"testing"
	"time"
)

// newCache returns a cache for opts, failing the test on error.
func newCache(t testing.TB, opts Options) *Cache {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return c
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle runs otter's pending maintenance (evictions, reclamation) until the
// cache is within its byte budget.
func settle(t testing.TB, c *Cache) {
	t.Helper()
	eventually(t, 5*time.Second, "cache within MaxBytes", func() bool {
		c.store.CleanUp()
		return c.Stats().Bytes <= uint64(c.maxBytes)
	})
}

// fakeClock is an injectable Options.Now that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
