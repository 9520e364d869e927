package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// seriesRE finds the charts' lines in the page.
var seriesRE = regexp.MustCompile(`<path class="series" d="([^"]*)"`)

// hitRatioRE finds the hit ratio card's value.
var hitRatioRE = regexp.MustCompile(`id="hit-ratio">([^<]*)<`)

// chartLines returns the path data of the page's chart lines.
func chartLines(page string) []string {
	var out []string
	for _, m := range seriesRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// findChromium returns Debian's chromium, or ends the test: a skip normally,
// a failure under CI=true.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if pgtest.Required() {
		t.Fatal("chromium is required under CI=true (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the status page is not checked in a browser")
	return ""
}

// chromium runs headless Chromium with args and returns its standard output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// TestStatusPage runs a workload through the proxy while the status page
// samples every 50 ms, then renders / in headless Chromium: the four charts
// (hit ratio, throughput, memory, replication staleness) have lines, the tables show the statement (escaped) and the cache, and a
// screenshot is left for a person to look at.
func TestStatusPage(t *testing.T) {
	c := pgtest.Need(t, cluster)
	bin := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Exec(ctx, "", "DROP TABLE IF EXISTS status_kv; CREATE TABLE status_kv(k int PRIMARY KEY, v text); INSERT INTO status_kv SELECT g, 'v' || g FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	p := startTestProxy(t, 50*time.Millisecond, "--upstream", c.URL("", "", ""), "--invalidation", "wal")
	// A column alias that is markup: the page must show it as text.
	const markup = `<img src=x onerror=alert(1)>`
	// The workload runs until the end of the test (at most a minute), paced
	// so that the charts show a steady rate: reads of 20 keys, mostly hits,
	// and now and then a write that invalidates them.
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorkload := context.WithCancel(ctx)
	var werr error
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		defer conn.Close(context.Background())
		for i := 0; wctx.Err() == nil; i++ {
			var v string
			err := conn.QueryRow(wctx, `SELECT v AS "`+markup+`" FROM status_kv WHERE k = $1`, i%20+1).Scan(&v)
			if err == nil && i%100 == 99 {
				_, err = conn.Exec(wctx, "UPDATE status_kv SET v = v WHERE k = $1", i%20+1)
			}
			if err == nil && i%10 == 9 {
				_, err = conn.Exec(wctx, "SELECT pg_sleep(0.01)")
			}
			if err != nil && wctx.Err() == nil {
				werr = err
				return
			}
		}
	}()
	defer func() {
		stopWorkload()
		<-wdone
	}()
	// Until the charts have lines of several samples and some statements
	// were hits (never a fixed sleep: look again).
	var page string
	pgtest.Eventually(t, 20*time.Second, func() error {
		select {
		case <-wdone:
			t.Fatalf("the workload stopped: %v", werr)
		default:
		}
		var code int
		code, page = p.get(t, "/")
		if code != 200 {
			return fmt.Errorf("status page: %d", code)
		}
		lines := chartLines(page)
		if len(lines) != 4 {
			return fmt.Errorf("%d chart lines, want 4", len(lines))
		}
		for _, l := range lines {
			if strings.Count(l, "L") < 3 {
				return fmt.Errorf("chart line %q has fewer than 4 points", l)
			}
		}
		if m := hitRatioRE.FindStringSubmatch(page); m == nil || m[1] == "0.0%" || m[1] == "–" {
			return fmt.Errorf("hit ratio card %v: no hits yet", m)
		}
		return nil
	})
	if strings.Contains(page, markup) || !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the statement's alias is not escaped on the page")
	}

	dom := chromium(t, bin, "--dump-dom", "http://"+p.http+"/")
	lines := chartLines(dom)
	if len(lines) != 4 {
		t.Fatalf("Chromium's DOM has %d chart lines, want 4:\n%s", len(lines), dom)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "M") || !strings.Contains(l, "L") {
			t.Errorf("a chart line is empty in Chromium's DOM: %q", l)
		}
	}
	if strings.Contains(dom, "<img") {
		t.Errorf("the statement's alias became an element in Chromium's DOM")
	}
	for _, want := range []string{`id="hit-ratio"`, "status_kv", "Top statements", "Replication staleness", "Cache memory", `id="ready">ready<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("Chromium's DOM lacks %q", want)
		}
	}
	if m := hitRatioRE.FindStringSubmatch(dom); m == nil || !strings.HasSuffix(m[1], "%") {
		t.Errorf("hit ratio card: %v, want a percentage", m)
	}

	shot := filepath.Join(os.TempDir(), "pgmemo-status.png")
	os.Remove(shot)
	chromium(t, bin, "--screenshot="+shot, "--window-size=1200,900", "http://"+p.http+"/")
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG")) || len(data) < 10_000 {
		t.Fatalf("screenshot %s: %d bytes, not a page", shot, len(data))
	}
	t.Logf("screenshot of the status page: %s", shot)
}

// TestChartPaths: points map into the plot, undefined ones break the line,
// and points older than the window are left out.
func TestChartPaths(t *testing.T) {
	end := time.Unix(1000, 0)
	pts := []point{
		{at: end.Add(-20 * time.Second), v: 1, ok: true}, // outside the window
		{at: end.Add(-10 * time.Second), v: 0, ok: true},
		{at: end.Add(-5 * time.Second), v: 0.5, ok: true},
		{at: end.Add(-4 * time.Second)},
		{at: end, v: 1, ok: true},
	}
	line, area := chartPaths(pts, end, 10*time.Second, 1)
	if want := "M48.0,126.0 L300.0,68.0 M550.5,10.0 L553.5,10.0"; line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	if strings.Count(area, "Z") != 2 {
		t.Errorf("area %q, want two closed shapes", area)
	}
	if l, a := chartPaths(nil, end, time.Minute, 1); l != "" || a != "" {
		t.Errorf("no points: %q %q", l, a)
	}
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 7: 10, 120: 200, 4900: 5000} {
		if got := niceCeil(v); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// TestSamplerRates: the ring keeps the latest samples in order; the recent
// hit ratio and throughput come from the counters' differences.
func TestSamplerRates(t *testing.T) {
	s := &sampler{every: time.Second, ring: make([]sample, 3)}
	t0 := time.Unix(1000, 0)
	for i, x := range []sample{{hits: 0, statements: 0}, {hits: 5, statements: 10}, {hits: 5, statements: 10}, {hits: 35, statements: 50}} {
		x.at = t0.Add(time.Duration(i) * time.Second)
		s.mu.Lock()
		s.ring[s.next] = x
		s.next = (s.next + 1) % len(s.ring)
		s.n = min(s.n+1, len(s.ring))
		s.mu.Unlock()
	}
	ss := s.samples()
	if len(ss) != 3 || ss[0].statements != 10 || ss[2].statements != 50 {
		t.Fatalf("samples %+v", ss)
	}
	ratio, qps := rates(ss)
	if len(ratio) != 2 || ratio[0].ok || !ratio[1].ok || ratio[1].v != 0.75 {
		t.Errorf("ratios %+v", ratio)
	}
	if len(qps) != 2 || qps[0].v != 0 || qps[1].v != 40 {
		t.Errorf("throughput %+v", qps)
	}
	r, q, ok := recent(ss, time.Minute)
	if !ok || r != 0.75 || q != 20 {
		t.Errorf("recent: ratio %v, %v/s, %v; want 0.75, 20/s", r, q, ok)
	}
	if _, _, ok := recent(ss[:1], time.Minute); ok {
		t.Error("recent with one sample")
	}
	if s.window() != 3*time.Second {
		t.Errorf("window %v", s.window())
	}
}
