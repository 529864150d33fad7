//go:build !linux || 386

package ai

// waitReadable: elsewhere than Linux a stream waits for its next event
// in the decoder's read.
func (b *upstreamBody) waitReadable() {}

// socketReadable: no look at the socket without a read elsewhere; the
// body's end is read when buffered.
func (b *upstreamBody) socketReadable() bool { return false }

// relayWait: elsewhere than Linux (and on linux/386, whose raw socket
// calls go through socketcall) a handed-off stream waits on the
// goroutine that runs its relay.
type relayWait struct{}

// streamWaits: no epoll set.
type streamWaits struct{}

func (streamWaits) Close() {}

// park waits for the provider's next bytes as waitNext does and reports
// false: the relay goes on on this goroutine.
func (r *Relay) park() bool {
	r.o.waitNext()
	return false
}

func (r *Relay) resumed() {}

func (r *Relay) unwatch() {}
