package wire

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Request codes of the startup phase.
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	maxStartupLen     = 10000 // MAX_STARTUP_PACKET_LENGTH
	tlsHandshakeByte  = 0x16  // first byte of a TLS record carrying a handshake (direct SSL)
)

// Startup is one packet of the startup phase. Exactly one of the fields is set,
// except for DirectTLS, which reports a client that started a TLS handshake
// without an SSLRequest (PostgreSQL 17 sslnegotiation=direct).
type Startup struct {
	Message   *pgproto3.StartupMessage
	Cancel    *pgproto3.CancelRequest
	SSL       bool
	GSSENC    bool
	DirectTLS bool
	// Raw is the packet as received (length word included), for forwarding a
	// StartupMessage unchanged.
	Raw []byte
}

// PeekedConn is a net.Conn with bytes already read put back in front.
type PeekedConn struct {
	net.Conn
	peeked []byte
}

func (c *PeekedConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// ReadStartup reads exactly one startup-phase packet from conn and nothing more,
// so a TLS handshake can follow on the same connection. For a direct TLS
// handshake it returns DirectTLS and a connection that replays the bytes read.
func ReadStartup(conn net.Conn) (Startup, net.Conn, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(conn, hdr[:1]); err != nil {
		return Startup{}, conn, err // io.EOF: the client went away before saying anything
	}
	if hdr[0] == tlsHandshakeByte {
		return Startup{DirectTLS: true}, &PeekedConn{Conn: conn, peeked: []byte{hdr[0]}}, nil
	}
	if _, err := io.ReadFull(conn, hdr[1:8]); err != nil {
		return Startup{}, conn, unexpected(err)
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if n < 8 || n > maxStartupLen {
		return Startup{}, conn, protocolErrorf("invalid length of startup packet: %d", n)
	}
	raw := make([]byte, n)
	copy(raw, hdr[:])
	if _, err := io.ReadFull(conn, raw[8:]); err != nil {
		return Startup{}, conn, unexpected(err)
	}
	code := binary.BigEndian.Uint32(raw[4:8])
	switch {
	case code == codeSSLRequest && n == 8:
		return Startup{SSL: true, Raw: raw}, conn, nil
	case code == codeGSSENCRequest && n == 8:
		return Startup{GSSENC: true, Raw: raw}, conn, nil
	case code == codeCancelRequest:
		var cr pgproto3.CancelRequest
		if err := cr.Decode(raw[4:]); err != nil {
			return Startup{}, conn, protocolErrorf("invalid cancel request: %v", err)
		}
		return Startup{Cancel: &cr, Raw: raw}, conn, nil
	case code>>16 == 3:
		var sm pgproto3.StartupMessage
		if err := decodeStartup(&sm, raw[4:]); err != nil {
			return Startup{}, conn, err
		}
		return Startup{Message: &sm, Raw: raw}, conn, nil
	case code>>16 < 3 || code>>16 > 3 && code>>16 < 1234:
		return Startup{}, conn, &Error{Code: CodeFeatureNotSupported, Err: ErrProtocol,
			Message: fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.2", code>>16, code&0xffff)}
	default:
		return Startup{}, conn, protocolErrorf("unknown startup request code %d", code)
	}
}

// decodeStartup decodes a StartupMessage body for any 3.x minor version (pgproto3
// only accepts 3.0 and 3.2; the server answers other minors with
// NegotiateProtocolVersion, so the proxy must pass them through).
func decodeStartup(sm *pgproto3.StartupMessage, body []byte) error {
	version := binary.BigEndian.Uint32(body)
	tmp := make([]byte, len(body))
	copy(tmp, body)
	binary.BigEndian.PutUint32(tmp, pgproto3.ProtocolVersion30)
	if err := sm.Decode(tmp); err != nil {
		return protocolErrorf("invalid startup packet: %v", err)
	}
	sm.ProtocolVersion = version
	if sm.Parameters["user"] == "" {
		return &Error{Code: CodeInvalidAuthorization, Message: "no PostgreSQL user name specified in startup packet", Err: ErrProtocol}
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ErrTLSRefused is returned by StartTLS when the server answers an SSLRequest with 'N'.
var ErrTLSRefused = errors.New("server does not support SSL")

// StartTLS sends an SSLRequest on conn and, if the server agrees, performs the
// TLS handshake with cfg. A refusal returns ErrTLSRefused and conn stays usable
// in plaintext.
func StartTLS(conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], codeSSLRequest)
	if _, err := conn.Write(req[:]); err != nil {
		return conn, fmt.Errorf("send SSLRequest: %w", err)
	}
	var resp [1]byte
	if _, err := io.ReadFull(conn, resp[:]); err != nil {
		return conn, fmt.Errorf("read SSLRequest answer: %w", err)
	}
	switch resp[0] {
	case 'S':
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return conn, fmt.Errorf("TLS handshake: %w", err)
		}
		return tc, nil
	case 'N':
		return conn, ErrTLSRefused
	default:
		return conn, protocolErrorf("unexpected answer %q to SSLRequest", resp[0])
	}
}

// SendCancel sends a CancelRequest for (pid, secret) on a fresh connection conn
// and waits for the server to close it.
func SendCancel(conn net.Conn, pid uint32, secret []byte) error {
	cr := pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}
	buf, err := cr.Encode(nil)
	if err != nil {
		return fmt.Errorf("encode CancelRequest: %w", err)
	}
	if _, err := conn.Write(buf); err != nil {
		return fmt.Errorf("send CancelRequest: %w", err)
	}
	io.Copy(io.Discard, conn) // the server closes without answering
	return nil
}
