package rawio

import (
	"net"
	"time"
)

// WriteBy writes all of p to c, waiting for room in the socket's buffer
// until deadline. On a connection from Wrap the deadline is set only when
// the write must wait, and cleared once it is done: a small message
// written into a socket with room (nearly every one) then costs no timer
// in the runtime. Such a connection's write deadline is to be left unset
// by its other writers, or a passed one fails WriteBy before it tries (as
// any write); the error is then os.ErrDeadlineExceeded's, as usual.
// Elsewhere (TLS, other platforms) WriteBy sets the write deadline and
// writes.
func WriteBy(c net.Conn, p []byte, deadline time.Time) error {
	if tc, ok := c.(lazyWriter); ok {
		return tc.writeBy(p, deadline)
	}
	if err := c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.Write(p)
	return err
}

// lazyWriter is a connection from Wrap on Linux.
type lazyWriter interface {
	writeBy(p []byte, deadline time.Time) error
}
