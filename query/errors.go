package query

import (
	"errors"
	"strconv"

	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// ErrParse matches every *ParseError: errors.Is(err, ErrParse) tells a parse
// failure from other errors without a type assertion.
var ErrParse = errors.New("query: cannot parse SQL")

// ParseError reports text the PostgreSQL parser rejects. The proxy passes such
// text to the server unchanged, which answers with its own error: a ParseError
// is information, never a reason to block a query.
type ParseError struct {
	// Message is the parser's message, as the server would word it
	// ("syntax error at or near \"FORM\"").
	Message string
	// Position is the 1-based character position the parser points at, 0
	// when it gives none.
	Position int
	// Err is the parser's error.
	Err error
}

func (e *ParseError) Error() string {
	if e.Position > 0 {
		return "query: " + e.Message + " (at character " + strconv.Itoa(e.Position) + ")"
	}
	return "query: " + e.Message
}

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrParse.
func (e *ParseError) Is(target error) bool { return target == ErrParse }

func newParseError(err error) *ParseError {
	pe := &ParseError{Message: err.Error(), Err: err}
	var perr *pgparser.Error
	if errors.As(err, &perr) {
		pe.Position = perr.Cursorpos
	}
	return pe
}
