package proxy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// psqlTimeout bounds one psql run.
const psqlTimeout = 30 * time.Second

// psql runs psql -X (no psqlrc) against url with the given extra arguments.
func psql(t testing.TB, url, stdin string, args ...string) toolResult {
	t.Helper()
	return runTool(t, psqlTimeout, stdin, "psql", append([]string{"-X", "-d", url}, args...)...)
}

// TestPsqlQueries runs queries with unaligned, tuples-only output through the
// proxy and directly: both must print exactly the expected text and exit 0.
func TestPsqlQueries(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	tests := []struct {
		name string
		args []string // after -X -d URL -A -t
		want string
	}{
		{"constant", []string{"-c", "SELECT 1"}, "1\n"},
		{"columns", []string{"-c", "SELECT 'a' AS x, 2 AS y, true AS z"}, "a|2|t\n"},
		{"field separator", []string{"-F", ",", "-c", "SELECT 1, 'two', 3.50"}, "1,two,3.50\n"},
		{"rows", []string{"-c", "SELECT g, g * g FROM generate_series(1, 5) g"}, "1|1\n2|4\n3|9\n4|16\n5|25\n"},
		{"null and empty", []string{"-c", "SELECT NULL::int, '', 'x'"}, "||x\n"},
		{"null display", []string{"-P", "null=(null)", "-c", "SELECT NULL::text"}, "(null)\n"},
		{"unicode", []string{"-c", "SELECT 'héllo wörld ☃', length('☃☃')"}, "héllo wörld ☃|2\n"},
		{"types", []string{"-c", "SELECT 12345678901234567890::numeric, '2024-02-29 12:00:00+00'::timestamptz AT TIME ZONE 'UTC', '\\xdeadbeef'::bytea, ARRAY[1,NULL,3], '{\"a\": 1}'::jsonb"},
			"12345678901234567890|2024-02-29 12:00:00|\\xdeadbeef|{1,NULL,3}|{\"a\": 1}\n"},
		{"no rows", []string{"-c", "SELECT 1 WHERE false"}, ""},
		// One -c with several statements is one simple Query message; psql
		// (15 and later) prints every result.
		{"multi-statement -c", []string{"-c", "CREATE TEMP TABLE m(a int); INSERT INTO m VALUES (1), (2), (39); SELECT sum(a) FROM m"}, "CREATE TABLE\nINSERT 0 3\n42\n"},
		// Several -c options run one after the other on the same connection.
		{"several -c", []string{"-c", "CREATE TEMP TABLE m(a int)", "-c", "INSERT INTO m VALUES (7)", "-c", "SELECT a * 6 FROM m", "-c", "SELECT count(*) FROM m"}, "CREATE TABLE\nINSERT 0 1\n42\n1\n"},
		{"session settings", []string{"-c", "SET application_name = 'psql-proxy-test'", "-c", "SHOW application_name"}, "SET\npsql-proxy-test\n"},
		{"transaction", []string{"-c", "BEGIN", "-c", "CREATE TEMP TABLE m(a int)", "-c", "INSERT INTO m VALUES (1)", "-c", "ROLLBACK", "-c", "SELECT count(*) FROM pg_class WHERE relname = 'm'"}, "BEGIN\nCREATE TABLE\nINSERT 0 1\nROLLBACK\n0\n"},
		{"meta-command", []string{"-c", "CREATE TEMP TABLE described(id int PRIMARY KEY, name text NOT NULL)", "-c", `\d described`}, "CREATE TABLE\nid|integer||not null|\nname|text||not null|\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var outs []string
			for _, ep := range endpoints(p) {
				args := append([]string{"-A", "-t"}, tc.args...)
				res := psql(t, ep.URL("", "", db), "", args...)
				if res.Exit != 0 || res.Stderr != "" {
					t.Fatalf("%s: psql exit %d, stderr:\n%s", ep.Name, res.Exit, res.Stderr)
				}
				if tc.want != "" && res.Stdout != tc.want {
					t.Errorf("%s: stdout = %q, want %q", ep.Name, res.Stdout, tc.want)
				}
				outs = append(outs, res.Stdout)
			}
			if outs[0] != outs[1] {
				t.Errorf("proxy and direct output differ:\nproxy:\n%s\ndirect:\n%s", outs[0], outs[1])
			}
		})
	}
}

