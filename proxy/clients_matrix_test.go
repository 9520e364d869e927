package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// The client matrix: one scripted scenario per driver or ORM in
// testdata/clients (see its README for the contract). Each scenario runs
// twice, straight against PostgreSQL and through a caching proxy with WAL
// invalidation (the default configuration), each time in a fresh database
// owned by a SCRAM login. The two runs must print the same result lines; the
// proxy run's own checks (SHOW pgmemo.last, SHOW pgmemo.stats) must all pass;
// the proxy must count at least MinHits hits; and neither run may print a
// warning or a protocol error.

// clientScenario is one client's script.
type clientScenario struct {
	Name    string   // subtest name
	Dir     string   // directory under testdata/clients; the command runs there
	Cmd     []string // program and arguments; the program is looked up in PATH unless absolute
	Files   []string // files the scenario needs besides Cmd[0] (a jar, node_modules), absolute or relative to Dir
	Env     []string // more environment
	MinHits uint64   // hits the proxy must count during the proxy run
	// Stdout, when set, must match a line of each run's output (the client's
	// version, say).
	Stdout  *regexp.Regexp
	Timeout time.Duration
}

// sqlalchemy2 is where .ci/run unpacks SQLAlchemy 2 (Debian trixie's
// python3-sqlalchemy and python3-typing-extensions, pure Python): bookworm,
// whose python3 runs the scenarios, ships only 1.4.
const sqlalchemy2 = "/var/cache/pgmemo-ci/sqlalchemy2/usr/lib/python3/dist-packages"

var clientScenarios = []clientScenario{
	{Name: "node-postgres", Dir: "node", Cmd: []string{"node", "scenario.js"}, Files: []string{"node_modules/pg", "node_modules/pg-cursor"}, MinHits: 10},
	{Name: "psycopg2", Dir: "python", Cmd: []string{"/usr/bin/python3", "psycopg2_scenario.py"}, MinHits: 5},
	{Name: "sqlalchemy-1.4", Dir: "python", Cmd: []string{"/usr/bin/python3", "sqlalchemy_scenario.py"}, MinHits: 5,
		Stdout: regexp.MustCompile(`^client sqlalchemy 1\.4\.`)},
	{Name: "sqlalchemy-2.0", Dir: "python", Cmd: []string{"/usr/bin/python3", "sqlalchemy_scenario.py"}, MinHits: 5,
		Files: []string{sqlalchemy2 + "/sqlalchemy"}, Env: []string{"PYTHONPATH=" + sqlalchemy2},
		Stdout: regexp.MustCompile(`^client sqlalchemy 2\.`)},
	{Name: "django", Dir: "django", Cmd: []string{"/usr/bin/python3", "scenario.py"}, MinHits: 5},
	{Name: "jdbc", Dir: "jdbc", Cmd: []string{"java", "-cp", "/usr/share/java/postgresql.jar", "Scenario.java"}, Files: []string{"/usr/share/java/postgresql.jar"}, MinHits: 5},
	{Name: "ruby-pg", Dir: "ruby", Cmd: []string{"ruby", "scenario.rb"}, MinHits: 5},
	{Name: "go", Dir: "go", Cmd: []string{"go", "run", "."}, MinHits: 10},
}

// clientBadOutput is what no client may print: warnings and protocol errors.
var clientBadOutput = regexp.MustCompile(`(?i)warn|protocol (error|violation)|unexpected (message|response)|out of sync|deprecat`)

func TestClientMatrix(t *testing.T) {
	pgtest.Need(t, cluster)
	root, err := filepath.Abs(filepath.Join("..", "testdata", "clients"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range clientScenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			runClientScenario(t, root, sc)
		})
	}
}

