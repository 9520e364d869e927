package invalidate

import (
	"context"
	"strconv"
	"strings"

	"github.com/pgmemo/pgmemo/query"
)

// Function volatility classes (pg_proc.provolatile).
const (
	Immutable = 'i'
	Stable    = 's'
	Volatile  = 'v'
)

// Volatility is what pg_proc says about a function name.
type Volatility struct {
	// Function is the name as the statement gave it.
	Function query.Function
	// Found is false when no function of that name, visible with the
	// search_path (or in the given schema), takes Function.Args arguments.
	Found bool
	// Class is the most volatile of the matching candidates (overloads):
	// Immutable, Stable or Volatile; 0 when not found.
	Class byte
	// Builtin is true when every matching candidate is in pg_catalog.
	Builtin bool
	// Cacheable is true for an IMMUTABLE function and for a builtin STABLE
	// one (the query package judges those by name); Reason says why not.
	Cacheable bool
	Reason    string
}

// candidatesSQL lists the functions (not procedures) named $1 in schema $2,
// or in the search_path (with pg_catalog) when $2 is empty, that accept $3
// arguments, counting defaults and VARIADIC.
const candidatesSQL = `SELECT p.provolatile, n.nspname = 'pg_catalog'
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = $1::text AND p.prokind <> 'p'
  AND CASE WHEN $2::text = '' THEN n.nspname = ANY (pg_catalog.current_schemas(true)) ELSE n.nspname = $2::text END
  AND ($3::int BETWEEN p.pronargs - p.pronargdefaults AND p.pronargs
       OR (p.provariadic <> 0 AND $3::int >= p.pronargs - 1))`

// FunctionVolatility looks fn up in pg_proc as a session whose search_path is
// searchPath would. When the name is overloaded, any VOLATILE candidate
// taking fn.Args arguments makes it Volatile. Answers are cached.
func (c *Catalog) FunctionVolatility(ctx context.Context, searchPath string, fn query.Function) (Volatility, error) {
	key := searchPath + "\x00" + fn.Schema + "\x01" + fn.Name + "\x02" + strconv.Itoa(fn.Args)
	return c.lookupCode(ctx, key, searchPath, func(s *session) (Volatility, error) {
		v := Volatility{Function: fn}
		rows, err := s.query("function_volatility", candidatesSQL, fn.Name, fn.Schema, strconv.Itoa(fn.Args))
		if err != nil {
			return v, err
		}
		v.Found = len(rows) > 0
		v.judge(rows)
		switch {
		case !v.Found:
			v.Reason = ReasonUnknownFunction + fn.Name
		case v.Class == Volatile:
			v.Reason = ReasonVolatileFunction + fn.Name
		case v.Class == Stable && !v.Builtin:
			v.Reason = ReasonStableFunction + fn.Name
		default:
			v.Cacheable = true
		}
		return v, nil
	})
}

// lookupCode answers key from the cache of code lookups, or asks look in a
// read-only transaction with searchPath and caches its answer.
func (c *Catalog) lookupCode(ctx context.Context, key, searchPath string, look func(s *session) (Volatility, error)) (Volatility, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if v, ok := c.funcs.Get(key); ok {
		c.hits++
		return v, nil
	}
	c.misses++
	var v Volatility
	err := c.tx(ctx, searchPath, func(s *session) (err error) {
		v, err = look(s)
		return err
	})
	if err != nil {
		return Volatility{}, err
	}
	c.funcs.Add(key, v)
	return v, nil
}

// operatorsSQL lists the operators named $1 in schema $2, or in the
// search_path (with pg_catalog) when $2 is empty, with their functions'
// volatility and whether they are pg_catalog's.
const operatorsSQL = `SELECT p.provolatile, n.nspname = 'pg_catalog'
FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE o.oprname = $1::text
  AND CASE WHEN $2::text = '' THEN n.nspname = ANY (pg_catalog.current_schemas(true)) ELSE n.nspname = $2::text END`

// OperatorVolatility is FunctionVolatility for an operator (op as
// query.Statement.Operators gives it: "=" or "schema.==="), judged by the
// functions of every operator of that name the search_path makes visible,
// whatever their operand types: it is cacheable unless one of them is
// VOLATILE or a user-defined one is STABLE (builtin STABLE operators, such as
// timestamptz comparisons with dates, depend only on settings in the key).
// Function.Name is "operator(op)" in the result and its Reason.
func (c *Catalog) OperatorVolatility(ctx context.Context, searchPath, op string) (Volatility, error) {
	schema, name := "", op
	if i := strings.LastIndexByte(op, '.'); i > 0 && i < len(op)-1 && isIdentifier(op[:i]) {
		schema, name = op[:i], op[i+1:]
	}
	key := "operator\x00" + searchPath + "\x00" + op
	return c.lookupCode(ctx, key, searchPath, func(s *session) (Volatility, error) {
		v := Volatility{Function: query.Function{Schema: schema, Name: "operator(" + name + ")", Args: 2}}
		rows, err := s.query("operator_volatility", operatorsSQL, name, schema)
		if err != nil {
			return v, err
		}
		v.Found = len(rows) > 0
		v.decide(v.judge(rows))
		return v, nil
	})
}

