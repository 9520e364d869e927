package main

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pgmemo/pgmemo/proxy"
)

// The status page's charts sample the statement counters every
// sampleInterval and keep sampleWindow of history.
const (
	sampleInterval = 5 * time.Second
	sampleWindow   = 15 * time.Minute
	topStatements  = 10
)

// sample is the cumulative statement counts, the cache's memory and the
// replication streams' staleness at one moment.
type sample struct {
	at         time.Time
	hits       uint64 // statements answered from the cache
	statements uint64 // every statement timed: hits, misses, passthrough
	bytes      uint64 // cache memory
	// stale is the largest staleness of the databases' replication streams
	// (seconds); staleOK is false when there is none, or one is not current.
	stale   float64
	staleOK bool
}

// sampler keeps a ring of samples for the charts.
type sampler struct {
	durations func() map[string]proxy.Histogram
	report    func() proxy.CacheReport
	every     time.Duration

	mu   sync.Mutex
	ring []sample
	next int
	n    int
}

func newSampler(srv *proxy.Server, every time.Duration, size int) *sampler {
	return &sampler{durations: srv.QueryDurations, report: srv.CacheReport, every: every, ring: make([]sample, max(size, 2))}
}

func (s *sampler) take(now time.Time) {
	d := s.durations()
	x := sample{at: now, hits: d["hit"].Count}
	for _, h := range d {
		x.statements += h.Count
	}
	r := s.report()
	x.bytes = r.Cache.Bytes
	for i, db := range r.Databases {
		if db.WAL == nil {
			break
		}
		if i == 0 {
			x.staleOK = true
		}
		if !db.Current {
			x.staleOK = false
			break
		}
		x.stale = math.Max(x.stale, db.Staleness.Seconds())
	}
	s.mu.Lock()
	s.ring[s.next] = x
	s.next = (s.next + 1) % len(s.ring)
	s.n = min(s.n+1, len(s.ring))
	s.mu.Unlock()
}

func (s *sampler) run(ctx context.Context) {
	s.take(time.Now())
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.take(now)
		}
	}
}

// samples returns the kept samples, oldest first.
func (s *sampler) samples() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sample, 0, s.n)
	for i := range s.n {
		out = append(out, s.ring[(s.next-s.n+i+len(s.ring))%len(s.ring)])
	}
	return out
}

// window is the time the ring covers.
func (s *sampler) window() time.Duration { return time.Duration(len(s.ring)) * s.every }

// point is one value of a chart; ok is false where it is undefined (a hit
// ratio without statements).
type point struct {
	at time.Time
	v  float64
	ok bool
}

// rates turns samples into per-interval hit ratios and throughputs.
func rates(ss []sample) (ratio, qps []point) {
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 || b.statements < a.statements {
			continue
		}
		n := float64(b.statements - a.statements)
		qps = append(qps, point{b.at, n / dt, true})
		if n > 0 {
			ratio = append(ratio, point{b.at, float64(b.hits-a.hits) / n, true})
		} else {
			ratio = append(ratio, point{at: b.at})
		}
	}
	return ratio, qps
}

// recent returns the hit ratio and throughput over the samples of the last
// span (all of them when they cover less); ok is false with fewer than two
// samples. The ratio is NaN without statements.
func recent(ss []sample, span time.Duration) (ratio, qps float64, ok bool) {
	if len(ss) < 2 {
		return 0, 0, false
	}
	last := ss[len(ss)-1]
	first := ss[0]
	for _, x := range ss {
		if last.at.Sub(x.at) <= span {
			first = x
			break
		}
	}
	if first.at.Equal(last.at) {
		first = ss[len(ss)-2]
	}
	n := float64(last.statements - first.statements)
	ratio = math.NaN()
	if n > 0 {
		ratio = float64(last.hits-first.hits) / n
	}
	return ratio, n / last.at.Sub(first.at).Seconds(), true
}

// chart is a small server-rendered SVG line chart.
type chart struct {
	Title, Current, Caption string
	Color                   string
	Line, Area              string // SVG path data; empty without data
	YTop, YMid              string // axis labels
	XLeft                   string
}

// Chart geometry: the plot area inside the SVG's viewBox (0 0 560 150; the
// template draws the axes to match).
const (
	plotL, plotR          = 48, 552
	plotT, plotB          = 10, 126
	plotWidth, plotHeight = plotR - plotL, plotB - plotT
)

