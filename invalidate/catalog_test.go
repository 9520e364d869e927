package invalidate_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmemo/pgmemo/internal/pgtest"
	"github.com/pgmemo/pgmemo/invalidate"
	"github.com/pgmemo/pgmemo/query"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cluster, pgtest.Options{})) }

const schemaSQL = `
CREATE SCHEMA a; CREATE SCHEMA b;
CREATE TABLE plain(id int);
CREATE TABLE a.dup(id int); CREATE TABLE b.dup(id int);
CREATE TABLE orders(id int, cust int); CREATE TABLE customers(id int);
CREATE VIEW order_view AS SELECT o.id, c.id AS cid FROM orders o JOIN customers c ON c.id = o.cust;
CREATE VIEW view_of_view AS SELECT * FROM order_view;
CREATE TABLE meas(id int, d int) PARTITION BY RANGE (d);
CREATE TABLE meas_1 PARTITION OF meas FOR VALUES FROM (0) TO (10);
CREATE TABLE meas_2 PARTITION OF meas FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (d);
CREATE TABLE meas_2a PARTITION OF meas_2 FOR VALUES FROM (10) TO (15);
CREATE TABLE parent(id int); CREATE TABLE child() INHERITS (parent); CREATE TABLE grandchild() INHERITS (child);
CREATE TABLE shadowed(id int);
CREATE UNLOGGED TABLE ulog(id int);
CREATE VIEW ulog_view AS SELECT * FROM ulog;
CREATE SEQUENCE seq;
CREATE FUNCTION f_imm(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION f_vol(int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION f_stable(int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION over(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION over(text) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION b.only_b(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
CREATE VIEW vol_view AS SELECT f_vol(id) FROM plain;
CREATE VIEW stable_view AS SELECT f_stable(id) FROM plain;
CREATE VIEW imm_view AS SELECT f_imm(id) FROM plain;
CREATE VIEW random_view AS SELECT random() AS r FROM plain;
CREATE VIEW now_view AS SELECT now() AS t FROM plain;
CREATE MATERIALIZED VIEW mat AS SELECT * FROM plain;
CREATE VIEW meas_view AS SELECT * FROM meas JOIN a.dup USING (id);
`

// setup creates a fresh database with schemaSQL and returns its name and a
// superuser connection to it for the Catalog.
func setup(t *testing.T, name string) (context.Context, *pgtest.Conn) {
	t.Helper()
	c := pgtest.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := c.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, name, schemaSQL); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return ctx, conn
}

// oids looks names up with regclass on conn.
func oids(t *testing.T, ctx context.Context, conn *pgconn.PgConn, names ...string) []uint32 {
	t.Helper()
	var out []uint32
	for _, n := range names {
		res := conn.ExecParams(ctx, "SELECT $1::text::regclass::oid", [][]byte{[]byte(n)}, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatalf("regclass %s: %v", n, res.Err)
		}
		v, _ := strconv.ParseUint(string(res.Rows[0][0]), 10, 32)
		out = append(out, uint32(v))
	}
	slices.Sort(out)
	return out
}

func rel(schema, name string) query.Relation {
	return query.Relation{Schema: schema, Name: name, Read: true}
}