// judge folds rows of (provolatile, is pg_catalog's) into v: the most volatile
// class, and Builtin when there are rows and every one is pg_catalog's. It
// reports whether a user-defined function among them is STABLE.
func (v *Volatility) judge(rows [][][]byte) (userStable bool) {
	v.Builtin = len(rows) > 0
	for _, row := range rows {
		k, builtin := byteOf(row[0]), string(row[1]) == "t"
		if rank(k) > rank(v.Class) {
			v.Class = k
		}
		if !builtin {
			v.Builtin = false
			userStable = userStable || k == Stable
		}
	}
	return userStable
}

// decide sets v.Cacheable or v.Reason for code made of several functions
// (an operator's candidates, a cast's): unknown, then any VOLATILE, then a
// user-defined STABLE one, are not cacheable.
func (v *Volatility) decide(userStable bool) {
	switch {
	case !v.Found:
		v.Reason = ReasonUnknownFunction + v.Function.Name
	case v.Class == Volatile:
		v.Reason = ReasonVolatileFunction + v.Function.Name
	case userStable:
		v.Reason = ReasonStableFunction + v.Function.Name
	default:
		v.Cacheable = true
	}
}

// castSQL lists the functions an explicit cast to type $1 (an OID) and its
// base types, for a domain, may run: the casts to it (from any type), its
// input function (for a literal), and the functions and operators its
// domain constraints use; each with its volatility and whether it is
// pg_catalog's.
const castSQL = `WITH RECURSIVE t(oid) AS (
  SELECT $1::oid
  UNION SELECT ty.typbasetype FROM pg_catalog.pg_type ty JOIN t ON ty.oid = t.oid WHERE ty.typbasetype <> 0
), f(oid) AS (
  SELECT c.castfunc FROM pg_catalog.pg_cast c WHERE c.casttarget IN (SELECT oid FROM t) AND c.castfunc <> 0
  UNION SELECT ty.typinput FROM pg_catalog.pg_type ty WHERE ty.oid IN (SELECT oid FROM t)
  UNION SELECT d.refobjid FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = k.oid
      AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    WHERE k.contypid IN (SELECT oid FROM t)
  UNION SELECT o.oprcode FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = k.oid
      AND d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass
    JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid
    WHERE k.contypid IN (SELECT oid FROM t)
)
SELECT p.provolatile, p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
FROM pg_catalog.pg_proc p WHERE p.oid IN (SELECT oid FROM f)`

// CastVolatility is FunctionVolatility for an explicit cast to typ, as a
// session whose search_path is searchPath would resolve the type: judged by
// every cast to it (whatever the source type), its input function and, for
// a domain, the functions and operators of its constraints and those of its
// base types. It is cacheable unless one of them is VOLATILE or a
// user-defined one is STABLE, or the type is not found. Function.Name is
// "cast(typ)" in the result and its Reason.
func (c *Catalog) CastVolatility(ctx context.Context, searchPath string, typ query.Type) (Volatility, error) {
	key := "cast\x00" + searchPath + "\x00" + typ.Schema + "\x01" + typ.Name
	name := quoteIdent(typ.Name)
	if typ.Schema != "" {
		name = quoteIdent(typ.Schema) + "." + name
	}
	return c.lookupCode(ctx, key, searchPath, func(s *session) (Volatility, error) {
		v := Volatility{Function: query.Function{Schema: typ.Schema, Name: "cast(" + typ.Name + ")", Args: 1}}
		rows, err := s.query("cast_type", "SELECT pg_catalog.to_regtype($1)::oid", name)
		if err != nil {
			return v, err
		}
		if v.Found = len(rows) == 1 && rows[0][0] != nil; v.Found {
			if rows, err = s.query("cast_volatility", castSQL, string(rows[0][0])); err != nil {
				return v, err
			}
		} else {
			rows = nil
		}
		v.decide(v.judge(rows))
		return v, nil
	})
}

// isIdentifier reports whether s can be a schema name (an operator's name is
// made of symbols only, so a dot after letters is a qualification).
func isIdentifier(s string) bool {
	for _, r := range s {
		if !(r == '_' || r == '$' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127) {
			return false
		}
	}
	return true
}

func rank(k byte) int {
	switch k {
	case Immutable:
		return 1
	case Stable:
		return 2
	case Volatile:
		return 3
	}
	return 0
}

// XactIDFunction returns the OID of the function that reports the current
// transaction's ID if it has one (pg_current_xact_id_if_assigned, or
// txid_current_if_assigned before PostgreSQL 13), for a FunctionCall; 0 if
// the server has neither, or PUBLIC may not execute it (a client's role might
// then fail to, and the call would abort the client's transaction).
func (c *Catalog) XactIDFunction(ctx context.Context) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	var oid uint32
	err := c.tx(ctx, "", func(s *session) error {
		rows, err := s.query("xact_id_function", `SELECT f::pg_catalog.oid FROM (SELECT COALESCE(
    pg_catalog.to_regproc('pg_catalog.pg_current_xact_id_if_assigned'),
    pg_catalog.to_regproc('pg_catalog.txid_current_if_assigned')) AS f) x
WHERE f IS NOT NULL AND pg_catalog.has_function_privilege('public', f, 'EXECUTE')`)
		if err != nil {
			return err
		}
		if len(rows) == 1 && rows[0][0] != nil {
			v, err := strconv.ParseUint(string(rows[0][0]), 10, 32)
			if err != nil {
				return &Error{Op: "xact_id_function", Err: err}
			}
			oid = uint32(v)
		}
		return nil
	})
	return oid, err
}
