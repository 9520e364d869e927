package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// Helpers shared by the client compatibility tests (clients_*_test.go).

// needTool returns the path of a PostgreSQL client binary (psql, pgbench): the
// cluster's bin directory first, then PATH. A missing tool skips the test, or
// fails it under CI=true.
func needTool(t testing.TB, name string) string {
	t.Helper()
	c := pgtest.Need(t, cluster)
	if p := filepath.Join(c.BinDir, name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if pgtest.Required() {
		t.Fatalf("%s is required under CI=true but was found neither in %s nor in PATH", name, c.BinDir)
	}
	t.Skipf("%s not found in %s or PATH", name, c.BinDir)
	return ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// toolResult is what a client binary printed and how it exited.
type toolResult struct {
	Stdout, Stderr string
	Exit           int
}

// runTool runs a PostgreSQL client binary (through cluster.Command) with a
// clean, English, PG*-free environment and stdin as its input, and returns its
// output and exit code. It fails the test only if the binary could not run or
// did not finish in time.
func runTool(t testing.TB, timeout time.Duration, stdin string, name string, args ...string) toolResult {
	t.Helper()
	needTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := cluster.Command(ctx, name, args...)
	cmd.Env = toolEnv()
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := toolResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", name, args, timeout, res.Stdout, res.Stderr)
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", name, err)
	}
	return res
}

// toolEnv is the environment for client binaries: the test's own minus every
// PG* variable (so nothing but the arguments chooses the server), in the C
// locale so that messages are in English.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") || strings.HasPrefix(kv, "PSQL") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=pgmemo-client-test")
}

// endpoint is a way for a client to reach the test cluster: through a proxy or
// straight to PostgreSQL.
type endpoint struct {
	Name string
	URL  func(user, password, db string) string
	Port int
}

// endpoints returns the proxy p and the direct route, in that order.
func endpoints(p *testProxy) []endpoint {
	return []endpoint{
		{Name: "proxy", URL: p.URL, Port: p.Port},
		{Name: "direct", URL: directURL, Port: cluster.Port},
	}
}
