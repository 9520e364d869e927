package main

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// `pgmemo demo --workload` measures the demo's sample database twice with the
// same built-in read-heavy workload: straight against the throwaway PostgreSQL,
// then through pgmemo, and prints throughput, latency and pgmemo's hit ratio
// side by side. While the pgmemo run goes on, a sample of its answers is
// checked against PostgreSQL's own.

// workloadOptions are the demo's workload flags.
type workloadOptions struct {
	enabled  bool
	duration time.Duration
	clients  int
}

// register adds the workload flags; only the demo command has them.
func (w *workloadOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&w.enabled, "workload", false, "demo only: run a read-heavy workload, first straight against the throwaway PostgreSQL, then through pgmemo, print the comparison and exit")
	fs.DurationVar(&w.duration, "workload-duration", 10*time.Second, "demo only: how long each of the two workload runs lasts")
	fs.IntVar(&w.clients, "workload-clients", 8, "demo only: concurrent workload clients, one connection each")
}

// maxWorkloadClients keeps the two runs within the throwaway server's
// max_connections (200): each client of the pgmemo run also takes a server
// connection, and the direct run's are closed by then.
const maxWorkloadClients = 150

func (w *workloadOptions) validate() error {
	if w.duration <= 0 {
		return errors.New("--workload-duration must be positive")
	}
	if w.clients < 1 || w.clients > maxWorkloadClients {
		return fmt.Errorf("--workload-clients must be between 1 and %d", maxWorkloadClients)
	}
	return nil
}

// The operations of the workload, each a statement of the demo schema.
const (
	opCustomer       = iota // a customer by id
	opOrder                 // an order by id
	opCustomerOrders        // a customer's orders (50 rows)
	opCustomerTotal         // a customer's order count and total
	opCountryRevenue        // orders and revenue per country: a join over every order
	opUpdateAmount          // UPDATE of an order's amount
	numOps
)

var workloadOpNames = [numOps]string{
	opCustomer:       "customer by id",
	opOrder:          "order by id",
	opCustomerOrders: "customer's orders",
	opCustomerTotal:  "customer's total",
	opCountryRevenue: "revenue per country",
	opUpdateAmount:   "UPDATE order amount",
}

var workloadSQL = [numOps]string{
	opCustomer:       "SELECT id, name, country FROM customers WHERE id = $1",
	opOrder:          "SELECT id, customer_id, amount, placed_at FROM orders WHERE id = $1",
	opCustomerOrders: "SELECT id, amount, placed_at FROM orders WHERE customer_id = $1 ORDER BY id",
	opCustomerTotal:  "SELECT count(*), sum(amount) FROM orders WHERE customer_id = $1",
	opCountryRevenue: "SELECT c.country, count(*), sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country ORDER BY c.country",
	opUpdateAmount:   "UPDATE orders SET amount = $2 WHERE id = $1",
}

// workloadMix is each operation's share, in thousandths: 90% point reads, 8%
// aggregates, 2% writes.
var workloadMix = [numOps]int{
	opCustomer:       350,
	opOrder:          300,
	opCustomerOrders: 250,
	opCustomerTotal:  50,
	opCountryRevenue: 30,
	opUpdateAmount:   20,
}

const (
	hotCustomers = 100 // of the demo's 1000; 90% of the keys are among them
	checkEvery   = 50  // every 50th operation of a client in the pgmemo run, if a read, is checked
)

const workloadDescription = `Each operation, at random: 35% a customer by id, 30% an order by id, 25% a
customer's orders (90% of the keys among 100 hot customers and their orders),
5% a customer's order total, 3% orders and revenue per country (a join over all
50,000 orders), 2% an UPDATE of an order's amount. pgx, extended protocol,
prepared statements; every client has its own connection.`

type workloadOp struct {
	kind int
	args []any
}

// nextOp draws an operation.
func nextOp(rng *rand.Rand) workloadOp {
	n := rng.IntN(1000)
	kind := 0
	for ; kind < numOps-1 && n >= workloadMix[kind]; kind++ {
		n -= workloadMix[kind]
	}
	customer := func() int {
		if rng.IntN(10) < 9 {
			return 1 + rng.IntN(hotCustomers)
		}
		return 1 + rng.IntN(1000)
	}
	// The demo's order g belongs to customer 1 + g%1000: customer c's orders
	// are c-1 + 1000k, k = 1..49 (and 0 when c > 1).
	order := func() int { return customer() - 1 + 1000*(1+rng.IntN(49)) }
	switch kind {
	case opCustomer, opCustomerOrders, opCustomerTotal:
		return workloadOp{kind, []any{customer()}}
	case opOrder:
		return workloadOp{kind, []any{order()}}
	case opUpdateAmount:
		cents := int64(100 + rng.IntN(50000))
		return workloadOp{kind, []any{order(), pgtype.Numeric{Int: big.NewInt(cents), Exp: -2, Valid: true}}}
	}
	return workloadOp{kind: kind}
}

