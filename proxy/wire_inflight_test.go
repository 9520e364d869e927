package proxy_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// TestShutdownAfterSkippedSync replays flows of the golden wire scripts in
// which PostgreSQL answers fewer ReadyForQuery messages than the client sent
// Query, FunctionCall and Sync messages: Sync is ignored during copy-in
// (copy_in.json), and after an error in an extended-protocol batch everything
// up to the next Sync is skipped, Query and FunctionCall included
// (pipeline.json). The session is idle afterwards, so Shutdown must close it at
// once; a proxy that counted every such message as owing a ReadyForQuery would
// instead wait for Shutdown's context to end.
func TestShutdownAfterSkippedSync(t *testing.T) {
	pgtest.Need(t, cluster)
	type exchange struct {
		send  []pgproto3.FrontendMessage
		until string // read up to this message type
	}
	for _, tc := range []struct {
		name string
		flow []exchange
	}{
		{"extended COPY with Sync during copy-in", []exchange{
			{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "CREATE TEMP TABLE t (id int)"}}, "ReadyForQuery"},
			{[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}, "CopyInResponse"},
			{[]pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{}}, "ReadyForQuery"},
		}},
		{"extended CopyFail with Sync during copy-in", []exchange{
			{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "CREATE TEMP TABLE t (id int)"}}, "ReadyForQuery"},
			{[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}, "CopyInResponse"},
			{[]pgproto3.FrontendMessage{&pgproto3.Sync{}, &pgproto3.CopyFail{Message: "no"}, &pgproto3.Sync{}}, "ReadyForQuery"},
		}},
		{"Query and FunctionCall skipped after an extended-protocol error", []exchange{
			{[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Query{String: "SELECT 'skipped'"},
				&pgproto3.FunctionCall{Function: 177, Arguments: [][]byte{[]byte("1"), []byte("1")}},
				&pgproto3.Sync{}}, "ReadyForQuery"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t)
			conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fe := pgproto3.NewFrontend(conn, conn)
			startup := exchange{[]pgproto3.FrontendMessage{&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
				Parameters: map[string]string{"user": pgtest.SuperUser, "database": "postgres"}}}, "ReadyForQuery"}
			for _, x := range append([]exchange{startup}, tc.flow...) {
				for _, m := range x.send {
					fe.Send(m)
				}
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
				for {
					m, err := fe.Receive()
					if err != nil {
						t.Fatalf("waiting for %s: %v", x.until, err)
					}
					if wireTypeName(m) == x.until {
						break
					}
				}
			}
			// The session is idle, and every ReadyForQuery the server owed was read.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := p.Srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				t.Error("Shutdown waited for its deadline instead of closing the idle session: " +
					"the proxy still expects a ReadyForQuery for a message the server skipped")
			} else if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
