package proxy

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
	for len(body) > 1 && body[0] != 0 {
		code := body[0]
		end := 1
		for end < len(body) && body[end] != 0 {
			end++
		}
		val := string(body[1:end])
		if code == 'V' || code == 'S' {
			return val == "FATAL" || val == "PANIC"
		}
		if end >= len(body) {
			break
		}
		body = body[end+1:]
	}
	return false
}
