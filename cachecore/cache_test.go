package cachecore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		wantField string // ConfigError field, "" for success
		maxBytes  int64
		maxEntry  int
	}{
		{name: "zero value", maxBytes: DefaultMaxBytes, maxEntry: DefaultMaxEntryBytes},
		{name: "explicit", opts: Options{MaxBytes: 1 << 30, MaxEntryBytes: 4 << 20}, maxBytes: 1 << 30, maxEntry: 4 << 20},
		{name: "entry limit lowered to budget", opts: Options{MaxBytes: 64 << 10}, maxBytes: 64 << 10, maxEntry: 64 << 10},
		{name: "negative MaxBytes", opts: Options{MaxBytes: -1}, wantField: "MaxBytes"},
		{name: "negative MaxEntryBytes", opts: Options{MaxEntryBytes: -1}, wantField: "MaxEntryBytes"},
		{name: "negative TTL", opts: Options{TTL: -time.Second}, wantField: "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if tt.wantField != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != tt.wantField {
					t.Fatalf("New: err = %v, want *ConfigError for %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.maxBytes != tt.maxBytes || c.maxEntry != tt.maxEntry {
				t.Errorf("limits = %d, %d; want %d, %d", c.maxBytes, c.maxEntry, tt.maxBytes, tt.maxEntry)
			}
		})
	}
}

func TestGetSet(t *testing.T) {
	c := newCache(t, Options{})
	snap := c.Snapshot(1, 10, 11)

	if v, ok := c.Get("k"); ok {
		t.Fatalf("Get on empty cache = %q, true", v)
	}
	if err := c.Set("k", []byte("value"), snap); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "value" {
		t.Fatalf("Get = %q, %v; want value, true", v, ok)
	}
	if v, ok := c.Get("other"); ok {
		t.Fatalf("Get(other) = %q, true", v)
	}
	// Overwriting replaces the value.
	value2 := []byte("value2")
	if err := c.Set("k", value2, snap); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "value2" {
		t.Fatalf("Get = %q, %v; want value2, true", v, ok)
	}

	settle(t, c)
	s := c.Stats()
	want := Stats{Hits: 2, Misses: 2, MissesCold: 2, Fills: 2, Entries: 1, Bytes: s.Bytes, Tags: 2}
	if s != want {
		t.Errorf("Stats = %+v\nwant    %+v", s, want)
	}
	if wantBytes := uint64(len("k") + cap(value2) + EntryOverhead + 2*TagOverhead); s.Bytes != wantBytes {
		t.Errorf("Bytes = %d, want %d", s.Bytes, wantBytes)
	}
	if got := s.HitRatio(); got != 0.5 {
		t.Errorf("HitRatio = %v, want 0.5", got)
	}
}

