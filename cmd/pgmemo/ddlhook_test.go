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
	if _, err := pgtest.FindBinDir(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"install-ddl-hook", "--upstream", c.URL("", "", ""), "--database", "postgres,app"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "database app") {
		t.Errorf("output %q", out.String())
	}
	// Installing again is harmless, and the trigger is there.
	if err := run(ctx, []string{"install-ddl-hook", "--upstream", c.URL("", "", "app")}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res := conn.ExecParams(ctx, "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgmemo_ddl_%'", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "2" {
		t.Fatalf("event triggers: %v %v", res.Rows, res.Err)
	}
}
