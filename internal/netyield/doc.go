// Package netyield lets a goroutine that works through a burst in slices
// give way, between slices, to the goroutines that Go's network poller
// would wake, and not only to those already runnable.
//
// With one processor (GOMAXPROCS=1, or every processor busy), Go's
// scheduler asks the network poller for the goroutines whose sockets
// became ready only when nothing else is runnable, or every 10 ms from
// its monitor. runtime.Gosched keeps the yielding goroutine runnable, so
// while a few goroutines take turns through long bursts (an AI stream
// relaying a provider's whole answer), a request that arrived meanwhile,
// or a first token, waits until every burst ends. Yield instead parks
// its goroutine until the poller's next round, which it asks for, once
// Quantum has passed since the last round: the bursts then wait for the
// poller, rather than the poller for the bursts (bench/ai/netpollwait
// shows the wait with and without it).
//
//	for more() {
//		step()
//		netyield.Yield()
//	}
//
// The runtime's own background sweeper, which runs after each collection,
// yields the way Yield avoids (golang/go#56060). PollDuringSweeps gives
// the poller a round every Quantum while the heap is swept, on a process
// with one processor:
//
//	stop := netyield.PollDuringSweeps()
//	defer stop()
package netyield
