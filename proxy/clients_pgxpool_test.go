package proxy_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestPgxPoolThroughCache: a pgxpool of 8 connections shared by 16
// goroutines reads through a caching proxy: every value is right, and
// repeated reads are hits whichever pooled connection runs them.
func TestPgxPoolThroughCache(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	ctx := testCtx(t)
	cfg, err := pgxpool.ParseConfig(p.URL("", "", db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 10) g"); err != nil {
		t.Fatal(err)
	}
	before, _ := p.Srv.CacheStats()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				k := (g+i)%10 + 1
				var v string
				if err := pool.QueryRow(ctx, "SELECT v FROM kv WHERE k = $1", k).Scan(&v); err != nil {
					errs <- err
					return
				}
				if v != fmt.Sprint("v", k) {
					errs <- fmt.Errorf("k=%d: %q", k, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after, _ := p.Srv.CacheStats()
	if hits := after.Hits - before.Hits; hits < 700 {
		t.Errorf("%d hits of 800 reads of 10 keys, want at least 700", hits)
	}
}
