package proxy

import "bytes"

// state is where a client session stands in the protocol. The upstream's
// messages drive it: the transaction status comes only from ReadyForQuery, and
// COPY modes from the Copy*Response messages. transition is the only place that
// decides a new state.
type state uint32

const (
	stateStartup  state = iota // SSL/GSS negotiation, reading the StartupMessage
	stateAuth                  // relaying authentication, waiting for the first ReadyForQuery
	stateIdle                  // ReadyForQuery 'I': no transaction block
	stateInTx                  // ReadyForQuery 'T': inside a transaction block
	stateFailedTx              // ReadyForQuery 'E': failed transaction block, until ROLLBACK
	stateCopyIn                // CopyInResponse: the client sends CopyData
	stateCopyOut               // CopyOutResponse: the server sends CopyData
	stateCopyBoth              // CopyBothResponse: replication streaming
	stateClosed                // terminal
)

var stateNames = [...]string{"startup", "auth", "idle", "in_transaction", "failed_transaction", "copy_in", "copy_out", "copy_both", "closed"}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// transition returns the state after the server sent a message of type typ with
// body to a session in state cur. Messages that do not change the state return
// cur.
func transition(cur state, typ byte, body []byte) state {
	if cur == stateClosed {
		return stateClosed
	}
	switch typ {
	case 'Z': // ReadyForQuery
		if len(body) == 1 {
			switch body[0] {
			case 'I':
				return stateIdle
			case 'T':
				return stateInTx
			case 'E':
				return stateFailedTx
			}
		}
	case 'G':
		return stateCopyIn
	case 'H':
		return stateCopyOut
	case 'W':
		return stateCopyBoth
	case 'E': // a FATAL ends the session; ERROR leaves it to ReadyForQuery
		if isFatal(body) {
			return stateClosed
		}
	}
	return cur
}

// isFatal reports whether an ErrorResponse body has severity FATAL or PANIC,
// which means the server closes the connection after it.
func isFatal(body []byte) bool {
	sev := errorField(body, 'V') // not localized; servers before 9.6 send only S
	if sev == "" {
		sev = errorField(body, 'S')
	}
	return sev == "FATAL" || sev == "PANIC"
}

// errorField returns the value of field code of an ErrorResponse (or
// NoticeResponse) body, "" when it has none.
func errorField(body []byte, code byte) string {
	for len(body) > 1 && body[0] != 0 {
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		if body[0] == code {
			return string(body[1 : 1+end])
		}
		body = body[end+2:]
	}
	return ""
}
