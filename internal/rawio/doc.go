// Package rawio reads and writes TCP sockets with raw syscalls inside
// syscall.RawConn's callbacks, for relia's hot paths that move small
// messages: the fault proxy's pumps and the load generator's HTTP/1.1
// client.
//
// The sockets stay non-blocking and registered with the runtime's poller,
// which waits for readiness, so no call blocks a thread. What the raw
// syscall skips is the runtime's syscall bookkeeping (entersyscall,
// exitsyscall): on one busy core that bookkeeping wakes sysmon whenever
// the P has idled and lets it hand the P off during loopback writes, about
// a tenth of the CPU a small request costs (docs/benchmarks.md).
//
// Off Linux, and for connections that are not TCP, New returns nil and the
// caller uses net.Conn's own methods:
//
//	rc := rawio.New(conn)
//	if rc == nil {
//		n, err = conn.Read(buf)
//	} else {
//		n, err = rc.Read(buf)
//	}
//
// Deadlines set on the net.Conn apply: a wait for readiness past the
// deadline ends with os.ErrDeadlineExceeded.
package rawio
