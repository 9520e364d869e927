package wire

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes the proxy uses for errors it raises itself.
const (
	CodeProtocolViolation     = "08P01" // protocol_violation
	CodeConnectionFailure     = "08006" // connection_failure
	CodeUnableToConnect       = "08001" // sqlclient_unable_to_establish_sqlconnection
	CodeConnectionException   = "08000" // connection_exception
	CodeFeatureNotSupported   = "0A000" // feature_not_supported
	CodeProgramLimitExceeded  = "54000" // program_limit_exceeded
	CodeAdminShutdown         = "57P01" // admin_shutdown
	CodeCannotConnectNow      = "57P03" // cannot_connect_now
	CodeInternalError         = "XX000" // internal_error
	CodeInvalidAuthorization  = "28000" // invalid_authorization_specification
	CodeTooManyConnections    = "53300" // too_many_connections
	CodeQueryCanceled         = "57014" // query_canceled
	CodeInsufficientPrivilege = "42501" // insufficient_privilege
	CodeSyntaxError           = "42601" // syntax_error
	CodeUndefinedTable        = "42P01" // undefined_table
)

// Error is a failure that should reach the client as an ErrorResponse. Code is a
// PostgreSQL SQLSTATE; Err, when set, is the underlying cause.
type Error struct {
	Code    string
	Message string
	Detail  string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (SQLSTATE %s): %v", e.Message, e.Code, e.Err)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with the given SQLSTATE.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrProtocol is the cause of every framing failure: an impossible length, an
// unknown message type, a malformed startup packet.
var ErrProtocol = errors.New("protocol violation")

func protocolErrorf(format string, args ...any) *Error {
	return &Error{Code: CodeProtocolViolation, Message: fmt.Sprintf(format, args...), Err: ErrProtocol}
}

// AsError returns err as an *Error, wrapping an unknown error with fallback code.
func AsError(err error, fallbackCode string) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	return &Error{Code: fallbackCode, Message: err.Error(), Err: err}
}

// ErrorResponse builds the message for e with the given severity ("ERROR" or "FATAL").
func (e *Error) ErrorResponse(severity string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            severity,
		SeverityUnlocalized: severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
	}
}

// AppendErrorResponse appends an encoded ErrorResponse for e to dst.
func AppendErrorResponse(dst []byte, severity string, e *Error) []byte {
	out, err := e.ErrorResponse(severity).Encode(dst)
	if err != nil { // only possible for absurd field contents; never lose the message
		return dst
	}
	return out
}
