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

// issueKey gives sess the key its client sees: the upstream backend's real
// process ID (applications compare it with NotificationResponse PIDs and
// pg_stat_activity), unless another session already holds that ID (possible
// with several upstream hosts), and a secret of the proxy's own, as long as the
// upstream's (4 bytes in protocol 3.0, up to 256 in 3.2). Only the proxy can
// map it to the upstream's secret, so a cancel reaches only the sender's own
// backend.
func (s *Server) issueKey(sess *session, upstreamPID uint32, secretLen int) cancelKey {
	k := cancelKey{pid: upstreamPID, secret: make([]byte, max(secretLen, 4))}
	rand.Read(k.secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k.pid == 0 || s.byKey[k.pid] != nil {
		var b [4]byte
		rand.Read(b[:])
		k.pid = binary.BigEndian.Uint32(b[:]) & 0x7fffffff // positive, like a real PID
	}
	s.byKey[k.pid] = sess
	sess.key = k // under s.mu: handleCancel reads it there
	return k
}

// handleCancel forwards a client's CancelRequest to the upstream backend of the
// session that owns the key. Unknown keys are ignored, as PostgreSQL does.
func (s *Server) handleCancel(ctx context.Context, cr *pgproto3.CancelRequest) {
	s.mu.Lock()
	sess := s.byKey[cr.ProcessID]
	var secret []byte
	if sess != nil {
		secret = sess.key.secret
	}
	s.mu.Unlock()
	if sess == nil || subtle.ConstantTimeCompare(secret, cr.SecretKey) != 1 {
		s.stats.cancelsUnknown.Add(1)
		s.logger().Debug("cancel request for unknown key")
		return
	}
	if sess.cancelWaiting() || sess.cancelUpstream(ctx) {
		s.stats.cancelsForwarded.Add(1)
	}
}

// cancelUpstream sends a CancelRequest for the session's upstream backend.
func (sess *session) cancelUpstream(ctx context.Context) bool {
	up, t := sess.upstreamKey()
	if up.pid == 0 {
		return false
	}
	sess.cancels.Add(1)
	if err := sess.srv.Upstream.cancel(ctx, t, up.pid, up.secret); err != nil {
		sess.log.Warn("forwarding cancel request failed", "err", err)
		return false
	}
	return true
}
