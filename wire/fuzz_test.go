package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Fuzz targets for the two parsers that see untrusted bytes first: the
// startup-phase reader and the message framer. The seed corpora live in
// testdata/fuzz/FuzzReadStartup and testdata/fuzz/FuzzReader and run with
// every `go test`.

// fakeConn is a net.Conn that reads from a fixed byte slice, at most chunk
// bytes per Read, and records writes.
type fakeConn struct {
	r     *bytes.Reader
	chunk int
	wrote bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}
func (c *fakeConn) Write(p []byte) (int, error)      { return c.wrote.Write(p) }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadStartup feeds arbitrary bytes to ReadStartup, packet after packet
// as the proxy's negotiation does. It must never panic, never read past the
// packet it returns, and return either an error or exactly one kind of packet.
func FuzzReadStartup(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := &fakeConn{r: bytes.NewReader(data), chunk: 7}
		var conn net.Conn = fc
		pos := 0
		for range 32 {
			st, c, err := ReadStartup(conn)
			if c == nil {
				t.Fatal("ReadStartup returned a nil conn")
			}
			if fc.wrote.Len() != 0 {
				t.Fatalf("ReadStartup wrote %q", fc.wrote.Bytes())
			}
			if err != nil {
				checkStartupError(t, err, data[pos:])
				return
			}
			kinds := 0
			for _, set := range []bool{st.Message != nil, st.Cancel != nil, st.SSL, st.GSSENC, st.DirectTLS} {
				if set {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("Startup %+v has %d kinds set, want exactly one", st, kinds)
			}
			if st.DirectTLS {
				if data[pos] != tlsHandshakeByte {
					t.Fatalf("DirectTLS for first byte %#x", data[pos])
				}
				if consumed := len(data) - fc.r.Len(); consumed != pos+1 {
					t.Fatalf("DirectTLS after consuming %d bytes, want %d", consumed, pos+1)
				}
				// The returned conn replays the byte read, then the rest, unchanged.
				rest, err := io.ReadAll(c)
				if err != nil || !bytes.Equal(rest, data[pos:]) {
					t.Fatalf("DirectTLS replay = %q, %v; want %q", rest, err, data[pos:])
				}
				return
			}
			n := len(st.Raw)
			if n < 8 || n > maxStartupLen || pos+n > len(data) || !bytes.Equal(st.Raw, data[pos:pos+n]) {
				t.Fatalf("Raw = %q is not the next packet of the input", st.Raw)
			}
			if declared := int(binary.BigEndian.Uint32(st.Raw)); declared != n {
				t.Fatalf("Raw is %d bytes, its length word says %d", n, declared)
			}
			if consumed := len(data) - fc.r.Len(); consumed != pos+n {
				t.Fatalf("ReadStartup consumed %d bytes for a packet ending at %d: it read ahead", consumed, pos+n)
			}
			switch {
			case st.Message != nil:
				if st.Message.ProtocolVersion>>16 != 3 || st.Message.Parameters["user"] == "" {
					t.Fatalf("StartupMessage %+v accepted", st.Message)
				}
			case st.Cancel != nil:
				if l := len(st.Cancel.SecretKey); l < 4 || l > 256 {
					t.Fatalf("CancelRequest with a %d-byte key accepted", l)
				}
			case st.SSL, st.GSSENC:
				if n != 8 {
					t.Fatalf("SSL/GSSENC request of %d bytes", n)
				}
			}
			pos += n
			conn = c
		}
	})
}

