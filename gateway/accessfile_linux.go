//go:build linux

package gateway

import (
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/relia-dev/relia/clock"
)

// slowFileWrite is how long a raw write of the access log may take, its
// thread asleep in the kernel for part of it, before the writer hands its
// writes to the runtime for good: the file system is then one that makes
// writers wait (dirty-page throttling, a slow or remote disk), while the
// thread that waits holds a processor the gateway's requests need. A write
// that took long only because its thread was preempted, on a busy machine,
// does not count.
const slowFileWrite = 2 * time.Millisecond

// slowWrite reports whether a raw write that took took, during which its
// thread slept or not, shows a file system that makes writers wait.
func slowWrite(took time.Duration, slept bool) bool {
	return slept && took > slowFileWrite
}

// rawFile writes the access log's buffers to a regular file with a write(2)
// the runtime does not see. The file's writer goroutine is the last part
// of a proxied request's work that enters the runtime's syscall
// bookkeeping: each write it made that way woke sysmon from deep sleep
// whenever the processor had idled, which restarted sysmon's 20 µs polling
// for milliseconds (about 700 wake-ups a second on a gateway with one
// processor at 40,000 requests a second, 0.3 µs of CPU a request). A write
// to a regular file copies into the page cache and returns in tens of
// microseconds; one that slept and took longer than slowFileWrite
// switches the writer to os.File's writes, which let the runtime give the
// processor to other goroutines while the thread waits.
type rawFile struct {
	f     *os.File
	rc    syscall.RawConn
	clock clock.Clock
	slow  bool // a raw write was slow: every write goes through f
}

// newFileWriter returns what writes the access log's buffers to f: a raw
// writer for a regular file, f itself for anything else (a pipe, a
// terminal), whose writes may wait on a reader.
func newFileWriter(f *os.File, clk clock.Clock) io.Writer {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return f
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	return &rawFile{f: f, rc: rc, clock: clock.OrReal(clk)}
}

func (r *rawFile) Write(p []byte) (int, error) {
	if r.slow || len(p) == 0 {
		return r.f.Write(p)
	}
	start := r.clock.Now()
	n, slept := 0, false
	var werr error
	err := r.rc.Control(func(fd uintptr) {
		tid, before := threadWaits()
		defer func() {
			tid2, after := threadWaits()
			slept = tid2 == tid && after > before
		}()
		for n < len(p) {
			w, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch {
			case errno == syscall.EINTR:
			case errno != 0:
				werr = &os.PathError{Op: "write", Path: r.f.Name(), Err: errno}
				return
			case w == 0:
				werr = io.ErrShortWrite
				return
			default:
				n += int(w)
			}
		}
	})
	if slowWrite(r.clock.Since(start), slept) {
		r.slow = true
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// threadWaits returns the calling thread's id and how many times it has
// gone to sleep in the kernel (voluntary context switches), by raw system
// calls. The id tells whether a write's two readings are of one thread:
// the goroutine may be moved between them.
func threadWaits() (tid uintptr, waits int64) {
	tid, _, _ = syscall.RawSyscall(syscall.SYS_GETTID, 0, 0, 0)
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if _, _, errno := syscall.RawSyscall(syscall.SYS_GETRUSAGE, rusageThread, uintptr(unsafe.Pointer(&ru)), 0); errno != 0 {
		return tid, 0
	}
	return tid, int64(ru.Nvcsw)
}
