package cachecore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDB is a database of one row per tag whose contents are the row's
// version: a write increments it. A query over some tags returns the versions
// it read, so a cached result tells which writes it had seen.
type fakeDB struct {
	rows []atomic.Uint64
	// floor[t] is the highest version of row t whose Invalidate (or scope or
	// global invalidation) has returned.
	floor []atomic.Uint64
}

func (db *fakeDB) query(tags []Tag) []byte {
	out := make([]byte, 8*len(tags))
	for i, t := range tags {
		binary.LittleEndian.PutUint64(out[8*i:], db.rows[t].Load())
		if i == 0 {
			runtime.Gosched() // widen the window for a write inside the query
		}
	}
	return out
}

func raiseTo(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TestRaceInvalidation runs readers that fill and read a few keys while
// writers update rows and invalidate them by tag, by scope and globally. It
// asserts that no value is ever returned (by Get or by a follower's Wait) that
// was read before a write whose invalidation had returned before the read
// started: for every tag of the key, the version in the value is at least the
// floor observed before the Get.
func TestRaceInvalidation(t *testing.T) {
	const (
		numTags    = 6
		scope      = Scope(1)
		readers    = 8
		writers    = 2
		readerOps  = 3000
		maxRuntime = 20 * time.Second
	)
	db := &fakeDB{rows: make([]atomic.Uint64, numTags), floor: make([]atomic.Uint64, numTags)}
	keys := []struct {
		key  string
		tags []Tag
	}{
		{"q0", []Tag{0}},
		{"q1", []Tag{1, 2}},
		{"q2", []Tag{2, 3, 4}},
		{"q3", []Tag{5, 0}},
		{"q4", nil}, // depends on the scope only; no row to check
	}
	c := newCache(t, Options{FillTimeout: time.Second})

	check := func(where string, tags []Tag, floors []uint64, v []byte) {
		if len(v) != 8*len(tags) {
			t.Errorf("%s: value of %d bytes for %d tags", where, len(v), len(tags))
			return
		}
		for i, tg := range tags {
			if got := binary.LittleEndian.Uint64(v[8*i:]); got < floors[i] {
				t.Errorf("%s: tag %d at version %d, but version %d was invalidated before the read", where, tg, got, floors[i])
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), maxRuntime)
	defer cancel()
	var (
		stop     atomic.Bool
		wgWrite  sync.WaitGroup
		wgRead   sync.WaitGroup
		writes   atomic.Int64
		checked  atomic.Int64
		followed atomic.Int64
	)
	for w := range writers {
		wgWrite.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; !stop.Load() && ctx.Err() == nil; i++ {
				switch x := r.IntN(100); {
				case x < 2: // lost replication: every row may have changed
					vs := make([]uint64, numTags)
					for tg := range numTags {
						vs[tg] = db.rows[tg].Add(1)
					}
					if x == 0 {
						c.InvalidateAll()
					} else {
						c.InvalidateScope(scope)
					}
					for tg := range numTags {
						raiseTo(&db.floor[tg], vs[tg])
					}
				default:
					tg := Tag(r.IntN(numTags))
					v := db.rows[tg].Add(1) // commit
					c.Invalidate(tg)        // then announce
					raiseTo(&db.floor[tg], v)
				}
				writes.Add(1)
				runtime.Gosched()
			}
		})
	}
	for rd := range readers {
		wgRead.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			floors := make([]uint64, 0, 4)
			for range readerOps {
				k := keys[r.IntN(len(keys))]
				floors = floors[:0]
				for _, tg := range k.tags {
					floors = append(floors, db.floor[tg].Load())
				}
				if v, ok := c.Get(k.key); ok {
					check("Get "+k.key, k.tags, floors, v)
					checked.Add(1)
					continue
				}
				snap := c.Snapshot(scope, k.tags...)
				if rd%4 == 0 { // some readers use plain Set
					_ = c.Set(k.key, db.query(k.tags), snap)
					continue
				}
				f, leader := c.BeginFill(k.key, snap)
				if leader {
					_ = f.Complete(db.query(k.tags))
					continue
				}
				v, ok, err := f.Wait(ctx)
				if err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
				if ok {
					check(fmt.Sprintf("Wait %s", k.key), k.tags, floors, v)
					followed.Add(1)
				}
			}
		})
	}
	wgRead.Wait()
	stop.Store(true)
	wgWrite.Wait()

	s := c.Stats()
	t.Logf("writes %d, checked hits %d, checked follower values %d; stats %+v", writes.Load(), checked.Load(), followed.Load(), s)
	if s.Hits == 0 || s.MissesInvalidated == 0 {
		t.Errorf("the test exercised too little: %+v", s)
	}
}
