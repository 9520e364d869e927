package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func (p *testProxy) scrape(t *testing.T) scrape {
	t.Helper()
	code, body := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return mfs
}

// metric returns the series of name whose labels include labels
// ("k=v" pairs); nil when there is none.
func (s scrape) metric(name string, labels ...string) *dto.Metric {
	mf := s[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; NaN when
// the series is absent.
func (s scrape) value(name string, labels ...string) float64 {
	m := s.metric(name, labels...)
	switch {
	case m == nil:
		return math.NaN()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return math.NaN()
}

// series names the counters the workload test follows.
var series = []struct{ name, label string }{
	{"pgmemo_cache_hits_total", ""},
	{"pgmemo_cache_misses_total", "reason=cold"},
	{"pgmemo_cache_misses_total", "reason=invalidated"},
	{"pgmemo_cache_misses_total", "reason=not_cacheable"},
	{"pgmemo_cache_misses_total", "reason=bypass"},
	{"pgmemo_invalidations_total", "source=statement"},
	{"pgmemo_invalidations_total", "source=wal"},
	{"pgmemo_invalidations_total", "source=ttl"},
	{"pgmemo_invalidations_total", "source=admin"},
	{"pgmemo_query_duration_seconds", "result=hit"},
	{"pgmemo_query_duration_seconds", "result=miss"},
	{"pgmemo_query_duration_seconds", "result=passthrough"},
}

// delta returns how each followed series moved from a to b, keyed
// "name{label}", leaving out those that did not.
func delta(t *testing.T, a, b scrape) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range series {
		var labels []string
		if s.label != "" {
			labels = []string{s.label}
		}
		va, vb := a.value(s.name, labels...), b.value(s.name, labels...)
		if math.IsNaN(va) || math.IsNaN(vb) {
			t.Fatalf("%s{%s} missing from /metrics", s.name, s.label)
		}
		if d := vb - va; d != 0 {
			key := s.name
			if s.label != "" {
				key += "{" + s.label + "}"
			}
			out[key] = d
		}
	}
	return out
}

func checkDelta(t *testing.T, step string, got, want map[string]float64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: counters moved by\n  %v\nwant\n  %v", step, got, want)
	}
}

// TestMetricsFollowWorkload scrapes /metrics around a scripted workload
// through the proxy and checks that each step moves exactly the counters it
// should: a miss, a hit, a write that invalidates, a miss after the
// invalidation.
func TestMetricsFollowWorkload(t *testing.T) {
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Exec(ctx, "", "DROP TABLE IF EXISTS metrics_kv; CREATE TABLE metrics_kv(k int PRIMARY KEY, v text); INSERT INTO metrics_kv VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	p := startTestProxy(t, 0, "--upstream", c.URL("", "", ""), "--invalidation", "statement", "--cache-max-bytes", "64MiB")
	cc, err := pgx.ParseConfig(p.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	// The simple protocol: one statement, one cache lookup.
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	read := func() {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SELECT v FROM metrics_kv WHERE k = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}

	m0 := p.scrape(t)
	read()
	m1 := p.scrape(t)
	checkDelta(t, "the first read (a miss)", delta(t, m0, m1), map[string]float64{
		"pgmemo_cache_misses_total{reason=cold}":     1,
		"pgmemo_query_duration_seconds{result=miss}": 1,
	})
	read()
	m2 := p.scrape(t)
	checkDelta(t, "the second read (a hit)", delta(t, m1, m2), map[string]float64{
		"pgmemo_cache_hits_total":                   1,
		"pgmemo_query_duration_seconds{result=hit}": 1,
	})
	if _, err := conn.Exec(ctx, "UPDATE metrics_kv SET v = 'uno' WHERE k = 1"); err != nil {
		t.Fatal(err)
	}
	m3 := p.scrape(t)
	checkDelta(t, "a write through the proxy", delta(t, m2, m3), map[string]float64{
		"pgmemo_cache_misses_total{reason=not_cacheable}":   1,
		"pgmemo_invalidations_total{source=statement}":      1,
		"pgmemo_query_duration_seconds{result=passthrough}": 1,
	})
	read()
	m4 := p.scrape(t)
	checkDelta(t, "the read after the write (invalidated)", delta(t, m3, m4), map[string]float64{
		"pgmemo_cache_misses_total{reason=invalidated}": 1,
		"pgmemo_query_duration_seconds{result=miss}":    1,
	})
	read()
	checkDelta(t, "the read after that (a hit)", delta(t, m4, p.scrape(t)), map[string]float64{
		"pgmemo_cache_hits_total":                   1,
		"pgmemo_query_duration_seconds{result=hit}": 1,
	})

	// Gauges. The cache's size is updated asynchronously.
	pgtest.Eventually(t, 5*time.Second, func() error {
		m := p.scrape(t)
		if e, b := m.value("pgmemo_cache_entries"), m.value("pgmemo_cache_bytes"); e < 1 || b <= 0 {
			return fmt.Errorf("cache_entries %v, cache_bytes %v; want an entry", e, b)
		}
		return nil
	})
	m := p.scrape(t)
	for name, want := range map[string]float64{
		"pgmemo_cache_max_bytes":       64 << 20,
		"pgmemo_client_connections":    1,
		"pgmemo_upstream_connections":  1,
		"pgmemo_cache_evictions_total": 0,
	} {
		if got := m.value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if v := m.value("pgmemo_info", "invalidation=statement", "tx_policy=until-write"); v != 1 {
		t.Errorf("pgmemo_info{invalidation=statement,tx_policy=until-write} = %v, want 1", v)
	}
	// The histograms are whole: cumulative buckets ending in the count.
	h := m.metric("pgmemo_query_duration_seconds", "result=hit").GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() <= 0 {
		t.Errorf("hit histogram: count %d, sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	var prev uint64
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() < prev {
			t.Errorf("hit histogram buckets are not cumulative: %v", h.GetBucket())
		}
		prev = b.GetCumulativeCount()
	}
	if prev != h.GetSampleCount() {
		t.Errorf("the last finite bucket holds %d of %d hits (all are under 10 s)", prev, h.GetSampleCount())
	}
	// No replication series without WAL invalidation; the Go and process
	// collectors are there.
	for _, name := range []string{"pgmemo_replication_connected", "pgmemo_invalidation_delay_seconds"} {
		if m[name] != nil {
			t.Errorf("%s present with --invalidation=statement", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if m[name] == nil {
			t.Errorf("%s missing", name)
		}
	}

	// Code pgmemo cannot see, which changes nothing: the session is checked
	// once, passes, and gets hits again.
	if _, err := conn.Exec(ctx, "DO $$BEGIN PERFORM 1; END$$"); err != nil {
		t.Fatal(err)
	}
	read() // bypassed; the check goes in front of it
	read() // a miss: DO may have written anything
	m5 := p.scrape(t)
	read()
	m6 := p.scrape(t)
	if d := m5.value("pgmemo_cache_session_checks_total", "result=passed") - m.value("pgmemo_cache_session_checks_total", "result=passed"); d != 1 {
		t.Errorf("session_checks_total{result=passed} moved by %v after DO, want 1", d)
	}
	if v := m6.value("pgmemo_cache_session_checks_total", "result=failed"); v != 0 {
		t.Errorf("session_checks_total{result=failed} = %v, want 0", v)
	}
	checkDelta(t, "the read after the check (a hit)", delta(t, m5, m6), map[string]float64{
		"pgmemo_cache_hits_total":                   1,
		"pgmemo_query_duration_seconds{result=hit}": 1,
	})
}

// TestMetricsReplication: with WAL invalidation, each database has its
// stream's series, a write made directly on the server counts as a wal
// invalidation with its delay, and /readyz is ready once the stream is
// current.
func TestMetricsReplication(t *testing.T) {
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const db = "pgmemo_metrics_wal"
	if err := c.Exec(ctx, "", "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, db, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	p := startTestProxy(t, 0, "--upstream", c.URL("", "", ""), "--invalidation", "wal", "--publication", "pgmemo_metrics")
	conn, err := pgx.Connect(ctx, p.url(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kv WHERE k = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	dbl := "database=" + db
	pgtest.Eventually(t, 20*time.Second, func() error {
		m := p.scrape(t)
		if m.value("pgmemo_replication_serving", dbl) != 1 || m.value("pgmemo_replication_connected", dbl) != 1 {
			return fmt.Errorf("replication of %s: connected %v, serving %v", db,
				m.value("pgmemo_replication_connected", dbl), m.value("pgmemo_replication_serving", dbl))
		}
		return nil
	})
	m0 := p.scrape(t)
	if s := m0.value("pgmemo_replication_lag_seconds", dbl); math.IsNaN(s) || s < 0 {
		t.Errorf("replication_lag_seconds = %v while current", s)
	}
	if b := m0.value("pgmemo_replication_lag_bytes", dbl); math.IsNaN(b) {
		t.Error("replication_lag_bytes missing")
	}
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz with the stream current: %d %s", code, body)
	}
	// A write made elsewhere is seen through the stream.
	if err := c.Exec(ctx, db, "UPDATE kv SET v = 'uno' WHERE k = 1"); err != nil {
		t.Fatal(err)
	}
	pgtest.Eventually(t, 10*time.Second, func() error {
		m := p.scrape(t)
		d := m.value("pgmemo_invalidations_total", "source=wal") - m0.value("pgmemo_invalidations_total", "source=wal")
		n := m.value("pgmemo_invalidation_delay_seconds") - m0.value("pgmemo_invalidation_delay_seconds")
		if d < 1 || n < 1 {
			return fmt.Errorf("after a direct write: wal invalidations +%v, delays observed +%v", d, n)
		}
		return nil
	})
}