func TestResolveRelations(t *testing.T) {
	ctx, conn := setup(t, "invalidate_rel")

	// Another client's temporary tables: one shadows a permanent table, one
	// exists only there. The connection stays open for the whole test.
	other, err := cluster.Connect(ctx, "invalidate_rel")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if _, err := other.Exec(ctx, "CREATE TEMP TABLE shadowed(id int); CREATE TEMP TABLE tonly(id int)").ReadAll(); err != nil {
		t.Fatal(err)
	}

	fdw := cluster.Exec(ctx, "invalidate_rel", `CREATE EXTENSION postgres_fdw;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'invalidate_rel');
CREATE FOREIGN TABLE ft(id int) SERVER loop OPTIONS (table_name 'plain');`) == nil

	// Types whose functions run unseen: I/O functions (internal ones,
	// declared VOLATILE), and an implicit cast with a volatile function.
	if err := cluster.Exec(ctx, "invalidate_rel", `CREATE TYPE vtext;
CREATE FUNCTION vtext_in(cstring) RETURNS vtext VOLATILE STRICT LANGUAGE internal AS 'textin';
CREATE FUNCTION vtext_out(vtext) RETURNS cstring VOLATILE STRICT LANGUAGE internal AS 'textout';
CREATE TYPE vtext (INPUT = vtext_in, OUTPUT = vtext_out, LIKE = text);
CREATE TABLE io_tab(id int, v vtext);
CREATE DOMAIN vdom AS vtext; CREATE TABLE io_dom(id int, v vdom[]);
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE FUNCTION int_mood(int) RETURNS mood VOLATILE LANGUAGE sql AS $$SELECT (pg_catalog.enum_range(NULL::mood))[$1]$$;
CREATE CAST (int AS mood) WITH FUNCTION int_mood(int) AS IMPLICIT;
CREATE TABLE moods(id int, m mood);
CREATE TYPE calm AS ENUM ('a'); CREATE TABLE calm_tab(id int, c calm);`); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		searchPath string
		rels       []query.Relation
		oids       []string // regclass names, resolved with search_path public
		reason     string   // "" means cacheable
		foreign    bool
	}{
		{"plain", "public", []query.Relation{rel("", "plain")}, []string{"plain"}, "", false},
		{"qualified a", "b", []query.Relation{rel("a", "dup")}, []string{"a.dup"}, "", false},
		{"search_path a", "a, b", []query.Relation{rel("", "dup")}, []string{"a.dup"}, "", false},
		{"search_path b", "b, a", []query.Relation{rel("", "dup")}, []string{"b.dup"}, "", false},
		{"search_path miss", "public", []query.Relation{rel("", "dup")}, nil, "unknown_relation:dup", false},
		{"two relations", "public", []query.Relation{rel("", "plain"), rel("a", "dup")}, []string{"plain", "a.dup"}, "", false},
		{"view over join", "public", []query.Relation{rel("", "order_view")}, []string{"order_view", "orders", "customers"}, "", false},
		{"view over view", "public", []query.Relation{rel("", "view_of_view")}, []string{"view_of_view", "order_view", "orders", "customers"}, "", false},
		{"partitioned", "public", []query.Relation{rel("", "meas")}, []string{"meas", "meas_1", "meas_2", "meas_2a"}, "", false},
		{"view over partitioned", "public", []query.Relation{rel("", "meas_view")}, []string{"meas_view", "meas", "meas_1", "meas_2", "meas_2a", "a.dup"}, "", false},
		{"partitioned only", "public", []query.Relation{{Name: "meas", Read: true, Only: true}}, []string{"meas"}, "", false},
		{"inheritance", "public", []query.Relation{rel("", "parent")}, []string{"parent", "child", "grandchild"}, "", false},
		{"inheritance middle", "public", []query.Relation{rel("", "child")}, []string{"child", "grandchild"}, "", false},
		{"materialized view without the DDL hook", "public", []query.Relation{rel("", "mat")}, []string{"mat", "plain"}, "materialized_view_without_ddl_hook:mat", false},
		{"immutable function view", "public", []query.Relation{rel("", "imm_view")}, []string{"imm_view", "plain"}, "", false},
		{"temp shadow", "public", []query.Relation{rel("", "shadowed")}, []string{"shadowed"}, "temp_relation:shadowed", false},
		{"temp shadow qualified", "public", []query.Relation{rel("public", "shadowed")}, []string{"shadowed"}, "", false},
		{"temp only", "public", []query.Relation{rel("", "tonly")}, nil, "temp_relation:tonly", false},
		{"pg_temp qualified", "public", []query.Relation{rel("pg_temp", "plain")}, nil, "temp_relation:pg_temp.plain", false},
		{"unlogged", "public", []query.Relation{rel("", "ulog")}, []string{"ulog"}, "unlogged_relation:ulog", false},
		{"view over unlogged", "public", []query.Relation{rel("", "ulog_view")}, []string{"ulog_view", "ulog"}, "unlogged_relation:public.ulog", false},
		{"sequence", "public", []query.Relation{rel("", "seq")}, []string{"seq"}, "sequence:seq", false},
		{"foreign table", "public", []query.Relation{rel("", "ft")}, []string{"ft"}, "foreign_table:ft", true},
		{"catalog", "public", []query.Relation{rel("", "pg_class")}, []string{"pg_class"}, "system_catalog:pg_class", false},
		{"catalog qualified", "public", []query.Relation{rel("pg_catalog", "pg_class")}, []string{"pg_class"}, "system_catalog:pg_catalog.pg_class", false},
		{"information_schema", "public", []query.Relation{rel("information_schema", "tables")}, nil, "system_catalog:information_schema.tables", false},
		{"unknown", "public", []query.Relation{rel("", "nope")}, nil, "unknown_relation:nope", false},
		{"unknown second", "public", []query.Relation{rel("", "plain"), rel("", "nope")}, []string{"plain"}, "unknown_relation:nope", false},
		{"volatile view", "public", []query.Relation{rel("", "vol_view")}, []string{"vol_view", "plain"}, "volatile_function:f_vol", false},
		{"stable view", "public", []query.Relation{rel("", "stable_view")}, []string{"stable_view", "plain"}, "stable_function:f_stable", false},
		{"builtin volatile view", "public", []query.Relation{rel("", "random_view")}, []string{"random_view", "plain"}, "volatile_function:random", false},
		{"time view", "public", []query.Relation{rel("", "now_view")}, []string{"now_view", "plain"}, "time_function:now", false},
		{"type with volatile I/O", "public", []query.Relation{rel("", "io_tab")}, []string{"io_tab"}, "type_io_function:vtext", false},
		{"array of a domain over it", "public", []query.Relation{rel("", "io_dom")}, []string{"io_dom"}, "type_io_function:vdom", false},
		{"implicit volatile cast", "public", []query.Relation{rel("", "moods")}, []string{"moods"}, "implicit_cast:integer->mood", false},
		{"user type without such code", "public", []query.Relation{rel("", "calm_tab")}, []string{"calm_tab"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.foreign && !fdw { // postgres_fdw ships with the PostgreSQL server package
				t.Fatal("postgres_fdw is not available to create a foreign table")
			}
			cat := &invalidate.Catalog{Conn: conn.PgConn}
			res, err := cat.ResolveRelations(ctx, tt.searchPath, tt.rels)
			if err != nil {
				t.Fatal(err)
			}
			if res.Cacheable != (tt.reason == "") || res.Reason != tt.reason {
				t.Errorf("Cacheable %v Reason %q, want reason %q", res.Cacheable, res.Reason, tt.reason)
			}
			var want []uint32
			if tt.oids != nil {
				want = oids(t, ctx, conn.PgConn, tt.oids...)
			}
			// information_schema.tables is a view over catalogs: only check
			// that the view itself is listed.
			if tt.name == "information_schema" {
				if len(res.OIDs) == 0 {
					t.Errorf("OIDs empty")
				}
				return
			}
			if !slices.Equal(res.OIDs, want) {
				t.Errorf("OIDs %v, want %v (%v)", res.OIDs, want, tt.oids)
			}
			if len(res.Relations) != len(tt.rels) {
				t.Fatalf("Relations %d, want %d", len(res.Relations), len(tt.rels))
			}
		})
	}
}