// runResult is what one run measured.
type runResult struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration // sorted
	byOp    [numOps][]time.Duration
	errs    int
	errMsgs []string // the first few

	// The pgmemo run only.
	caching     bool             // pgmemo answers SHOW pgmemo.stats: caching is on
	stats       map[string]int64 // deltas of SHOW pgmemo.stats counters
	opHits      [numOps]float64  // hit ratio by operation, from SHOW pgmemo.queries; -1 unknown
	checked     int
	checkedHits int
	mismatches  []string // the first few
	mismatchN   int
}

func (r *runResult) qps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

func (r *runResult) percentile(p float64) time.Duration { return percentile(r.lat, p) }

// percentile returns the p-quantile (0 < p <= 1) of sorted, 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// hitRatio is hits/(hits+misses) of pgmemo's counters during the run.
func (r *runResult) hitRatio() float64 {
	h, m := r.stats["hits"], r.stats["misses"]
	if h+m == 0 {
		return 0
	}
	return float64(h) / float64(h+m)
}

// runDemoWorkload runs the proxy in front of the demo database at directURL,
// runs the workload against both and prints the report. It returns when the
// workload is done (or ctx ends), with the proxy shut down.
func runDemoWorkload(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer, directURL string) error {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(sctx, cfg, log, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		return err
	}
	proxyURL := proxyAddrURL(addr)
	fmt.Fprintf(stdout, "\npgmemo is listening on %s (invalidation=%s).\n", addr, cfg.invalidation)
	err := runWorkload(sctx, directURL, proxyURL, cfg.workload, stdout)
	stop()
	if serr := <-done; serr != nil {
		err = errors.Join(err, serr)
	}
	if ctx.Err() != nil { // Ctrl-C: stop quietly, as the plain demo does
		fmt.Fprintln(stdout, "Interrupted.")
		return nil
	}
	return err
}

