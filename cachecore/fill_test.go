package cachecore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSingleFlight starts 50 goroutines that miss the same key at once and
// checks that exactly one leads and all others receive its value.
func TestSingleFlight(t *testing.T) {
	const n = 50
	c := newCache(t, Options{})
	var (
		leaders   atomic.Int32
		joined    atomic.Int32
		allJoined = make(chan struct{})
		wg        sync.WaitGroup
		results   = make(chan string, n)
	)
	for range n {
		wg.Go(func() {
			f, leader := c.BeginFill("k", c.Snapshot(1, 10))
			if leader {
				leaders.Add(1)
				defer f.Abort()
				select {
				case <-allJoined:
				case <-time.After(10 * time.Second):
					t.Error("followers did not join")
				}
				if err := f.Complete([]byte("result")); err != nil {
					t.Errorf("Complete: %v", err)
				}
				results <- "result"
				return
			}
			if joined.Add(1) == n-1 {
				close(allJoined)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, ok, err := f.Wait(ctx)
			if err != nil || !ok {
				t.Errorf("Wait = %q, %v, %v", v, ok, err)
			}
			results <- string(v)
		})
	}
	wg.Wait()
	close(results)
	if l := leaders.Load(); l != 1 {
		t.Fatalf("%d leaders, want 1", l)
	}
	for r := range results {
		if r != "result" {
			t.Errorf("got %q, want result", r)
		}
	}
	if s := c.Stats(); s.Coalesced != n-1 || s.Fills != 1 {
		t.Errorf("Coalesced = %d, Fills = %d; want %d, 1", s.Coalesced, s.Fills, n-1)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "result" {
		t.Errorf("Get after fill = %q, %v", v, ok)
	}
	if countFlights(c) != 0 {
		t.Error("fill still registered")
	}
}

func countFlights(c *Cache) int {
	n := 0
	for i := range c.flights {
		c.flights[i].mu.Lock()
		n += len(c.flights[i].m)
		c.flights[i].mu.Unlock()
	}
	return n
}

// An outcome is what a follower's Wait returned.
type outcome struct {
	value []byte
	ok    bool
	err   error
}

// follow starts n goroutines waiting on f and returns their outcomes.
func follow(ctx context.Context, f Fill, n int) <-chan outcome {
	ch := make(chan outcome, n)
	for range n {
		go func() {
			v, ok, err := f.Wait(ctx)
			ch <- outcome{v, ok, err}
		}()
	}
	return ch
}

func TestFillOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		finish   func(c *Cache, leader Fill) // what the leader (and writers) do
		wantOK   bool
		wantErr  error // from Wait
		wantHit  bool  // whether the value is then cached
		ctxAlive time.Duration
	}{
		{
			name:    "complete",
			finish:  func(_ *Cache, f Fill) { _ = f.Complete([]byte("v")) },
			wantOK:  true,
			wantHit: true,
		},
		{
			name:   "abort releases followers",
			finish: func(_ *Cache, f Fill) { f.Abort() },
		},
		{
			name:   "invalidated before complete",
			finish: func(c *Cache, f Fill) { c.Invalidate(10); _ = f.Complete([]byte("v")) },
		},
		{
			name:   "scope invalidated before complete",
			finish: func(c *Cache, f Fill) { c.InvalidateScope(1); _ = f.Complete([]byte("v")) },
		},
		{
			name:    "too large is shared but not cached",
			opts:    Options{MaxEntryBytes: 10},
			finish:  func(_ *Cache, f Fill) { _ = f.Complete(make([]byte, 100)) },
			wantOK:  true,
			wantHit: false,
		},
		{
			name:   "abandoned leader times out",
			opts:   Options{FillTimeout: 20 * time.Millisecond},
			finish: func(*Cache, Fill) {},
		},
		{
			name:     "follower context ends",
			opts:     Options{FillTimeout: -1},
			finish:   func(*Cache, Fill) {},
			wantErr:  context.DeadlineExceeded,
			ctxAlive: 20 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, tt.opts)
			f, leader := c.BeginFill("k", c.Snapshot(1, 10))
			if !leader {
				t.Fatal("first BeginFill did not lead")
			}
			var followers []Fill
			for range 3 {
				ff, l := c.BeginFill("k", c.Snapshot(1, 10))
				if l {
					t.Fatal("second BeginFill led")
				}
				followers = append(followers, ff)
			}
			alive := tt.ctxAlive
			if alive == 0 {
				alive = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), alive)
			defer cancel()
			var chans []<-chan outcome
			for _, ff := range followers {
				chans = append(chans, follow(ctx, ff, 1))
			}
			tt.finish(c, f)
			for _, ch := range chans {
				o := <-ch
				if o.ok != tt.wantOK || !errors.Is(o.err, tt.wantErr) {
					t.Errorf("Wait = %v, %v; want ok=%v err=%v", o.ok, o.err, tt.wantOK, tt.wantErr)
				}
				if !o.ok && o.value != nil {
					t.Errorf("Wait returned value %q with ok=false", o.value)
				}
			}
			if _, hit := c.Get("k"); hit != tt.wantHit {
				t.Errorf("Get hit = %v, want %v", hit, tt.wantHit)
			}
			// Unless the leader is still running (no timeout), the key can be
			// filled anew.
			if tt.opts.FillTimeout >= 0 {
				if _, l := c.BeginFill("k", c.Snapshot(1, 10)); !l {
					t.Error("BeginFill after the fill ended did not lead")
				}
			}
		})
	}
}

