package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// TestUnixSocket: with --unix-socket-dir, clients also connect on
// DIR/.s.PGSQL.PORT (pgx and psql, as they find PostgreSQL's own socket) and
// get hits there; a socket file left behind is replaced, one in use is an
// error, and the file is removed at shutdown.
func TestUnixSocket(t *testing.T) {
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Exec(ctx, "", "DROP TABLE IF EXISTS unix_kv; CREATE TABLE unix_kv(k int PRIMARY KEY, v text); INSERT INTO unix_kv VALUES (1, 'over the socket')"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := closedPort(t)[len("127.0.0.1:"):]
	path := filepath.Join(dir, ".s.PGSQL."+port)
	// A socket file nobody listens on, as a killed process leaves it.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	p := startTestProxy(t, 0, "--upstream", c.URL("", "", ""), "--invalidation", "statement",
		"--listen", "127.0.0.1:"+port, "--unix-socket-dir", dir, "--http-listen", "")
	if p.addr != "127.0.0.1:"+port {
		t.Fatalf("listening on %s", p.addr)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("socket file: %v %v", fi, err)
	}
	if _, err := listenUnix(dir, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mustAtoi(t, port)}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second listener on the socket: %v, want in use", err)
	}

	conn, err := pgx.Connect(ctx, "postgres://"+pgtest.SuperUser+"@/postgres?host="+dir+"&port="+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i, want := range []string{"miss-filled", "hit"} {
		var v, result, reason, fp, warnings string
		if err := conn.QueryRow(ctx, "SELECT v FROM unix_kv WHERE k = $1", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SHOW pgmemo.last", pgx.QueryExecModeSimpleProtocol).Scan(&result, &reason, &fp, &warnings); err != nil {
			t.Fatal(err)
		}
		if v != "over the socket" || result != want {
			t.Errorf("read %d: %q, %s (%s); want %q, %s", i, v, result, reason, "over the socket", want)
		}
	}
	if psql, err := exec.LookPath("psql"); err == nil {
		out, err := exec.CommandContext(ctx, psql, "-X", "-A", "-t", "-h", dir, "-p", port, "-U", pgtest.SuperUser, "-d", "postgres",
			"-c", "SELECT v FROM unix_kv WHERE k = 1", "-c", "SELECT v FROM unix_kv WHERE k = 1", "-c", "SHOW pgmemo.last").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "over the socket\nover the socket\nhit|") {
			t.Errorf("psql -h %s: %v\n%s", dir, err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("psql not found")
	}
	conn.Close(context.Background())

	p.stop()
	if err := <-p.done; err != nil {
		t.Fatal(err)
	}
	p.done <- nil // for the cleanup
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after shutdown the socket file is still there: %v", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
