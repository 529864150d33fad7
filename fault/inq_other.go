//go:build !linux || 386

package fault

import (
	"net"
	"sync/atomic"
)

// inqReader needs Linux's TCP_INQ; elsewhere pumps read and forward in
// turn.
type inqReader struct{}

func newInqReader(net.Conn, net.Conn, []byte, *atomic.Pointer[[]*toxicState], func([]byte) error) *inqReader {
	return nil
}

func (*inqReader) read() (int, error) { panic("fault: inqReader off Linux") }
