package query

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestAnalyzerCaches(t *testing.T) {
	an := NewAnalyzer(Config{})
	sql := "SELECT * FROM t WHERE id = $1"
	a1 := an.Analyze(sql)
	a2 := an.Analyze(sql)
	if a1 != a2 {
		t.Error("repeated text did not return the same *Analysis")
	}
	if a3 := an.Analyze(sql + " "); a3 == a1 {
		t.Error("different text returned the same *Analysis")
	}
	want := Stats{Hits: 1, Misses: 2, Entries: 2, Capacity: DefaultCacheSize}
	if got := an.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestAnalyzerEvicts(t *testing.T) {
	an := NewAnalyzer(Config{CacheSize: 2})
	a := an.Analyze("SELECT 1")
	an.Analyze("SELECT 2")
	an.Analyze("SELECT 1") // most recent now
	an.Analyze("SELECT 3") // evicts SELECT 2
	if an.Analyze("SELECT 1") != a {
		t.Error("recently used entry was evicted")
	}
	s := an.Stats()
	if s.Entries != 2 || s.Capacity != 2 || s.Hits != 2 || s.Misses != 3 {
		t.Errorf("stats %+v", s)
	}
	an.Analyze("SELECT 2")
	if s := an.Stats(); s.Misses != 4 {
		t.Errorf("evicted entry was still cached: %+v", s)
	}
}

func TestAnalyzerDisabledAndLongText(t *testing.T) {
	off := NewAnalyzer(Config{CacheSize: -1})
	if a1, a2 := off.Analyze("SELECT 1"), off.Analyze("SELECT 1"); a1 == a2 {
		t.Error("disabled cache returned the same *Analysis")
	}
	if s := off.Stats(); s.Misses != 2 || s.Entries != 0 || s.Capacity != 0 {
		t.Errorf("stats %+v", s)
	}

	an := NewAnalyzer(Config{MaxCachedLen: 32})
	long := "SELECT * FROM t WHERE x IN (" + strings.Repeat("1,", 20) + "1)"
	if a1, a2 := an.Analyze(long), an.Analyze(long); a1 == a2 {
		t.Error("text over MaxCachedLen was cached")
	}
	if s := an.Stats(); s.Entries != 0 || s.Misses != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestAnalyzerCopiesKey checks that the cache does not keep the caller's
// string: a proxy may build it over a buffer it reuses.
func TestAnalyzerCopiesKey(t *testing.T) {
	an := NewAnalyzer(Config{})
	buf := []byte("SELECT * FROM aaa")
	a := an.Analyze(string(buf))
	copy(buf, "SELECT * FROM bbb")
	if got := a.Statements[0].Text; got != "SELECT * FROM aaa" {
		t.Errorf("text %q", got)
	}
}

func TestAnalyzerConcurrent(t *testing.T) {
	an := NewAnalyzer(Config{CacheSize: 50})
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	results := make([][]*Analysis, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				a := an.Analyze("SELECT * FROM t" + strconv.Itoa(i%20) + " WHERE id = $1")
				if a.Class != Read || !a.Cacheable {
					t.Errorf("class %v cacheable %v", a.Class, a.Cacheable)
					return
				}
				if i < 20 {
					results[g] = append(results[g], a)
				}
			}
		}()
	}
	wg.Wait()
	// Everyone got the cached Analysis for each text once it was stored;
	// concurrent first misses may differ, later calls must not.
	for i := range 20 {
		sql := "SELECT * FROM t" + strconv.Itoa(i) + " WHERE id = $1"
		if a1, a2 := an.Analyze(sql), an.Analyze(sql); a1 != a2 {
			t.Errorf("text %d: different analyses after warm-up", i)
		}
	}
	s := an.Stats()
	if s.Hits+s.Misses != goroutines*rounds+40 || s.Entries != 20 {
		t.Errorf("stats %+v", s)
	}
}