// TestFillLateComplete checks that once a leader has outlived FillTimeout a
// new caller leads instead of waiting, and that the late leader still stores
// its value.
func TestFillLateComplete(t *testing.T) {
	c := newCache(t, Options{FillTimeout: time.Millisecond})
	f, _ := c.BeginFill("k", c.Snapshot(0))
	var next Fill
	eventually(t, 5*time.Second, "fill abandoned", func() bool {
		next, _ = c.BeginFill("k", c.Snapshot(0))
		return next.Leader()
	})
	defer next.Abort()
	if err := f.Complete([]byte("late")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "late" {
		t.Errorf("Get = %q, %v", v, ok)
	}
}

// TestFillStaleNotJoined checks that a caller arriving after an Invalidate
// does not wait for a fill whose snapshot predates it, but leads its own.
func TestFillStaleNotJoined(t *testing.T) {
	c := newCache(t, Options{})
	old, _ := c.BeginFill("k", c.Snapshot(1, 10))
	oldFollower, _ := c.BeginFill("k", c.Snapshot(1, 10))
	c.Invalidate(10)
	f, leader := c.BeginFill("k", c.Snapshot(1, 10))
	if !leader {
		t.Fatal("caller joined a fill with a stale snapshot")
	}
	newFollower, l := c.BeginFill("k", c.Snapshot(1, 10))
	if l {
		t.Fatal("second caller after the invalidation led")
	}
	// The old leader finishes last; it must not unregister the new fill.
	if err := f.Complete([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := old.Complete([]byte("old")); !errors.Is(err, ErrStale) {
		t.Fatalf("old Complete: err = %v, want ErrStale", err)
	}
	ctx := context.Background()
	if v, ok, _ := newFollower.Wait(ctx); !ok || string(v) != "new" {
		t.Errorf("new follower got %q, %v", v, ok)
	}
	if v, ok, _ := oldFollower.Wait(ctx); ok {
		t.Errorf("old follower got %q from a stale fill", v)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "new" {
		t.Errorf("Get = %q, %v", v, ok)
	}
}

// TestFillInvalidatedAfterComplete checks that a follower that wakes after an
// Invalidate has returned does not get the value, like Get.
func TestFillInvalidatedAfterComplete(t *testing.T) {
	c := newCache(t, Options{})
	f, _ := c.BeginFill("k", c.Snapshot(1, 10))
	follower, _ := c.BeginFill("k", c.Snapshot(1, 10))
	if err := f.Complete([]byte("v")); err != nil {
		t.Fatal(err)
	}
	c.Invalidate(10)
	if v, ok, err := follower.Wait(context.Background()); ok || err != nil {
		t.Errorf("Wait = %q, %v, %v; want ok=false", v, ok, err)
	}
}

func TestFillMisuse(t *testing.T) {
	c := newCache(t, Options{})
	f, _ := c.BeginFill("k", c.Snapshot(0))
	follower, _ := c.BeginFill("k", c.Snapshot(0))

	if err := follower.Complete([]byte("v")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("follower Complete: %v, want ErrNotLeader", err)
	}
	if err := follower.CompleteWithTTL([]byte("v"), time.Second); !errors.Is(err, ErrNotLeader) {
		t.Errorf("follower CompleteWithTTL: %v, want ErrNotLeader", err)
	}
	follower.Abort() // no effect
	if _, _, err := f.Wait(context.Background()); !errors.Is(err, ErrNotFollower) {
		t.Errorf("leader Wait: %v, want ErrNotFollower", err)
	}
	if !f.Leader() || follower.Leader() {
		t.Error("Leader() wrong")
	}
	if err := f.CompleteWithTTL([]byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	f.Abort() // no effect after Complete
	if err := f.Complete([]byte("w")); !errors.Is(err, ErrFillDone) {
		t.Errorf("second Complete: %v, want ErrFillDone", err)
	}
	if v, ok, _ := follower.Wait(context.Background()); !ok || string(v) != "v" {
		t.Errorf("follower Wait = %q, %v", v, ok)
	}
	if v, ok, err := (Fill{}).Wait(context.Background()); ok || err != nil || v != nil {
		t.Errorf("zero Fill Wait = %q, %v, %v", v, ok, err)
	}
}