// runWorkload runs the workload against directURL, then against proxyURL (a
// pgmemo in front of the same database), and writes the report to out. An
// answer of pgmemo that differs from PostgreSQL's, or a failed statement, is
// an error.
func runWorkload(ctx context.Context, directURL, proxyURL string, opts workloadOptions, out io.Writer) error {
	fmt.Fprintf(out, "\nWorkload: %d clients, %v straight against PostgreSQL, then %v through pgmemo.\n%s\n\n",
		opts.clients, opts.duration, opts.duration, workloadDescription)

	fmt.Fprintf(out, "Running against PostgreSQL directly (%s)...\n", maskPassword(directURL))
	direct, err := runOnce(ctx, directURL, "", opts)
	if err != nil {
		return fmt.Errorf("workload against PostgreSQL: %w", err)
	}
	fmt.Fprintf(out, "Running through pgmemo (%s)...\n", proxyURL)
	proxied, err := runOnce(ctx, proxyURL, directURL, opts)
	if err != nil {
		return fmt.Errorf("workload through pgmemo: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	writeWorkloadReport(out, direct, proxied)

	var errs []error
	if direct.errs > 0 {
		errs = append(errs, fmt.Errorf("%d statements failed against PostgreSQL", direct.errs))
	}
	if proxied.errs > 0 {
		errs = append(errs, fmt.Errorf("%d statements failed through pgmemo", proxied.errs))
	}
	if proxied.mismatchN > 0 {
		errs = append(errs, fmt.Errorf("%d of %d checked answers of pgmemo differ from PostgreSQL's", proxied.mismatchN, proxied.checked))
	}
	return errors.Join(errs...)
}

// runOnce runs the workload against url for opts.duration. With refURL (the
// pgmemo run), a sample of the reads is checked against refURL's answers, and
// the run's SHOW pgmemo.stats deltas are recorded.
func runOnce(ctx context.Context, url, refURL string, opts workloadOptions) (*runResult, error) {
	conns := make([]*pgx.Conn, 0, opts.clients)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for range opts.clients {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	res := &runResult{}
	for k := range res.opHits {
		res.opHits[k] = -1
	}
	var chk *checker
	var statsConn *pgx.Conn
	var before map[string]string
	var queriesBefore map[string][2]int64
	if refURL != "" {
		ref, err := pgx.Connect(ctx, refURL)
		if err != nil {
			return nil, err
		}
		defer ref.Close(context.Background())
		if statsConn, err = pgx.Connect(ctx, url); err != nil {
			return nil, err
		}
		defer statsConn.Close(context.Background())
		if before, err = waitServing(ctx, statsConn); err != nil {
			return nil, err
		}
		res.caching = before != nil
		if res.caching {
			if queriesBefore, err = pgmemoQueries(ctx, statsConn); err != nil {
				return nil, fmt.Errorf("SHOW pgmemo.queries: %w", err)
			}
		}
		chk = &checker{ref: ref, caching: res.caching}
	}

	// Writers hold writeMu shared while their statement runs; a check holds it
	// exclusively, so that no write is in flight while it compares pgmemo's
	// answer with PostgreSQL's. Every write through pgmemo has invalidated what
	// it wrote before it returns, so the two must be equal: no timing involved.
	var writeMu sync.RWMutex
	type clientResult struct {
		lat     [numOps][]time.Duration
		errs    int
		errMsgs []string
	}
	results := make([]clientResult, len(conns))
	start := time.Now()
	deadline := start.Add(opts.duration)
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			r := &results[i]
			// The same seed in both runs: the same sequence of operations.
			rng := rand.New(rand.NewPCG(uint64(i+1), 0x9e3779b97f4a7c15))
			for n := 1; ctx.Err() == nil && time.Now().Before(deadline); n++ {
				op := nextOp(rng)
				var d time.Duration
				var err error
				switch {
				case op.kind == opUpdateAmount:
					writeMu.RLock()
					d, err = execOp(ctx, conn, op)
					writeMu.RUnlock()
				case chk != nil && n%checkEvery == 0:
					writeMu.Lock()
					d, err = chk.check(ctx, conn, op)
					writeMu.Unlock()
				default:
					d, err = execOp(ctx, conn, op)
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					r.errs++
					if len(r.errMsgs) < 3 {
						r.errMsgs = append(r.errMsgs, fmt.Sprintf("%s %v: %v", strings.Fields(workloadSQL[op.kind])[0], op.args, err))
					}
					if conn.IsClosed() {
						return
					}
					continue
				}
				r.lat[op.kind] = append(r.lat[op.kind], d)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for _, r := range results {
		for k, l := range r.lat {
			res.byOp[k] = append(res.byOp[k], l...)
			res.lat = append(res.lat, l...)
		}
		res.errs += r.errs
		for _, m := range r.errMsgs {
			if len(res.errMsgs) < 3 {
				res.errMsgs = append(res.errMsgs, m)
			}
		}
	}
	res.ops = len(res.lat)
	slices.Sort(res.lat)
	for _, l := range res.byOp {
		slices.Sort(l)
	}
	if chk != nil {
		res.checked, res.checkedHits, res.mismatches, res.mismatchN = chk.checked, chk.hits, chk.mismatches, chk.mismatchN
	}
	if res.caching {
		after, err := pgmemoStats(context.WithoutCancel(ctx), statsConn)
		if err != nil {
			return nil, fmt.Errorf("SHOW pgmemo.stats: %w", err)
		}
		res.stats = map[string]int64{}
		for k, v := range after {
			a, err1 := strconv.ParseInt(v, 10, 64)
			b, err2 := strconv.ParseInt(before[k], 10, 64)
			if err1 == nil && err2 == nil {
				res.stats[k] = a - b
			}
		}
		queriesAfter, err := pgmemoQueries(context.WithoutCancel(ctx), statsConn)
		if err != nil {
			return nil, fmt.Errorf("SHOW pgmemo.queries: %w", err)
		}
		for k, q := range workloadSQL {
			a, b := queriesAfter[q], queriesBefore[q]
			if h, m := a[0]-b[0], a[1]-b[1]; h+m > 0 {
				res.opHits[k] = float64(h) / float64(h+m)
			}
		}
	}
	return res, nil
}

// execOp runs op on conn, reads its rows and returns how long that took.
func execOp(ctx context.Context, conn *pgx.Conn, op workloadOp) (time.Duration, error) {
	t0 := time.Now()
	rows, err := conn.Query(ctx, workloadSQL[op.kind], op.args...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	rows.Close()
	return time.Since(t0), rows.Err()
}

// checker compares answers of pgmemo with those of PostgreSQL (ref). Its
// callers serialize it.
type checker struct {
	ref        *pgx.Conn
	caching    bool // ask pgmemo how it served each answer
	checked    int
	hits       int
	mismatchN  int
	mismatches []string
}

// check runs op on conn (through pgmemo), asks pgmemo how it served it, runs
// op on PostgreSQL and compares the two answers byte for byte. It returns how
// long the statement took through pgmemo.
func (c *checker) check(ctx context.Context, conn *pgx.Conn, op workloadOp) (time.Duration, error) {
	t0 := time.Now()
	got, err := fetchRows(ctx, conn, op)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	served, reason := "relayed", ""
	var fp, warnings string
	if c.caching {
		if err := conn.QueryRow(ctx, "SHOW pgmemo.last", pgx.QueryExecModeSimpleProtocol).Scan(&served, &reason, &fp, &warnings); err != nil {
			return 0, fmt.Errorf("SHOW pgmemo.last: %w", err)
		}
	}
	want, err := fetchRows(ctx, c.ref, op)
	if err != nil {
		return 0, fmt.Errorf("the same statement against PostgreSQL: %w", err)
	}
	c.checked++
	if served == "hit" {
		c.hits++
	}
	if !slices.EqualFunc(got, want, func(a, b []string) bool { return slices.Equal(a, b) }) {
		c.mismatchN++
		if len(c.mismatches) < 5 {
			c.mismatches = append(c.mismatches, fmt.Sprintf("%s %v (served: %s %s): pgmemo answered %v, PostgreSQL %v",
				workloadSQL[op.kind], op.args, served, reason, truncateRows(got), truncateRows(want)))
		}
	}
	return d, nil
}

// fetchRows runs op and returns its rows, each value as its decoded text (for
// messages), a NUL and its bytes as received: comparing two answers compares
// both.
func fetchRows(ctx context.Context, conn *pgx.Conn, op workloadOp) ([][]string, error) {
	rows, err := conn.Query(ctx, workloadSQL[op.kind], op.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		raw := rows.RawValues()
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(raw))
		for i, b := range raw {
			row[i] = render(vals[i]) + "\x00" + string(bytes.Clone(b))
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func render(v any) string {
	if vr, ok := v.(driver.Valuer); ok {
		if x, err := vr.Value(); err == nil {
			v = x
		}
	}
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// truncateRows renders rows (decoded values only) for a message.
func truncateRows(rows [][]string) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 3 {
			fmt.Fprintf(&b, " ... (%d rows)", len(rows))
			break
		}
		vals := make([]string, len(r))
		for j, v := range r {
			vals[j], _, _ = strings.Cut(v, "\x00")
		}
		fmt.Fprintf(&b, "(%s)", strings.Join(vals, ", "))
	}
	if len(rows) == 0 {
		return "no rows"
	}
	return b.String()
}

// waitServing waits until pgmemo serves hits for the database (with WAL
// invalidation, once its replication stream is current; at once otherwise),
// and returns its counters then; nil when caching is off (pgmemo then relays
// SHOW pgmemo.stats to the server, which does not know it).
func waitServing(ctx context.Context, conn *pgx.Conn) (map[string]string, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := pgmemoStats(ctx, conn)
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42704" {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("SHOW pgmemo.stats: %w", err)
		}
		if v, ok := st["replication_serving"]; !ok || v == "true" || time.Now().After(deadline) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pgmemoStats returns SHOW pgmemo.stats as name -> value.
func pgmemoStats(ctx context.Context, conn *pgx.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SHOW pgmemo.stats", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		st[name] = value
		return nil
	})
	return st, err
}

// pgmemoQueries returns the hits and misses of each statement pgmemo has
// seen, by its normalized text (as SHOW pgmemo.queries reports them, for
// admins).
func pgmemoQueries(ctx context.Context, conn *pgx.Conn) (map[string][2]int64, error) {
	rows, err := conn.Query(ctx, "SHOW pgmemo.queries", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][2]int64{}
	for rows.Next() {
		vals := rows.RawValues()
		idx := map[string]int{}
		for i, fd := range rows.FieldDescriptions() {
			idx[fd.Name] = i
		}
		q, ok1 := idx["query"]
		h, ok2 := idx["hits"]
		m, ok3 := idx["misses"]
		if !ok1 || !ok2 || !ok3 {
			return nil, errors.New("unexpected columns")
		}
		hits, _ := strconv.ParseInt(string(vals[h]), 10, 64)
		misses, _ := strconv.ParseInt(string(vals[m]), 10, 64)
		c := out[string(vals[q])]
		out[string(vals[q])] = [2]int64{c[0] + hits, c[1] + misses}
	}
	return out, rows.Err()
}

// writeWorkloadReport prints the two runs side by side, pgmemo's counters and
// the checks' outcome.
func writeWorkloadReport(w io.Writer, direct, proxied *runResult) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-20s %12s %12s %12s %10s\n", "", "queries/s", "p50", "p99", "hit ratio")
	fmt.Fprintf(w, "%-20s %12.1f %12s %12s %10s\n", "direct PostgreSQL", direct.qps(), ms(direct.percentile(0.50)), ms(direct.percentile(0.99)), "-")
	hr := "caching off"
	if proxied.caching {
		hr = strconv.FormatFloat(100*proxied.hitRatio(), 'f', 1, 64) + "%"
	}
	fmt.Fprintf(w, "%-20s %12.1f %12s %12s %10s\n", "through pgmemo", proxied.qps(), ms(proxied.percentile(0.50)), ms(proxied.percentile(0.99)), hr)
	fmt.Fprintln(w)
	if direct.qps() > 0 {
		fmt.Fprintf(w, "pgmemo: %.2fx the throughput, p50 %.2fx, p99 %.2fx of direct.\n", proxied.qps()/direct.qps(),
			ratio(proxied.percentile(0.50), direct.percentile(0.50)), ratio(proxied.percentile(0.99), direct.percentile(0.99)))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-20s %6s %12s %12s %12s %12s %10s\n", "by operation", "share", "direct p50", "pgmemo p50", "direct p99", "pgmemo p99", "hit ratio")
	for k := range numOps {
		hr := "-"
		if proxied.opHits[k] >= 0 && k != opUpdateAmount {
			hr = strconv.FormatFloat(100*proxied.opHits[k], 'f', 1, 64) + "%"
		}
		fmt.Fprintf(w, "%-20s %5.1f%% %12s %12s %12s %12s %10s\n", workloadOpNames[k], float64(workloadMix[k])/10,
			ms(percentile(direct.byOp[k], 0.5)), ms(percentile(proxied.byOp[k], 0.5)),
			ms(percentile(direct.byOp[k], 0.99)), ms(percentile(proxied.byOp[k], 0.99)), hr)
	}
	fmt.Fprintln(w)
	s := proxied.stats
	fmt.Fprintf(w, "Statements: %d direct in %v, %d through pgmemo in %v.\n", direct.ops, direct.elapsed.Round(time.Millisecond), proxied.ops, proxied.elapsed.Round(time.Millisecond))
	if proxied.caching {
		if writes := len(proxied.byOp[opUpdateAmount]); writes > 0 {
			fmt.Fprintf(w, "%.0f UPDATEs/s through pgmemo, each invalidating every cached result that read orders (invalidation is per table).\n",
				float64(writes)/proxied.elapsed.Seconds())
		}
		fmt.Fprintf(w, "SHOW pgmemo.stats during its run: %d hits, %d misses (%d after an invalidation), %d not cacheable, %d bypassed,\n"+
			"%d fills (%d discarded: a write raced with them), %d invalidations.\n",
			s["hits"], s["misses"], s["misses_invalidated"], s["not_cacheable"], s["bypassed"], s["fills"], s["fills_discarded"], s["invalidations"])
	}
	switch {
	case proxied.checked == 0:
		fmt.Fprintln(w, "Correctness: no answers were checked (the run was too short).")
	case proxied.mismatchN == 0:
		fmt.Fprintf(w, "Correctness: %d answers of pgmemo (%s), each compared with PostgreSQL's while no write was in flight: all equal.\n",
			proxied.checked, checkedHow(proxied))
	default:
		fmt.Fprintf(w, "Correctness: %d of %d checked answers of pgmemo (%s) DIFFER from PostgreSQL's:\n",
			proxied.mismatchN, proxied.checked, checkedHow(proxied))
		for _, m := range proxied.mismatches {
			fmt.Fprintln(w, "  ", m)
		}
	}
	for _, r := range []struct {
		name string
		res  *runResult
	}{{"PostgreSQL", direct}, {"pgmemo", proxied}} {
		if r.res.errs > 0 {
			fmt.Fprintf(w, "Errors against %s: %d, e.g.:\n", r.name, r.res.errs)
			for _, m := range r.res.errMsgs {
				fmt.Fprintln(w, "  ", m)
			}
		}
	}
}

func checkedHow(r *runResult) string {
	if !r.caching {
		return "caching off: all relayed"
	}
	return fmt.Sprintf("%d of them cache hits", r.checkedHits)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// proxyAddrURL is the demo database's URL through the proxy at addr.
func proxyAddrURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "postgres://postgres@" + net.JoinHostPort(host, port) + "/demo?sslmode=disable"
}