// TestPsqlConnectionOptions connects psql (libpq) through the proxy with its
// SSL and GSS negotiation defaults and with password authentication: each
// connects, or fails, exactly as it does directly.
func TestPsqlConnectionOptions(t *testing.T) {
	p := startProxy(t)
	tests := []struct {
		name     string
		user     string
		password string
		params   string // replaces sslmode=disable
		wantOut  string
		wantErr  string
	}{
		{"sslmode prefer", "", "", "sslmode=prefer", "postgres\n", ""},
		{"gssencmode prefer", "", "", "sslmode=prefer&gssencmode=prefer", "postgres\n", ""},
		{"sslmode require", "", "", "sslmode=require", "", "server does not support SSL, but SSL was required"},
		{"scram password", pgtest.ScramUser, pgtest.RolePassword, "sslmode=disable", pgtest.ScramUser + "\n", ""},
		{"md5 password", pgtest.MD5User, pgtest.RolePassword, "sslmode=disable", pgtest.MD5User + "\n", ""},
		{"wrong password", pgtest.ScramUser, "wrong", "sslmode=disable", "", `FATAL:  password authentication failed for user "` + pgtest.ScramUser + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderrs []string
			for _, ep := range endpoints(p) {
				url := strings.Replace(ep.URL(tc.user, tc.password, ""), "sslmode=disable", tc.params, 1)
				res := psql(t, url, "", "-A", "-t", "-c", "SELECT current_user")
				wantExit := 0
				if tc.wantErr != "" {
					wantExit = 2
				}
				if res.Exit != wantExit || res.Stdout != tc.wantOut || !strings.Contains(res.Stderr, tc.wantErr) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", ep.Name, res.Exit, res.Stdout, res.Stderr, wantExit, tc.wantOut, tc.wantErr)
				}
				stderrs = append(stderrs, strings.ReplaceAll(res.Stderr, fmt.Sprint(ep.Port), "PORT"))
			}
			if stderrs[0] != stderrs[1] {
				t.Errorf("stderr differs:\nproxy:  %q\ndirect: %q", stderrs[0], stderrs[1])
			}
		})
	}
}