// Statement text is cut to stmtMaxRunes on the page, and to stmtTitleMaxRunes
// in its tooltip.
const (
	stmtMaxRunes      = 300
	stmtTitleMaxRunes = 2000
)

// chartPaths draws pts, between end-window and end, scaled to 0..ymax: the
// line (broken where a point is undefined) and the area under it.
func chartPaths(pts []point, end time.Time, window time.Duration, ymax float64) (line, area string) {
	var lb, ab strings.Builder
	var seg [][2]float64
	flush := func() {
		if len(seg) == 0 {
			return
		}
		if len(seg) == 1 { // a lone point: a short tick, so that it shows
			seg = [][2]float64{{seg[0][0] - 1.5, seg[0][1]}, {seg[0][0] + 1.5, seg[0][1]}}
		}
		for i, p := range seg {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&lb, "%s%.1f,%.1f ", cmd, p[0], p[1])
		}
		fmt.Fprintf(&ab, "M%.1f,%d ", seg[0][0], plotB)
		for _, p := range seg {
			fmt.Fprintf(&ab, "L%.1f,%.1f ", p[0], p[1])
		}
		fmt.Fprintf(&ab, "L%.1f,%d Z ", seg[len(seg)-1][0], plotB)
		seg = seg[:0]
	}
	for _, p := range pts {
		age := end.Sub(p.at)
		if !p.ok || age > window || age < 0 {
			flush()
			continue
		}
		x := plotR - float64(plotWidth)*age.Seconds()/window.Seconds()
		v := math.Min(math.Max(p.v/ymax, 0), 1)
		y := plotB - float64(plotHeight)*v
		seg = append(seg, [2]float64{x, y})
	}
	flush()
	return strings.TrimSpace(lb.String()), strings.TrimSpace(ab.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtRate(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtPercent(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	return strconv.FormatFloat(100*r, 'f', 1, 64) + "%"
}

func fmtBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	return strings.TrimSuffix(strconv.FormatFloat(n, 'f', 1, 64), ".0") + " " + units[i]
}

// fmtUptime says how long pgmemo has run: "42 s", "5 min", "3 h 12 min",
// "2 d 4 h".
func fmtUptime(d time.Duration) string {
	s := int64(d.Seconds())
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min", s/60)
	case s < 86400:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%d d %d h", s/86400, s%86400/3600)
	}
}

// fmtAxisSeconds is a short label for an axis of seconds: "500ms", "2s".
func fmtAxisSeconds(s float64) string {
	switch {
	case s >= 1:
		return strconv.FormatFloat(s, 'g', 3, 64) + "s"
	case s >= 0.001:
		return strconv.FormatFloat(s*1e3, 'g', 3, 64) + "ms"
	}
	return strconv.FormatFloat(s*1e6, 'g', 3, 64) + "µs"
}

// fmtAxisBytes is a short label for an axis of bytes: "256M", "1.5G".
func fmtAxisBytes(n float64) string {
	return strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(fmtBytes(n), "iB"), " B"), " ", "")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	case d < time.Hour:
		return strconv.FormatFloat(d.Minutes(), 'f', 1, 64) + " min"
	default:
		return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " h"
	}
}

