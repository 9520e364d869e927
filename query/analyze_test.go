package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// rels renders relations compactly for table tests: "name(flags)".
func rels(rs []Relation) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = describeRelation(r)
	}
	return strings.Join(parts, " ")
}

func TestCTEScoping(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"cte is not a relation", "WITH c AS (SELECT * FROM t) SELECT * FROM c", "t(r)"},
		{"cte shadows table", "WITH t AS (SELECT * FROM u) SELECT * FROM t", "u(r)"},
		{"non-recursive self reference is the table", "WITH t AS (SELECT * FROM t) SELECT * FROM t", "t(r)"},
		{"recursive self reference", "WITH RECURSIVE t AS (SELECT 1 UNION ALL SELECT * FROM t) SELECT * FROM t", ""},
		{"later sees earlier", "WITH a AS (SELECT * FROM x), b AS (SELECT * FROM a) SELECT * FROM b", "x(r)"},
		{"earlier does not see later", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "b(r)"},
		{"recursive sees later", "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", ""},
		{"qualified name is never a cte", "WITH t AS (SELECT 1) SELECT * FROM public.t, t", "public.t(r)"},
		{"nested scope ends", "SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) s, c", "c(r)"},
		{"inner cte shadows outer", "WITH x AS (SELECT * FROM t1) SELECT * FROM (WITH x AS (SELECT * FROM t2) SELECT * FROM x) s, x", "t1(r) t2(r)"},
		{"outer cte visible in subquery", "WITH c AS (SELECT * FROM t) SELECT * FROM u WHERE id IN (SELECT id FROM c)", "t(r) u(r)"},
		{"cte in set operation", "WITH c AS (SELECT 1) SELECT * FROM c UNION SELECT * FROM c", ""},
		{"cte in insert select", "WITH c AS (SELECT * FROM src) INSERT INTO dst SELECT * FROM c", "src(r) dst(w)"},
		{"dml target ignores cte", "WITH t AS (SELECT 1) INSERT INTO t VALUES (1)", "t(w)"},
		{"update from cte", "WITH c AS (SELECT * FROM s) UPDATE t SET x = c.x FROM c", "s(r) t(rw)"},
		{"merge using cte", "WITH c AS (SELECT * FROM s) MERGE INTO t USING c ON t.id = c.id WHEN MATCHED THEN DELETE", "s(r) t(rw)"},
		{"delete using cte", "WITH c AS (SELECT * FROM s) DELETE FROM t USING c WHERE t.id = c.id", "s(r) t(rw)"},
		{"cte name reused by data-modifying cte", "WITH t AS (DELETE FROM t RETURNING *) SELECT * FROM t", "t(rw)"},
		{"lateral sees cte", "WITH c AS (SELECT * FROM s) SELECT * FROM u, LATERAL (SELECT * FROM c WHERE c.id = u.id) l", "s(r) u(r)"},
		{"exists sees cte", "WITH c AS (SELECT * FROM s) SELECT * FROM u WHERE EXISTS (SELECT 1 FROM c)", "s(r) u(r)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Err != nil {
				t.Fatal(a.Err)
			}
			if got := rels(a.Relations); got != tt.want {
				t.Errorf("%s\nrelations %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestCacheability(t *testing.T) {
	tests := []struct {
		sql    string
		class  Class
		reason string
	}{
		{"SELECT * FROM t", Read, ""},
		{"SELECT * FROM t FOR UPDATE", Read, ReasonLockingClause},
		{"SELECT * FROM (SELECT * FROM t FOR SHARE) s", Read, ReasonLockingClause},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR KEY SHARE)", Read, ReasonLockingClause},
		{"SELECT EXISTS (SELECT 1 FROM t FOR NO KEY UPDATE)", Read, ReasonLockingClause},
		{"WITH c AS (SELECT * FROM t FOR UPDATE) SELECT * FROM c", Read, ReasonLockingClause},
		{"SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id FOR UPDATE) l", Read, ReasonLockingClause},
		{"SELECT 1 UNION (SELECT 2 FROM t FOR UPDATE)", Read, ReasonLockingClause},
		{"SELECT now()", Read, "time_function:now"},
		{"SELECT CURRENT_TIMESTAMP", Read, "time_function:current_timestamp"},
		{"SELECT current_timestamp(2)", Read, "time_function:current_timestamp"},
		{"SELECT CURRENT_DATE", Read, "time_function:current_date"},
		{"SELECT LOCALTIMESTAMP", Read, "time_function:localtimestamp"},
		{"SELECT * FROM t WHERE owner = CURRENT_USER", Read, "session_function:current_user"},
		{"SELECT SESSION_USER", Read, "session_function:session_user"},
		{"SELECT CURRENT_ROLE", Read, "session_function:current_role"},
		{"SELECT USER", Read, "session_function:user"},
		{"SELECT CURRENT_SCHEMA", Read, "session_function:current_schema"},
		{"SELECT current_schema()", Read, "session_function:current_schema"},
		{"SELECT random()", Read, "volatile_function:random"},
		{"SELECT pg_catalog.random()", Read, "volatile_function:random"},
		{"SELECT app.random()", Read, ""},
		{"SELECT nextval('s')", Read, "volatile_function:nextval"},
		{"SELECT pg_advisory_xact_lock(1)", Read, "volatile_function:pg_advisory_xact_lock"},
		{"SELECT pg_stat_get_numscans(1)", Read, "volatile_function:pg_stat_get_numscans"},
		{"SELECT pg_typeof(1), pg_size_pretty(10::bigint)", Read, ""},
		{"SELECT age(ts) FROM t", Read, "time_function:age"},
		{"SELECT age(a, b) FROM t", Read, ""},
		{"SELECT 'now'::timestamptz", Read, "time_literal:now"},
		{"SELECT ' Tomorrow '::date", Read, "time_literal:tomorrow"},
		{"SELECT * FROM t WHERE ts > 'today 10:00'", Read, "time_literal:today"},
		{"SELECT * FROM t WHERE d <@ '[yesterday,tomorrow)'::daterange", Read, "time_literal:yesterday"},
		{"SELECT * FROM t WHERE name = 'nowhere'", Read, ""},
		{"SELECT * FROM pg_class", Read, "system_catalog:pg_class"},
		{"SELECT * FROM pg_catalog.pg_tables", Read, "system_catalog:pg_catalog.pg_tables"},
		{"SELECT * FROM information_schema.columns", Read, "system_catalog:information_schema.columns"},
		{"SELECT * FROM pg_stat_user_tables", Read, "system_catalog:pg_stat_user_tables"},
		{"SELECT * FROM pg_temp.t", Read, "temp_relation:pg_temp.t"},
		{"SELECT * FROM t TABLESAMPLE SYSTEM (10)", Read, ReasonTableSample},
		{"SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (1)", Read, ""},
		{"SELECT * INTO u FROM t", Write, ReasonSelectInto},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", Write, ReasonDataModifyingCTE},
		{"WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d", Write, ReasonDataModifyingCTE},
		{"WITH d AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM d", Write, ReasonDataModifyingCTE},
		{"INSERT INTO t VALUES (1)", Write, ReasonNotARead},
		{"SHOW work_mem", SideEffects, ReasonNotARead},
		// The first reason in the text wins; structural reasons come first.
		{"SELECT random(), now()", Read, "volatile_function:random"},
		{"SELECT x FROM pg_class WHERE y = now()", Read, "system_catalog:pg_class"},
		{"SELECT now() FROM t FOR UPDATE", Read, ReasonLockingClause},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Err != nil {
				t.Fatal(a.Err)
			}
			if a.Class != tt.class || a.Reason != tt.reason || a.Cacheable != (tt.reason == "") {
				t.Errorf("got class %v reason %q cacheable %v, want %v %q", a.Class, a.Reason, a.Cacheable, tt.class, tt.reason)
			}
		})
	}
}