// TestPsqlCopy moves data with psql's \copy through the proxy, from stdin and
// from a file into a table and from a query to a file, and checks the data that
// arrived, reading it directly.
func TestPsqlCopy(t *testing.T) {
	p := startProxy(t)
	db := newDB(t)
	ctx := context.Background()
	if err := cluster.Exec(ctx, db, "CREATE TABLE t(id int PRIMARY KEY, name text, note text)"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	url := p.URL("", "", db)

	t.Run("from stdin", func(t *testing.T) {
		stdin := "1\talpha\t\\N\n2\tbeta\twith\\ttab\n3\tgamma ☃\t\n\\.\n"
		res := psql(t, url, stdin, "-c", `\copy t FROM stdin`)
		if res.Exit != 0 || res.Stdout != "COPY 3\n" {
			t.Fatalf("psql exit %d, stdout %q, stderr %q; want exit 0 and COPY 3", res.Exit, res.Stdout, res.Stderr)
		}
		got := directRows(t, db, "SELECT id, name, coalesce(note, '<null>') FROM t WHERE id <= 3 ORDER BY id")
		want := "1|alpha|<null>\n2|beta|with\ttab\n3|gamma ☃|\n"
		if got != want {
			t.Errorf("table holds %q, want %q", got, want)
		}
	})

	const fileRows = 5000
	t.Run("from file", func(t *testing.T) {
		var b strings.Builder
		for i := 1; i <= fileRows; i++ {
			fmt.Fprintf(&b, "%d,name %d,\"quoted, \"\"note\"\" %d\"\n", 1000+i, i, i)
		}
		in := filepath.Join(dir, "in.csv")
		if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		res := psql(t, url, "", "-c", fmt.Sprintf(`\copy t FROM '%s' WITH (FORMAT csv)`, in))
		if want := fmt.Sprintf("COPY %d\n", fileRows); res.Exit != 0 || res.Stdout != want {
			t.Fatalf("psql exit %d, stdout %q, stderr %q; want exit 0 and %q", res.Exit, res.Stdout, res.Stderr, want)
		}
		got := directRows(t, db, "SELECT count(*), sum(id), min(note), max(name) FROM t WHERE id > 1000")
		want := fmt.Sprintf("%d|%d|quoted, \"note\" 1|name 999\n", fileRows, fileRows*1000+fileRows*(fileRows+1)/2)
		if got != want {
			t.Errorf("copied rows summarise as %q, want %q", got, want)
		}
	})

	t.Run("query to file", func(t *testing.T) {
		query := `\copy (SELECT id, name, note FROM t ORDER BY id) TO '%s' WITH (FORMAT csv, HEADER)`
		var files []string
		for _, ep := range endpoints(p) {
			out := filepath.Join(dir, ep.Name+".csv")
			res := psql(t, ep.URL("", "", db), "", "-c", fmt.Sprintf(query, out))
			if want := fmt.Sprintf("COPY %d\n", fileRows+3); res.Exit != 0 || res.Stdout != want {
				t.Fatalf("%s: psql exit %d, stdout %q, stderr %q; want exit 0 and %q", ep.Name, res.Exit, res.Stdout, res.Stderr, want)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, string(b))
		}
		lines := strings.Split(strings.TrimSuffix(files[0], "\n"), "\n")
		if len(lines) != fileRows+4 || lines[0] != "id,name,note" || lines[1] != "1,alpha," || lines[2] != "2,beta,with\ttab" ||
			lines[4] != `1001,name 1,"quoted, ""note"" 1"` {
			t.Errorf("file through the proxy has %d lines, starting %q", len(lines), lines[:min(5, len(lines))])
		}
		if files[0] != files[1] {
			t.Errorf("file written through the proxy (%d bytes) differs from the direct one (%d bytes)", len(files[0]), len(files[1]))
		}
	})

	t.Run("bad data", func(t *testing.T) {
		// A CopyFail-free error: the server rejects a row; psql reports it and
		// nothing of the COPY stays.
		res := psql(t, url, "9001\tok\t\nnot-a-number\tbad\t\n\\.\n", "-c", `\copy t FROM stdin`)
		if res.Exit != 1 || !strings.Contains(res.Stderr, `invalid input syntax for type integer: "not-a-number"`) {
			t.Fatalf("psql exit %d, stderr %q; want exit 1 and an invalid input error", res.Exit, res.Stderr)
		}
		if got := directRows(t, db, "SELECT count(*) FROM t WHERE id = 9001"); got != "0\n" {
			t.Errorf("rows of the failed COPY: %q, want none", got)
		}
		// The next command on a new connection works.
		if res := psql(t, url, "", "-A", "-t", "-c", "SELECT count(*) FROM t"); res.Stdout != fmt.Sprintf("%d\n", fileRows+3) {
			t.Errorf("count after failed copy: %q (stderr %q)", res.Stdout, res.Stderr)
		}
	})
}

// directRows runs query directly as the superuser and returns its rows as
// "a|b\n" lines.
func directRows(t testing.TB, db, query string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := cluster.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, query).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var b strings.Builder
	for _, row := range res[len(res)-1].Rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte('|')
			}
			b.Write(v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestPsqlErrors checks that server errors reach psql with their message,
// SQLSTATE and position, and that psql exits as it does without the proxy.
func TestPsqlErrors(t *testing.T) {
	p := startProxy(t)
	tests := []struct {
		name       string
		args       []string
		wantExit   int
		wantErr    []string // substrings of stderr
		wantStdout string
	}{
		{"division by zero", []string{"-c", "SELECT 1/0"}, 1, []string{"ERROR:  division by zero"}, ""},
		{"verbose sqlstate", []string{"-v", "VERBOSITY=verbose", "-c", "SELECT 1/0"}, 1, []string{"ERROR:  22012: division by zero", "LOCATION:  int4div"}, ""},
		{"syntax error position", []string{"-c", "SELEC 1"}, 1, []string{`ERROR:  syntax error at or near "SELEC"`, "LINE 1: SELEC 1", "^"}, ""},
		{"undefined table", []string{"-c", "SELECT * FROM no_such_table"}, 1, []string{`ERROR:  relation "no_such_table" does not exist`}, ""},
		{"raise with detail and hint", []string{"-c", `DO $$BEGIN RAISE EXCEPTION 'custom failure' USING DETAIL = 'some detail', HINT = 'some hint', ERRCODE = 'P0042'; END$$`},
			1, []string{"ERROR:  custom failure", "DETAIL:  some detail", "HINT:  some hint"}, ""},
		{"notice then result", []string{"-A", "-t", "-c", `DO $$BEGIN RAISE NOTICE 'hello from the server'; END$$`, "-c", "SELECT 5"},
			0, []string{"NOTICE:  hello from the server"}, "DO\n5\n"},
		// Without ON_ERROR_STOP psql goes on after the failed -c, and its exit
		// status is that of the last one.
		{"error between commands", []string{"-A", "-t", "-c", "SELECT 1", "-c", "SELECT 1/0", "-c", "SELECT 2"}, 0, []string{"ERROR:  division by zero"}, "1\n2\n"},
		{"error between commands, ON_ERROR_STOP", []string{"-v", "ON_ERROR_STOP=1", "-A", "-t", "-c", "SELECT 1", "-c", "SELECT 1/0", "-c", "SELECT 2"}, 1, []string{"ERROR:  division by zero"}, "1\n"},
		{"unknown database", nil, 2, []string{`FATAL:  database "no_such_db" does not exist`}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := "postgres"
			if tc.name == "unknown database" {
				db = "no_such_db"
			}
			var stderrs []string
			for _, ep := range endpoints(p) {
				res := psql(t, ep.URL("", "", db), "", tc.args...)
				if res.Exit != tc.wantExit {
					t.Errorf("%s: psql exit %d, want %d; stderr %q", ep.Name, res.Exit, tc.wantExit, res.Stderr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(res.Stderr, w) {
						t.Errorf("%s: stderr %q lacks %q", ep.Name, res.Stderr, w)
					}
				}
				if res.Stdout != tc.wantStdout {
					t.Errorf("%s: stdout %q, want %q", ep.Name, res.Stdout, tc.wantStdout)
				}
				// The connection error names the address; everything else
				// must be identical.
				stderrs = append(stderrs, strings.ReplaceAll(res.Stderr, fmt.Sprint(ep.Port), "PORT"))
			}
			if stderrs[0] != stderrs[1] {
				t.Errorf("stderr differs:\nproxy:  %q\ndirect: %q", stderrs[0], stderrs[1])
			}
		})
	}
}

// TestPsqlOnErrorStop runs a script with a failing statement in the middle:
// with ON_ERROR_STOP psql stops there and exits 3, without it psql carries on
// and exits 0; with --single-transaction the failure rolls everything back.
func TestPsqlOnErrorStop(t *testing.T) {
	p := startProxy(t)
	script := strings.Join([]string{
		"CREATE TABLE s(id int);",
		"INSERT INTO s VALUES (1);",
		"SELECT 'before';",
		"SELECT 1/0;",
		"INSERT INTO s VALUES (2);",
		"SELECT 'after';",
	}, "\n") + "\n"
	tests := []struct {
		name       string
		args       []string
		wantExit   int
		wantStdout string
		wantRows   string // SELECT count(*), string_agg(id::text, ',') FROM s; "" if s must not exist
	}{
		{"ON_ERROR_STOP", []string{"-v", "ON_ERROR_STOP=1"}, 3, "CREATE TABLE\nINSERT 0 1\nbefore\n", "1|1\n"},
		{"without ON_ERROR_STOP", nil, 0, "CREATE TABLE\nINSERT 0 1\nbefore\nINSERT 0 1\nafter\n", "2|1,2\n"},
		{"single transaction", []string{"-v", "ON_ERROR_STOP=1", "--single-transaction"}, 3, "CREATE TABLE\nINSERT 0 1\nbefore\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range endpoints(p) {
				db := newDB(t)
				file := filepath.Join(t.TempDir(), "script.sql")
				if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
					t.Fatal(err)
				}
				args := append([]string{"-A", "-t", "-f", file}, tc.args...)
				res := psql(t, ep.URL("", "", db), "", args...)
				if res.Exit != tc.wantExit {
					t.Errorf("%s: exit %d, want %d (stderr %q)", ep.Name, res.Exit, tc.wantExit, res.Stderr)
				}
				if res.Stdout != tc.wantStdout {
					t.Errorf("%s: stdout %q, want %q", ep.Name, res.Stdout, tc.wantStdout)
				}
				if want := fmt.Sprintf("psql:%s:4: ERROR:  division by zero", file); !strings.Contains(res.Stderr, want) {
					t.Errorf("%s: stderr %q lacks %q", ep.Name, res.Stderr, want)
				}
				if tc.wantRows == "" {
					if got := directRows(t, db, "SELECT to_regclass('s') IS NULL"); got != "t\n" {
						t.Errorf("%s: table s exists after a rolled back single transaction", ep.Name)
					}
				} else if got := directRows(t, db, "SELECT count(*), string_agg(id::text, ',' ORDER BY id) FROM s"); got != tc.wantRows {
					t.Errorf("%s: table s holds %q, want %q", ep.Name, got, tc.wantRows)
				}
			}
		})
	}
}
