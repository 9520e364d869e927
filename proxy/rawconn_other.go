//go:build !linux

package proxy

import "net"

// newRawConn returns conn unchanged: the scheduler-invisible socket I/O of
// rawconn_linux.go is Linux only.
func newRawConn(conn net.Conn) net.Conn { return conn }
