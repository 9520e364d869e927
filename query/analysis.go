package query

import "strconv"

// Analysis is what this package knows about one SQL text. It is immutable once
// returned: an Analyzer hands the same *Analysis to every caller that asks
// about the same text, so callers must not modify it or anything it points to.
type Analysis struct {
	// Statements holds one entry per statement, in order. It is empty when
	// the text does not parse (Class Unknown) or holds no statement (Class
	// Empty).
	Statements []*Statement
	// Class is the class of the only statement; for several statements, the
	// one that matters most, in the order Unknown, DDL, Grant, Write,
	// SideEffects, Session, TxControl, Read. Use Has to ask about any class.
	Class Class
	// Cacheable reports whether the result may be served from the cache as
	// far as the text tells: exactly one statement, which is a cacheable
	// read, and no no-cache hint. The caller must still check Functions
	// against pg_proc and resolve Relations in the catalog (see Relation),
	// and key the cache on the session settings that shape results (role,
	// search_path, TimeZone, DateStyle...).
	Cacheable bool
	// Reason says why the text is not cacheable; empty when it is. See the
	// Reason constants.
	Reason string
	// Relations is the union over all statements, in order of first mention.
	Relations []Relation
	// Functions is the union over all statements, in order of first mention.
	Functions []Function
	// Params is the highest $n parameter number in the text (0 if none).
	Params int
	// Fingerprint is pg_query's fingerprint of the text as a hex string: the
	// same for statements that differ only in constants, whitespace and
	// comments. Empty when the text does not parse.
	Fingerprint string
	// Normalized is the text with constants replaced by $n placeholders, as
	// pg_query.Normalize writes it. Empty when the text does not parse.
	Normalized string
	// Hints holds the pgmemo hints found in comments anywhere in the text.
	Hints Hints
	// Err is the *ParseError when the text does not parse, else nil.
	Err error
}

// Has reports whether any statement of a is of class c. For text that does not
// parse only Has(Unknown) is true; for empty text only Has(Empty).
func (a *Analysis) Has(c Class) bool {
	if len(a.Statements) == 0 {
		return a.Class == c
	}
	for _, s := range a.Statements {
		if s.Class == c {
			return true
		}
	}
	return false
}

