package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

const demoSchema = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, amount numeric(10,2) NOT NULL, placed_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g, (ARRAY['NL','FR','DE','US','JP'])[1 + g % 5] FROM generate_series(1, 1000) g;
INSERT INTO orders SELECT g, 1 + g % 1000, (g % 500) + 0.99, timestamptz '2026-01-01' + g * interval '7 minutes' FROM generate_series(1, 50000) g;
CREATE INDEX ON orders (customer_id);
ANALYZE;
`

// runDemo starts a throwaway PostgreSQL with sample data (unless --upstream names
// a server), runs the proxy in front of it, prints how to connect, and removes
// everything on Ctrl-C. With --workload it measures the built-in workload
// instead, directly and through the proxy, prints the comparison and exits.
func runDemo(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) error {
	if cfg.workload.enabled && cfg.upstream != "" {
		return errors.New("--workload runs against the demo's throwaway PostgreSQL only (it updates the sample tables); drop --upstream")
	}
	if cfg.upstream == "" {
		fmt.Fprintln(stdout, "Starting a throwaway PostgreSQL (initdb + pg_ctl in a temp dir)...")
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		// Commits flushed at once, as in production: with the test clusters'
		// synchronous_commit=off the replication stream, which carries only
		// flushed WAL, would trail by up to wal_writer_delay.
		cluster, err := pgtest.Start(sctx, pgtest.Options{Settings: []string{"synchronous_commit = on"}})
		cancel()
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer func() {
			cluster.Stop()
			fmt.Fprintln(stdout, "Removed the throwaway PostgreSQL.")
		}()
		if err := cluster.CreateDatabase(ctx, "demo"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := cluster.Exec(ctx, "demo", demoSchema); err != nil {
			return fmt.Errorf("demo: loading sample data: %w", err)
		}
		cfg.upstream = cluster.URL("", "", "demo")
		fmt.Fprintf(stdout, "PostgreSQL %s is running on 127.0.0.1:%d (data in %s).\n", cluster.Version, cluster.Port, cluster.Dir)
		if cfg.workload.enabled {
			return runDemoWorkload(ctx, cfg, log, stdout, cfg.upstream)
		}
	}
	return serve(ctx, cfg, log, func(addr string) {
		fmt.Fprintf(stdout, "\npgmemo is listening on %s. Connect through it with:\n\n", addr)
		fmt.Fprintf(stdout, "    psql \"%s\"\n\n", proxyAddrURL(addr))
		fmt.Fprintln(stdout, "Try: SELECT country, count(*), sum(amount) FROM orders JOIN customers c ON c.id = customer_id GROUP BY 1;")
		fmt.Fprintln(stdout, "Run it twice, then SHOW pgmemo.last; tells how it was served, SHOW pgmemo.stats; what the cache holds.")
		fmt.Fprintln(stdout, strings.Repeat("-", 72))
		fmt.Fprintln(stdout, "Press Ctrl-C to stop; the throwaway database is removed.")
	})
}