func TestResolvedDetails(t *testing.T) {
	ctx, conn := setup(t, "invalidate_details")
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	res, err := cat.ResolveRelations(ctx, "b, a", []query.Relation{rel("", "dup"), rel("", "ulog"), rel("", "meas"), rel("", "seq"), rel("", "nope")})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(res.Relations))
	for i, r := range res.Relations {
		got[i] = r.Schema + "." + r.Name + " " + string(rune(r.Kind)) + string(rune(r.Persistence)) + " " + strconv.FormatBool(r.Found)
	}
	// ulog, meas, seq live in public, which is not on the path.
	want := []string{"b.dup rp true", ". \x00\x00 false", ". \x00\x00 false", ". \x00\x00 false", ". \x00\x00 false"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	res, err = cat.ResolveRelations(ctx, "public", []query.Relation{rel("", "ulog"), rel("", "meas"), rel("", "seq")})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, r := range res.Relations {
		got = append(got, r.Schema+"."+r.Name+" "+string(rune(r.Kind))+string(rune(r.Persistence)))
	}
	want = []string{"public.ulog ru", "public.meas pp", "public.seq Sp"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if res.Relations[0].OID == 0 || res.Relations[0].OID != oids(t, ctx, conn.PgConn, "ulog")[0] {
		t.Errorf("ulog OID %d", res.Relations[0].OID)
	}
}

func TestFunctionVolatility(t *testing.T) {
	ctx, conn := setup(t, "invalidate_func")
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	tests := []struct {
		searchPath string
		fn         query.Function
		found      bool
		class      byte
		builtin    bool
		reason     string
	}{
		{"public", query.Function{Name: "f_imm", Args: 1}, true, invalidate.Immutable, false, ""},
		{"public", query.Function{Name: "f_vol", Args: 1}, true, invalidate.Volatile, false, "volatile_function:f_vol"},
		{"public", query.Function{Name: "f_stable", Args: 1}, true, invalidate.Stable, false, "stable_function:f_stable"},
		{"public", query.Function{Schema: "public", Name: "f_imm", Args: 1}, true, invalidate.Immutable, false, ""},
		{"public", query.Function{Name: "lower", Args: 1}, true, invalidate.Immutable, true, ""},
		{"public", query.Function{Schema: "pg_catalog", Name: "lower", Args: 1}, true, invalidate.Immutable, true, ""},
		{"public", query.Function{Name: "to_char", Args: 2}, true, invalidate.Stable, true, ""},
		{"public", query.Function{Name: "random", Args: 0}, true, invalidate.Volatile, true, "volatile_function:random"},
		{"public", query.Function{Name: "over", Args: 1}, true, invalidate.Volatile, false, "volatile_function:over"},
		{"public", query.Function{Name: "f_imm", Args: 2}, false, 0, false, "unknown_function:f_imm"},
		{"public", query.Function{Name: "nope", Args: 0}, false, 0, false, "unknown_function:nope"},
		{"public", query.Function{Name: "only_b", Args: 1}, false, 0, false, "unknown_function:only_b"},
		{"b", query.Function{Name: "only_b", Args: 1}, true, invalidate.Immutable, false, ""},
		{"public", query.Function{Schema: "b", Name: "only_b", Args: 1}, true, invalidate.Immutable, false, ""},
		{"public", query.Function{Name: "concat", Args: 3}, true, invalidate.Stable, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.searchPath+"/"+tt.fn.String(), func(t *testing.T) {
			v, err := cat.FunctionVolatility(ctx, tt.searchPath, tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			if v.Found != tt.found || v.Class != tt.class || v.Builtin != tt.builtin || v.Reason != tt.reason || v.Cacheable != (tt.reason == "") {
				t.Errorf("got %+v, want found %v class %q builtin %v reason %q", v, tt.found, tt.class, tt.builtin, tt.reason)
			}
		})
	}
}

// TestCastVolatility: a cast is judged by every cast to its type, the type's
// input function and a domain's constraints, down its base types.
func TestCastVolatility(t *testing.T) {
	ctx, conn := setup(t, "invalidate_cast")
	if err := cluster.Exec(ctx, "invalidate_cast", `
		CREATE TYPE vt AS (a int);
		CREATE FUNCTION int_to_vt(int) RETURNS vt VOLATILE LANGUAGE sql AS 'SELECT ROW($1 + (random() * 0)::int)::vt';
		CREATE CAST (int AS vt) WITH FUNCTION int_to_vt(int);
		CREATE TABLE allowed(a int);
		CREATE FUNCTION is_allowed(int) RETURNS bool STABLE LANGUAGE sql AS 'SELECT EXISTS (SELECT FROM allowed WHERE a = $1)';
		CREATE DOMAIN allowed_int AS int CHECK (is_allowed(VALUE));
		CREATE DOMAIN positive AS int CHECK (VALUE > 0);
		CREATE DOMAIN small_allowed AS allowed_int CHECK (VALUE < 10);
		CREATE TYPE mood AS ENUM ('sad', 'ok')`); err != nil {
		t.Fatal(err)
	}
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	for _, tt := range []struct {
		typ    query.Type
		reason string
	}{
		{query.Type{Name: "text"}, ""},
		{query.Type{Schema: "pg_catalog", Name: "int4"}, ""},
		{query.Type{Schema: "pg_catalog", Name: "timestamptz"}, ""}, // builtin STABLE casts depend on settings in the key
		{query.Type{Name: "mood"}, ""},
		{query.Type{Name: "positive"}, ""},
		{query.Type{Name: "vt"}, "volatile_function:cast(vt)"},
		{query.Type{Schema: "public", Name: "vt"}, "volatile_function:cast(vt)"},
		{query.Type{Name: "allowed_int"}, "stable_function:cast(allowed_int)"},
		{query.Type{Name: "small_allowed"}, "stable_function:cast(small_allowed)"},
		{query.Type{Name: "nope"}, "unknown_function:cast(nope)"},
	} {
		t.Run(tt.typ.String(), func(t *testing.T) {
			v, err := cat.CastVolatility(ctx, "public", tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if v.Reason != tt.reason || v.Cacheable != (tt.reason == "") {
				t.Errorf("got %+v, want reason %q", v, tt.reason)
			}
		})
	}
}

func TestCache(t *testing.T) {
	ctx, conn := setup(t, "invalidate_cache")
	cat := &invalidate.Catalog{Conn: conn.PgConn, Size: 2}
	rels := []query.Relation{rel("", "plain")}
	first, err := cat.ResolveRelations(ctx, "public", rels)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the table behind the cache's back: the cached answer is served
	// until Forget.
	if err := cluster.Exec(ctx, "invalidate_cache", "DROP VIEW vol_view, stable_view, imm_view, random_view, now_view; DROP MATERIALIZED VIEW mat; DROP TABLE plain"); err != nil {
		t.Fatal(err)
	}
	second, err := cat.ResolveRelations(ctx, "public", rels)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cacheable || !slices.Equal(first.OIDs, second.OIDs) {
		t.Errorf("second call: %+v, want the cached %+v", second, first)
	}
	if s := cat.Stats(); s.Hits != 1 || s.Misses != 1 || s.Resolutions != 1 {
		t.Errorf("stats %+v", s)
	}
	// A different search_path is a different key.
	if _, err := cat.ResolveRelations(ctx, "a, public", rels); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.FunctionVolatility(ctx, "public", query.Function{Name: "f_imm", Args: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.FunctionVolatility(ctx, "public", query.Function{Name: "f_imm", Args: 1}); err != nil {
		t.Fatal(err)
	}
	if s := cat.Stats(); s.Hits != 2 || s.Misses != 3 || s.Resolutions != 2 || s.Functions != 1 {
		t.Errorf("stats %+v", s)
	}
	cat.Forget()
	if s := cat.Stats(); s.Resolutions != 0 || s.Functions != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	third, err := cat.ResolveRelations(ctx, "public", rels)
	if err != nil {
		t.Fatal(err)
	}
	if third.Cacheable || third.Reason != "unknown_relation:plain" || len(third.OIDs) != 0 {
		t.Errorf("after Forget: %+v", third)
	}
	// Size bounds the LRU.
	for _, p := range []string{"a", "b", "a, b"} {
		if _, err := cat.ResolveRelations(ctx, p, rels); err != nil {
			t.Fatal(err)
		}
	}
	if s := cat.Stats(); s.Resolutions != 2 {
		t.Errorf("Size 2 holds %d", s.Resolutions)
	}
}

func TestConnect(t *testing.T) {
	ctx, _ := setup(t, "invalidate_connect")
	var conns []*pgconn.PgConn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	})
	cat := &invalidate.Catalog{Connect: func(ctx context.Context) (*pgconn.PgConn, error) {
		c, err := cluster.Connect(ctx, "invalidate_connect")
		if err != nil {
			return nil, err
		}
		conns = append(conns, c.PgConn)
		return c.PgConn, nil
	}}
	if _, err := cat.ResolveRelations(ctx, "public", []query.Relation{rel("", "plain")}); err != nil {
		t.Fatal(err)
	}
	// A closed connection is replaced.
	cat.Conn.Close(ctx)
	cat.Forget()
	res, err := cat.ResolveRelations(ctx, "public", []query.Relation{rel("", "plain")})
	if err != nil || !res.Cacheable || len(conns) != 2 {
		t.Fatalf("after close: %+v, %v, %d connections", res, err, len(conns))
	}
	// A server error leaves the connection usable and is an *Error.
	_, err = cat.ResolveRelations(ctx, `"unterminated`, []query.Relation{rel("", "plain")})
	var e *invalidate.Error
	var pe *pgconn.PgError
	if !errors.As(err, &e) || e.Op != "set_config" || !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *invalidate.Error wrapping a *pgconn.PgError", err)
	}
	if _, err := cat.ResolveRelations(ctx, "public", []query.Relation{rel("", "orders")}); err != nil {
		t.Fatalf("after an error: %v", err)
	}
}

func TestNoConnection(t *testing.T) {
	var cat invalidate.Catalog
	_, err := cat.ResolveRelations(context.Background(), "public", []query.Relation{rel("", "t")})
	if !errors.Is(err, invalidate.ErrNoConnection) {
		t.Errorf("ResolveRelations: %v", err)
	}
	_, err = cat.FunctionVolatility(context.Background(), "public", query.Function{Name: "f"})
	if !errors.Is(err, invalidate.ErrNoConnection) {
		t.Errorf("FunctionVolatility: %v", err)
	}
	boom := errors.New("boom")
	cat.Connect = func(context.Context) (*pgconn.PgConn, error) { return nil, boom }
	_, err = cat.ResolveRelations(context.Background(), "public", nil)
	var e *invalidate.Error
	if !errors.Is(err, boom) || !errors.As(err, &e) || e.Op != "connect" {
		t.Errorf("connect error: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	ctx, conn := setup(t, "invalidate_concurrent")
	cat := &invalidate.Catalog{Conn: conn.PgConn, Size: 3}
	paths := []string{"public", "a, public", "b, public", "a, b, public"}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 20 {
				p := paths[(g+i)%len(paths)]
				res, err := cat.ResolveRelations(ctx, p, []query.Relation{rel("", "order_view"), rel("", "dup")})
				if err == nil && len(res.OIDs) < 3 {
					err = errors.New("short resolution for " + p)
				}
				if err == nil {
					_, err = cat.FunctionVolatility(ctx, p, query.Function{Name: "f_imm", Args: 1})
				}
				if err != nil {
					errs <- err
					return
				}
				if i%7 == 0 {
					cat.Forget()
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestWriteEffects(t *testing.T) {
	ctx, conn := setup(t, "invalidate_effects")
	if err := cluster.Exec(ctx, "invalidate_effects", `
CREATE TABLE trig(id int); CREATE TABLE audit(id int);
CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END';
CREATE TRIGGER t AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION audit_fn();
CREATE TABLE par(id int PRIMARY KEY); CREATE TABLE kid(id int REFERENCES par ON DELETE CASCADE);
CREATE TABLE par2(id int PRIMARY KEY); CREATE TABLE kid2(id int REFERENCES par2);
CREATE TABLE ruled(id int); CREATE RULE r AS ON INSERT TO ruled DO ALSO INSERT INTO audit VALUES (NEW.id);
CREATE FUNCTION next_code() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE defaulted(id int DEFAULT next_code());
CREATE TABLE checked(id int CHECK (id > next_code()));
CREATE DOMAIN coded AS int CHECK (VALUE > next_code());
CREATE TABLE domained(id coded);
CREATE TABLE builtin_default(id serial, at timestamptz DEFAULT now() CHECK (at > '2000-01-01'));
CREATE FUNCTION ok_row(int) RETURNS bool LANGUAGE sql AS 'SELECT true';
CREATE TABLE policed(id int); ALTER TABLE policed ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON policed FOR INSERT WITH CHECK (ok_row(id));
CREATE DOMAIN dcoded AS int DEFAULT next_code();
CREATE TABLE domain_defaulted(id dcoded);`); err != nil {
		t.Fatal(err)
	}
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	for _, tt := range []struct {
		rel        string
		want, code bool
	}{
		{"plain", false, false}, {"trig", true, true}, {"par", true, true}, {"kid", false, false},
		{"par2", false, false}, {"kid2", false, false}, {"ruled", true, true}, {"order_view", false, false},
		{"meas", false, false}, {"defaulted", false, true}, {"checked", false, true}, {"domained", false, true},
		{"builtin_default", false, false}, {"policed", false, true}, {"domain_defaulted", false, true},
	} {
		res, err := cat.ResolveRelations(ctx, "public", []query.Relation{{Name: tt.rel, Write: true}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Effects != tt.want {
			t.Errorf("%s: Effects = %v, want %v", tt.rel, res.Effects, tt.want)
		}
		if res.Code != tt.code {
			t.Errorf("%s: Code = %v, want %v", tt.rel, res.Code, tt.code)
		}
	}
}

// TestXactIDFunction finds pg_current_xact_id_if_assigned() (executable by
// PUBLIC) and not once PUBLIC may no longer run it.
func TestXactIDFunction(t *testing.T) {
	ctx, conn := setup(t, "invalidate_xactid")
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	oid, err := cat.XactIDFunction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "SELECT 'pg_catalog.pg_current_xact_id_if_assigned'::regproc::oid").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := string(res[0].Rows[0][0]); oid == 0 || strconv.FormatUint(uint64(oid), 10) != want {
		t.Errorf("XactIDFunction = %d, want %s", oid, want)
	}
	if _, err := conn.Exec(ctx, "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_current_xact_id_if_assigned() FROM PUBLIC").ReadAll(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		conn.Exec(ctx, "GRANT EXECUTE ON FUNCTION pg_catalog.pg_current_xact_id_if_assigned() TO PUBLIC").ReadAll()
	}()
	if oid, err := cat.XactIDFunction(ctx); err != nil || oid != 0 {
		t.Errorf("with EXECUTE revoked from PUBLIC: %d, %v; want 0", oid, err)
	}
}

// TestAccessDigest: the digest changes with every kind of access rule and
// stays put otherwise.
func TestAccessDigest(t *testing.T) {
	ctx, conn := setup(t, "invalidate_access")
	exec := func(sql string) {
		t.Helper()
		if err := cluster.Exec(ctx, "invalidate_access", sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE TABLE acc(a int, b int); CREATE ROLE acc_r; CREATE ROLE acc_g")
	t.Cleanup(func() {
		cluster.Exec(context.Background(), "invalidate_access", "GRANT USAGE ON SCHEMA public TO PUBLIC; DROP EVENT TRIGGER IF EXISTS acc_ev; DROP FUNCTION IF EXISTS acc_ev(); DROP TABLE acc; DROP ROLE acc_r; DROP ROLE acc_g")
	})
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	digest := func() string {
		t.Helper()
		d, err := cat.AccessDigest(ctx)
		if err != nil || len(d) != 32 {
			t.Fatalf("AccessDigest = %q, %v", d, err)
		}
		return d
	}
	last := digest()
	if again := digest(); again != last {
		t.Fatalf("digest changed without a change: %s, %s", last, again)
	}
	for _, change := range []string{
		"GRANT SELECT ON acc TO acc_r",
		"GRANT SELECT (a) ON acc TO acc_g",
		"GRANT acc_g TO acc_r",
		"ALTER ROLE acc_r BYPASSRLS",
		"ALTER TABLE acc ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY p ON acc USING (a > 0)",
		"ALTER POLICY p ON acc USING (a > 1)",
		"REVOKE USAGE ON SCHEMA public FROM PUBLIC",
		"REVOKE acc_g FROM acc_r",
		"CREATE FUNCTION acc_ev() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$; CREATE EVENT TRIGGER acc_ev ON ddl_command_end EXECUTE FUNCTION acc_ev()",
		"ALTER EVENT TRIGGER acc_ev DISABLE",
	} {
		exec(change)
		if d := digest(); d == last {
			t.Errorf("%s: digest unchanged", change)
		} else {
			last = d
		}
	}
	// A configuration reload reaches the service backend when the
	// postmaster's signal does.
	exec("SELECT pg_reload_conf()")
	pgtest.Eventually(t, 2*time.Second, func() error {
		if digest() == last {
			return errors.New("digest unchanged after pg_reload_conf()")
		}
		return nil
	})
}

// TestSessionSettings lists the settings a session can change, role and
// search_path among them, and none it cannot.
func TestSessionSettings(t *testing.T) {
	ctx, conn := setup(t, "invalidate_settings")
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	names, err := cat.SessionSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	for _, want := range []string{"role", "session_authorization", "search_path", "extra_float_digits", "bytea_output", "transform_null_equals", "DateStyle", "session_replication_role"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from %v", want, names)
		}
	}
	for _, not := range []string{"shared_buffers", "wal_level", "max_connections", "dynamic_library_path", "session_preload_libraries"} {
		if slices.Contains(names, not) {
			t.Errorf("%s listed: the session cannot change it", not)
		}
	}
}

// TestUserEventTriggers: only an enabled event trigger on DDL that is not
// pgmemo's own hook counts.
func TestUserEventTriggers(t *testing.T) {
	ctx, conn := setup(t, "invalidate_event_triggers")
	cat := &invalidate.Catalog{Conn: conn.PgConn}
	for _, step := range []struct {
		sql  string
		want bool
	}{
		{"", false},
		{invalidate.DDLHookSQL, false},
		{"CREATE FUNCTION ev() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$; CREATE EVENT TRIGGER ev ON sql_drop EXECUTE FUNCTION ev()", true},
		{"ALTER EVENT TRIGGER ev DISABLE", false},
		{"ALTER EVENT TRIGGER ev ENABLE ALWAYS", true},
		{"DROP EVENT TRIGGER ev", false},
	} {
		if step.sql != "" {
			if err := cluster.Exec(ctx, "invalidate_event_triggers", step.sql); err != nil {
				t.Fatalf("%s: %v", step.sql, err)
			}
		}
		got, err := cat.UserEventTriggers(ctx)
		if err != nil || got != step.want {
			t.Errorf("after %q: UserEventTriggers = %v, %v; want %v", step.sql, got, err, step.want)
		}
	}
}
