package proxy_test

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/pgmemo/pgmemo/proxy"
)

// cutAfter is a TCP forwarder to the test cluster that, on the connection
// whose client sends marker, forwards that message to the server and then
// breaks both sides as soon as the server answers, without passing the answer
// on: the server did the work, the proxy never hears of it.
func cutAfter(t *testing.T, marker string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		connsMu sync.Mutex
		conns   []net.Conn
	)
	// The proxy's catalog connections outlive its shutdown: close them all.
	t.Cleanup(func() {
		l.Close()
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", cluster.Port))
			if err != nil {
				c.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, c, u)
			connsMu.Unlock()
			var mu sync.Mutex
			cut := false
			go func() { // client to server
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(buf[:n], []byte(marker)) {
							mu.Lock()
							cut = true
							mu.Unlock()
						}
						if _, err := u.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						u.Close()
						return
					}
				}
			}()
			go func() { // server to client
				defer c.Close()
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					mu.Lock()
					stop := cut
					mu.Unlock()
					if stop {
						return // the answer to the marked message is dropped
					}
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A COMMIT the server carried out but whose answer was lost with the
// connection: the proxy invalidates the transaction's writes anyway, so
// other sessions do not keep reading the old rows (statement invalidation
// has no other source).
func TestCacheCommitAnswerLost(t *testing.T) {
	addr := cutAfter(t, "COMMIT /* cut here */")
	p := startProxy(t, withCache(), func(s *proxy.Server) {
		up, err := proxy.ParseUpstream(withHostPort(cluster.URL("", "", ""), addr))
		if err != nil {
			t.Fatal(err)
		}
		s.Upstream = up
	})
	db := newDB(t)
	a := pgxConnect(t, p.URL("", "", db))
	b := pgxConnect(t, p.URL("", "", db))
	mustExec(t, a, "CREATE TABLE kv(k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'old')")
	const q = "SELECT v FROM kv WHERE k = 1"
	expect(t, b, "fill", q, "old", "miss-filled")
	expect(t, b, "hit", q, "old", "hit")
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "UPDATE kv SET v = 'new' WHERE k = 1")
	if _, err := a.Exec(testCtx(t), "COMMIT /* cut here */"); err == nil {
		t.Fatal("the COMMIT's answer arrived: the forwarder did not cut")
	}
	waitSessions(t, p, 1)
	expect(t, b, "after the lost answer", q, "new", "miss-filled")
}
