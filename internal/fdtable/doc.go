// Package fdtable grows a process's table of file descriptors before
// load comes, so that it does not grow under load.
//
// Linux keeps a process's open files in a table that doubles when a new
// descriptor does not fit (64, 128, 256, ... entries). In a process with
// several threads, as every Go program is, the doubling waits for an RCU
// grace period (expand_fdtable calls synchronize_rcu) inside whichever
// system call asked for the descriptor: an accept or a connect then
// takes several milliseconds. On a gateway that is a new connection
// stalled, and with one processor, the Go runtime's whole processor held
// in that call until its monitor hands it on (up to 10 ms): the
// requests and first tokens of every other connection wait too
// (bench/ai's time-to-first-token step found accept4 taking 12-18 ms as
// relia's descriptors passed 256). A gateway grows the table once at
// start instead:
//
//	fdtable.Grow(fdtable.Gateway)
package fdtable
