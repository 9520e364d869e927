package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

func TestInstallDDLHook(t *testing.T) {
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, db := range []string{"ddlhook_a", "ddlhook_b"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"install-ddl-hook", "--upstream", c.URL("", "", ""), "--database", "ddlhook_a,ddlhook_b"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "database ddlhook_b") {
		t.Errorf("output %q", out.String())
	}
	// Installing again is harmless, and the trigger is there.
	if err := run(ctx, []string{"install-ddl-hook", "--upstream", c.URL("", "", "ddlhook_b")}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, "ddlhook_b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res := conn.ExecParams(ctx, "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgmemo_ddl_%'", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "2" {
		t.Fatalf("event triggers: %v %v", res.Rows, res.Err)
	}
}
