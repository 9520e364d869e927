package wire

import (
	"encoding/binary"
	"errors"
	"io"
)

// Default framing limits.
const (
	// DefaultMaxBuffered is the largest message body the Reader keeps in memory.
	// Larger messages are streamed through with Reader.StreamBody.
	DefaultMaxBuffered = 8 << 20
	// DefaultMaxMessage is the largest message body accepted at all; PostgreSQL's
	// own limit for any message is 1 GiB.
	DefaultMaxMessage = 1<<30 - 1
	readChunk         = 32 << 10
	headerLen         = 5
)

// Message is one framed protocol message. Raw holds the type byte, the length
// word and the body; Body aliases Raw[5:]. Both are only valid until the next
// call to Next. When Large is set the body was not read: Raw holds only the
// 5-byte header and the caller must call StreamBody (or DiscardBody) before Next.
type Message struct {
	Type  byte
	Len   int // body length in bytes
	Raw   []byte
	Body  []byte
	Large bool
}

// Reader frames PostgreSQL messages read from an io.Reader. It never holds more
// than MaxBuffered+5 bytes of a single message, and rejects bodies larger than
// MaxMessage or types that Valid does not accept with a protocol error. It is
// not safe for concurrent use.
type Reader struct {
	rd          io.Reader
	buf         []byte
	r, w        int
	maxBuffered int
	maxMessage  int
	valid       func(byte) bool
	pending     int // body bytes of a Large message not yet consumed
}

// NewReader returns a Reader. valid decides which message type bytes are
// accepted (nil accepts all). Zero limits take the defaults.
func NewReader(rd io.Reader, valid func(byte) bool, maxBuffered, maxMessage int) *Reader {
	if maxBuffered <= 0 {
		maxBuffered = DefaultMaxBuffered
	}
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	if maxBuffered > maxMessage {
		maxBuffered = maxMessage
	}
	return &Reader{rd: rd, buf: make([]byte, readChunk), maxBuffered: maxBuffered, maxMessage: maxMessage, valid: valid}
}

// Buffered reports how many bytes are already read from the connection but not
// yet returned. A relay flushes its output when this is zero, before it blocks.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill makes at least n bytes available in r.buf[r.r:r.w], growing the buffer as
// needed.
func (r *Reader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if len(r.buf)-r.r < n { // not enough room past r.r: compact or grow
		if n <= len(r.buf) {
			copy(r.buf, r.buf[r.r:r.w])
		} else {
			nb := make([]byte, max(n, 2*len(r.buf)))
			copy(nb, r.buf[r.r:r.w])
			r.buf = nb
		}
		r.w -= r.r
		r.r = 0
	}
	for r.w-r.r < n {
		m, err := r.rd.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			if r.w-r.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && r.w-r.r > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// shrink returns an oversized buffer to its normal size once it is empty.
func (r *Reader) shrink() {
	if len(r.buf) > 4*readChunk && r.r == r.w {
		r.buf = make([]byte, readChunk)
		r.r, r.w = 0, 0
	}
}

// Next reads the next message. io.EOF is returned only at a clean message
// boundary; a connection that ends mid-message yields io.ErrUnexpectedEOF.
func (r *Reader) Next() (Message, error) {
	if r.pending > 0 {
		if err := r.DiscardBody(); err != nil {
			return Message{}, err
		}
	}
	if r.r == r.w {
		r.shrink()
	}
	if err := r.fill(headerLen); err != nil {
		return Message{}, err
	}
	h := r.buf[r.r : r.r+headerLen]
	typ := h[0]
	if r.valid != nil && !r.valid(typ) {
		return Message{}, protocolErrorf("invalid message type %q (%d)", rune(typ), typ)
	}
	length := int(int32(binary.BigEndian.Uint32(h[1:])))
	if length < 4 {
		return Message{}, protocolErrorf("invalid message length %d for message type %q", length, rune(typ))
	}
	body := length - 4
	if body > r.maxMessage {
		return Message{}, protocolErrorf("message of type %q is %d bytes, more than the limit of %d", rune(typ), body, r.maxMessage)
	}
	if body > r.maxBuffered {
		raw := r.buf[r.r : r.r+headerLen]
		r.r += headerLen
		r.pending = body
		return Message{Type: typ, Len: body, Raw: raw, Large: true}, nil
	}
	if err := r.fill(headerLen + body); err != nil {
		return Message{}, err
	}
	raw := r.buf[r.r : r.r+headerLen+body]
	r.r += headerLen + body
	return Message{Type: typ, Len: body, Raw: raw, Body: raw[headerLen:]}, nil
}

// StreamBody copies the body of the current Large message to w in chunks,
// without holding it in memory.
func (r *Reader) StreamBody(w io.Writer) error {
	for r.pending > 0 {
		if r.r == r.w {
			r.r, r.w = 0, 0
			m, err := r.rd.Read(r.buf)
			r.w = m
			if m == 0 && err != nil {
				if errors.Is(err, io.EOF) {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		n := min(r.pending, r.w-r.r)
		if w != nil {
			if _, err := w.Write(r.buf[r.r : r.r+n]); err != nil {
				return err
			}
		}
		r.r += n
		r.pending -= n
	}
	return nil
}

// DiscardBody skips the rest of the current Large message.
func (r *Reader) DiscardBody() error { return r.StreamBody(nil) }

// Ready reports whether Next can return a message without reading from the
// connection: a whole message (or the header of a message too large to buffer)
// is already buffered. A relay flushes its output before a Next that would block.
func (r *Reader) Ready() bool {
	n := r.w - r.r
	if r.pending > 0 || n < headerLen {
		return false
	}
	body := int(int32(binary.BigEndian.Uint32(r.buf[r.r+1:]))) - 4
	return body < 0 || body > r.maxBuffered || n >= headerLen+body
}
