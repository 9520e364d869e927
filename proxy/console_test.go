package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

func TestAdminConsole(t *testing.T) {
	p := startProxy(t, withCache())
	db := newDB(t)
	app := pgxConnect(t, p.URL("", "", db), func(c *pgx.ConnConfig) { c.RuntimeParams["application_name"] = "the app" })
	mustExec(t, app, "SELECT 1")

	simple := withMode(pgx.QueryExecModeSimpleProtocol)
	console := pgxConnect(t, p.URL("", "", "pgmemo"), simple)
	for cmd, want := range map[string]string{
		"SHOW HELP":      "SHOW CLIENTS",
		"SHOW STATS":     db,
		"SHOW CLIENTS":   "the app",
		"SHOW SERVERS":   db,
		"SHOW DATABASES": db,
		"SHOW CONFIG":    "tx_policy",
		"show version;":  "pgmemo",
	} {
		rows, err := adminRows(t, console, cmd, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Errorf("%s: %v", cmd, err)
			continue
		}
		if !strings.Contains(strings.Join(flatten(rows), "|"), want) {
			t.Errorf("%s: %q not in %v", cmd, want, rows)
		}
	}
	// PgBouncer's column names.
	res := console.PgConn().Exec(context.Background(), "SHOW CLIENTS")
	results, err := res.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, f := range results[0].FieldDescriptions {
		cols = append(cols, f.Name)
	}
	if strings.Join(cols[:4], ",") != "type,user,database,state" {
		t.Errorf("SHOW CLIENTS columns %v", cols)
	}
	if _, err := adminRows(t, console, "SELECT 1", pgx.QueryExecModeSimpleProtocol); sqlState(err) != "0A000" {
		t.Errorf("SELECT on the console: %v, want 0A000", err)
	}
	// The extended protocol gets a clear error; the session stays usable.
	ext := pgxConnect(t, p.URL("", "", "pgmemo"), simple)
	if _, err := adminRows(t, ext, "SHOW STATS", pgx.QueryExecModeDescribeExec); sqlState(err) != "0A000" {
		t.Errorf("extended protocol on the console: %v, want 0A000", err)
	}
	if _, err := adminRows(t, ext, "SHOW STATS", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("after the extended attempt: %v", err)
	}

	// A plain role sees stats, not connections or configuration.
	plain := pgxConnect(t, p.URL(pgtest.TrustUser, "", "pgmemo"), simple)
	if _, err := adminRows(t, plain, "SHOW STATS", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Errorf("SHOW STATS as a plain role: %v", err)
	}
	for _, cmd := range []string{"SHOW CLIENTS", "SHOW SERVERS", "SHOW CONFIG"} {
		if _, err := adminRows(t, plain, cmd, pgx.QueryExecModeSimpleProtocol); sqlState(err) != "42501" {
			t.Errorf("%s as a plain role: %v, want 42501", cmd, err)
		}
	}
	// The server authenticates console users: a wrong password fails.
	cfg, err := pgx.ParseConfig(p.URL(pgtest.ScramUser, "wrong", "pgmemo"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.ConnectConfig(context.Background(), cfg); err == nil {
		c.Close(context.Background())
		t.Error("wrong password accepted by the console")
	} else if sqlState(err) != "28P01" {
		t.Errorf("wrong password: %v, want 28P01", err)
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
