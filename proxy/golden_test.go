package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/proxy"
)

// Golden wire tests, in the style of CockroachDB's pgwire tests: every script
// in testdata/wire (see wirescript_test.go for the format) runs in an empty
// database (see wireDBPool), first straight against PostgreSQL, then through
// the proxy in two configurations. Every recording through the proxy must be
// identical to PostgreSQL's after the normalisation described at
// wireRecorder.render; any difference is a proxy bug. PostgreSQL's recording
// is also kept next to the script as NAME.expected.json so reviewers see what
// the server sends; `go test ./proxy -run Golden -update` rewrites those
// files.

var updateGolden = flag.Bool("update", false, "rewrite testdata/wire/*.expected.json from PostgreSQL's answers")

// wireDir holds the scripts, relative to the package directory.
const wireDir = "../testdata/wire"

const wireExpectedSuffix = ".expected.json"

// wireStreamingLimit is the streaming proxy's MaxBufferedBytes.
const wireStreamingLimit = 256

func TestGoldenWire(t *testing.T) {
	c := pgtest.Need(t, cluster)
	scripts, err := wireScriptPaths()
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatalf("no scripts in %s", wireDir)
	}
	// Each script also runs through a proxy that buffers no message body over
	// 256 bytes, so the larger messages of the scripts (large_messages.json
	// above all) take the proxy's streaming path in both directions. Startup
	// messages must stay under that limit: the proxy buffers the whole
	// authentication phase.
	proxies := []struct {
		name string
		p    *testProxy
	}{
		{"proxy", startProxy(t)},
		{"streaming proxy", startProxy(t, func(s *proxy.Server) { s.MaxBufferedBytes = wireStreamingLimit })},
		// With caching on, and twice, so that the second run is answered
		// from the cache wherever it can be.
		{"caching proxy", startProxy(t, withCache())},
		{"caching proxy (again)", nil},
	}
	proxies[3].p = proxies[2].p
	dbs := &wireDBPool{}
	direct := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	major, _, _ := strings.Cut(c.Version, ".")
	for _, path := range scripts {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := loadWireScript(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			db := dbs.get(t)
			defer dbs.put(db)
			run := func(addr string) (*wireTranscript, error) {
				emptyWireDB(t, db)
				return runWireScript(ctx, s, addr, db)
			}
			want, err := run(direct)
			if err != nil { // PostgreSQL itself did not play along: the script is wrong
				t.Fatalf("direct run: %v\nreceived so far:\n%s", err, strings.Join(want.lines(false), "\n"))
			}
			for _, p := range proxies {
				got, err := run(p.p.Addr)
				if got == nil {
					t.Errorf("%s run: %v", p.name, err)
					continue
				}
				if d := wireDiff(want.lines(false), got.lines(false)); d != "" {
					t.Errorf("the %s's answers differ from PostgreSQL's (- direct, + %s):\n%s", p.name, p.name, d)
				} else if err != nil {
					t.Errorf("%s run: %v", p.name, err)
				}
			}
			checkWireGolden(t, strings.TrimSuffix(path, ".json")+wireExpectedSuffix, major, want)
		})
	}
}

// wireDBPool hands out the databases the scripts run in. Every run starts in
// an emptied database: its public schema dropped and created anew, which is
// all a fresh database would differ in, because scripts create objects only in
// the public schema (no roles, schemas or databases, no ALTER DATABASE or
// ROLE), and sessions, prepared statements and LISTENs end with a run's
// connection. A new database costs 300-600 ms on the 2-core test machine,
// emptying one a few milliseconds, so the suite only creates one database per
// script running at the same time.
type wireDBPool struct {
	mu   sync.Mutex
	free []string
}

// get returns an unused database, creating one if none is free.
func (p *wireDBPool) get(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		db := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return db
	}
	p.mu.Unlock()
	return newDB(t)
}

// put returns a database to the pool.
func (p *wireDBPool) put(db string) {
	p.mu.Lock()
	p.free = append(p.free, db)
	p.mu.Unlock()
}

// emptyWireDB drops everything a script run created in db, leaving it as
// newDB made it.
func emptyWireDB(t *testing.T, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
}

