package invalidate

import (
	"context"
	"strconv"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultSize is the number of resolutions, and separately of function
// volatilities, a Catalog keeps when Size is 0.
const DefaultSize = 4096

// Catalog resolves relation and function names for one database on a service
// connection. Set Conn or Connect (and optionally Size) before first use; the
// zero value with one of them set is ready. All methods are safe for concurrent
// use: they take turns on the connection.
type Catalog struct {
	// Conn is the service connection. The caller owns it: the Catalog never
	// closes it. When nil, or found closed, Connect is called for a new one.
	Conn *pgconn.PgConn
	// Connect, when set, opens a service connection whenever Conn is nil or
	// closed. The caller still owns what it returns (close Conn when done).
	Connect func(ctx context.Context) (*pgconn.PgConn, error)
	// Size bounds each LRU by count; 0 means DefaultSize.
	Size int

	mu     sync.Mutex
	rels   *lru.Cache[string, Resolution]
	funcs  *lru.Cache[string, Volatility]
	hits   uint64
	misses uint64
}

// Stats counts cache use since the Catalog was created.
type Stats struct {
	Hits, Misses uint64
	// Resolutions and Functions are the numbers of entries cached now.
	Resolutions, Functions int
}

// Stats returns the cache counters.
func (c *Catalog) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	return Stats{Hits: c.hits, Misses: c.misses, Resolutions: c.rels.Len(), Functions: c.funcs.Len()}
}

// Forget drops every cached resolution and volatility. Call it after DDL.
func (c *Catalog) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.rels.Purge()
	c.funcs.Purge()
}

func (c *Catalog) init() {
	if c.rels != nil {
		return
	}
	size := c.Size
	if size <= 0 {
		size = DefaultSize
	}
	// lru.New fails only for a size <= 0.
	c.rels, _ = lru.New[string, Resolution](size)
	c.funcs, _ = lru.New[string, Volatility](size)
}

// conn returns a usable connection; c.mu is held.
func (c *Catalog) conn(ctx context.Context) (*pgconn.PgConn, error) {
	if c.Conn != nil && !c.Conn.IsClosed() {
		return c.Conn, nil
	}
	if c.Connect == nil {
		return nil, ErrNoConnection
	}
	pc, err := c.Connect(ctx)
	if err != nil {
		return nil, &Error{Op: "connect", Err: err}
	}
	if pc == nil {
		return nil, ErrNoConnection
	}
	c.Conn = pc
	return pc, nil
}

// tx runs fn inside a read-only transaction whose search_path is searchPath;
// c.mu is held.
func (c *Catalog) tx(ctx context.Context, searchPath string, fn func(s *session) error) error {
	pc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	if _, err := pc.Exec(ctx, "BEGIN READ ONLY").ReadAll(); err != nil {
		return &Error{Op: "begin", Err: err}
	}
	s := &session{ctx: ctx, pc: pc}
	if _, err = s.query("set_config", "SELECT set_config('search_path', $1, true)", searchPath); err == nil {
		err = fn(s)
	}
	if err != nil {
		if !pc.IsClosed() {
			pc.Exec(ctx, "ROLLBACK").ReadAll()
		}
		return err
	}
	if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		return &Error{Op: "commit", Err: err}
	}
	return nil
}

type session struct {
	ctx context.Context
	pc  *pgconn.PgConn
}

// query runs one statement with text parameters and returns its rows as text.
func (s *session) query(op, sql string, args ...string) ([][][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := s.pc.ExecParams(s.ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, &Error{Op: op, Err: res.Err}
	}
	return res.Rows, nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func parseOID(b []byte) uint32 {
	n, _ := strconv.ParseUint(string(b), 10, 32)
	return uint32(n)
}

func byteOf(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
