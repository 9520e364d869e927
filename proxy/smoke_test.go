package proxy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSmokeQueryThroughProxy(t *testing.T) {
	p := startProxy(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.URL("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Fatalf("got %d, want 42", n)
	}
	if st := p.Srv.Stats(); st.ClientConnections != 1 || st.UpstreamConnections != 1 {
		t.Fatalf("stats = %+v, want one client and one upstream connection", st)
	}
}
