//go:build !linux || 386

package ai

// waitReadable: elsewhere than Linux a stream waits for its next event
// in the decoder's read.
func (b *upstreamBody) waitReadable() {}
