// Package wire holds the PostgreSQL protocol helpers that pgmemo builds on top of
// github.com/jackc/pgx/v5/pgproto3: a bounded message framer that hands out each
// message's raw bytes (so the proxy can relay and later cache them without
// re-encoding) and streams messages too large to buffer; startup-phase handling
// (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) and the upstream TLS
// negotiation; and builders for the ErrorResponse messages the proxy sends itself.
// It imports nothing else from pgmemo, never logs, and reports failures as typed
// errors that carry a SQLSTATE.
package wire
