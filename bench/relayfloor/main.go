//go:build linux

// Command relayfloor is a measuring stick, not part of pgmemo: the cheapest TCP
// relay Go can run, one OS thread in an epoll loop that copies bytes between
// each client and its own upstream connection without looking at them. It
// shows what an event-loop relay would cost on a machine, next to PgBouncer
// and pgmemo's goroutine-per-direction relay (see bench/README.md):
//
//	go run ./bench/relayfloor -listen 127.0.0.1:7432 -upstream 127.0.0.1:5432
//	pgbench -n -S -c 8 -j 2 -T 8 -h 127.0.0.1 -p 7432 ...
//
// With -mode goroutines it relays with two goroutines per client instead, one
// per direction, reading and writing with RawSyscall through the runtime's
// poller as pgmemo does: the difference between the two modes is the cost of
// that design, and the difference to pgmemo the cost of pgmemo's own work.
//
// It does no authentication, framing or cancel mapping of its own (the
// server's authentication passes through), and a write that would block is
// finished with poll(2) on that one socket, which is acceptable for pgbench's
// small messages only.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7432", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:5432", "PostgreSQL host:port")
	mode := flag.String("mode", "epoll", "epoll: one thread, one epoll loop; goroutines: two goroutines per client, one per direction (pgmemo's shape), on the runtime's poller")
	flag.Parse()
	var err error // run and runGoroutines return only when they fail
	switch *mode {
	case "epoll":
		err = run(*listen, *upstream)
	case "goroutines":
		err = runGoroutines(*listen, *upstream)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	fmt.Fprintln(os.Stderr, "relayfloor:", err)
	os.Exit(1)
}

func sockaddr(hostport string) (*syscall.SockaddrInet4, error) {
	a, err := net.ResolveTCPAddr("tcp4", hostport)
	if err != nil {
		return nil, err
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa, nil
}

// run serves until an error stops it.
func run(listen, upstream string) error {
	runtime.LockOSThread()
	lsa, err := sockaddr(listen)
	if err != nil {
		return err
	}
	usa, err := sockaddr(upstream)
	if err != nil {
		return err
	}
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(lfd, lsa); err != nil {
		return err
	}
	if err := syscall.Listen(lfd, 128); err != nil {
		return err
	}
	ep, err := syscall.EpollCreate1(0)
	if err != nil {
		return err
	}
	add := func(fd int) error {
		return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
	}
	if err := add(lfd); err != nil {
		return err
	}
	peer := map[int]int{}
	closePair := func(fd int) {
		p := peer[fd]
		delete(peer, fd)
		delete(peer, p)
		syscall.Close(fd)
		syscall.Close(p)
	}
	buf := make([]byte, 64<<10)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
				if err != nil {
					continue
				}
				ufd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
				if err == nil {
					err = syscall.Connect(ufd, usa) // blocking: fine for a benchmark's start-up
				}
				if err != nil {
					syscall.Close(cfd)
					continue
				}
				syscall.SetNonblock(ufd, true)
				for _, s := range []int{cfd, ufd} {
					syscall.SetsockoptInt(s, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
				}
				peer[cfd], peer[ufd] = ufd, cfd
				add(cfd)
				add(ufd)
				continue
			}
			p, ok := peer[fd]
			if !ok {
				continue
			}
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			if e == syscall.EAGAIN || e == syscall.EINTR {
				continue
			}
			if e != 0 || r == 0 {
				closePair(fd)
				continue
			}
			if !writeAll(p, buf[:r]) {
				closePair(fd)
			}
		}
	}
}

// writeAll writes b to fd, waiting with poll(2) when the socket is full.
func writeAll(fd int, b []byte) bool {
	for len(b) > 0 {
		w, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			b = b[w:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			pfd := struct {
				fd             int32
				events, revent int16
			}{int32(fd), 0x4 /* POLLOUT */, 0}
			syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, 1000)
		default:
			return false
		}
	}
	return true
}

// runGoroutines serves with two goroutines per client, one per direction.
func runGoroutines(listen, upstream string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		u, err := net.Dial("tcp", upstream)
		if err != nil {
			c.Close()
			continue
		}
		cr, err1 := c.(*net.TCPConn).SyscallConn()
		ur, err2 := u.(*net.TCPConn).SyscallConn()
		if err1 != nil || err2 != nil {
			c.Close()
			u.Close()
			continue
		}
		done := func() { c.Close(); u.Close() }
		go copyRaw(ur, cr, done)
		go copyRaw(cr, ur, done)
	}
}

// copyRaw copies from src to dst until either fails, with system calls the
// scheduler does not see.
func copyRaw(dst, src syscall.RawConn, done func()) {
	defer done()
	buf := make([]byte, 32<<10)
	var n int
	var errno syscall.Errno
	read := func(fd uintptr) bool {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if e == syscall.EAGAIN {
			return false
		}
		n, errno = int(r), e
		return true
	}
	var out []byte
	write := func(fd uintptr) bool {
		for len(out) > 0 {
			w, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)))
			switch e {
			case 0:
				out = out[w:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	}
	for {
		if err := src.Read(read); err != nil || errno != 0 || n == 0 {
			return
		}
		out = buf[:n]
		if err := dst.Write(write); err != nil || errno != 0 {
			return
		}
	}
}
