//go:build !linux

package gateway

// watchHangUp: elsewhere than Linux a client's hang-up is noticed at the
// next write of its stream.
func (w *aiWriter) watchHangUp() {}

func (w *aiWriter) unwatch() {}
