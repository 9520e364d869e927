package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// listenUnix listens on DIR/.s.PGSQL.PORT, PORT being tcpAddr's, which is
// where libpq looks for a server given -h DIR -p PORT. A socket file left by
// a pgmemo that did not exit cleanly is replaced; one that still accepts
// connections is an error, as for PostgreSQL. Anyone who may reach the
// directory may connect (mode 0777, as PostgreSQL's default): clients still
// authenticate with the server.
func listenUnix(dir string, tcpAddr net.Addr) (net.Listener, error) {
	ta, ok := tcpAddr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("--unix-socket-dir: no port in %s", tcpAddr)
	}
	path := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(ta.Port))
	l, err := net.Listen("unix", path)
	if errors.Is(err, syscall.EADDRINUSE) {
		if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
			c.Close()
			return nil, fmt.Errorf("--unix-socket-dir: %s is in use by another server", path)
		}
		if rerr := os.Remove(path); rerr != nil {
			return nil, fmt.Errorf("--unix-socket-dir: stale socket %s: %w", path, rerr)
		}
		l, err = net.Listen("unix", path)
	}
	if err != nil {
		return nil, fmt.Errorf("--unix-socket-dir: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		l.Close()
		return nil, fmt.Errorf("--unix-socket-dir: %w", err)
	}
	return l, nil
}
