//go:build !linux

package gateway

import "errors"

// The eventloop engine is Linux's (engine_loop_linux.go); config
// validation refuses it elsewhere.

const eventLoopSupported = false

type loop struct{}

type loopConn struct{}

func (lc *loopConn) write(p []byte) error { return nil }

func (l *loop) adopt(c *conn) {}

func (g *Gateway) newLoops(s *listenerServer) error {
	return errors.New("the eventloop engine runs on Linux only")
}

func (g *Gateway) startLoops(s *listenerServer) {}

func (s *listenerServer) closeLoops() {}
