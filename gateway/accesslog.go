package gateway

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/relia-dev/relia/clock"
)

// accessLog writes one JSON line per request. It names the request (id,
// trace, tenant, route, upstream, method, path without the query) and its
// fate (status, attempts, latency, bytes, rejection reason), and never a
// header: Authorization, cookies and API keys cannot leak through it. The
// line has log/slog's JSON shape (time, level, msg, then the fields) but is
// appended by hand into the exchange's own buffer, because slog allocates
// several times per record and the access log runs once per request. A nil
// *accessLog logs nothing.
type accessLog struct {
	w *bufferedWriter
}

func (a *accessLog) log(x *exchange, route string, lat time.Duration) {
	if a == nil {
		return
	}
	b := x.line[:0]
	b = append(b, `{"time":"`...)
	b = x.stamp.appendTime(b, x.start.Add(lat))
	// The request id needs no escaping: identify keeps a client's only
	// when validRequestID passes it, and makes the others of hex digits.
	b = append(b, `","level":"INFO","msg":"request","request_id":"`...)
	b = append(b, x.rid...)
	b = append(b, `","trace_id":"`...)
	b = append(b, x.traceIDHex()...)
	b = append(b, `","tenant":`...)
	b = appendJSONStr(b, x.tenant)
	b = append(b, `,"route":`...)
	b = appendJSONStr(b, route)
	b = append(b, `,"upstream":`...)
	if x.target != nil {
		b = appendJSONStr(b, x.target.addr)
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"method":"`...)
	b = append(b, methodName(x.req.method)...)
	b = append(b, `","path":`...)
	b = appendJSONString(b, x.path)
	b = append(b, `,"client_ip":"`...)
	if x.client.IsValid() {
		b = x.h1c.appendAddr(b, x.client)
	} else {
		b = append(b, "invalid IP"...)
	}
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(x.status), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(x.attempts), 10)
	b = append(b, `,"latency_ms":`...)
	b = appendMillis(b, lat)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, x.req.bodyRead, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, x.bytesOut, 10)
	b = append(b, `,"reason":`...)
	b = appendJSONStr(b, x.reason)
	b = append(b, `,"policy":`...)
	b = appendJSONStr(b, x.policy)
	b = x.appendAIFields(b)
	b = append(b, "}\n"...)
	x.line = b
	a.w.Write(b)
}

// logStamp is a time formatted to the second (time.RFC3339), which an
// exchange keeps for the access lines of its next requests: most of them
// end in the same second, and formatting a time whole cost about a fifth
// of a line.
type logStamp struct {
	sec  int64
	loc  *time.Location
	n    int // the formatted time's length; 0: none yet
	zone int // where its zone begins
	b    [48]byte
}

// appendTime appends t as t.AppendFormat(b, time.RFC3339Nano) does.
func (s *logStamp) appendTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	if s.n == 0 || sec != s.sec || loc != s.loc {
		// A zone's offset changes only on a second's boundary: one
		// second in one location has one offset.
		f := time.Unix(sec, 0).In(loc).AppendFormat(s.b[:0], time.RFC3339)
		s.sec, s.loc, s.n = sec, loc, len(f)
		s.zone = bytes.IndexByte(f, 'T') + len("15:04:05") + 1
	}
	b = append(b, s.b[:s.zone]...)
	b = appendFraction(b, t.Nanosecond(), 9)
	return append(b, s.b[s.zone:s.n]...)
}

// exactMillis bounds the durations whose milliseconds appendMillis writes
// by integer arithmetic: below it, a duration in nanoseconds is exact as
// a float64 and its milliseconds' shortest decimal (what strconv writes)
// is their exact decimal, since any shorter decimal is at least 1 ns away
// and float64's spacing there is under a nanosecond's millionth part.
const exactMillis = 1e15 // about 11.6 days

// appendMillis appends d in milliseconds as
// strconv.AppendFloat(b, float64(d)/1e6, 'f', -1, 64) does, without the
// shortest-decimal search for the common durations.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 || d >= exactMillis {
		return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', -1, 64)
	}
	b = strconv.AppendInt(b, int64(d/time.Millisecond), 10)
	return appendFraction(b, int(d%time.Millisecond), 6)
}

// appendFraction appends f, a fraction of 10^digits (digits at most 9),
// as a decimal point and its digits without trailing zeros; nothing when
// f is 0.
func appendFraction(b []byte, f, digits int) []byte {
	if f == 0 {
		return b
	}
	var frac [10]byte
	frac[0] = '.'
	for i := digits; i > 0; i-- {
		frac[i] = byte('0' + f%10)
		f /= 10
	}
	n := digits + 1
	for frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}

// appendJSONStr is appendJSONString for a string, without copying it.
func appendJSONStr(b []byte, str string) []byte {
	return appendJSONString(b, unsafe.Slice(unsafe.StringData(str), len(str)))
}

