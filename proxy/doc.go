// Package proxy is pgmemo's PostgreSQL wire-protocol proxy: a Server accepts
// clients and gives each one a session, served by one goroutine plus a second one
// that relays the upstream server's messages back.
//
// A session goes through these phases:
//
//  1. Negotiation. The client's first packets are read one at a time and never
//     ahead (wire.ReadStartup): an SSLRequest is answered 'S' and TLS is
//     terminated when Server.TLSConfig is set, 'N' otherwise; a GSSENCRequest is
//     answered 'N'; a direct TLS handshake (sslnegotiation=direct) is accepted
//     with ALPN "postgresql". A CancelRequest is looked up by the proxy-issued key
//     and forwarded to the owning session's upstream backend, then the
//     connection closes. The phase ends with the StartupMessage.
//
//  2. Upstream connection. The proxy dials Server.Upstream (TLS as its sslmode
//     says, with the URL's fallbacks) and forwards the StartupMessage byte for
//     byte: the client's user, database, options and protocol version (3.0 or
//     3.2) go to the server unchanged. A failure reaches the client as FATAL
//     08001.
//
//  3. Authentication. Authentication requests and the client's responses are
//     relayed one for one (trust, password, md5, SCRAM-SHA-256, GSS), so the
//     server checks the client's own credentials. SCRAM-SHA-256-PLUS is removed
//     from the server's mechanism list, because channel binding cannot cross a
//     proxy that terminates TLS. The server's BackendKeyData is kept and the
//     client receives a key issued by the proxy instead. With caching on, the
//     proxy then reads the session defaults it cannot learn otherwise
//     (search_path, default_transaction_isolation) and the session's first
//     digest (probe.go) with one Query of its own.
//     The first ReadyForQuery ends the phase; phases 1-3 are bounded by
//     Server.StartupTimeout.
//
//  4. Relay. The session goroutine reads client messages and forwards them; a
//     second goroutine forwards server messages. Both work message by message
//     (wire.Reader frames each one, bounded in size) and flush when no further
//     complete message is buffered, so a pipelined batch or a large result costs
//     a write per batch rather than per message, and memory per connection stays
//     bounded: messages larger than Server.MaxBufferedBytes are streamed through
//     in chunks. On Linux both sockets read and write through rawconn_linux.go:
//     system calls the Go scheduler does not see, waiting for readiness through
//     the runtime's poller as net.Conn does, so that a loopback write that wakes
//     the peer does not make the runtime hand the thread's P to another thread.
//     pgmemo's own connections (the replication stream, the catalog) do the
//     same (serviceConfig).
//     The session state (see state.go) follows the server's
//     messages: ReadyForQuery gives the transaction status, Copy*Response the
//     COPY modes. The pipeline (pipeline.go) records every forwarded message
//     that expects an answer and is advanced by the server's answers, following
//     the protocol's rules (an extended-protocol error skips to the next Sync,
//     Syncs during COPY IN are ignored), so the proxy always knows how many
//     ReadyForQuery messages are still owed. NotificationResponse,
//     NoticeResponse and ParameterStatus flow to the client as they arrive, also
//     while it is idle.
//
//     With caching on (Server.Cache), the client half routes instead of
//     forwarding: a simple Query is analysed (query.Analyzer, then a per-database
//     plan built from the catalog on a service connection) and, when it is a
//     cacheable read and the session's state allows (cacheSession.bypassReason),
//     answered from the cache or forwarded with a capture that fills it;
//     extended-protocol messages are buffered to Sync or Flush and the batch is
//     routed once (extended.go): answered entirely locally, or forwarded whole,
//     preceded by the statements and portals that existed only locally (a
//     batch that needs a statement the proxy sent in an earlier batch whose
//     answers have not come waits for them: the server may have skipped it), or
//     (mixed.go) split: a leading BEGIN or Close goes upstream with the Sync
//     and the rest is answered locally, written just before the server's
//     ReadyForQuery. A statement's description (ParameterDescription and
//     RowDescription, learned from the server) is cached like a result; each
//     statement keeps a cachecore.Ref to it and checks it (still the key's
//     entry, current snapshot, TTL, same key) on every Describe instead of
//     looking it up again. Local
//     answers are given only when nothing is in flight upstream, so they never
//     overtake the server's. Every forwarded message carries its instructions
//     in the pipeline (pendingX: fill, learn a description, drop the answer to
//     a message the proxy sent itself, the statement's effects), which the
//     upstream half carries out before the message leaves the pipeline
//     (capture.go): effects are applied at each CommandComplete, and at a
//     ReadyForQuery that ends a transaction the committed writes are
//     invalidated before the client can see it, the rolled-back ones dropped.
//     After code the proxy cannot see (DO, CALL, a volatile function, a write
//     that fires triggers), the session bypasses the cache until a probe of
//     the proxy's own, a Query sent in front of the next batch forwarded while
//     the session is idle and answered to the proxy alone, shows its settings,
//     roles and temporary objects unchanged (probe.go).
//
//  5. Termination. After a Terminate the proxy stops reading the client but
//     still delivers the server's answers to everything pipelined before it,
//     until the server closes. A client disconnect (io.EOF is not an error), a
//     protocol violation (FATAL 08P01 to the client), a server FATAL or a lost
//     upstream (FATAL 08006) closes both connections. A panic in the session is
//     recovered, logged and reported as FATAL XX000; other sessions are not
//     affected.
//
// Server.Shutdown stops accepting, closes idle sessions at once and busy ones
// when they next become idle (nothing owed by the server, no transaction
// open), telling each client FATAL 57P01; when its context ends it closes the
// rest and cancels the statements they still had running upstream.
package proxy
