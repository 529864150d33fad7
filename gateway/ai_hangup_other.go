//go:build !linux

package gateway

// hangUps: elsewhere than Linux a client's hang-up is noticed at the
// next write of its stream.
type hangUps struct{}

func (w *aiWriter) watchHangUp() {}

func (w *aiWriter) unwatch() {}

func (h *hangUps) close() {}