// jsonPlain marks the bytes that appendJSONString copies as they are:
// ASCII but for control characters, quotes and backslashes.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, as
// encoding/json writes it.
func appendJSONString(b, s []byte) []byte {
	const digits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if jsonPlain[s[i]] {
			i++
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', digits[c>>4], digits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case '\u2028':
				b = append(b, `\u2028`...)
			case '\u2029':
				b = append(b, `\u2029`...)
			default:
				b = append(b, `\ufffd`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// bufferedWriter batches log lines into few large writes, made by a
// goroutine of its own so that a request never waits on a file: at tens of
// thousands of requests a second, one write(2) per line would cost more
// than the proxying, and each write(2) the runtime sees (entersyscall)
// also restarts sysmon's 20 µs polling, which on a gateway sharing its
// core cost about 5% of it (docs/benchmarks.md); to a regular file the
// writer's own writes are raw ones too (rawFile), for the same reason.
// Two buffers take turns: requests fill one while the other is written;
// when both are full a request waits, so no line is ever dropped. Lines reach the file within
// flushEvery of the writer's clock, and at Close.
type bufferedWriter struct {
	mu     sync.Mutex
	cur    []byte      // lines being collected, under mu
	closed bool        // under mu: lines after Close go straight to dst
	spare  chan []byte // the empty buffer, while the writer does not hold it
	full   chan []byte // a filled buffer, for the writer
	dst    io.Writer
	clock  clock.Clock
	done   chan struct{}
	wg     sync.WaitGroup
	stop   sync.Once
}

// flushEvery bounds how long a line waits for the file. accessBufferBytes
// is each buffer's size: small enough that both stay in the core's cache
// (with 1 MiB buffers each line was copied into memory the cache had
// long let go, which cost about 5% of the event loop's CPU), large
// enough that at 50,000 requests a second of 400-byte lines the writer
// makes about 300 writes a second.
const (
	flushEvery        = 200 * time.Millisecond
	accessBufferBytes = 64 << 10
)

// newBufferedWriter starts a writer to dst that flushes on clk's ticks
// (nil: the real clock).
func newBufferedWriter(dst io.Writer, clk clock.Clock) *bufferedWriter {
	return newBufferedWriterSize(dst, clk, accessBufferBytes)
}

// newBufferedWriterSize is newBufferedWriter with buffers of size bytes.
func newBufferedWriterSize(dst io.Writer, clk clock.Clock, size int) *bufferedWriter {
	b := &bufferedWriter{
		clock: clock.OrReal(clk),
		cur:   make([]byte, 0, size),
		spare: make(chan []byte, 1),
		full:  make(chan []byte, 1),
		dst:   dst,
		done:  make(chan struct{}),
	}
	b.spare <- make([]byte, 0, size)
	b.wg.Add(1)
	go b.run() // exits at Close
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.dst.Write(p)
	}
	if len(b.cur) > 0 && len(b.cur)+len(p) > cap(b.cur) {
		select {
		case next := <-b.spare: // waits while the writer is behind
			// Both buffers are in hand, so full is empty: no wait.
			b.full <- b.cur
			b.cur = next
		case <-b.done:
			// Close has begun and the writer is stopping: write in order
			// from here.
			if err := b.writeRestLocked(); err != nil {
				return 0, err
			}
		}
	}
	b.cur = append(b.cur, p...)
	return len(p), nil
}

// writeRestLocked waits for the writer to stop, then writes the buffer
// handed to it and not yet written, if any, and the lines collected since,
// in that order. The caller holds mu.
func (b *bufferedWriter) writeRestLocked() error {
	b.wg.Wait() // the writer never waits on mu, only tries it
	select {
	case buf := <-b.full:
		if _, err := b.dst.Write(buf); err != nil {
			return err
		}
	default:
	}
	if len(b.cur) == 0 {
		return nil
	}
	_, err := b.dst.Write(b.cur)
	b.cur = b.cur[:0]
	return err
}

func (b *bufferedWriter) run() {
	defer b.wg.Done()
	t := b.clock.NewTimer(flushEvery)
	defer t.Stop()
	for {
		select {
		case buf := <-b.full:
			b.write(buf)
		case <-t.C():
			b.flushCollected()
			t.Reset(flushEvery)
		case <-b.done: // Close writes what is left
			return
		}
	}
}

func (b *bufferedWriter) write(buf []byte) {
	_, _ = b.dst.Write(buf) // a log that cannot be written must not stop traffic
	b.spare <- buf[:0]
}

// flushCollected writes the lines collected so far. It skips a turn when a
// Write holds the lock: that Write may be waiting for this goroutine to
// return the spare buffer.
func (b *bufferedWriter) flushCollected() {
	if !b.mu.TryLock() {
		return
	}
	var buf []byte
	if len(b.cur) > 0 {
		select {
		case next := <-b.spare:
			buf, b.cur = b.cur, next
		default: // the other buffer is full and is written next
		}
	}
	b.mu.Unlock()
	if buf != nil {
		b.write(buf)
	}
}

// Close writes every line and stops the writer; it does not close dst.
// Closing twice is harmless.
func (b *bufferedWriter) Close() error {
	b.stop.Do(func() { close(b.done) })
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.writeRestLocked()
}
