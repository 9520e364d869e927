package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelKey is a BackendKeyData: the one the proxy gives a client, or the one
// the upstream gave the proxy.
type cancelKey struct {
	pid    uint32
	secret []byte
}

// issueKey gives sess a proxy-level key with a secret as long as the upstream's
// (4 bytes in protocol 3.0, up to 256 in 3.2) and registers it for cancels.
func (s *Server) issueKey(sess *session, secretLen int) cancelKey {
	secretLen = max(secretLen, 4)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var b [4]byte
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:]) & 0x7fffffff // positive, like a real PID
		if pid == 0 || s.byKey[pid] != nil {
			continue
		}
		k := cancelKey{pid: pid, secret: make([]byte, secretLen)}
		rand.Read(k.secret)
		s.byKey[pid] = sess
		return k
	}
}

// handleCancel forwards a client's CancelRequest to the upstream backend of the
// session that owns the key. Unknown keys are ignored, as PostgreSQL does.
func (s *Server) handleCancel(ctx context.Context, cr *pgproto3.CancelRequest) {
	s.mu.Lock()
	sess := s.byKey[cr.ProcessID]
	s.mu.Unlock()
	if sess == nil || subtle.ConstantTimeCompare(sess.key.secret, cr.SecretKey) != 1 {
		s.stats.cancelsUnknown.Add(1)
		s.logger().Debug("cancel request for unknown key")
		return
	}
	up, t := sess.upstreamKey()
	if up.pid == 0 {
		return
	}
	if err := s.Upstream.cancel(ctx, t, up.pid, up.secret); err != nil {
		s.logger().Warn("forwarding cancel request failed", "conn", sess.id, "err", err)
		return
	}
	s.stats.cancelsForwarded.Add(1)
}
