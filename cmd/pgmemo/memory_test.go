package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// The memory test measures a real pgmemo process, built with `go build` from
// this package, rather than a proxy.Server inside the test binary: the peak RSS
// (VmHWM) of a separate process counts the proxy alone, not the client reading
// 100 MB, the test framework or other tests, and it is not inflated by the race
// detector when the tests run with -race. It lives here, next to main, because
// it tests the command as shipped.

// cluster is the PostgreSQL server of this test binary.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cluster, pgtest.Options{})) }

const (
	bigRows     = 100000
	bigRowBytes = 1000
	bigQuery    = "SELECT repeat('x', 1000) FROM generate_series(1, 100000)" // ~100 MB of DataRow
	maxGrowthKB = 40 << 10                                                   // 40 MB
)

// TestMemoryBoundedWhileStreaming streams a ~100 MB result through a pgmemo
// process to a raw protocol client that discards the rows, and checks that the
// proxy's peak RSS grew by less than 40 MB. Then a client that stops reading in
// the middle of the same result must stall the server (its backend waits in
// ClientWrite, because the proxy stops reading too) without the proxy's memory
// growing, and gets every row once it reads again.
func TestMemoryBoundedWhileStreaming(t *testing.T) {
	c := pgtest.Need(t, cluster)
	proc := startPgmemo(t, c.URL("", "", ""))

	// Warm up: one small query, so the baseline includes a live session.
	warm := dialRaw(t, proc.addr, "pgmemo-memtest-warmup")
	if rows, bytes := warm.query(t, "SELECT repeat('x', 1000) FROM generate_series(1, 100)"); rows != 100 || bytes != 100*bigRowBytes {
		t.Fatalf("warm-up query: %d rows, %d bytes", rows, bytes)
	}
	base := proc.status(t)
	t.Logf("baseline: VmHWM %d kB, VmRSS %d kB", base.hwm, base.rss)

	t.Run("fast reader", func(t *testing.T) {
		start := time.Now()
		rows, bytes := warm.query(t, bigQuery)
		if rows != bigRows || bytes != bigRows*bigRowBytes {
			t.Fatalf("streamed %d rows, %d bytes; want %d rows of %d bytes", rows, bytes, bigRows, bigRowBytes)
		}
		after := proc.status(t)
		t.Logf("streamed %d MB in %v; VmHWM %d kB -> %d kB", bytes>>20, time.Since(start).Round(time.Millisecond), base.hwm, after.hwm)
		if growth := after.hwm - base.hwm; growth >= maxGrowthKB {
			t.Errorf("pgmemo's peak RSS grew by %d kB while streaming %d MB; want < %d kB", growth, bytes>>20, maxGrowthKB)
		}
	})

	// Rows larger than the proxy's 8 MiB buffering limit are streamed through
	// in chunks, never held whole.
	t.Run("large messages", func(t *testing.T) {
		const size, n = 20 << 20, 5
		rows, bytes := warm.query(t, fmt.Sprintf("SELECT repeat('y', %d) FROM generate_series(1, %d)", size, n))
		if rows != n || bytes != n*size {
			t.Fatalf("streamed %d rows, %d bytes; want %d rows of %d bytes", rows, bytes, n, size)
		}
		after := proc.status(t)
		t.Logf("VmHWM %d kB -> %d kB", base.hwm, after.hwm)
		if growth := after.hwm - base.hwm; growth >= maxGrowthKB {
			t.Errorf("pgmemo's peak RSS grew by %d kB while streaming %d rows of %d MB; want < %d kB", growth, n, size>>20, maxGrowthKB)
		}
	})

	t.Run("stalled reader", func(t *testing.T) {
		const app = "pgmemo-memtest-stalled"
		client := dialRaw(t, proc.addr, app)
		client.send(t, &pgproto3.Query{String: bigQuery})
		// Read the start of the result, then stop reading.
		for rows := 0; rows < 10; {
			msg := client.receive(t)
			if _, ok := msg.(*pgproto3.DataRow); ok {
				rows++
			}
		}
		// With the client not reading, the proxy must stop reading from the
		// server (bounded buffers) so the backend blocks writing; a proxy that
		// buffered the result would let the query finish.
		ctx := context.Background()
		pgtest.Eventually(t, 30*time.Second, func() error {
			conn, err := cluster.Connect(ctx, "postgres")
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			res, err := conn.Exec(ctx, fmt.Sprintf("SELECT state, coalesce(wait_event, '') FROM pg_stat_activity WHERE application_name = '%s'", app)).ReadAll()
			if err != nil {
				return err
			}
			if len(res[0].Rows) != 1 {
				return fmt.Errorf("%d backends with application_name %s", len(res[0].Rows), app)
			}
			state, wait := string(res[0].Rows[0][0]), string(res[0].Rows[0][1])
			if state != "active" || wait != "ClientWrite" {
				return fmt.Errorf("backend %s, waiting for %q; want active, waiting for ClientWrite", state, wait)
			}
			return nil
		})
		stalled := proc.status(t)
		t.Logf("stalled: VmRSS %d kB, VmHWM %d kB", stalled.rss, stalled.hwm)
		if growth := stalled.rss - base.rss; growth >= maxGrowthKB {
			t.Errorf("pgmemo's RSS grew by %d kB while its client was not reading; want < %d kB", growth, maxGrowthKB)
		}
		rows, bytes := client.drain(t)
		if rows != bigRows-10 || bytes != rows*bigRowBytes {
			t.Errorf("after resuming: %d rows, %d bytes; want the other %d rows", rows, bytes, bigRows-10)
		}
		if after := proc.status(t); after.hwm-base.hwm >= maxGrowthKB {
			t.Errorf("pgmemo's peak RSS grew by %d kB; want < %d kB", after.hwm-base.hwm, maxGrowthKB)
		}
	})
}

