package wire

// ValidFrontend reports whether typ is a message type a client may send after
// startup (protocol 3.0/3.2). 'p' covers every authentication response.
func ValidFrontend(typ byte) bool {
	switch typ {
	case 'B', 'C', 'D', 'E', 'F', 'H', 'P', 'Q', 'S', 'X', 'c', 'd', 'f', 'p':
		return true
	}
	return false
}

// ValidBackend reports whether typ is a message type a server may send.
func ValidBackend(typ byte) bool {
	switch typ {
	case '1', '2', '3', 'A', 'C', 'D', 'E', 'G', 'H', 'I', 'K', 'N', 'R', 'S', 'T', 'V', 'W', 'Z', 'c', 'd', 'n', 's', 't', 'v':
		return true
	}
	return false
}
