package proxy

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/wire"
)

// discardConn is a client connection that swallows what the proxy writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// benchSession builds a session whose database has a cached plan for text
// (as if the catalog had said it is a cacheable read of one relation), with
// no client or upstream sockets: the benchmark feeds messages straight to the
// routing code, and the answers go to discardConn.
func benchSession(b *testing.B, text string) *session {
	b.Helper()
	srv := &Server{Upstream: &Upstream{}}
	cs, err := newCacheState(CacheOptions{Enabled: true}, srv.Upstream, srv.logger())
	if err != nil {
		b.Fatal(err)
	}
	srv.cache = cs
	s := &session{srv: srv, params: map[string]string{"session_authorization": "bench", "TimeZone": "UTC"}}
	s.cw.conn = discardConn{}
	s.cw.stats = &srv.stats
	s.cr = wire.NewReader(bytes.NewReader(nil), wire.ValidFrontend, 0, 0)
	s.st.Store(uint32(stateIdle))
	s.cache = newCacheSession(cs, map[string]string{"user": "bench", "database": "bench"})
	s.cache.defaults = map[string]string{"search_path": `"$user", public`, "default_transaction_isolation": "read committed"}
	s.mu.Lock()
	s.cache.refreshKey(s.params)
	sp := s.cache.searchPath
	s.mu.Unlock()
	an := cs.an.Analyze(text)
	if !an.Cacheable {
		b.Fatalf("%s: not cacheable: %s", text, an.Reason)
	}
	d := s.cache.db
	p := &plan{an: an, cacheable: true, tags: []cachecore.Tag{d.tag(16384)}, fx: []stmtFx{{}}, gen: d.gen.Load()}
	p.qs = d.queryStatsFor(p)
	d.plans.Store(planKey{sp, text}, p)
	return s
}

// frame splits concatenated raw messages into wire.Messages.
func frame(b *testing.B, raw []byte) []wire.Message {
	r := wire.NewReader(bytes.NewReader(raw), nil, 0, 0)
	var msgs []wire.Message
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		m.Raw = bytes.Clone(m.Raw)
		m.Body = m.Raw[5:]
		msgs = append(msgs, m)
	}
	return msgs
}

const benchSQL = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"

// BenchmarkHitExtended measures a pgbench -M extended style hit: Parse,
// Bind, Describe portal, Execute, Sync answered from the cache.
func BenchmarkHitExtended(b *testing.B) {
	s := benchSession(b, benchSQL)
	c := s.cache
	cache := s.srv.cache.c
	oids := []byte{}
	bindTail := []byte{0, 0, 0, 1, 0, 0, 0, 3, '4', '2', '7', 0, 0}
	// What the server would have answered.
	rowDesc := appendRowDescription(nil, "abalance")
	value := appendCommandComplete(appendDataRow(nil, "0"), "SELECT 1")
	snap := cache.Snapshot(c.db.scope, c.db.tag(16384))
	if err := cache.Set(string(c.key('S', benchSQL, oids, nil)), encodeDesc(nil, rowDesc), snap); err != nil {
		b.Fatal(err)
	}
	if err := cache.Set(string(c.key('E', benchSQL, oids, bindTail)), value, snap); err != nil {
		b.Fatal(err)
	}
	var raw []byte
	raw = appendParse(raw, nil, []byte(benchSQL), oids)
	raw = appendMsg(raw, 'B', func(b []byte) []byte { return append(append(b, 0, 0), bindTail...) })
	raw = appendMsg(raw, 'D', func(b []byte) []byte { return append(b, 'P', 0) })
	raw = appendMsg(raw, 'E', func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0) })
	raw = appendSync(raw)
	msgs := frame(b, raw)
	run := func() {
		for _, m := range msgs {
			if err := s.bufferExtended(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	run()
	if s.srv.cache.localAnswers.Load() != 1 {
		b.Fatalf("the batch was not answered locally (last: %+v)", c.last)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
}

// BenchmarkHitSimple measures a simple-protocol hit.
func BenchmarkHitSimple(b *testing.B) {
	const text = "SELECT abalance FROM pgbench_accounts WHERE aid = 427"
	s := benchSession(b, text)
	c := s.cache
	cache := s.srv.cache.c
	value := appendCommandComplete(appendDataRow(appendRowDescription(nil, "abalance"), "0"), "SELECT 1")
	if err := cache.Set(string(c.key('Q', text, nil, nil)), value, cache.Snapshot(c.db.scope, c.db.tag(16384))); err != nil {
		b.Fatal(err)
	}
	msgs := frame(b, appendMsg(nil, 'Q', func(b []byte) []byte { return append(append(b, text...), 0) }))
	if err := s.routeQuery(msgs[0]); err != nil || c.last.result != "hit" {
		b.Fatalf("not a hit: %v %+v", err, c.last)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.routeQuery(msgs[0])
	}
}

// TestHitPathAllocations keeps the hit path, and the proxy's part of a cold
// miss, from growing allocations.
func TestHitPathAllocations(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func(*testing.B)
		max  int64
	}{
		{"extended hit", BenchmarkHitExtended, 8},
		{"simple hit", BenchmarkHitSimple, 8},
		{"extended miss", BenchmarkMissExtended, 16},
		{"simple miss", BenchmarkMissSimple, 16},
	} {
		name := tt.name
		r := testing.Benchmark(tt.f)
		if r.N == 0 {
			t.Fatalf("%s: benchmark failed", name)
		}
		if a := r.AllocsPerOp(); a > tt.max {
			t.Errorf("%s: %d allocations per operation, want at most %d", name, a, tt.max)
		}
		t.Logf("%s: %s, %d allocs/op", name, time.Duration(r.NsPerOp()), r.AllocsPerOp())
	}
}

// BenchmarkMissExtended measures the proxy's own work on a cold miss of a
// pgbench -M extended style batch (Parse, Bind, Describe portal, Execute,
// Sync) whose description is cached but whose parameter is new each time:
// the attempt to answer locally, forwarding (into the upstream buffer, which
// is then discarded), and the server's answer (ParseComplete, BindComplete,
// RowDescription, DataRow, CommandComplete, ReadyForQuery) fed to the
// upstream half, which fills the cache and relays it to a discarding client.
// System calls are not included.
func BenchmarkMissExtended(b *testing.B) {
	s := benchSession(b, benchSQL)
	c := s.cache
	cache := s.srv.cache.c
	oids := []byte{}
	rowDesc := appendRowDescription(nil, "abalance")
	snap := cache.Snapshot(c.db.scope, c.db.tag(16384))
	if err := cache.Set(string(c.key('S', benchSQL, oids, nil)), encodeDesc(nil, rowDesc), snap); err != nil {
		b.Fatal(err)
	}
	var raw []byte
	raw = appendParse(raw, nil, []byte(benchSQL), oids)
	raw = appendMsg(raw, 'B', func(b []byte) []byte {
		return append(b, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, '0', '0', '0', '0', '0', '0', '0', 0, 0)
	})
	raw = appendMsg(raw, 'D', func(b []byte) []byte { return append(b, 'P', 0) })
	raw = appendMsg(raw, 'E', func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0) })
	raw = appendSync(raw)
	msgs := frame(b, raw)
	param := msgs[1].Body[len(msgs[1].Body)-9 : len(msgs[1].Body)-2] // the 7 digits
	var answer []byte
	answer = append(answer, msgParseComplete...)
	answer = append(answer, msgBindComplete...)
	answer = append(answer, rowDesc...)
	answer = appendCommandComplete(appendDataRow(answer, "0"), "SELECT 1")
	answer = appendReady(answer, 'I')
	server := frame(b, answer)
	runMisses(b, s, func(i int) {
		setDigits(param, i)
		for _, m := range msgs[:len(msgs)-1] {
			if err := s.bufferExtended(m); err != nil {
				b.Fatal(err)
			}
		}
		// The Sync, routed as routeBatch does, minus the upstream write.
		bt := &s.cache.batch
		off := len(bt.buf)
		bt.buf = append(bt.buf, msgs[len(msgs)-1].Raw...)
		bt.msgs = append(bt.msgs, bmsg{typ: 'S', off: off, end: len(bt.buf)})
		r := s.routing()
		if s.answerBatch(r, s.cache.batch.msgs, nil, true) {
			b.Fatal("a new parameter was answered locally")
		}
		s.forwardBatch(r, s.cache.batch.msgs)
		s.cache.batch.reset()
		answerFromServer(s, server)
	})
}