func runClientScenario(t *testing.T, root string, sc clientScenario) {
	dir := filepath.Join(root, sc.Dir)
	prog := needCommand(t, sc.Cmd[0])
	for _, f := range sc.Files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		if _, err := os.Stat(f); err != nil {
			missingClient(t, "%s needs %s (installed by .ci/run): %v", sc.Name, f, err)
		}
	}
	timeout := sc.Timeout
	if timeout == 0 {
		timeout = 4 * time.Minute
	}

	p := startProxy(t, withWAL())
	runs := map[string]scenarioRun{}
	for _, target := range []string{"direct", "proxy"} {
		db := newClientDB(t)
		url := directURL(pgtest.ScramUser, pgtest.RolePassword, db)
		if target == "proxy" {
			url = p.URL(pgtest.ScramUser, pgtest.RolePassword, db)
			// Hits need the database's replication stream to be current.
			waitServing(t, pgxConnect(t, url))
		}
		before, _ := p.Srv.CacheStats()
		r := runScenario(t, timeout, dir, prog, sc.Cmd[1:], sc.Env, target, url)
		if sc.Stdout != nil && !r.matched(sc.Stdout) {
			t.Errorf("%s run: no line of its output matches %v", target, sc.Stdout)
		}
		after, _ := p.Srv.CacheStats()
		r.hits = after.Hits - before.Hits
		runs[target] = r
		t.Logf("%s run: %d result lines, %d checks, %d proxy hits, %v", target, len(r.results), len(r.checks), r.hits, r.took.Round(time.Millisecond))
	}

	direct, viaProxy := runs["direct"], runs["proxy"]
	if direct.hits != 0 {
		t.Errorf("the direct run counted %d proxy hits: it did not connect straight to PostgreSQL", direct.hits)
	}
	if len(direct.results) == 0 {
		t.Errorf("the direct run printed no result lines")
	}
	if d := diffLines(direct.results, viaProxy.results); d != "" {
		t.Errorf("result lines differ between direct and proxy runs:\n%s", d)
	}
	if len(direct.checks) != 0 {
		t.Errorf("the direct run printed checks (scenarios check the proxy only): %q", direct.checks)
	}
	okChecks := 0
	for _, c := range viaProxy.checks {
		f := strings.Fields(c)
		if len(f) < 2 || f[1] != "ok" {
			t.Errorf("check failed: %s", c)
			continue
		}
		okChecks++
	}
	if okChecks == 0 {
		t.Errorf("the proxy run passed no check")
	}
	if viaProxy.hits < sc.MinHits {
		t.Errorf("the proxy counted %d hits during the run, want at least %d", viaProxy.hits, sc.MinHits)
	}
}

// scenarioRun is what one run of a scenario printed.
type scenarioRun struct {
	results []string // "result ..." lines, without the prefix
	checks  []string // "check ..." lines, without the prefix
	other   []string // every other line
	hits    uint64
	took    time.Duration
}

func (r scenarioRun) matched(re *regexp.Regexp) bool {
	for _, l := range r.other {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

func runScenario(t *testing.T, timeout time.Duration, dir, prog string, args, env []string, target, dbURL string) scenarioRun {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(toolEnv(),
		"PGMEMO_TARGET="+target,
		"DATABASE_URL="+dbURL,
		"PGHOST="+u.Hostname(),
		"PGPORT="+u.Port(),
		"PGUSER="+u.User.Username(),
		"PGPASSWORD="+pw,
		"PGDATABASE="+strings.TrimPrefix(u.Path, "/"),
		"PGSSLMODE=disable",
		"JDBC_URL=jdbc:postgresql://"+u.Host+u.Path+"?sslmode=disable",
		"PYTHONDONTWRITEBYTECODE=1",
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := scenarioRun{took: time.Since(start)}
	dump := func() string {
		return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s run did not finish within %v\n%s", target, timeout, dump())
	case errors.As(err, &ee):
		t.Fatalf("%s run exited with %d\n%s", target, ee.ExitCode(), dump())
	case err != nil:
		t.Fatalf("%s run: %v", target, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes())) // stdout stays whole for dump
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "result "):
			r.results = append(r.results, strings.TrimPrefix(line, "result "))
		case strings.HasPrefix(line, "check "):
			r.checks = append(r.checks, strings.TrimPrefix(line, "check "))
		default:
			r.other = append(r.other, line)
			if clientBadOutput.MatchString(line) {
				t.Errorf("%s run printed a warning or protocol error on stdout: %s", target, line)
			}
		}
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if clientBadOutput.MatchString(line) {
			t.Errorf("%s run printed a warning or protocol error on stderr: %s", target, line)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("%s run output\n%s", target, dump())
	}
	return r
}

// newClientDB creates a database owned by the SCRAM login, as an
// application's database would be.
func newClientDB(t *testing.T) string {
	t.Helper()
	db := newDB(t)
	ctx := context.Background()
	for _, q := range []string{
		fmt.Sprintf("ALTER DATABASE %q OWNER TO %s", db, pgtest.ScramUser),
		"ALTER SCHEMA public OWNER TO " + pgtest.ScramUser,
	} {
		if err := cluster.Exec(ctx, db, q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// needCommand finds a client program: absolute paths as they are, others in
// PATH. A missing program skips the test, or fails it under CI=true.
func needCommand(t *testing.T, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if !isExecutable(name) {
			missingClient(t, "%s is not installed", name)
		}
		return name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		missingClient(t, "%s is not in PATH", name)
	}
	return p
}

func missingClient(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if pgtest.Required() {
		t.Fatalf("%s; required under CI=true", msg)
	}
	t.Skip(msg)
}

// diffLines describes where two line lists first differ, or returns "".
func diffLines(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y || i >= len(a) || i >= len(b) {
			return "line " + strconv.Itoa(i+1) + ":\n  direct: " + x + "\n  proxy:  " + y
		}
	}
	return ""
}
