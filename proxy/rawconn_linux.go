package proxy

import (
	"io"
	"net"
	"os"
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
	rc syscall.RawConn
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
	return &rawConn{Conn: conn, rc: rc}
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				n = int(r)
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// opError shapes an error as net.Conn's methods do, so that errors.Is(err,
// net.ErrClosed), os.ErrDeadlineExceeded and net.Error's Timeout keep working.
func (c *rawConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
