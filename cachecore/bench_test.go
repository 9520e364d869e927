package cachecore

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

const benchKeys = 1024

// benchCache returns a cache holding benchKeys entries of 1 KiB, each with a
// snapshot of one scope and three tags, and their keys.
func benchCache(b *testing.B, opts Options) (*Cache, []string) {
	b.Helper()
	c := newCache(b, opts)
	value := bytes.Repeat([]byte{'v'}, 1024)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "db=app role=app SELECT * FROM t WHERE id = $1 [" + strconv.Itoa(i) + "]"
		snap := c.Snapshot(Scope(i%4), Tag(i%50), Tag(i%50+1000), Tag(i%7+2000))
		if err := c.Set(keys[i], value, snap); err != nil {
			b.Fatal(err)
		}
	}
	c.store.CleanUp()
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{{"NoTTL", Options{}}, {"TTL", Options{TTL: time.Hour}}} {
		b.Run(bc.name, func(b *testing.B) {
			c, keys := benchCache(b, bc.opts)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Get(keys[i&(benchKeys-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c, keys := benchCache(b, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.Get(keys[i&(benchKeys-1)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkGetMiss(b *testing.B) {
	c := newCache(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		c.Get("absent")
	}
}

// BenchmarkSet stores into a cache that stays within its budget (overwrites of
// benchKeys keys), with a snapshot of three tags.
func BenchmarkSet(b *testing.B) {
	c, keys := benchCache(b, Options{})
	snap := c.Snapshot(1, 1, 2, 3)
	value := bytes.Repeat([]byte{'v'}, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Set(keys[i&(benchKeys-1)], value, snap); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSnapshot(b *testing.B) {
	c, _ := benchCache(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		c.Snapshot(1, 10, 1010, 2002)
	}
}

func BenchmarkInvalidate(b *testing.B) {
	c, _ := benchCache(b, Options{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Invalidate(Tag(i % 50))
		i++
	}
}

// BenchmarkFill is the miss path of a leader without followers: BeginFill and
// Complete.
func BenchmarkFill(b *testing.B) {
	c, keys := benchCache(b, Options{})
	snap := c.Snapshot(1, 1, 2, 3)
	value := bytes.Repeat([]byte{'v'}, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f, _ := c.BeginFill(keys[i&(benchKeys-1)], snap)
		if err := f.Complete(value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
