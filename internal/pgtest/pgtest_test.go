package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
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