func TestDeleteAndLen(t *testing.T) {
	c := newCache(t, Options{})
	snap := c.Snapshot(0)
	for i := range 3 {
		if err := c.Set(fmt.Sprint(i), []byte("v"), snap); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	if !c.Delete("1") {
		t.Error("Delete(1) = false, want true")
	}
	if c.Delete("1") {
		t.Error("second Delete(1) = true, want false")
	}
	if _, ok := c.Get("1"); ok {
		t.Error("Get after Delete hit")
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
}

// TestByteBound fills ten times the budget and checks that the cache settles
// within it.
func TestByteBound(t *testing.T) {
	const maxBytes = 1 << 20
	c := newCache(t, Options{MaxBytes: maxBytes})
	snap := c.Snapshot(1, 1)
	value := bytes.Repeat([]byte{'x'}, 4000)
	var written int
	for i := 0; written < 10*maxBytes; i++ {
		key := fmt.Sprintf("key-%d", i)
		if err := c.Set(key, value, snap); err != nil {
			t.Fatalf("Set: %v", err)
		}
		written += len(key) + len(value)
	}
	settle(t, c)
	s := c.Stats()
	if s.Bytes > maxBytes || s.Bytes < maxBytes/2 {
		t.Errorf("Bytes = %d, want within (%d, %d]", s.Bytes, maxBytes/2, maxBytes)
	}
	if s.Evictions == 0 {
		t.Error("Evictions = 0 after overfilling")
	}
	if s.Fills != s.Evictions+uint64(s.Entries) {
		t.Errorf("Fills %d != Evictions %d + Entries %d", s.Fills, s.Evictions, s.Entries)
	}
}

func TestMaxEntryBytes(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name    string
		key     string
		size    int
		wantErr error
	}{
		{name: "small", key: "k", size: 10},
		{name: "exactly at limit", key: "k", size: limit - 1},
		{name: "one over", key: "k", size: limit, wantErr: ErrTooLarge},
		{name: "key counts", key: string(make([]byte, 600)), size: 600, wantErr: ErrTooLarge},
		{name: "far over", key: "k", size: 10 * limit, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, Options{MaxEntryBytes: limit})
			err := c.Set(tt.key, make([]byte, tt.size), c.Snapshot(0))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Set: err = %v, want %v", err, tt.wantErr)
			}
			_, hit := c.Get(tt.key)
			s := c.Stats()
			if tt.wantErr != nil {
				var se *SetError
				if !errors.As(err, &se) || se.Size != len(tt.key)+tt.size || se.Key != tt.key {
					t.Errorf("err = %#v, want *SetError with Size %d", err, len(tt.key)+tt.size)
				}
				if hit || s.Rejects != 1 || s.Fills != 0 {
					t.Errorf("hit=%v Rejects=%d Fills=%d; want miss, 1, 0", hit, s.Rejects, s.Fills)
				}
			} else if !hit || s.Rejects != 0 || s.Fills != 1 {
				t.Errorf("hit=%v Rejects=%d Fills=%d; want hit, 0, 1", hit, s.Rejects, s.Fills)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	const ttl = time.Minute
	tests := []struct {
		name     string
		entryTTL time.Duration // for SetWithTTL; 0 = Set
		useSet   bool
		advance  time.Duration
		want     string // "hit", "expired", "cold"
	}{
		{name: "fresh", useSet: true, advance: ttl - time.Nanosecond, want: "hit"},
		{name: "at ttl", useSet: true, advance: ttl, want: "expired"},
		{name: "within grace", useSet: true, advance: ttl + expiryGrace/2, want: "expired"},
		{name: "reclaimed by otter", useSet: true, advance: ttl + 2*expiryGrace, want: "cold"},
		{name: "override shorter", entryTTL: time.Second, advance: time.Second, want: "expired"},
		{name: "override longer", entryTTL: time.Hour, advance: 2 * ttl, want: "hit"},
		{name: "override never", entryTTL: -1, advance: 1000 * time.Hour, want: "hit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newCache(t, Options{TTL: ttl, Now: clk.Now})
			snap := c.Snapshot(0)
			var err error
			if tt.useSet {
				err = c.Set("k", []byte("v"), snap)
			} else {
				err = c.SetWithTTL("k", []byte("v"), snap, tt.entryTTL)
			}
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.advance)
			_, hit := c.Get("k")
			s := c.Stats()
			got := map[bool]string{true: "hit", false: "?"}[hit]
			switch {
			case s.MissesExpired == 1:
				got = "expired"
			case s.MissesCold == 1:
				got = "cold"
			}
			if got != tt.want {
				t.Fatalf("after %v: %s, want %s (stats %+v)", tt.advance, got, tt.want, s)
			}
			if got == "expired" {
				if _, hit := c.Get("k"); hit {
					t.Error("expired entry served on second Get")
				}
				if n := c.Len(); n != 0 {
					t.Errorf("Len = %d after expiry, want 0 (dropped)", n)
				}
			}
		})
	}
}

func TestTTLZeroNeverExpires(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Options{Now: clk.Now})
	if err := c.Set("k", []byte("v"), c.Snapshot(0)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * 365 * 24 * time.Hour)
	if _, ok := c.Get("k"); !ok {
		t.Fatal("entry without TTL expired")
	}
}

