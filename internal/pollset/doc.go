// Package pollset watches many file descriptors for readiness with one
// epoll instance and one goroutine (Linux only): a watcher is told of its
// descriptor's events by a call, rather than by a goroutine of its own
// that waits on it. The gateway watches its streaming clients for their
// hang-ups with a Set, and the AI gateway its handed-off streams'
// provider connections for their next bytes: 10,000 open streams are
// then 10,000 epoll entries, not 10,000 waiting goroutines
// (docs/benchmarks.md, "Open streams' memory").
//
//	var s pollset.Set
//	id, ok := s.Add(fd, unix.EPOLLIN|unix.EPOLLET, w) // w.Ready(events) on each event
//	...
//	s.Remove(id, fd) // before fd is closed
//	s.Close()
package pollset