// wireScriptPaths lists the scripts in wireDir and checks that every golden
// file still has its script.
func wireScriptPaths() ([]string, error) {
	all, err := filepath.Glob(filepath.Join(wireDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var scripts []string
	for _, p := range all {
		if !strings.HasSuffix(p, wireExpectedSuffix) {
			scripts = append(scripts, p)
			continue
		}
		script := strings.TrimSuffix(p, wireExpectedSuffix) + ".json"
		if _, err := os.Stat(script); err != nil {
			return nil, fmt.Errorf("%s has no script %s; delete it", p, script)
		}
	}
	return scripts, nil
}

// lines flattens a transcript for diffing: a header per step, then one line
// per message received, in strict or portable form.
func (tr *wireTranscript) lines(portable bool) []string {
	if tr == nil {
		return nil
	}
	var out []string
	for i, st := range tr.Steps {
		out = append(out, fmt.Sprintf("-- step %d: %s", i, st.Step.summary()))
		if portable {
			out = append(out, st.Portable...)
		} else {
			out = append(out, st.Strict...)
		}
	}
	return out
}

// summary describes a step in one line: its comment, or what it did.
func (st *wireStep) summary() string {
	if st.Comment != "" {
		return st.Comment
	}
	if st.Side != "" {
		return "side: " + st.Side
	}
	var types []string
	for _, m := range st.msgs {
		types = append(types, wireTypeName(m))
	}
	return fmt.Sprintf("send %s, until %s", strings.Join(types, " "), st.Until)
}

// checkWireGolden compares PostgreSQL's portable recording with the golden
// file, or rewrites the file under -update. A golden file recorded with
// another PostgreSQL major version is not compared.
func checkWireGolden(t *testing.T, path, major string, tr *wireTranscript) {
	t.Helper()
	text, err := renderWireGolden(major, tr)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if *updateGolden {
		if err != nil || !bytes.Equal(old, text) {
			if err := os.WriteFile(path, text, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is missing; create it with: go test ./proxy -run 'GoldenWire/%s$' -update", path, strings.TrimSuffix(filepath.Base(path), wireExpectedSuffix))
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var head struct{ Server string }
	if err := json.Unmarshal(old, &head); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if head.Server != major {
		t.Logf("%s was recorded with PostgreSQL %s, the server is %s: not compared", path, head.Server, major)
		return
	}
	if !bytes.Equal(old, text) {
		t.Errorf("PostgreSQL's answers differ from %s (- file, + now); if the script changed on purpose, run with -update:\n%s",
			path, wireDiff(strings.Split(string(old), "\n"), strings.Split(string(text), "\n")))
	}
}

// renderWireGolden formats a recording as the golden file: valid JSON with one
// message per line, each step followed by what it received.
func renderWireGolden(major string, tr *wireTranscript) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"server\": %s,\n  \"steps\": [", wireQuote(major))
	for i, st := range tr.Steps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    {")
		var fields []string
		if st.Step.Comment != "" {
			fields = append(fields, "\n      \"comment\": "+wireQuote(st.Step.Comment))
		}
		if st.Step.Side != "" {
			fields = append(fields, "\n      \"side\": "+wireQuote(st.Step.Side))
		}
		if len(st.Step.Send) > 0 {
			var msgs []string
			for _, m := range st.Step.Send {
				var c bytes.Buffer
				if err := json.Compact(&c, m); err != nil {
					return nil, err
				}
				msgs = append(msgs, c.String())
			}
			fields = append(fields, wireJSONLines("send", msgs))
		}
		if st.Step.Until != "" {
			u := "\n      \"until\": " + wireQuote(st.Step.Until)
			if st.Step.Count > 1 {
				u += fmt.Sprintf(", \"count\": %d", st.Step.Count)
			}
			fields = append(fields, u)
		}
		if st.Step.Side == "" {
			fields = append(fields, wireJSONLines("recv", st.Portable))
		}
		b.WriteString(strings.Join(fields, ","))
		b.WriteString("\n    }")
	}
	b.WriteString("\n  ]\n}\n")
	out := []byte(b.String())
	if !json.Valid(out) {
		return nil, fmt.Errorf("rendered golden file is not valid JSON:\n%s", out)
	}
	return out, nil
}

// wireJSONLines renders a named array with one element per line.
func wireJSONLines(name string, elems []string) string {
	if len(elems) == 0 {
		return fmt.Sprintf("\n      %q: []", name)
	}
	return fmt.Sprintf("\n      %q: [\n        %s\n      ]", name, strings.Join(elems, ",\n        "))
}

// wireQuote quotes s as JSON without escaping <, > and &.
func wireQuote(s string) string {
	b, _ := wireMarshal(s)
	return string(b)
}
