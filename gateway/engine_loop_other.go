//go:build !linux || 386

package gateway

import "errors"

// The eventloop engine is 64-bit Linux's (engine_loop_linux.go: its
// raw socket calls have no numbers of their own on linux/386); config
// validation refuses it elsewhere.

const eventLoopSupported = false

type loop struct{}

type loopConn struct{}

func (lc *loopConn) write(p []byte) error { return nil }

func (l *loop) adopt(c *conn) {}

func (g *Gateway) newLoops(s *listenerServer) error {
	return errors.New("the eventloop engine runs on Linux only, and not on 386")
}

func (g *Gateway) startLoops(s *listenerServer) {}

func (s *listenerServer) closeLoops() {}

func (s *listenerServer) wakeLoops() {}

func (g *Gateway) targetWaits() {}
