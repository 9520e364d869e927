package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// connPool is a pgxpool.Pool (the module keeps pgxpool's requirements in
// go.mod through proxy/clients_pgxpool_test.go).
type connPool struct{ p *pgxpool.Pool }

func newPool(ctx context.Context, url string, n int) *connPool {
	cfg, err := pgxpool.ParseConfig(url)
	must(err, "pgxpool config")
	cfg.MaxConns = int32(n)
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	must(err, "pgxpool")
	return &connPool{p: p}
}

func (p *connPool) kind() string { return "pgxpool" }

// with runs f on a connection acquired from the pool.
func (p *connPool) with(ctx context.Context, f func(querier)) {
	must(p.p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { f(c); return nil }), "pgxpool acquire")
}

func (p *connPool) close() { p.p.Close() }
