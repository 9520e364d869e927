package proxy_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pgbenchTimeout bounds one pgbench run; the runs are transaction-count based.
const pgbenchTimeout = 2 * time.Minute

// pgbench runs pgbench against db through the proxy p.
func pgbench(t testing.TB, p *testProxy, db string, args ...string) toolResult {
	t.Helper()
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres"}
	return runTool(t, pgbenchTimeout, "", "pgbench", append(append(conn, args...), db)...)
}

// TestPgbench initialises pgbench's tables through the proxy, runs select-only
// benchmarks in each query mode and a TPC-B-like one, and checks pgbench's own
// report and, directly, the consistency of the data.
func TestPgbench(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)

	res := pgbench(t, p, db, "-i", "-s", "1")
	if res.Exit != 0 || !strings.Contains(res.Stderr, "done in") {
		t.Fatalf("pgbench -i: exit %d\nstdout:\n%s\nstderr:\n%s", res.Exit, res.Stdout, res.Stderr)
	}
	if got := directRows(t, db, "SELECT (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_tellers), (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_history)"); got != "1|10|100000|0\n" {
		t.Fatalf("after pgbench -i -s 1, row counts branches|tellers|accounts|history = %q, want 1|10|100000|0", got)
	}

	const clients, perClient = 4, 200
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run("select-only "+mode, func(t *testing.T) {
			res := pgbench(t, p, db, "-n", "-S", "-M", mode, "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(clients), "-j", "2")
			checkPgbenchReport(t, res, mode, clients*perClient)
		})
	}

	// -C: a new connection for every transaction (connection churn).
	t.Run("select-only connect per transaction", func(t *testing.T) {
		res := pgbench(t, p, db, "-n", "-S", "-C", "-t", "25", "-c", "2")
		checkPgbenchReport(t, res, "simple", 50)
	})

	t.Run("tpcb-like", func(t *testing.T) {
		const clients, perClient = 2, 50
		res := pgbench(t, p, db, "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(clients))
		checkPgbenchReport(t, res, "simple", clients*perClient)
		// Every transaction adds the same delta to one branch, one teller, one
		// account and logs it in history: the sums must agree.
		got := directRows(t, db, `SELECT (SELECT count(*) FROM pgbench_history),
			(SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history),
			(SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history),
			(SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)`)
		if want := fmt.Sprintf("%d|t|t|t\n", clients*perClient); got != want {
			t.Errorf("history count | branches, tellers, accounts consistent with history = %q, want %q", got, want)
		}
	})

	// -i, 3 runs of 4 clients, 50 connections of -C, 1 run of 2.
	if st := p.Srv.Stats(); st.ClientConnectionsTotal < 1+3*clients+50+2 || st.ProtocolErrors != 0 || st.UpstreamFailures != 0 {
		t.Errorf("proxy stats after pgbench: %+v", st)
	}
}

var processedRE = regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`)

// checkPgbenchReport asserts that pgbench exited 0 in the given query mode, with
// no failed transaction and all of want transactions processed.
func checkPgbenchReport(t *testing.T, res toolResult, mode string, want int) {
	t.Helper()
	out := res.Stdout
	if res.Exit != 0 {
		t.Fatalf("pgbench exit %d\nstdout:\n%s\nstderr:\n%s", res.Exit, out, res.Stderr)
	}
	if !strings.Contains(out, "query mode: "+mode+"\n") {
		t.Errorf("report lacks %q:\n%s", "query mode: "+mode, out)
	}
	if !strings.Contains(out, "number of failed transactions: 0 ") {
		t.Errorf("report lacks %q:\n%s", "number of failed transactions: 0", out)
	}
	m := processedRE.FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(want) || m[2] != strconv.Itoa(want) {
		t.Errorf("processed transactions %v, want %d/%d:\n%s", m, want, want, out)
	}
	if strings.Contains(res.Stderr, "error") || strings.Contains(res.Stderr, "aborted") {
		t.Errorf("pgbench reported problems on stderr:\n%s", res.Stderr)
	}
}
