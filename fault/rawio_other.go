//go:build !linux

package fault

import "net"

// Elsewhere the proxy uses net.Conn's Read and Write.
func rawReader(net.Conn, []byte) func() (int, error) { return nil }
func rawWriter(net.Conn) func([]byte) error          { return nil }