// TestGetHitAllocs checks the documented zero-allocation hit path.
func TestGetHitAllocs(t *testing.T) {
	for _, opts := range []Options{{}, {TTL: time.Hour}} {
		c := newCache(t, opts)
		if err := c.Set("key", []byte("value"), c.Snapshot(1, 1, 2, 3)); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, ok := c.Get("key"); !ok {
				t.Fatal("miss")
			}
		})
		if allocs != 0 {
			t.Errorf("TTL %v: Get hit allocates %v times, want 0", opts.TTL, allocs)
		}
	}
}

func TestPeekCountsNothing(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap := c.Snapshot(1, 7)
	if err := c.Set("k", []byte("v"), snap); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Peek("k"); !ok || string(v) != "v" {
		t.Fatalf("Peek = %q, %v", v, ok)
	}
	if _, ok := c.Peek("missing"); ok {
		t.Fatal("Peek found a missing key")
	}
	c.Invalidate(7)
	if _, ok := c.Peek("k"); ok {
		t.Fatal("Peek returned an invalidated entry")
	}
	if st := c.Stats(); st.Hits != 0 || st.Misses != 0 {
		t.Fatalf("Peek counted: %+v", st)
	}
}

// TestRefValidAsPeek checks that a Ref kept from PeekRef stays valid exactly
// as long as Peek would find its entry: not after an invalidation of one of
// its tags, of its scope or of everything, nor after its TTL, and that the
// zero Ref is never valid.
func TestRefValidAsPeek(t *testing.T) {
	if (Ref{}).Valid() || (Ref{}).Value() != nil {
		t.Fatal("the zero Ref is valid or has a value")
	}
	clock := newFakeClock()
	c, err := New(Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		ttl   time.Duration
		end   func()
		after bool // Valid after end
	}{
		{"tag invalidated", 0, func() { c.Invalidate(7) }, false},
		{"other tag invalidated", 0, func() { c.Invalidate(8) }, true},
		{"scope invalidated", 0, func() { c.InvalidateScope(1) }, false},
		{"everything invalidated", 0, func() { c.InvalidateAll() }, false},
		{"ttl passed", time.Minute, func() { clock.Advance(time.Minute) }, false},
		{"ttl not passed", time.Minute, func() { clock.Advance(time.Second) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SetWithTTL("k", []byte("v"), c.Snapshot(1, 7), tt.ttl); err != nil {
				t.Fatal(err)
			}
			r, ok := c.PeekRef("k")
			if !ok || !r.Valid() || string(r.Value()) != "v" {
				t.Fatalf("PeekRef = %q, %v, valid %v", r.Value(), ok, r.Valid())
			}
			tt.end()
			_, peeked := c.Peek("k")
			if r.Valid() != tt.after || peeked != tt.after {
				t.Errorf("after: Ref valid %v, Peek found %v; want %v", r.Valid(), peeked, tt.after)
			}
			if _, ok := c.PeekRef("k"); ok != tt.after {
				t.Errorf("PeekRef found %v; want %v", ok, tt.after)
			}
		})
	}
}

// TestRefNotValidOnceReplaced checks that a Ref to an entry stops being valid
// when a Set replaces the entry, so that its holder looks the key up again.
func TestRefNotValidOnceReplaced(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("k", []byte("v1"), c.Snapshot(1, 7)); err != nil {
		t.Fatal(err)
	}
	r, ok := c.PeekRef("k")
	if !ok || !r.Valid() {
		t.Fatal("PeekRef did not find a fresh entry")
	}
	if err := c.Set("k", []byte("v2"), c.Snapshot(1, 7)); err != nil {
		t.Fatal(err)
	}
	if r.Valid() {
		t.Error("a Ref to a replaced entry is still valid")
	}
	if r2, ok := c.PeekRef("k"); !ok || string(r2.Value()) != "v2" || !r2.Valid() {
		t.Errorf("PeekRef after the replacement = %q, %v", r2.Value(), ok)
	}
}
