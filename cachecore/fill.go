package cachecore

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// flightShards is the number of shards of the in-flight map (a power of two).
const flightShards = 32

type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight
	_  [cacheLine - 16]byte
}

// A flight is one upstream query shared by a leader and its followers.
type flight struct {
	c     *Cache
	key   string
	snap  Snapshot
	shard *flightShard
	// deadline is when followers stop waiting for the leader (on the
	// cache's monotonic clock, in ns; 0: never). Only a follower sets a
	// timer for it: most fills have none.
	deadline int64

	leaderDone atomic.Bool // Complete or Abort was called

	once  sync.Once
	done  chan struct{} // closed by release
	value []byte        // written before done is closed
	ok    bool
}

// A Fill is a handle on an in-flight fill of a key, returned by BeginFill. The
// leader's handle completes or aborts the fill; a follower's handle waits for
// it. Copies of a handle refer to the same fill. On the zero Fill, Wait
// reports ok=false at once.
type Fill struct {
	f      *flight
	leader bool
}

// BeginFill coalesces concurrent misses of key into one upstream query. It
// returns leader=true to exactly one caller at a time, whose job is to run the
// query (snap being its snapshot, taken before) and then call Complete with
// the result, or Abort. The other callers get a follower's Fill and call Wait
// to receive the leader's value.
//
// A caller joins a fill in flight only while that fill's snapshot is current;
// otherwise that fill can no longer produce a servable value, and the caller
// leads a new fill, which later callers join instead.
//
// A leader must call Complete or Abort, normally with defer f.Abort() right
// after BeginFill (Abort after Complete does nothing). If it does neither
// within Options.FillTimeout its followers are released.
//
// Only the leader's snap is used; a follower's is ignored. BeginFill does not
// look at the cache: call Get first.
func (c *Cache) BeginFill(key string, snap Snapshot) (f Fill, leader bool) {
	sh := &c.flights[maphash.String(c.flightSeed, key)&(flightShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := c.monoNano()
	if fl := sh.m[key]; fl != nil && fl.snap.current() && (fl.deadline == 0 || now < fl.deadline) {
		return Fill{f: fl}, false
	}
	// A fill past its deadline is left to its leader, which may still
	// complete and store its value; new callers lead a new one.
	fl := &flight{c: c, key: key, snap: snap, shard: sh, done: make(chan struct{})}
	if c.fillTimeout > 0 {
		fl.deadline = now + int64(c.fillTimeout)
	}
	sh.m[key] = fl
	return Fill{f: fl, leader: true}, true
}

// Leader reports whether f is the leader's handle.
func (f Fill) Leader() bool { return f.leader }

// Complete stores value as Set would, under the key and snapshot given to
// BeginFill, and hands it to the followers if that snapshot is still current
// (a value too large to cache is still handed to them). It returns nil if the
// value was stored, and otherwise a *SetError wrapping ErrTooLarge, ErrStale
// or ErrFillDone (the fill was already completed or aborted), or ErrNotLeader
// on a follower's handle.
//
// The cache and the followers keep value: the caller must not modify it.
func (f Fill) Complete(value []byte) error {
	if !f.leader {
		return ErrNotLeader
	}
	return f.complete(value, EntryOptions{})
}

// CompleteWithTTL is Complete with an entry-specific TTL instead of
// Options.TTL, as in SetWithTTL.
func (f Fill) CompleteWithTTL(value []byte, ttl time.Duration) error {
	if !f.leader {
		return ErrNotLeader
	}
	return f.complete(value, EntryOptions{TTL: neverIfNotPositive(ttl)})
}

// CompleteWith is Complete with the entry's own options, as in SetWith.
func (f Fill) CompleteWith(value []byte, o EntryOptions) error {
	if !f.leader {
		return ErrNotLeader
	}
	return f.complete(value, o)
}

func (f Fill) complete(value []byte, o EntryOptions) error {
	fl := f.f
	if fl.leaderDone.Swap(true) {
		return &SetError{Key: fl.key, Size: len(fl.key) + len(value), Err: ErrFillDone}
	}
	// The value is stored before the fill is unregistered, so that a caller
	// finds either the fill or the stored value.
	err := fl.c.set(fl.key, value, &fl.snap, o)
	fl.release(value, err == nil || fl.snap.current())
	return err
}

// Abort ends the fill without a value: the followers are told to query
// upstream themselves. It does nothing on a follower's handle or after
// Complete.
func (f Fill) Abort() {
	if !f.leader || f.f.leaderDone.Swap(true) {
		return
	}
	f.f.release(nil, false)
}

// release ends the flight for the followers and unregisters it, once.
func (fl *flight) release(value []byte, ok bool) {
	fl.once.Do(func() {
		fl.value, fl.ok = value, ok
		sh := fl.shard
		sh.mu.Lock()
		if sh.m[fl.key] == fl {
			delete(sh.m, fl.key)
		}
		sh.mu.Unlock()
		close(fl.done)
	})
}

// Wait waits for the leader and returns its value with ok=true, or ok=false
// if the caller must query upstream itself: the leader aborted or timed out,
// or the fill's snapshot was invalidated before Complete or before Wait
// returns. The value is shared and must not be modified. Wait returns ctx's
// error if ctx ends first, and ErrNotFollower on the leader's handle.
func (f Fill) Wait(ctx context.Context) (value []byte, ok bool, err error) {
	if f.leader {
		return nil, false, ErrNotFollower
	}
	fl := f.f
	if fl == nil {
		return nil, false, nil
	}
	select {
	case <-fl.done:
	default:
		var expired <-chan time.Time
		if fl.deadline != 0 {
			left := time.Duration(fl.deadline - fl.c.monoNano())
			if left <= 0 {
				return nil, false, nil // the leader is late: query upstream
			}
			t := time.NewTimer(left)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-fl.done:
		case <-expired:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	// Checked again so that a follower, like Get, never returns a value
	// after an Invalidate of its tags has returned.
	if !fl.ok || !fl.snap.current() {
		return nil, false, nil
	}
	fl.c.stats.coalesced.Add(1)
	return fl.value, true, nil
}
