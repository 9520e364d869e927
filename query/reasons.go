package query

// Reasons a text or statement is not cacheable. Each is a short, stable
// machine string meant for logs and metrics labels. When several apply,
// Reason holds one, chosen in this order: for the text, parse_error, empty or
// multi_statement; then the statement's own: for a statement that is not a
// read, select_into, data_modifying_cte or else not_a_read; for a read,
// locking_clause, then tablesample, then the function, catalog or literal
// reason that comes first in the text. no_cache_hint is given only when no
// other reason applies.
const (
	// ReasonParseError: the text does not parse.
	ReasonParseError = "parse_error"
	// ReasonEmpty: the text holds no statement.
	ReasonEmpty = "empty"
	// ReasonMultiStatement: the text holds more than one statement.
	ReasonMultiStatement = "multi_statement"
	// ReasonNotARead: the statement is not a read (class other than Read).
	ReasonNotARead = "not_a_read"
	// ReasonSelectInto: SELECT ... INTO creates a table (class Write).
	ReasonSelectInto = "select_into"
	// ReasonDataModifyingCTE: a WITH query is an INSERT, UPDATE, DELETE or
	// MERGE (class Write).
	ReasonDataModifyingCTE = "data_modifying_cte"
	// ReasonLockingClause: FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE or FOR
	// KEY SHARE, at any level.
	ReasonLockingClause = "locking_clause"
	// ReasonTableSample: TABLESAMPLE without REPEATABLE picks random rows.
	ReasonTableSample = "tablesample"

	// ReasonVolatileFunction prefixes the name of a builtin function whose
	// result changes from call to call or that has side effects: random,
	// nextval, pg_sleep, set_config, pg_advisory_lock, txid_current...
	ReasonVolatileFunction = "volatile_function:"
	// ReasonTimeFunction prefixes the name of a function or SQL value
	// function that depends on the clock: now, current_timestamp,
	// current_date, localtime, clock_timestamp, age with one argument...
	ReasonTimeFunction = "time_function:"
	// ReasonSessionFunction prefixes the name of a function that depends on
	// the session: current_user, session_user, current_role, user,
	// current_schema, current_catalog, current_setting, pg_backend_pid,
	// inet_client_addr, has_table_privilege, to_tsvector with the default
	// configuration...
	ReasonSessionFunction = "session_function:"
	// ReasonSystemCatalog prefixes the name of a system catalog or view
	// (pg_catalog, information_schema, or an unqualified PostgreSQL 17
	// catalog name such as pg_class) or of a function reading the catalogs
	// (pg_get_viewdef, format_type, to_regclass...): DDL changes them
	// without a write the proxy could see.
	ReasonSystemCatalog = "system_catalog:"
	// ReasonTempRelation prefixes a relation qualified with pg_temp: it
	// belongs to the session.
	ReasonTempRelation = "temp_relation:"
	// ReasonTimeLiteral prefixes the special date/time input word 'now',
	// 'today', 'tomorrow' or 'yesterday' found in a string constant ('today',
	// 'tomorrow 14:00', '[today,)'), which the server turns into the current
	// time (see TimeWord).
	ReasonTimeLiteral = "time_literal:"
	// ReasonTimeParameter prefixes such a word found in a Bind's parameter
	// values: that execution is not cached.
	ReasonTimeParameter = "time_parameter:"
	// ReasonTimeInput prefixes a date/time type (date, timestamptz,
	// daterange...) that a string the query computes is cast to
	// (concat('to', 'day')::date, date(lower(x))): the string may hold one
	// of those words, which only the server sees.
	ReasonTimeInput = "time_input:"

	// ReasonNoCacheHint: a /* pgmemo:no-cache */ hint on a text that would
	// otherwise be cacheable.
	ReasonNoCacheHint = "no_cache_hint"
)
