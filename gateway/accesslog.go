package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// accessLog writes one JSON line per request through log/slog. It names
// the request (id, trace, route, upstream, method, path without the query)
// and its fate (status, attempts, latency, bytes, rejection reason), and
// never a header: Authorization, cookies and API keys cannot leak through
// it. A nil *accessLog logs nothing.
type accessLog struct {
	l *slog.Logger
}

func (a *accessLog) log(ctx *fasthttp.RequestCtx, x *exchange, route string, lat time.Duration) {
	if a == nil {
		return
	}
	var tid [32]byte
	upstream := ""
	if x.target != nil {
		upstream = x.target.addr
	}
	a.l.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", string(x.rid)),
		slog.String("trace_id", string(hexTo(tid[:], x.traceID[:]))),
		slog.String("tenant", x.tenant),
		slog.String("route", route),
		slog.String("upstream", upstream),
		slog.String("method", methodName(ctx.Method())),
		slog.String("path", string(x.path)),
		slog.String("client_ip", x.client.String()),
		slog.Int("status", x.status),
		slog.Int("attempts", x.attempts),
		slog.Float64("latency_ms", float64(lat)/float64(time.Millisecond)),
		slog.Int("bytes_in", len(ctx.Request.Body())),
		slog.Int64("bytes_out", x.bytesOut),
		slog.String("reason", x.reason),
		slog.String("policy", x.policy),
	)
}

func hexTo(dst, src []byte) []byte {
	const digits = "0123456789abcdef"
	for i, b := range src {
		dst[2*i] = digits[b>>4]
		dst[2*i+1] = digits[b&15]
	}
	return dst[:2*len(src)]
}

// bufferedWriter batches log lines into few writes: at tens of thousands of
// requests a second, one write(2) per line would cost more than the proxying.
// Lines reach the file within flushEvery, and at Close.
type bufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	dst  io.Writer
	done chan struct{}
	wg   sync.WaitGroup
	stop sync.Once
}

const flushEvery = 200 * time.Millisecond

func newBufferedWriter(dst io.Writer) *bufferedWriter {
	b := &bufferedWriter{w: bufio.NewWriterSize(dst, 64<<10), dst: dst, done: make(chan struct{})}
	b.wg.Add(1)
	go func() { // exits at Close
		defer b.wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.done:
				return
			}
		}
	}()
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes what is buffered.
func (b *bufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close flushes and stops the flusher; it does not close dst. Closing
// twice is harmless.
func (b *bufferedWriter) Close() error {
	b.stop.Do(func() { close(b.done) })
	b.wg.Wait()
	return b.Flush()
}
