package main

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// TestDemoWorkload runs `pgmemo demo --workload` in-process for 1s per run:
// it must start its throwaway cluster, run the workload directly and through
// the proxy, print both rows of the report (through pgmemo with hits), find
// every checked answer equal, exit on its own and remove the cluster.
func TestDemoWorkload(t *testing.T) {
	if _, err := pgtest.FindBinDir(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	// No HTTP endpoint on a fixed port (ignored where there is no such flag).
	t.Setenv("PGMEMO_HTTP_LISTEN", "off")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var logs syncBuffer
	err := run(ctx, []string{"demo", "--workload", "--workload-duration", "1s", "--workload-clients", "4",
		"--listen", "127.0.0.1:0", "--log-level", "warn"}, &out, &logs)
	report := out.String()
	if err != nil {
		t.Fatalf("demo --workload: %v\nstdout:\n%s\nstderr:\n%s", err, report, logs.String())
	}
	t.Logf("report:\n%s", report)

	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return f
	}
	direct := regexp.MustCompile(`(?m)^direct PostgreSQL +([0-9.]+) +([0-9.]+) ms +([0-9.]+) ms +-$`).FindStringSubmatch(report)
	if direct == nil {
		t.Fatal("no row for direct PostgreSQL in the report")
	}
	proxied := regexp.MustCompile(`(?m)^through pgmemo +([0-9.]+) +([0-9.]+) ms +([0-9.]+) ms +([0-9.]+)%$`).FindStringSubmatch(report)
	if proxied == nil {
		t.Fatal("no row for pgmemo (with a hit ratio) in the report")
	}
	if num(direct[1]) <= 0 || num(proxied[1]) <= 0 {
		t.Errorf("throughput: direct %s, through pgmemo %s queries/s; want both > 0", direct[1], proxied[1])
	}
	if num(direct[2]) <= 0 || num(proxied[2]) <= 0 || num(direct[3]) < num(direct[2]) || num(proxied[3]) < num(proxied[2]) {
		t.Errorf("latencies: direct p50 %s p99 %s, through pgmemo p50 %s p99 %s", direct[2], direct[3], proxied[2], proxied[3])
	}
	if num(proxied[4]) <= 0 {
		t.Errorf("hit ratio through pgmemo %s%%, want > 0", proxied[4])
	}
	if !regexp.MustCompile(`Correctness: [1-9][0-9]* answers of pgmemo .*: all equal`).MatchString(report) {
		t.Error("the report does not say that the checked answers (at least one) were all equal")
	}
	m := regexp.MustCompile(`data in (\S+)\)`).FindStringSubmatch(report)
	if m == nil {
		t.Fatal("the demo did not print its data directory")
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("throwaway cluster directory %s still exists (stat: %v)", m[1], err)
	}
}

func TestWorkloadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--workload", "--upstream", "postgres://db:5432/x"}, "drop --upstream"},
		{[]string{"demo", "--workload", "--workload-clients", "0"}, "--workload-clients must be between"},
		{[]string{"demo", "--workload", "--workload-duration", "0s"}, "--workload-duration must be positive"},
		{[]string{"--workload"}, "flag provided but not defined: -workload"}, // demo only
	} {
		var out, errw bytes.Buffer
		err := run(context.Background(), tt.args, &out, &errw)
		if err == nil || !strings.Contains(err.Error()+errw.String(), tt.want) {
			t.Errorf("%v: err = %v, stderr %q; want it to mention %q", tt.args, err, errw.String(), tt.want)
		}
	}
}

// TestWorkloadMix: the drawn operations follow workloadMix, and their keys
// exist in the demo's data (customers 1..1000, orders 1..50000, order g of
// customer 1 + g%1000).
func TestWorkloadMix(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 100000
	var count [numOps]int
	hot := 0
	for range n {
		op := nextOp(rng)
		count[op.kind]++
		switch op.kind {
		case opCustomer, opCustomerOrders, opCustomerTotal:
			c := op.args[0].(int)
			if c < 1 || c > 1000 {
				t.Fatalf("%s: customer %d", workloadOpNames[op.kind], c)
			}
			if c <= hotCustomers {
				hot++
			}
		case opOrder, opUpdateAmount:
			if o := op.args[0].(int); o < 1 || o > 50000 {
				t.Fatalf("%s: order %d", workloadOpNames[op.kind], o)
			}
		}
	}
	for k, c := range count {
		if want := float64(workloadMix[k]) / 1000; math.Abs(float64(c)/n-want) > 0.01 {
			t.Errorf("%s: %.3f of the operations, want %.3f", workloadOpNames[k], float64(c)/n, want)
		}
	}
	if reads := count[opCustomer] + count[opCustomerOrders] + count[opCustomerTotal]; float64(hot)/float64(reads) < 0.88 {
		t.Errorf("%d of %d customer keys in the hot set, want about 91%%", hot, reads)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 = %d, want 50", p)
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 = %d, want 99", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of nothing = %d, want 0", p)
	}
}
