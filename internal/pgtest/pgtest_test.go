package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var cluster *Cluster

func TestMain(m *testing.M) { os.Exit(Main(m, &cluster, Options{})) }

func TestClusterIsLogicalAndHasRoles(t *testing.T) {
	c := Need(t, cluster)
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SHOW wal_level; SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'pgmemo_%'").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != "logical" {
		t.Errorf("wal_level = %q, want logical", got)
	}
	roles := string(res[1].Rows[0][0])
	for _, r := range []string{MD5User, ScramUser, TrustUser, PasswordUser, ReplUser} {
		if !strings.Contains(roles, r) {
			t.Errorf("role %s missing from %s", r, roles)
		}
	}
	if err := c.CreateDatabase(ctx, "pgtest_db"); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "pgtest_db", "CREATE TABLE t(x int)"); err != nil {
		t.Fatal(err)
	}
}

// TestReapOrphans: a cluster whose owner died (a test binary killed before its
// cleanup) is stopped and removed by the next Start's reaper; the clusters of
// live owners are not touched.
func TestReapOrphans(t *testing.T) {
	live := Need(t, cluster)
	ctx := context.Background()
	orphan, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer orphan.Stop()
	pidFile, err := os.ReadFile(filepath.Join(orphan.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	postmaster, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	// A pid no process has: a child that exited and was waited for.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan.Dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	reapOrphans(orphan.BinDir)

	if _, err := os.Stat(orphan.Dir); !os.IsNotExist(err) {
		t.Errorf("the orphan's directory %s is still there (%v)", orphan.Dir, err)
	}
	// pg_ctl stop -w returns once the pid file is gone; the process may take a
	// moment more to exit, and then stays a zombie where nothing reaps orphans.
	Eventually(t, 5*time.Second, func() error {
		if processExists(postmaster) {
			return fmt.Errorf("the orphan's postmaster (pid %d) still runs", postmaster)
		}
		return nil
	})
	if err := live.Exec(ctx, "postgres", "SELECT 1"); err != nil {
		t.Errorf("the live cluster of this test binary: %v", err)
	}
}

// TestProcessExists: a live process counts, an exited one does not, and
// neither does a zombie (exited, not yet waited for).
func TestProcessExists(t *testing.T) {
	if !processExists(os.Getpid()) {
		t.Error("this process does not count as running")
	}
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	pid := zombie.Process.Pid
	Eventually(t, 5*time.Second, func() error {
		if processExists(pid) {
			return fmt.Errorf("pid %d, exited and not waited for, counts as running", pid)
		}
		return nil
	})
	zombie.Wait()
	if processExists(pid) {
		t.Errorf("pid %d, waited for, counts as running", pid)
	}
}
