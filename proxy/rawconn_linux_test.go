package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// rawPair returns a connected TCP pair over loopback with the proxy's end
// wrapped as the relay wraps its sockets.
func rawPair(t *testing.T) (raw net.Conn, peer net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	raw = newRawConn(c)
	if _, ok := raw.(*rawConn); !ok {
		t.Fatalf("newRawConn(%T) did not wrap it", c)
	}
	t.Cleanup(func() { raw.Close(); p.Close() })
	return raw, p
}

func TestRawConnReadWrite(t *testing.T) {
	raw, peer := rawPair(t)
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(raw, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if n, err := raw.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read = %d, %v", n, err)
	}
	if _, err := raw.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	n, err = io.ReadAtLeast(peer, buf, 5)
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	peer.Close()
	if n, err := raw.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed = %d, %v; want io.EOF", n, err)
	}
}

// A write larger than the socket buffers waits for the reader (the EAGAIN
// path) and delivers every byte in order, also with concurrent writers.
func TestRawConnLargeConcurrentWrites(t *testing.T) {
	raw, peer := rawPair(t)
	const writers, size = 4, 8 << 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := raw.Write(bytes.Repeat([]byte{byte('a' + i)}, size))
			if err == nil && n != size {
				err = io.ErrShortWrite
			}
			errs <- err
		}()
	}
	got := make([]byte, writers*size)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each Write is atomic with respect to the others.
	for off := 0; off < len(got); off += size {
		chunk := got[off : off+size]
		if bytes.Count(chunk, chunk[:1]) != size {
			t.Fatalf("write at offset %d interleaved with another", off)
		}
	}
}

func TestRawConnDeadlineAndClose(t *testing.T) {
	raw, _ := rawPair(t)
	raw.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := raw.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline = %v; want a timeout", err)
	}
	raw.SetReadDeadline(time.Time{})

	done := make(chan error, 1)
	go func() {
		_, err := raw.Read(make([]byte, 8))
		done <- err
	}()
	// Close from another goroutine unblocks the read with net.ErrClosed,
	// whenever it lands relative to the read.
	raw.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed conn = %v; want net.ErrClosed", err)
	}
	if _, err := raw.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed conn = %v; want net.ErrClosed", err)
	}
}

func TestRawConnPeerReset(t *testing.T) {
	raw, peer := rawPair(t)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // RST
	var err error
	for range 100 { // the first writes may still be accepted by the kernel
		if _, err = raw.Write(make([]byte, 1<<16)); err != nil {
			break
		}
	}
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a reset peer = %v; want a write *net.OpError", err)
	}
}

// TestServiceConfigDialsRawConn: pgmemo's own connections (the replication
// stream, the catalog) get sockets whose I/O goes through rawConn, and they
// carry data both ways.
func TestServiceConfigDialsRawConn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo
	}()
	cfg, err := pgconn.ParseConfig("postgres://pgmemo@" + l.Addr().String() + "/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg = serviceConfig(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cfg.DialFunc(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*rawConn); !ok {
		t.Fatalf("dialed a %T, not a *rawConn", c)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v; want the echo of ping", got, err)
	}
}
