package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Required reports whether a missing PostgreSQL must fail the tests (CI=true).
func Required() bool { return os.Getenv("CI") == "true" }

// Main starts one cluster for a test binary, stores it in *dst, runs the tests
// and removes the cluster. If no cluster can be started the tests run with
// *dst == nil (Need then skips them), except under CI=true, where Main fails.
// Use it from TestMain: os.Exit(pgtest.Main(m, &cluster, pgtest.Options{})).
func Main(m *testing.M, dst **Cluster, opts Options) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		if Required() {
			fmt.Fprintf(os.Stderr, "FAIL: CI=true and PostgreSQL could not be started: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL unavailable, integration tests will skip: %v\n", err)
	}
	*dst = c
	code := m.Run()
	c.Stop()
	return code
}

// Need returns c, or ends the test when there is no cluster: a skip normally, a
// failure under CI=true.
func Need(t testing.TB, c *Cluster) *Cluster {
	t.Helper()
	if c == nil {
		if Required() {
			t.Fatal("PostgreSQL is required under CI=true but no cluster is running")
		}
		t.Skip("no PostgreSQL server binaries on this machine")
	}
	return c
}

// Eventually retries f until it returns nil or timeout passes, then fails the
// test with f's last error. Use it for asynchronous effects; never a bare sleep.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}
