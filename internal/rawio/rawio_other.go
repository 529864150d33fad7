//go:build !linux

package rawio

import "net"

// Conn is not available off Linux; New returns nil.
type Conn struct{}

// New returns nil: callers use net.Conn's own methods.
func New(net.Conn) *Conn { return nil }

// Read is never called: New returns no Conn.
func (*Conn) Read([]byte) (int, error) { panic("rawio: not available") }

// TryRead is never called: New returns no Conn.
func (*Conn) TryRead([]byte) (int, bool, error) { panic("rawio: not available") }

// Write is never called: New returns no Conn.
func (*Conn) Write([]byte) error { panic("rawio: not available") }

// Wrap returns c itself off Linux.
func Wrap(c net.Conn) net.Conn { return c }

// Listener returns ln itself off Linux.
func Listener(ln net.Listener) net.Listener { return ln }