// BenchmarkMissSimple is BenchmarkMissExtended for pgbench -M simple: a
// Query whose literal is new each time (its plan is found by its shape),
// forwarded, and the server's answer filling the cache.
func BenchmarkMissSimple(b *testing.B) {
	const text = "SELECT abalance FROM pgbench_accounts WHERE aid = 0000000"
	s := benchSession(b, text)
	// Later texts differ in their literal: they find the plan by its shape.
	d, sp := s.cache.db, s.cache.searchPath
	pl, _ := d.plans.Load(planKey{sp, text})
	shape, ok := shapeOf(text)
	if !ok || shape == text {
		b.Fatalf("%s has no shape", text)
	}
	d.plans.Store(shapeKey{sp, shape}, pl)
	msgs := frame(b, appendMsg(nil, 'Q', func(b []byte) []byte { return append(append(b, text...), 0) }))
	q := msgs[0]
	digits := q.Body[len(q.Body)-8 : len(q.Body)-1]
	answer := appendReady(appendCommandComplete(appendDataRow(appendRowDescription(nil, "abalance"), "0"), "SELECT 1"), 'I')
	server := frame(b, answer)
	runMisses(b, s, func(i int) {
		setDigits(digits, i)
		if err := s.routeQuery(q); err != nil {
			b.Fatal(err)
		}
		answerFromServer(s, server)
	})
}

// runMisses runs miss(0), checks that it filled the cache, and then runs
// miss(1) to miss(b.N) timed: each must be a new key.
func runMisses(b *testing.B, s *session, miss func(i int)) {
	cache := s.srv.cache.c
	before := cache.Stats().Fills
	miss(0)
	if st := cache.Stats(); st.Fills != before+1 {
		b.Fatalf("the miss did not fill the cache: %+v (last %+v)", st, s.cache.last)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		miss(i)
	}
}

// answerFromServer feeds the server's answer to the upstream half of s as
// relayUpstream does, after dropping what s would have sent upstream.
func answerFromServer(s *session, server []wire.Message) {
	s.upBuf = s.upBuf[:0]
	for _, m := range server {
		s.observe(m.Type, m.Body)
		s.cacheOnServer(m)
		s.pipe.onServer(m.Type)
	}
}

// setDigits writes i into digits in decimal, zero-padded.
func setDigits(digits []byte, i int) {
	for j := len(digits) - 1; j >= 0; j-- {
		digits[j] = byte('0' + i%10)
		i /= 10
	}
}
