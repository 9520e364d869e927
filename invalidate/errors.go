package invalidate

import "errors"

// ErrNoConnection is returned when a Catalog has neither a connection nor a
// Connect function, or when Connect returns no connection.
var ErrNoConnection = errors.New("invalidate: no service connection")

// Error reports a failure talking to the server: connecting, or one of the
// catalog queries. Err is the underlying error (often a *pgconn.PgError).
type Error struct {
	// Op names what failed: "connect", "begin", "set_config",
	// "resolve_relation", "expand_relation", "view_functions",
	// "function_volatility", "commit".
	Op string
	// Err is the cause.
	Err error
}

func (e *Error) Error() string { return "invalidate: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
