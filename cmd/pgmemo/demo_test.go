package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// TestDemoRunsProxyInFrontOfThrowawayPostgres runs `pgmemo demo` in-process,
// connects with the printed command's URL, reads the sample data, then stops it
// and checks that the throwaway cluster is gone.
func TestDemoRunsProxyInFrontOfThrowawayPostgres(t *testing.T) {
	if _, err := pgtest.FindBinDir(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
	}()

	urlRE := regexp.MustCompile(`psql "(postgres://[^"]+)"`)
	dirRE := regexp.MustCompile(`data in (\S+)\)`)
	var url, dir string
	lines := bufio.NewScanner(pr)
	for url == "" && lines.Scan() {
		if m := dirRE.FindStringSubmatch(lines.Text()); m != nil {
			dir = m[1]
		}
		if m := urlRE.FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" || dir == "" {
		t.Fatalf("demo did not print a data dir and a psql command (url=%q dir=%q); ended with %v", url, dir, <-done)
	}

	qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
	defer qcancel()
	conn, err := pgx.Connect(qctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var customers, orders int
	err = conn.QueryRow(qctx, "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)").Scan(&customers, &orders)
	conn.Close(qctx)
	if err != nil {
		t.Fatal(err)
	}
	if customers != 1000 || orders != 50000 {
		t.Fatalf("sample data: %d customers, %d orders; want 1000 and 50000", customers, orders)
	}

	cancel() // what Ctrl-C does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo ended with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not stop after its context was cancelled")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("throwaway cluster directory %s still exists (stat: %v)", dir, err)
	}
}