// Statement is the analysis of one statement of the text.
type Statement struct {
	// Text is the statement's text within the analyzed SQL, including any
	// comments before it but not the separating semicolon. Empty for the
	// Inner statement of EXPLAIN, PREPARE, DECLARE and COPY.
	Text string
	// Node is the name of pg_query's parse node for the statement, such as
	// "SelectStmt" or "VariableSetStmt".
	Node string
	// Class is what the statement does.
	Class Class
	// Cacheable reports whether the statement is a read whose result may be
	// cached, pending the pg_proc check of Functions.
	Cacheable bool
	// Reason says why the statement is not cacheable; empty when it is.
	Reason string
	// Relations are the relations the statement names, each once, in order
	// of first mention. CTE names are not relations; function calls in FROM
	// are not relations.
	Relations []Relation
	// Functions are the calls to functions this package does not know, each
	// (schema, name, argument count) once, in order of first mention: their
	// volatility decides whether a read is cacheable (user functions only if
	// IMMUTABLE). Builtin functions it knows to be safe or unsafe are not
	// listed; operators are in Operators, explicit casts in Casts.
	Functions []Function
	// Operators are the operators the statement's expressions name, each
	// once, in order of first mention, as schema.op when qualified: a
	// user-defined operator runs its function, whose volatility the caller
	// checks (invalidate.Catalog.OperatorVolatility). Operators implied by
	// BETWEEN, ORDER BY, GROUP BY, DISTINCT or joins USING are not listed.
	Operators []string
	// Casts are the types the statement's explicit casts name (x::t,
	// CAST(x AS t), t 'literal'), each once, in order of first mention,
	// without array bounds or modifiers: a user-defined cast or type runs its
	// function, a domain its CHECK constraints, whose volatility the caller
	// checks (invalidate.Catalog.CastVolatility). Casts to the reg* types
	// (regclass...) read the catalog and are a reason of their own. Implicit
	// coercions, which the parser cannot see, are not listed.
	Casts []Type
	// RunsSQL: the statement calls a function that runs SQL given as text
	// (dblink's, query_to_xml...), whose effects are unknown: it may write
	// any table, here or through another connection.
	RunsSQL bool
	// Params is the highest $n parameter number in the statement.
	Params int
	// Fingerprint and Normalized are as in Analysis, for this statement.
	Fingerprint string
	Normalized  string
	// Tx describes a TxControl statement; nil for other classes.
	Tx *Tx
	// Settings lists the settings a Session statement changes. It also lists
	// set_config calls found in any statement (with an empty Name when the
	// setting name is not a constant).
	Settings []Setting
	// Discard is the target of DISCARD: "ALL", "PLANS", "SEQUENCES" or
	// "TEMP". DISCARD ALL also resets every setting and the session
	// authorization, and drops prepared statements, cursors, listeners and
	// temporary tables.
	Discard string
	// Cascade reports TRUNCATE ... CASCADE, which also truncates every table
	// with a foreign key to the named ones (and so on), none of them named.
	Cascade bool
	// Name is the prepared statement of PREPARE, EXECUTE and DEALLOCATE, the
	// cursor of DECLARE, FETCH, MOVE and CLOSE, or the channel of LISTEN,
	// UNLISTEN and NOTIFY; "*" for DEALLOCATE ALL, CLOSE ALL and UNLISTEN *.
	Name string
	// Inner is the analysis of the statement inside EXPLAIN, PREPARE,
	// DECLARE CURSOR or COPY (query) TO.
	Inner *Statement
}

// Relation is a table, view, sequence or other relation named in a statement,
// as written: unresolved, with an empty Schema when unqualified. A catalog
// (database) qualifier is dropped: the server only accepts the current one.
// What the name resolves to with the session's search_path, and what kind of
// relation it is, is for the caller to find out: a temporary table, a
// sequence, a foreign table, or a view whose definition is not cacheable all
// make a read uncacheable. DDL may affect relations it does not name (DROP
// SCHEMA ... CASCADE, DROP OWNED), and CALL, DO, EXECUTE and volatile user
// functions may write relations no statement names.
type Relation struct {
	Schema string
	Name   string
	// Read: the statement reads rows of the relation.
	Read bool
	// Write: the statement may change the relation's rows, definition or
	// privileges (DML targets, TRUNCATE, COPY FROM, DDL and GRANT objects),
	// so whatever is cached from it is stale afterwards.
	Write bool
	// Only is true when every mention used ONLY, excluding inheritance
	// children and partitions.
	Only bool
	// Temp is true when the statement creates the relation as a temporary
	// one (CREATE TEMP TABLE, SELECT INTO TEMP...): from then on the
	// unqualified name resolves to the session's own relation.
	Temp bool
}

// String returns the relation as schema.name or name.
func (r Relation) String() string {
	if r.Schema == "" {
		return r.Name
	}
	return r.Schema + "." + r.Name
}

// Function is a call to a function whose volatility this package does not
// know, as written.
type Function struct {
	Schema string
	Name   string
	// Args is the number of arguments given (count(*) has none; a VARIADIC
	// array counts as one).
	Args int
}

// String returns the function as schema.name/args or name/args.
func (f Function) String() string {
	s := f.Name
	if f.Schema != "" {
		s = f.Schema + "." + s
	}
	return s + "/" + strconv.Itoa(f.Args)
}

// Type is a type named by an explicit cast, as written: Schema is empty when
// unqualified, "pg_catalog" for the SQL keyword types (int, varchar,
// timestamp...).
type Type struct {
	Schema string
	Name   string
}

// String returns the type as schema.name or name.
func (t Type) String() string { return qualify(t.Schema, t.Name) }