// pgmemoProc is a running pgmemo binary.
type pgmemoProc struct {
	cmd    *exec.Cmd
	addr   string
	listen string // the "pgmemo listening" log line
}

// startPgmemo builds ./cmd/pgmemo into a temporary directory, starts it on a
// free loopback port in front of upstream, and stops it (SIGTERM) when the test
// ends.
func startPgmemo(t *testing.T, upstream string, args ...string) *pgmemoProc {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		goBin, err = exec.LookPath(filepath.Join(os.Getenv("GOROOT"), "bin", "go"))
	}
	if err != nil {
		if pgtest.Required() {
			t.Fatalf("building pgmemo needs the go command: %v", err)
		}
		t.Skipf("building pgmemo needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pgmemo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--upstream", upstream, "--log-level", "info"}, args...)...)
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logLines []string
	addrc := make(chan [2]string, 1)
	logDone := make(chan struct{})
	go func() { // read every line, so the process never blocks on its stderr
		defer close(logDone)
		addrRE := regexp.MustCompile(`msg="pgmemo listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- [2]string{m[1], sc.Text()}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	go func() {
		<-logDone
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("pgmemo exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("pgmemo did not stop within 30s of SIGTERM")
			<-exited
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("pgmemo log:\n%s", strings.Join(logLines, "\n"))
			logMu.Unlock()
		}
	})
	select {
	case l := <-addrc:
		return &pgmemoProc{cmd: cmd, addr: l[0], listen: l[1]}
	case err := <-exited:
		t.Fatalf("pgmemo exited before listening: %v\n%s", err, strings.Join(logLines, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("pgmemo did not report its listening address within 30s")
	}
	return nil
}

// memStatus is the resident set size and its peak, in kB.
type memStatus struct{ rss, hwm int }

func (p *pgmemoProc) status(t *testing.T) memStatus {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skipf("reading the process's memory needs Linux's /proc: %v", err)
	}
	var st memStatus
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			st.rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			st.hwm, _ = strconv.Atoi(f[1])
		}
	}
	if st.rss == 0 || st.hwm == 0 {
		t.Fatalf("no VmRSS/VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	}
	return st
}

// rawClient is a protocol-level client that keeps nothing of what it reads.
type rawClient struct {
	conn net.Conn
	fe   *pgproto3.Frontend
}

// dialRaw connects to addr as the superuser with the given application_name
// and waits for ReadyForQuery.
func dialRaw(t *testing.T, addr, app string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	c.send(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{
		"user": pgtest.SuperUser, "database": "postgres", "application_name": app,
	}})
	for {
		switch m := c.receive(t).(type) {
		case *pgproto3.ReadyForQuery:
			return c
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: %s", m.Message)
		}
	}
}

func (c *rawClient) send(t *testing.T, msg pgproto3.FrontendMessage) {
	t.Helper()
	c.fe.Send(msg)
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.fe.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (c *rawClient) receive(t *testing.T) pgproto3.BackendMessage {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	msg, err := c.fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// query runs sql and discards the rows, returning how many there were and their
// total value size.
func (c *rawClient) query(t *testing.T, sql string) (rows, bytes int) {
	t.Helper()
	c.send(t, &pgproto3.Query{String: sql})
	return c.drain(t)
}

// drain reads and discards until ReadyForQuery.
func (c *rawClient) drain(t *testing.T) (rows, bytes int) {
	t.Helper()
	var failure string
	for {
		switch m := c.receive(t).(type) {
		case *pgproto3.DataRow:
			rows++
			for _, v := range m.Values {
				bytes += len(v)
			}
		case *pgproto3.ErrorResponse:
			failure = m.Code + ": " + m.Message
		case *pgproto3.ReadyForQuery:
			if failure != "" {
				t.Fatal(failure)
			}
			return rows, bytes
		}
	}
}
