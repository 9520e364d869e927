package query

import "strconv"

// Class says what a statement does, as far as a caching proxy cares.
type Class uint8

// The classes. A statement pg_query can produce but this package does not
// know is SideEffects, the safe default.
const (
	// Unknown is the class of text that does not parse: nothing is known
	// about what it does.
	Unknown Class = iota
	// Empty is the class of text with no statement at all (only spaces,
	// comments or semicolons); the server answers EmptyQueryResponse. It is
	// never the class of a Statement.
	Empty
	// Read is SELECT, VALUES and TABLE, including WITH without
	// data-modifying CTEs. Only reads can be cacheable; a read with a
	// locking clause (SELECT ... FOR UPDATE) or a volatile function is still
	// a Read, but not cacheable.
	Read
	// Write changes rows: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM,
	// REFRESH MATERIALIZED VIEW, SELECT INTO, CREATE TABLE AS, CREATE
	// MATERIALIZED VIEW, a SELECT with a data-modifying CTE, and EXPLAIN
	// ANALYZE or COPY (query) TO of a write.
	Write
	// DDL changes definitions: CREATE, ALTER, DROP, COMMENT, SECURITY LABEL,
	// ALTER SYSTEM, DROP OWNED, REASSIGN OWNED and the like.
	DDL
	// Grant changes privileges or roles: GRANT, REVOKE, ALTER DEFAULT
	// PRIVILEGES, CREATE/ALTER/DROP ROLE, ALTER ROLE ... SET.
	Grant
	// TxControl is BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT,
	// RELEASE, ROLLBACK TO, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED,
	// SET TRANSACTION and SET SESSION CHARACTERISTICS AS TRANSACTION.
	TxControl
	// Session changes session state: SET, RESET, SET ROLE, SET SESSION
	// AUTHORIZATION, DISCARD, SET CONSTRAINTS.
	Session
	// SideEffects is everything whose effect this package cannot see or that
	// must reach the server each time (CALL, DO and EXECUTE may write
	// anything): CALL, DO, LISTEN, NOTIFY, UNLISTEN,
	// LOCK, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOAD, PREPARE,
	// EXECUTE, DEALLOCATE, DECLARE CURSOR, FETCH, MOVE, CLOSE, COPY TO, SHOW
	// and EXPLAIN.
	SideEffects
)

var classNames = [...]string{
	Unknown:     "Unknown",
	Empty:       "Empty",
	Read:        "Read",
	Write:       "Write",
	DDL:         "DDL",
	Grant:       "Grant",
	TxControl:   "TxControl",
	Session:     "Session",
	SideEffects: "SideEffects",
}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// weight orders classes by how much a statement of that class matters to the
// proxy; the class of a multi-statement Analysis is its heaviest.
func (c Class) weight() int {
	switch c {
	case Unknown:
		return 8
	case DDL:
		return 7
	case Grant:
		return 6
	case Write:
		return 5
	case SideEffects:
		return 4
	case Session:
		return 3
	case TxControl:
		return 2
	case Read:
		return 1
	}
	return 0
}