func TestRelationAccess(t *testing.T) {
	tests := []struct {
		sql, want string
	}{
		{"UPDATE t SET x = u.x FROM u WHERE t.id = u.id", "t(rw) u(r)"},
		{"UPDATE ONLY t SET x = 1", "t(rw,only)"},
		{"DELETE FROM t USING u WHERE t.id = u.id", "t(rw) u(r)"},
		{"INSERT INTO t SELECT * FROM u JOIN v USING (id)", "t(w) u(r) v(r)"},
		{"INSERT INTO t VALUES ((SELECT max(id) FROM t))", "t(rw)"},
		{"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET x = u.x WHEN NOT MATCHED THEN INSERT VALUES (u.id, u.x)", "t(rw) u(r)"},
		{"MERGE INTO t USING (SELECT * FROM u JOIN v ON true) s ON t.id = s.id WHEN MATCHED THEN DELETE", "t(rw) u(r) v(r)"},
		{"TRUNCATE t1, ONLY t2", "t1(w) t2(w,only)"},
		{"COPY t FROM STDIN", "t(w)"},
		{"COPY t TO STDOUT", "t(r)"},
		{"COPY (SELECT * FROM t JOIN u ON true) TO STDOUT", "t(r) u(r)"},
		{"SELECT * FROM a.t, t, A.T, \"A\".\"T\"", "a.t(r) t(r) A.T(r)"},
		{"SELECT * FROM ONLY t, t", "t(r)"},
		{"SELECT * FROM ONLY t, ONLY t x", "t(r,only)"},
		{"SELECT * FROM generate_series(1, 3), unnest('{1}'::int[]), f(1)", ""},
		{"SELECT (SELECT 1 FROM a), x FROM b WHERE EXISTS (SELECT 1 FROM c) ORDER BY (SELECT 1 FROM d)", "a(r) b(r) c(r) d(r)"},
		{"SELECT * FROM a JOIN b USING (id) LEFT JOIN LATERAL (SELECT * FROM c) x ON true", "a(r) b(r) c(r)"},
		{"SELECT * FROM a UNION SELECT * FROM b INTERSECT SELECT * FROM c EXCEPT SELECT * FROM d", "a(r) b(r) c(r) d(r)"},
		{"CREATE TABLE n AS SELECT * FROM t", "n(w) t(r)"},
		{"CREATE TEMP TABLE n (id int)", "n(w,temp)"},
		{"CREATE VIEW v AS SELECT * FROM t", "v(w) t(r)"},
		{"DROP TABLE a, s.b", "a(w) s.b(w)"},
		{"ALTER TABLE s.a RENAME TO b", "s.a(w) s.b(w)"},
		{"GRANT SELECT ON t TO r", "t(w)"},
		{"EXPLAIN SELECT * FROM t", ""},
		{"EXPLAIN ANALYZE UPDATE t SET x = 1", "t(rw)"},
		{"DECLARE c CURSOR FOR SELECT * FROM t", "t(r)"},
		{"PREPARE p AS SELECT * FROM t", ""},
		{"LOCK t", "t(r)"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Err != nil {
				t.Fatal(a.Err)
			}
			if got := rels(a.Relations); got != tt.want {
				t.Errorf("relations %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	tests := []struct {
		sql  string
		want []Function
	}{
		{"SELECT f(1), f(2), s.g(1, 2), f(1, 2)", []Function{{"", "f", 1}, {"s", "g", 2}, {"", "f", 2}}},
		{"SELECT count(*), lower(x), coalesce(x, 1) FROM t", nil},
		{"SELECT * FROM srf($1) JOIN t ON true", []Function{{"", "srf", 1}}},
		{"SELECT pg_catalog.unknown_builtin(1)", []Function{{"pg_catalog", "unknown_builtin", 1}}},
		{"SELECT a.b.c(1)", []Function{{"b", "c", 1}}},
		{"CALL p(1, 2)", []Function{{"", "p", 2}}},
		{"SELECT f(g(h()))", []Function{{"", "f", 1}, {"", "g", 1}, {"", "h", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			a := Analyze(tt.sql)
			if !reflect.DeepEqual(a.Functions, tt.want) {
				t.Errorf("functions %v, want %v", a.Functions, tt.want)
			}
		})
	}
}

func TestOperators(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT * FROM t WHERE a = 1 AND b === c AND -a < 0", []string{"=", "===", "<", "-"}},
		{"SELECT * FROM t WHERE a IN (1, 2) OR a NOT IN (3)", []string{"=", "<>"}},
		{"SELECT * FROM t WHERE a LIKE 'x%' AND b ILIKE 'y' AND a = ANY ($1)", []string{"~~", "~~*", "="}},
		{"SELECT a OPERATOR(app.===) b FROM t", []string{"app.==="}},
		{"SELECT NULLIF(a, b), a IS DISTINCT FROM b FROM t", []string{"="}},
		{"SELECT * FROM t WHERE a BETWEEN 1 AND 2", nil},
		{"UPDATE t SET a = a + 1 WHERE b @> c", []string{"+", "@>"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			st := Analyze(tt.sql).Statements[0]
			if !reflect.DeepEqual(st.Operators, tt.want) {
				t.Errorf("operators %q, want %q", st.Operators, tt.want)
			}
		})
	}
}

func TestCasts(t *testing.T) {
	tests := []struct {
		sql    string
		want   []Type
		reason string
	}{
		{"SELECT a::text, CAST(b AS int), c::app.money2, d::text[], '5'::varchar(3) FROM t",
			[]Type{{"", "text"}, {"pg_catalog", "int4"}, {"app", "money2"}, {"pg_catalog", "varchar"}}, ""},
		{"SELECT date '2020-01-01', x::mood FROM t", []Type{{"", "date"}, {"", "mood"}}, ""},
		{"SELECT count(*) FROM t WHERE tableoid = 't'::regclass", nil, "system_catalog:regclass"},
		{"SELECT 1234::pg_catalog.regtype", nil, "system_catalog:regtype"},
		{"SELECT a FROM t", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			st := Analyze(tt.sql).Statements[0]
			if !reflect.DeepEqual(st.Casts, tt.want) || st.Reason != tt.reason {
				t.Errorf("casts %v, reason %q; want %v, %q", st.Casts, st.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestRunsSQL(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT dblink_exec('dbname=x', 'DELETE FROM t')":          true,
		"SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)": true,
		"SELECT query_to_xml('SELECT 1', true, false, '')":         true,
		"SELECT random()": false,
		"SELECT f(1)":     false,
	} {
		st := Analyze(sql).Statements[0]
		if st.RunsSQL != want || want && st.Cacheable {
			t.Errorf("%s: RunsSQL %v, cacheable %v; want RunsSQL %v", sql, st.RunsSQL, st.Cacheable, want)
		}
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		sql  string
		want int
	}{
		{"SELECT 1", 0},
		{"SELECT $1", 1},
		{"SELECT * FROM t WHERE a = $2 AND b IN ($1, $7)", 7},
		{"SELECT * FROM t WHERE a = (SELECT max(x) FROM u WHERE y = $3)", 3},
		{"SELECT * FROM t LIMIT $1 OFFSET $2", 2},
		{"INSERT INTO t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET x = $3", 3},
		{"EXPLAIN SELECT $4", 4},
		{"DECLARE c CURSOR FOR SELECT $2", 2},
		{"PREPARE p(int) AS SELECT $1", 0},
		{"EXECUTE p($1)", 1},
		{"SELECT $1; SELECT $2", 2},
	}
	for _, tt := range tests {
		if got := Analyze(tt.sql).Params; got != tt.want {
			t.Errorf("%s: params %d, want %d", tt.sql, got, tt.want)
		}
	}
}

func TestTx(t *testing.T) {
	tests := []struct {
		sql  string
		want Tx
	}{
		{"BEGIN", Tx{Kind: TxBegin}},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", Tx{Kind: TxBegin, Isolation: "serializable", ReadOnly: true, Deferrable: true}},
		{"BEGIN READ WRITE", Tx{Kind: TxBegin, ReadWrite: true}},
		{"COMMIT AND CHAIN", Tx{Kind: TxCommit, Chain: true}},
		{"END", Tx{Kind: TxCommit}},
		{"ABORT", Tx{Kind: TxRollback}},
		{"SAVEPOINT a", Tx{Kind: TxSavepoint, Savepoint: "a"}},
		{"RELEASE SAVEPOINT a", Tx{Kind: TxRelease, Savepoint: "a"}},
		{"ROLLBACK TO a", Tx{Kind: TxRollbackTo, Savepoint: "a"}},
		{"PREPARE TRANSACTION 'g'", Tx{Kind: TxPrepare, GID: "g"}},
		{"COMMIT PREPARED 'g'", Tx{Kind: TxCommitPrepared, GID: "g"}},
		{"ROLLBACK PREPARED 'g'", Tx{Kind: TxRollbackPrepared, GID: "g"}},
		{"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Tx{Kind: TxSetTransaction, Isolation: "read committed"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", Tx{Kind: TxSetSession, ReadOnly: true}},
		{"SET TRANSACTION SNAPSHOT 'x-1'", Tx{Kind: TxSetSnapshot, Snapshot: "x-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Class != TxControl || len(a.Statements) != 1 || a.Statements[0].Tx == nil {
				t.Fatalf("class %v, statements %d", a.Class, len(a.Statements))
			}
			if got := *a.Statements[0].Tx; got != tt.want {
				t.Errorf("tx %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		sql   string
		class Class
		want  []Setting
	}{
		{"SET search_path TO a, \"B\", public", Session, []Setting{{Name: "search_path", Value: `a, "B", public`}}},
		{"SET LOCAL work_mem = '64MB'", Session, []Setting{{Name: "work_mem", Value: "64MB", Local: true}}},
		{"SET TIME ZONE 'UTC'", Session, []Setting{{Name: "timezone", Value: "UTC"}}},
		{"SET ROLE r", Session, []Setting{{Name: "role", Value: "r"}}},
		{"SET SESSION AUTHORIZATION DEFAULT", Session, []Setting{{Name: "session_authorization", Reset: true}}},
		{"RESET ALL", Session, []Setting{{Reset: true}}},
		{"RESET search_path", Session, []Setting{{Name: "search_path", Reset: true}}},
		{"SET statement_timeout = 0", Session, []Setting{{Name: "statement_timeout", Value: "0"}}},
		{"SET x.y = 1.5", Session, []Setting{{Name: "x.y", Value: "1.5"}}},
		{"SELECT set_config('search_path', 'a', true)", Read, []Setting{{Name: "search_path", Value: "a", Local: true}}},
		{"SELECT set_config('TimeZone', $1, false)", Read, []Setting{{Name: "timezone", Dynamic: true}}},
		{"SELECT set_config($1, 'x', false)", Read, []Setting{{Dynamic: true}}},
		{"SELECT pg_catalog.set_config('a.b', 'c', 'on')", Read, []Setting{{Name: "a.b", Value: "c", Local: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Class != tt.class {
				t.Errorf("class %v, want %v", a.Class, tt.class)
			}
			if got := a.Statements[0].Settings; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("settings %+v, want %+v", got, tt.want)
			}
		})
	}
	if d := Analyze("DISCARD ALL").Statements[0].Discard; d != "ALL" {
		t.Errorf("DISCARD ALL: discard %q", d)
	}
}

func TestClasses(t *testing.T) {
	tests := []struct {
		sql   string
		class Class
	}{
		{"VALUES (1)", Read},
		{"TABLE t", Read},
		{"SELECT 1 INTO t", Write},
		{"CREATE MATERIALIZED VIEW m AS SELECT 1", Write},
		{"REFRESH MATERIALIZED VIEW m", Write},
		{"COPY t FROM STDIN", Write},
		{"COPY t TO STDOUT", SideEffects},
		{"COPY (UPDATE t SET x = 1 RETURNING *) TO STDOUT", Write},
		{"EXPLAIN DELETE FROM t", SideEffects},
		{"EXPLAIN ANALYZE DELETE FROM t", Write},
		{"EXPLAIN (ANALYZE off) DELETE FROM t", SideEffects},
		{"EXPLAIN (ANALYZE 1) DELETE FROM t", Write},
		{"CREATE INDEX ON t (x)", DDL},
		{"COMMENT ON TABLE t IS 'x'", DDL},
		{"ALTER SYSTEM SET work_mem = '1GB'", DDL},
		{"REVOKE ALL ON t FROM PUBLIC", Grant},
		{"ALTER ROLE r SET work_mem = '1MB'", Grant},
		{"SET CONSTRAINTS ALL IMMEDIATE", Session},
		{"LISTEN c", SideEffects},
		{"DO $$ BEGIN END $$", SideEffects},
		{"CHECKPOINT", SideEffects},
	}
	for _, tt := range tests {
		if a := Analyze(tt.sql); a.Class != tt.class {
			t.Errorf("%s: class %v, want %v", tt.sql, a.Class, tt.class)
		}
	}
}

// TestEveryStatementClassified checks that every statement node pg_query
// knows has been given a class on purpose, so that a pg_query upgrade adding
// statements is noticed rather than silently defaulting to SideEffects.
func TestEveryStatementClassified(t *testing.T) {
	handled := map[string]bool{
		// analyzeStmt's switch.
		"SelectStmt": true, "InsertStmt": true, "UpdateStmt": true, "DeleteStmt": true,
		"MergeStmt": true, "TruncateStmt": true, "RefreshMatViewStmt": true,
		"CreateTableAsStmt": true, "CopyStmt": true, "ExplainStmt": true, "PrepareStmt": true,
		"DeclareCursorStmt": true, "ExecuteStmt": true, "DeallocateStmt": true, "FetchStmt": true,
		"ClosePortalStmt": true, "ListenStmt": true, "UnlistenStmt": true, "NotifyStmt": true,
		"VariableShowStmt": true, "TransactionStmt": true, "VariableSetStmt": true,
		"ConstraintsSetStmt": true, "DiscardStmt": true, "DropStmt": true, "CommentStmt": true,
		"RenameStmt": true, "AlterObjectSchemaStmt": true,
		// Never a top-level statement of SQL text.
		"RawStmt": true, "SetOperationStmt": true, "ReturnStmt": true, "PLAssignStmt": true,
		"ReplicaIdentityStmt": true,
	}
	fields := (&pg_query.Node{}).ProtoReflect().Descriptor().Oneofs().Get(0).Fields()
	stmts := map[string]bool{}
	for i := 0; i < fields.Len(); i++ {
		name := string(fields.Get(i).Message().Name())
		if !strings.HasSuffix(name, "Stmt") {
			continue
		}
		stmts[name] = true
		if _, ok := nodeClasses[name]; !ok && !handled[name] {
			t.Errorf("%s: no class decided", name)
		}
	}
	for name := range nodeClasses {
		if !stmts[name] {
			t.Errorf("nodeClasses: %s is not a pg_query statement", name)
		}
	}
}

func TestMultiStatement(t *testing.T) {
	a := Analyze("BEGIN; UPDATE t SET x = 1; SELECT * FROM u WHERE id = $2; COMMIT")
	if len(a.Statements) != 4 {
		t.Fatalf("%d statements", len(a.Statements))
	}
	if a.Cacheable || a.Reason != ReasonMultiStatement {
		t.Errorf("cacheable %v reason %q", a.Cacheable, a.Reason)
	}
	if a.Class != Write || !a.Has(TxControl) || !a.Has(Read) || a.Has(DDL) {
		t.Errorf("class %v", a.Class)
	}
	if got := rels(a.Relations); got != "t(rw) u(r)" {
		t.Errorf("relations %q", got)
	}
	if a.Params != 2 {
		t.Errorf("params %d", a.Params)
	}
	texts := []string{"BEGIN", "UPDATE t SET x = 1", "SELECT * FROM u WHERE id = $2", "COMMIT"}
	for i, st := range a.Statements {
		if st.Text != texts[i] {
			t.Errorf("statement %d text %q, want %q", i+1, st.Text, texts[i])
		}
	}
	if a.Fingerprint == "" || a.Fingerprint == a.Statements[1].Fingerprint {
		t.Errorf("fingerprint %q", a.Fingerprint)
	}
	if !a.Statements[2].Cacheable {
		t.Errorf("the read statement itself is cacheable")
	}
}

func TestParseError(t *testing.T) {
	a := Analyze("SELECT * FORM t")
	if a.Class != Unknown || a.Cacheable || a.Reason != ReasonParseError || len(a.Statements) != 0 {
		t.Fatalf("class %v cacheable %v reason %q", a.Class, a.Cacheable, a.Reason)
	}
	var pe *ParseError
	if !errors.As(a.Err, &pe) {
		t.Fatalf("error %T, want *ParseError", a.Err)
	}
	if pe.Position != 10 || !strings.Contains(pe.Message, `"FORM"`) {
		t.Errorf("position %d message %q", pe.Position, pe.Message)
	}
	if !errors.Is(a.Err, ErrParse) {
		t.Error("errors.Is(err, ErrParse) is false")
	}
	var perr *pgparser.Error
	if !errors.As(a.Err, &perr) {
		t.Error("the parser's error is not unwrapped")
	}
	if !a.Has(Unknown) || a.Has(Read) {
		t.Error("Has")
	}
}

func TestEmpty(t *testing.T) {
	for _, sql := range []string{"", " ", ";", "-- c", "/* c */ ;"} {
		a := Analyze(sql)
		if a.Class != Empty || a.Reason != ReasonEmpty || a.Cacheable || a.Err != nil {
			t.Errorf("%q: class %v reason %q", sql, a.Class, a.Reason)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := Analyze("SELECT * FROM t WHERE id = 1")
	b := Analyze("select *   from t where id = 42 -- other")
	c := Analyze("SELECT * FROM t WHERE name = 1")
	if a.Fingerprint == "" || a.Fingerprint != b.Fingerprint {
		t.Errorf("fingerprints %q and %q differ", a.Fingerprint, b.Fingerprint)
	}
	if a.Fingerprint == c.Fingerprint {
		t.Errorf("different statements share fingerprint %q", a.Fingerprint)
	}
	if a.Normalized != "SELECT * FROM t WHERE id = $1" {
		t.Errorf("normalized %q", a.Normalized)
	}
	if d := Analyze("SELEC 1"); d.Fingerprint != "" || d.Normalized != "" {
		t.Errorf("parse error has fingerprint %q", d.Fingerprint)
	}
}

func TestHints(t *testing.T) {
	tests := []struct {
		sql  string
		want Hints
	}{
		{"SELECT 1", Hints{}},
		{"/* pgmemo:no-cache */ SELECT 1", Hints{NoCache: true}},
		{"SELECT 1 -- pgmemo:ttl=30s", Hints{TTL: 30e9}},
		{"/*pgmemo:ttl=90*/ SELECT 1", Hints{TTL: 90e9}},
		{"/* PgMemo:No-Cache */ SELECT 1", Hints{NoCache: true}},
		{"/* pgmemo: ttl=1m, no-cache */ SELECT 1", Hints{NoCache: true, TTL: 60e9}},
		{"/* pgmemo:ttl=1s */ SELECT 1 /* pgmemo:ttl=2s */", Hints{TTL: 2e9}},
		{"/* pgmemo:ttl=0s ttl=-1 ttl=x frob no-cache=1 */ SELECT 1", Hints{Unknown: []string{"ttl=0s", "ttl=-1", "ttl=x", "frob", "no-cache=1"}}},
		{"/* pgmemo: */ SELECT 1", Hints{}},
		{"SELECT '/* pgmemo:no-cache */', $$ -- pgmemo:no-cache $$", Hints{}},
		{"SELECT 1 /* about pgmemo: no-cache */", Hints{}},
		{"SELECT \"pgmemo:no-cache\" FROM t", Hints{}},
		{"/* outer /* pgmemo:no-cache */ */ SELECT 1", Hints{}},
		{"/* pgmemo:no-cache */ SELEC 1", Hints{NoCache: true}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			if got := Analyze(tt.sql).Hints; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hints %+v, want %+v", got, tt.want)
			}
		})
	}
	a := Analyze("/* pgmemo:no-cache */ SELECT * FROM t")
	if a.Cacheable || a.Reason != ReasonNoCacheHint || !a.Statements[0].Cacheable {
		t.Errorf("no-cache: cacheable %v reason %q", a.Cacheable, a.Reason)
	}
	a = Analyze("/* pgmemo:no-cache */ SELECT * FROM t FOR UPDATE")
	if a.Reason != ReasonLockingClause {
		t.Errorf("a statement's own reason comes first: %q", a.Reason)
	}
}

func TestStatementText(t *testing.T) {
	sql := "  /* lead */ SELECT 1 ;\n-- x\nSELECT 2;  SELECT 'a;b'  "
	a := Analyze(sql)
	want := []string{"/* lead */ SELECT 1", "-- x\nSELECT 2", "SELECT 'a;b'"}
	if len(a.Statements) != len(want) {
		t.Fatalf("%d statements", len(a.Statements))
	}
	for i, st := range a.Statements {
		if st.Text != want[i] {
			t.Errorf("statement %d: %q, want %q", i+1, st.Text, want[i])
		}
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Unknown: "Unknown", Read: "Read", SideEffects: "SideEffects", Class(99): "Class(99)"} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q, want %q", c, got, want)
		}
	}
	if got := TxKind(0).String(); got != "TxKind(0)" {
		t.Errorf("TxKind(0): %q", got)
	}
	if got := (Function{Schema: "s", Name: "f", Args: 2}).String(); got != "s.f/2" {
		t.Errorf("function %q", got)
	}
}
