package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/pgmemo/pgmemo/wire"
)

// flushThreshold is how much output a relay gathers before writing it even
// while more input is buffered: large results cost a syscall per 64 KiB, not
// per row.
const flushThreshold = 64 << 10

// clientWriter serialises writes to the client: the upstream relay holds mu
// while it forwards a batch of complete messages, and anything else that must
// reach the client (proxy errors, shutdown notices) takes mu too, so messages
// are never interleaved.
type clientWriter struct {
	mu    sync.Mutex
	conn  net.Conn
	buf   []byte
	err   error // first write error; later writes are dropped
	stats *counters
}

// appendLocked queues one complete encoded message.
func (w *clientWriter) appendLocked(raw []byte) {
	w.buf = append(w.buf, raw...)
	if len(w.buf) >= flushThreshold {
		w.flushLocked()
	}
}

func (w *clientWriter) flushLocked() error {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return w.err
	}
	_, err := w.conn.Write(w.buf)
	w.stats.bytesToClients.Add(uint64(len(w.buf)))
	if cap(w.buf) > 4*flushThreshold {
		w.buf = make([]byte, 0, flushThreshold)
	} else {
		w.buf = w.buf[:0]
	}
	if err != nil {
		w.err = err
	}
	return err
}

// sendError writes an ErrorResponse immediately, at a message boundary.
func (w *clientWriter) sendError(severity string, e *wire.Error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = wire.AppendErrorResponse(w.buf, severity, e)
	w.flushLocked()
}

// tryLock waits up to d for the lock; a relay stuck writing to a client that
// stopped reading must not block a shutdown forever.
func (w *clientWriter) tryLock(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if w.mu.TryLock() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}
