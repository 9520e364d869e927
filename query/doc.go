// Package query analyzes the SQL text that clients send through pgmemo: a
// simple-protocol Query string, possibly holding several statements, or the
// text of an extended-protocol Parse with $1.. parameters. Analyze parses the
// text with the PostgreSQL 17 parser (github.com/pganalyze/pg_query_go/v6) and
// returns an *Analysis: each statement's Class (Read, Write, DDL, Grant,
// TxControl, Session or SideEffects), whether a read may be served from the
// cache and, when not, a short stable Reason such as "locking_clause" or
// "volatile_function:random", the relations read and written as they are
// named in the text (CTE names excluded), the functions whose volatility only
// the catalog can tell, the number of $n parameters, pg_query's fingerprint and
// normalized text, transaction and session details (isolation level, SET
// values), and the pgmemo hints given in comments (/* pgmemo:no-cache */,
// /* pgmemo:ttl=30s */). Text that does not parse is never an error to the
// caller: its Analysis has Class Unknown, is not cacheable and carries the
// *ParseError. Names are not resolved here: the caller resolves relations with
// the session's search_path and asks pg_proc about the reported functions. An
// Analyzer keeps recent analyses in a bounded LRU keyed by the exact text, so
// the hot path parses nothing. The package imports nothing else from pgmemo and
// never logs.
package query