// fmtWindow names a chart window: "15 min", "9 s".
func fmtWindow(d time.Duration) string {
	if d >= time.Minute {
		return strconv.FormatFloat(d.Minutes(), 'f', -1, 64) + " min"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// statusPage serves /.
type statusPage struct {
	srv      *proxy.Server
	sampler  *sampler
	ready    *readiness
	upstream string
	started  time.Time
}

type statusView struct {
	Upstream, Mode, TxPolicy, Updated, Uptime, Window string
	Caching                                           bool
	Ready                                             bool
	NotReady                                          []string
	HitRatio, HitRatioAll, QPS                        string
	Clients, Upstreams                                int64
	MemUsed, MemMax, MemPct                           string
	MemBar                                            float64 // 0..100
	MemHigh                                           bool
	Entries                                           int
	Evictions                                         uint64
	Charts                                            []chart
	Databases                                         []dbView
	Statements                                        []stmtView
}

type dbView struct {
	Name, Serving, Staleness, Lag, Delay, LastError string
	OK, Connected                                   bool
	Reconnects                                      uint64
}

type stmtView struct {
	Database, Text, Full, Fingerprint, HitRatio, Mean, Saved string
	Calls                                                    uint64
	HitBar                                                   float64
}

func (p *statusPage) view(ctx context.Context) statusView {
	now := time.Now()
	rep := p.srv.CacheReport()
	st := p.srv.Stats()
	v := statusView{
		Upstream:  p.upstream,
		Mode:      rep.Mode,
		TxPolicy:  rep.TxPolicy,
		Updated:   now.Format("15:04:05"),
		Uptime:    fmtUptime(now.Sub(p.started)),
		Caching:   rep.Mode != "off",
		Clients:   st.ClientConnections,
		Upstreams: st.UpstreamConnections,
		Entries:   rep.Cache.Entries,
		Evictions: rep.Cache.Evictions,
		MemUsed:   fmtBytes(float64(rep.Cache.Bytes)),
		MemMax:    fmtBytes(float64(rep.MaxBytes)),
		HitRatio:  "–",
		QPS:       "–",
	}
	v.NotReady = p.ready.reasons(ctx)
	v.Ready = len(v.NotReady) == 0
	if rep.MaxBytes > 0 {
		v.MemBar = math.Min(100, 100*float64(rep.Cache.Bytes)/float64(rep.MaxBytes))
		v.MemPct = strconv.FormatFloat(v.MemBar, 'f', 1, 64) + "%"
		if v.MemBar > 0 && v.MemBar < 0.1 {
			v.MemPct = "<0.1%"
		}
		v.MemHigh = v.MemBar >= 90
	}
	ss := p.sampler.samples()
	if r, q, ok := recent(ss, time.Minute); ok {
		v.HitRatio, v.QPS = fmtPercent(r), fmtRate(q)
	}
	if len(ss) > 0 {
		last := ss[len(ss)-1]
		ratio := math.NaN()
		if last.statements > 0 {
			ratio = float64(last.hits) / float64(last.statements)
		}
		v.HitRatioAll = fmtPercent(ratio)
	}
	window := p.sampler.window()
	v.Window = fmtWindow(window)
	ratio, qps := rates(ss)
	end := now
	if len(ss) > 0 {
		end = ss[len(ss)-1].at
	}
	hc := chart{Title: "Hit ratio", Caption: "share of statements answered from the cache", Color: "#2e7d32",
		YTop: "100%", YMid: "50%", XLeft: "−" + v.Window, Current: v.HitRatio}
	hc.Line, hc.Area = chartPaths(ratio, end, window, 1)
	peak := 0.0
	for _, p := range qps {
		peak = math.Max(peak, p.v)
	}
	ymax := niceCeil(peak)
	tc := chart{Title: "Throughput", Caption: "statements per second", Color: "#1565c0",
		YTop: fmtRate(ymax), YMid: fmtRate(ymax / 2), XLeft: "−" + v.Window, Current: v.QPS + " /s"}
	tc.Line, tc.Area = chartPaths(qps, end, window, ymax)
	var mem []point
	for _, x := range ss {
		mem = append(mem, point{x.at, float64(x.bytes), true})
	}
	mc := chart{Title: "Cache memory", Caption: "bytes held, against --cache-max-bytes", Color: "#8250df",
		YTop: fmtAxisBytes(float64(rep.MaxBytes)), YMid: fmtAxisBytes(float64(rep.MaxBytes) / 2), XLeft: "−" + v.Window, Current: v.MemUsed}
	mc.Line, mc.Area = chartPaths(mem, end, window, float64(max(rep.MaxBytes, 1)))
	v.Charts = []chart{hc, tc, mc}
	if rep.Mode == "wal" {
		var stale []point
		peak := 0.0
		for _, x := range ss {
			stale = append(stale, point{x.at, x.stale, x.staleOK})
			if x.staleOK {
				peak = math.Max(peak, x.stale)
			}
		}
		ymax := niceCeil(math.Max(peak, 0.001))
		sc := chart{Title: "Replication staleness", Caption: "how far behind the server the stream may be (worst database; gaps: not current)",
			Color: "#bf3989", YTop: fmtAxisSeconds(ymax), YMid: fmtAxisSeconds(ymax / 2),
			XLeft: "−" + v.Window, Current: "–"}
		if len(ss) > 0 && ss[len(ss)-1].staleOK {
			sc.Current = fmtDuration(time.Duration(ss[len(ss)-1].stale * float64(time.Second)))
		} else if len(ss) > 0 {
			sc.Current = "not current"
		}
		sc.Line, sc.Area = chartPaths(stale, end, window, ymax)
		v.Charts = append(v.Charts, sc)
	}

	for _, db := range rep.Databases {
		dv := dbView{Name: db.Name, OK: db.Serving, Serving: "serving", Staleness: "–", Lag: "–", Delay: "–"}
		if !db.Serving {
			dv.Serving = "not serving: " + db.Reason
		}
		if db.Current {
			dv.Staleness = fmtDuration(db.Staleness)
		} else if db.WAL != nil {
			dv.Staleness = "not current"
		}
		if db.WAL != nil {
			dv.Connected = db.WAL.Connected
			dv.Lag = fmtBytes(float64(db.WAL.LagBytes))
			dv.Reconnects = db.WAL.Reconnects
			dv.LastError = db.WAL.LastError
		}
		if db.DelayMax > 0 {
			dv.Delay = fmtDuration(db.DelayP50) + " / " + fmtDuration(db.DelayP99)
		}
		v.Databases = append(v.Databases, dv)
	}
	qs := p.srv.QueryReports()
	if len(qs) > topStatements {
		qs = qs[:topStatements]
	}
	for _, q := range qs {
		sv := stmtView{Database: q.Database, Text: truncate(q.Normalized, stmtMaxRunes),
			Full: truncate(q.Normalized, stmtTitleMaxRunes), Fingerprint: q.Fingerprint, Calls: q.Calls,
			HitRatio: "–", Mean: "–", Saved: fmtDuration(q.Saved)}
		if q.Calls > 0 {
			r := float64(q.Hits) / float64(q.Calls)
			sv.HitRatio, sv.HitBar = fmtPercent(r), 100*r
		}
		if q.MeanUpstream > 0 {
			sv.Mean = strconv.FormatFloat(float64(q.MeanUpstream)/float64(time.Millisecond), 'f', 2, 64)
		}
		v.Statements = append(v.Statements, sv)
	}
	return v
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := statusTemplate.Execute(w, p.view(r.Context())); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
	}
}

var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>pgmemo · {{.Upstream}}</title>
<style>
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; background: #f5f6f8; color: #1f2328; }
  header { background: #24292f; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: #c9d1d9; font-size: 13px; }
  main { padding: 16px 20px; max-width: 1200px; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
  .ok { background: #dafbe1; color: #1a7f37; }
  .bad { background: #ffebe9; color: #cf222e; }
  .cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 12px; }
  .card, section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; }
  .card .label { color: #57606a; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 26px; font-weight: 600; }
  .card .sub { color: #57606a; font-size: 12px; }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin-bottom: 12px; }
  h2 { font-size: 15px; margin: 0 0 6px; }
  h2 .now { float: right; font-weight: 600; }
  .caption { color: #57606a; font-size: 12px; margin: 0 0 4px; }
  svg.chart { width: 100%; height: auto; display: block; }
  svg.chart text { font-size: 11px; fill: #57606a; }
  svg.bar { width: 100%; height: 8px; display: block; margin: 4px 0; }
  section { margin-bottom: 12px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  th { font-size: 12px; color: #57606a; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.sql { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
  .muted { color: #57606a; }
  .err { color: #cf222e; font-size: 12px; }
  footer { color: #57606a; font-size: 12px; padding: 0 20px 16px; }
  footer a { color: #0969da; }
</style>
</head>
<body>
<header>
  <h1>pgmemo</h1>
  <span class="meta">upstream {{.Upstream}} · invalidation {{.Mode}}{{if .TxPolicy}} · tx-policy {{.TxPolicy}}{{end}} · up {{.Uptime}} · updated {{.Updated}}</span>
  {{if .Ready}}<span class="badge ok" id="ready">ready</span>{{else}}<span class="badge bad" id="ready">not ready</span>{{end}}
</header>
<main>
{{if not .Ready}}<section class="bad" id="not-ready">{{range .NotReady}}<div>{{.}}</div>{{end}}</section>{{end}}
{{if not .Caching}}<section id="caching-off">Caching is off (<code>--invalidation=off</code>): pgmemo relays every statement and measures none, so the charts stay empty.</section>{{end}}
<div class="cards">
  <div class="card"><div class="label">Hit ratio, last minute</div><div class="value" id="hit-ratio">{{.HitRatio}}</div><div class="sub">{{if .HitRatioAll}}{{.HitRatioAll}} since start{{else}}&nbsp;{{end}}</div></div>
  <div class="card"><div class="label">Throughput, last minute</div><div class="value" id="qps">{{.QPS}}<span class="sub"> statements/s</span></div><div class="sub">&nbsp;</div></div>
  <div class="card"><div class="label">Cache memory</div><div class="value" id="memory">{{.MemUsed}}</div>
    <svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="memory use"><rect width="100" height="8" rx="2" fill="#eaeef2"/><rect width="{{.MemBar}}" height="8" rx="2" fill="{{if .MemHigh}}#bf8700{{else}}#2da44e{{end}}"/></svg>
    <div class="sub">{{if .MemPct}}{{.MemPct}} of {{.MemMax}}{{else}}no cache{{end}}<br>{{.Entries}} entries · {{.Evictions}} evictions</div></div>
  <div class="card"><div class="label">Connections</div><div class="value" id="clients">{{.Clients}}<span class="sub"> clients</span></div><div class="sub">{{.Upstreams}} upstream</div></div>
</div>
<div class="charts">
{{range .Charts}}<section>
  <h2>{{.Title}} <span class="now" style="color: {{.Color}}">{{.Current}}</span></h2>
  <p class="caption">{{.Caption}}, last {{$.Window}}</p>
  <svg class="chart" viewBox="0 0 560 150" role="img" aria-label="{{.Title}}">
    <line x1="48" y1="10" x2="552" y2="10" stroke="#eaeef2"/>
    <line x1="48" y1="68" x2="552" y2="68" stroke="#eaeef2"/>
    <line x1="48" y1="126" x2="552" y2="126" stroke="#d0d7de"/>
    <text x="42" y="14" text-anchor="end">{{.YTop}}</text>
    <text x="42" y="72" text-anchor="end">{{.YMid}}</text>
    <text x="42" y="130" text-anchor="end">0</text>
    <text x="48" y="144">{{.XLeft}}</text>
    <text x="552" y="144" text-anchor="end">now</text>
    <path class="area" d="{{.Area}}" fill="{{.Color}}" fill-opacity="0.12" stroke="none"/>
    <path class="series" d="{{.Line}}" fill="none" stroke="{{.Color}}" stroke-width="2" stroke-linejoin="round"/>
    {{if not .Line}}<text x="300" y="72" text-anchor="middle">collecting samples…</text>{{end}}
  </svg>
</section>
{{end}}</div>
<section id="replication">
  <h2>Replication</h2>
  {{if eq .Mode "wal"}}{{if .Databases}}
  <table>
    <tr><th>database</th><th>state</th><th>stream</th><th class="num">staleness</th><th class="num">lag</th><th class="num">invalidation delay p50 / p99</th><th class="num">reconnects</th></tr>
    {{range .Databases}}<tr>
      <td>{{.Name}}</td>
      <td><span class="badge {{if .OK}}ok{{else}}bad{{end}}">{{.Serving}}</span>{{if .LastError}}<div class="err">{{.LastError}}</div>{{end}}</td>
      <td>{{if .Connected}}connected{{else}}disconnected{{end}}</td>
      <td class="num">{{.Staleness}}</td><td class="num">{{.Lag}}</td><td class="num">{{.Delay}}</td><td class="num">{{.Reconnects}}</td>
    </tr>{{end}}
  </table>
  {{else}}<p class="muted">No database used yet: each database's stream starts with its first client.</p>{{end}}
  {{else if eq .Mode "statement"}}<p class="muted">Invalidation by statement: only writes through this pgmemo are seen; there is no replication stream.</p>
  {{else}}<p class="muted">Caching is off.</p>{{end}}
</section>
<section id="statements">
  <h2>Top statements</h2>
  {{if .Statements}}
  <table>
    <tr><th>statement (normalized)</th><th>database</th><th class="num">calls</th><th class="num">hit ratio</th><th class="num">mean upstream ms</th><th class="num">time saved</th></tr>
    {{range .Statements}}<tr>
      <td class="sql" title="{{.Full}}">{{.Text}}</td>
      <td>{{.Database}}</td>
      <td class="num">{{.Calls}}</td>
      <td class="num">{{.HitRatio}}<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none"><rect width="100" height="8" rx="2" fill="#eaeef2"/><rect width="{{.HitBar}}" height="8" rx="2" fill="#2da44e"/></svg></td>
      <td class="num">{{.Mean}}</td>
      <td class="num">{{.Saved}}</td>
    </tr>{{end}}
  </table>
  {{else}}<p class="muted">No statements yet.</p>{{end}}
</section>
</main>
<footer><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · SQL: <code>SHOW pgmemo.stats</code>, <code>SHOW pgmemo.queries</code></footer>
</body>
</html>
`))
