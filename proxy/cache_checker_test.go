package proxy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/proxy"
)

// ack is one acknowledged write: the row's new value and when the writer
// got the acknowledgement.
type ack struct {
	value int64
	at    time.Time
	proxy bool
}

// ackLog keeps, per row, the acknowledged writes in value order (each write
// increments the row, so values are unique and ordered).
type ackLog struct {
	mu   sync.Mutex
	rows map[int][]ack
}

func (l *ackLog) add(row int, a ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks := l.rows[row]
	i, _ := slices.BinarySearchFunc(acks, a.value, func(x ack, v int64) int { return int(x.value - v) })
	l.rows[row] = slices.Insert(acks, i, a)
}

// firstNewer returns the earliest-acknowledged write of row with a value above
// v that was acknowledged before t0, if any.
func (l *ackLog) firstNewer(row int, v int64, t0 time.Time) (ack, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best ack
	found := false
	for _, a := range l.rows[row] {
		if a.value > v && a.at.Before(t0) && (!found || a.at.Before(best.at)) {
			best, found = a, true
		}
	}
	return best, found
}

// TestWALConsistencyChecker is the randomized consistency checker: writers
// through the proxy and directly, readers through the proxy in several
// protocol modes, PGMEMO_CHECKER_OPS operations in all (default 20000; the
// bench/consistency.sh script runs it longer). A read may never return a value
// older than a write through the proxy acknowledged before the read began;
// a read older than a direct write acknowledged before it began must be within
// the staleness bound (--max-staleness). It logs the counts and the
// invalidation delay from commit to invalidation.
func TestWALConsistencyChecker(t *testing.T) {
	total := 20000
	if s := os.Getenv("PGMEMO_CHECKER_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		total = n
	}
	const maxStaleness = time.Second
	p := startProxy(t, withWAL(func(o *proxy.CacheOptions) { o.MaxStaleness = maxStaleness }))
	db := newDB(t)
	const rows = 40
	setup := pgxConnect(t, directURL("", "", db))
	mustExec(t, setup, fmt.Sprintf("CREATE TABLE ctr(k int PRIMARY KEY, v bigint NOT NULL); INSERT INTO ctr SELECT g, 0 FROM generate_series(1, %d) g", rows))
	waitServing(t, pgxConnect(t, p.URL("", "", db)))

	log := &ackLog{rows: map[int][]ack{}}
	var ops, reads, writes, staleDirect, violations atomic.Int64
	var worstDirect atomic.Int64
	errc := make(chan error, 32)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	worker := func(f func(r *rand.Rand) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for ops.Add(1) <= int64(total) && ctx.Err() == nil {
				if err := f(r); err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
					return
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		viaProxy := i%2 == 0
		url := directURL("", "", db)
		if viaProxy {
			url = p.URL("", "", db)
		}
		// synchronous_commit=on, as in production: with it off (the test
		// cluster's default) a commit is visible before its WAL is flushed,
		// and the stream, which carries only flushed WAL, trails by up to
		// wal_writer_delay (200 ms).
		conn := pgxConnect(t, url, func(c *pgx.ConnConfig) { c.RuntimeParams["synchronous_commit"] = "on" })
		worker(func(r *rand.Rand) error {
			row := 1 + r.IntN(rows)
			var v int64
			if err := conn.QueryRow(ctx, "UPDATE ctr SET v = v + 1 WHERE k = $1 RETURNING v", row).Scan(&v); err != nil {
				return err
			}
			log.add(row, ack{value: v, at: time.Now(), proxy: viaProxy})
			writes.Add(1)
			return nil
		})
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe}
	for i := 0; i < 8; i++ {
		conn := pgxConnect(t, p.URL("", "", db), withMode(modes[i%len(modes)]))
		worker(func(r *rand.Rand) error {
			row := 1 + r.IntN(rows)
			t0 := time.Now()
			var v int64
			if err := conn.QueryRow(ctx, "SELECT v FROM ctr WHERE k = $1", row).Scan(&v); err != nil {
				return err
			}
			reads.Add(1)
			a, older := log.firstNewer(row, v, t0)
			switch {
			case !older:
			case a.proxy:
				violations.Add(1)
				return fmt.Errorf("row %d: read %d, but %d was written through the proxy and acknowledged %v before the read began", row, v, a.value, t0.Sub(a.at))
			default:
				staleDirect.Add(1)
				d := t0.Sub(a.at)
				if int64(d) > worstDirect.Load() {
					worstDirect.Store(int64(d))
				}
				if d > maxStaleness {
					return fmt.Errorf("row %d: read %d, %v older than the direct write of %d (bound %v)", row, v, d, a.value, maxStaleness)
				}
			}
			return nil
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st := showStats(t, pgxConnect(t, p.URL("", "", db)))
	t.Logf("%d operations: %d reads (%s hits, %s misses), %d writes; %d violations; %d reads older than a direct write (worst %v, bound %v); invalidation delay p50 %s ms, p99 %s ms, max %s ms",
		ops.Load()-int64(12), reads.Load(), st["hits"], st["misses"], writes.Load(), violations.Load(), staleDirect.Load(),
		time.Duration(worstDirect.Load()), maxStaleness, st["replication_delay_p50_ms"], st["replication_delay_p99_ms"], st["replication_delay_max_ms"])
	if st["hits"] == "0" {
		t.Error("no hits: the checker did not exercise the cache")
	}
}
