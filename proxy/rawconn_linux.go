package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawConn is a socket whose reads and writes are system calls the Go scheduler
// does not see (syscall.RawSyscall on the non-blocking descriptor, waiting for
// readiness through the runtime's poller as net.Conn does).
//
// Why: on loopback a write to a socket does the receiver's TCP work and wakes
// it, which often takes longer than the runtime's 20 µs syscall check. sysmon
// then counts the thread as blocked, hands its P to another thread (a futex
// wake-up and a context switch) and keeps polling every 20 µs instead of
// backing off. With two such system calls per round trip in each direction,
// the proxy spent about a third of its CPU in those hand-offs and in sysmon.
// The calls never block (the descriptor is non-blocking), so hiding them from
// the scheduler loses nothing.
type rawConn struct {
	net.Conn
	r, w rawDir
}

// rawDir is one direction of a rawConn: one call at a time, as net.Conn allows
// a Read and a Write to run concurrently. The callback is bound once: a
// closure per call would allocate.
type rawDir struct {
	mu    sync.Mutex
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool             // the system calls, for wait
	wait  func(func(fd uintptr) bool) error // the RawConn's Read or Write
}

// newRawConn wraps conn when it exposes its descriptor; otherwise it returns
// conn unchanged.
func newRawConn(conn net.Conn) net.Conn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return conn
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return conn
	}
	c := &rawConn{Conn: conn}
	c.r.fn, c.r.wait = c.read, rc.Read
	c.w.fn, c.w.wait = c.write, rc.Write
	return c
}

func (c *rawConn) Read(p []byte) (int, error) {
	n, err := c.transfer(&c.r, "read", p)
	if err == nil && n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}

func (c *rawConn) Write(p []byte) (int, error) { return c.transfer(&c.w, "write", p) }

// transfer runs d's system calls on p until they are done, waiting for the
// socket whenever they report it not ready.
func (c *rawConn) transfer(d *rawDir, op string, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf, d.n, d.errno = p, 0, 0
	err := c.result(op, d.wait(d.fn), d.errno)
	d.buf = nil
	return d.n, err
}

// read is the callback of Read: false means "not ready, wait and call again".
func (c *rawConn) read(fd uintptr) bool {
	n, e := rawIO(syscall.SYS_READ, fd, c.r.buf)
	if e == syscall.EAGAIN {
		return false
	}
	c.r.n, c.r.errno = n, e
	return true
}

// write is the callback of Write: it writes until everything is written, the
// socket is full (false: wait and call again) or an error.
func (c *rawConn) write(fd uintptr) bool {
	d := &c.w
	for d.n < len(d.buf) {
		n, e := rawIO(syscall.SYS_WRITE, fd, d.buf[d.n:])
		switch e {
		case 0:
			d.n += n
		case syscall.EAGAIN:
			return false
		default:
			d.errno = e
			return true
		}
	}
	return true
}

// rawIO makes one read or write system call on p (not empty), retrying when
// a signal interrupts it; n is 0 on an error.
func rawIO(trap, fd uintptr, p []byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 {
			return int(r), 0
		}
		if e != syscall.EINTR {
			return 0, e
		}
	}
}

// result is the error of a Read or Write: err from the RawConn (closed,
// deadline) or errno from the system call.
func (c *rawConn) result(op string, err error, errno syscall.Errno) error {
	switch {
	case err != nil:
		return c.opError(op, err)
	case errno != 0:
		return c.opError(op, os.NewSyscallError(op, errno))
	}
	return nil
}

// opError shapes an error as net.Conn's methods do, so that errors.Is(err,
// net.ErrClosed), os.ErrDeadlineExceeded and net.Error's Timeout keep working.
func (c *rawConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