// checkStartupError checks an error of ReadStartup on input rest.
func checkStartupError(t *testing.T, err error, rest []byte) {
	t.Helper()
	var we *Error
	switch {
	case errors.As(err, &we):
		if len(we.Code) != 5 || we.Message == "" {
			t.Fatalf("error %#v lacks a SQLSTATE or message", we)
		}
	case errors.Is(err, io.EOF):
		if len(rest) != 0 {
			t.Fatalf("io.EOF with %d bytes left", len(rest))
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		if len(rest) == 0 {
			t.Fatal("io.ErrUnexpectedEOF at a clean end")
		}
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

// countingReader counts Read calls and returns at most chunk bytes per call.
type countingReader struct {
	r     *bytes.Reader
	chunk int
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}

// FuzzReader frames arbitrary bytes with small limits. It must never panic,
// never return a body longer than the declared length or the limits allow,
// reproduce the input byte for byte, report io.EOF only at a message boundary,
// and never read when Ready said a message was buffered.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, frontendOnly bool, maxBuffered, maxMessage uint16, chunk, mode uint8) {
		mb, mm := int(maxBuffered%1024)+1, int(maxMessage%4096)+1
		var valid func(byte) bool
		if frontendOnly {
			valid = ValidFrontend
		}
		cr := &countingReader{r: bytes.NewReader(data), chunk: int(chunk%64) + 1}
		r := NewReader(cr, valid, mb, mm)
		limitBuffered := min(mb, mm)
		pos := 0         // bytes of data accounted for
		pending := false // a Large body left for Next to skip
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("Next keeps returning messages past the input")
			}
			if !pending && (r.Buffered() < 0 || r.Buffered() > len(data)-pos) {
				t.Fatalf("Buffered() = %d with %d input bytes left", r.Buffered(), len(data)-pos)
			}
			ready, reads := r.Ready(), cr.reads
			m, err := r.Next()
			if ready && cr.reads != reads {
				t.Fatal("Ready() was true but Next read from the connection")
			}
			pending = false
			if err != nil {
				var we *Error
				switch {
				case errors.Is(err, io.EOF):
					if pos != len(data) {
						t.Fatalf("io.EOF at %d of %d bytes", pos, len(data))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if pos == len(data) {
						t.Fatal("io.ErrUnexpectedEOF at a message boundary")
					}
				case errors.As(err, &we):
					if we.Code != CodeProtocolViolation || !errors.Is(err, ErrProtocol) {
						t.Fatalf("framing error %v has code %s", err, we.Code)
					}
				default:
					t.Fatalf("unexpected error %T: %v", err, err)
				}
				return
			}
			if len(m.Raw) < 5 || m.Raw[0] != m.Type || !bytes.Equal(m.Raw, data[pos:pos+len(m.Raw)]) {
				t.Fatalf("Raw %q does not match the input at %d", m.Raw, pos)
			}
			if declared := int(binary.BigEndian.Uint32(m.Raw[1:])) - 4; declared != m.Len {
				t.Fatalf("Len = %d, length word says %d", m.Len, declared)
			}
			if m.Len < 0 || m.Len > mm {
				t.Fatalf("message of %d bytes accepted with MaxMessage %d", m.Len, mm)
			}
			if valid != nil && !valid(m.Type) {
				t.Fatalf("type %q accepted", m.Type)
			}
			pos += 5
			if !m.Large {
				if m.Len > limitBuffered || len(m.Body) != m.Len || len(m.Raw) != m.Len+5 {
					t.Fatalf("buffered message: Len %d, body %d, raw %d, limit %d", m.Len, len(m.Body), len(m.Raw), limitBuffered)
				}
				pos += m.Len
				continue
			}
			if m.Len <= limitBuffered || len(m.Raw) != 5 || m.Body != nil {
				t.Fatalf("Large message: Len %d, raw %d, body %d, limit %d", m.Len, len(m.Raw), len(m.Body), limitBuffered)
			}
			switch mode % 3 {
			case 0: // stream the body
				var body bytes.Buffer
				err := r.StreamBody(&body)
				if body.Len() > m.Len || !bytes.Equal(body.Bytes(), data[pos:pos+body.Len()]) {
					t.Fatalf("streamed %d bytes of a %d-byte body, or not the input's", body.Len(), m.Len)
				}
				if err != nil {
					if !errors.Is(err, io.ErrUnexpectedEOF) || pos+m.Len <= len(data) {
						t.Fatalf("StreamBody: %v with the whole body available", err)
					}
					return
				}
				if body.Len() != m.Len {
					t.Fatalf("streamed %d bytes of a %d-byte body", body.Len(), m.Len)
				}
			case 1: // skip it explicitly
				if err := r.DiscardBody(); err != nil {
					if pos+m.Len <= len(data) {
						t.Fatalf("DiscardBody: %v with the whole body available", err)
					}
					return
				}
			case 2: // leave it to the next Next
				if pos+m.Len > len(data) {
					if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("Next after a truncated Large body: %v", err)
					}
					return
				}
				pending = true
			}
			pos += m.Len
		}
	})
}
